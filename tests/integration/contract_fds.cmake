# The host contract, descriptors, stdio and hidden libc state
# (contract/fds_*.c, docs/RELIABILITY.md). Each test is a driver that runs
# itself again as the program under LD_PRELOAD, in an environment it
# builds; the driver itself is never preloaded.

set(FDS_DIR ${CMAKE_CURRENT_LIST_DIR}/contract)
set(FDS_LIB $<TARGET_FILE:heapprof>)

add_library(fds_util STATIC ${FDS_DIR}/fds_util.c)
target_compile_options(fds_util PRIVATE ${HEAPPROF_WARNINGS})
target_link_libraries(fds_util PUBLIC pthread)

# fds_contract(NAME [ARGS a...] [LABEL l]): builds contract/NAME.c with the
# shared helpers and registers the test NAME, the library's path first.
function(fds_contract name)
  cmake_parse_arguments(T "" "LABEL" "ARGS" ${ARGN})
  heapprof_test(${name} SOURCES ${FDS_DIR}/${name}.c
                ARGS ${FDS_LIB} ${T_ARGS} LINK fds_util
                LABELS contract ${T_LABEL})
endfunction()

# fds_variant(NAME EXE [ARGS a...] [LABEL l]): EXE again, other arguments.
function(fds_variant name exe)
  cmake_parse_arguments(T "" "LABEL" "ARGS" ${ARGN})
  heapprof_test_variant(${name} ${exe} ARGS ${FDS_LIB} ${T_ARGS}
                        LABELS contract ${T_LABEL})
endfunction()

# 1. A daemon's own descriptors after it closed 3..1023 (B2, B3).
fds_contract(fds_daemon ARGS close LABEL hostile)
fds_variant(fds_daemon_close_range fds_daemon ARGS range LABEL hostile)

# 2. open() returns the lowest free number; /proc/self/fd is the program's (B2).
fds_contract(fds_lowest ARGS main LABEL integration)
fds_variant(fds_lowest_fd0_closed fds_lowest ARGS fd0 LABEL integration)
fds_variant(fds_lowest_forked fds_lowest ARGS forked LABEL integration)

# 3. Children see exactly the descriptors they were given (B2).
fds_contract(fds_children LABEL integration)

# 4. heapprof leaves the program's strtok state alone (B13).
fds_contract(fds_strtok LABEL hostile)

# 4b. errno across heapprof's wake-ups; strerror's text (hidden libc state).
fds_contract(fds_errno ARGS signal LABEL hostile)
fds_variant(fds_errno_growth fds_errno ARGS growth LABEL hostile)

# 5. Children inheriting a fixed HTTP port stay silent; a foreign holder of
#    the port is reported in one line (B11).
fds_contract(fds_httpport ARGS inherit LABEL integration)
fds_variant(fds_httpport_verbose fds_httpport ARGS inherit_verbose LABEL integration)
fds_variant(fds_httpport_foreign fds_httpport ARGS foreign LABEL integration)
fds_variant(fds_httpport_foreign_go fds_httpport ARGS foreign_go LABEL integration)

# 6. stdout, stderr and the exit status are the program's alone, whatever
#    trigger runs (HEAPPROF_VERBOSE unset; test_quiet covers the rest).
fds_contract(fds_quiet ARGS http LABEL integration)
foreach(mode interval growth leakwatch peak all)
  fds_variant(fds_quiet_${mode} fds_quiet ARGS ${mode} LABEL integration)
endforeach()

# 7. Found by the hunt for more of the same kind.
# 7a. heapprof's stderr lines follow the program's dup2() over descriptor 2.
fds_contract(fds_stderr ARGS failing LABEL hostile)
fds_variant(fds_stderr_verbose fds_stderr ARGS verbose LABEL hostile)
fds_variant(fds_stderr_leak fds_stderr ARGS leak LABEL hostile)
# 7b. stdio's stream list is the program's: fcloseall()/fflush(NULL) never
#     move one of its descriptors through a stream heapprof opened.
fds_contract(fds_fcloseall LABEL hostile)
# 7c. Every descriptor number under RLIMIT_NOFILE is the program's.
fds_contract(fds_rlimit LABEL hostile)
# 7d. Not multithreaded at the top of main with the default configuration
#     (unshare(CLONE_NEWUSER) works; Python 3.12+ warns at fork otherwise).
fds_contract(fds_threads LABEL integration)
