# `heapprof attach` with the real library into running programs (issue 15),
# label attach: attach/test_att_*.c drive the real command
# (build/bin/heapprof, which loads the libheapprof.so beside it) against
# programs of ours (tests/programs/att_*.c*), Debian's redis-server and
# python3. They need gdb, and root for the pid-reuse test (clone3
# set_tid); a missing prerequisite fails the test. Every wait has a
# deadline of tens of seconds (a hang detector), none is a timed check.
#
#   attach_mt_exact     rate 1 into 4 allocating threads: exact objects at
#                       known sites, no pre-attach site, pre-attach blocks
#                       (contents, usable sizes, realloc) intact
#   attach_mt_exact_nopie  the same, the program non-PIE with malloc, free,
#                       calloc, realloc, new and delete canonical PLT entries
#   attach_cycles       50 x (attach, dump, detach) under load: threads,
#                       descriptors, SigCgt and GOT slots back each time
#                       (_jemalloc: 10 x)
#   attach_fds          attached at rate 1: the program's lowest free
#                       descriptor and /proc/self/fd stay its own
#   attach_dump_detached  `heapprof dump` after a detach must not send the
#                       dump signal (no handler any more: it would kill)
#   attach_redis        redis-server (jemalloc) under redis-benchmark
#   attach_python       python3 (non-PIE, canonical PLT malloc)
#   attach_race_exit    the target exits during the attach; no gdb left
#   attach_race_reuse   its pid is reused before gdb attaches
#   attach_tls          PT_TLS MemSiz of libheapprof.so <= 128
#   attach_cli_*        the command killed while gdb runs, two at once,
#                       stale records, attach again with other settings,
#                       an unusable state directory
# _jemalloc: the same program linked with libjemalloc (the next allocator
# is not glibc's).
set(ATT ${CMAKE_CURRENT_LIST_DIR}/attach)
set(ATT_PROGRAMS ${PROJECT_SOURCE_DIR}/tests/programs)

add_library(att_util STATIC ${ATT}/att_util.c)
target_compile_options(att_util PRIVATE ${HEAPPROF_WARNINGS})
target_link_libraries(att_util PUBLIC testlib)
target_include_directories(att_util PUBLIC ${ATT})

# The targets. -O2 -g whatever the build type: the site functions are
# noipa frames with names and lines.
add_executable(att_mt ${ATT_PROGRAMS}/att_mt.cpp)
add_executable(att_race ${ATT_PROGRAMS}/att_race.c)
foreach(prog att_mt att_race)
  target_compile_options(${prog} PRIVATE ${HEAPPROF_WARNINGS} -O2 -g)
endforeach()
target_link_libraries(att_mt PRIVATE pthread dl)
# A non-PIE build: print_got takes the addresses of malloc, free, calloc,
# realloc, operator new and delete in position-dependent code, so the
# linker makes each a canonical PLT entry (an undefined symbol whose value
# is the stub, to which every module binds; python3.11 is built so).
add_executable(att_mt_nopie ${ATT_PROGRAMS}/att_mt.cpp)
target_compile_options(att_mt_nopie PRIVATE ${HEAPPROF_WARNINGS} -O2 -g -fno-pie)
target_link_options(att_mt_nopie PRIVATE -no-pie)
target_link_libraries(att_mt_nopie PRIVATE pthread dl)
if(PEER_jemalloc)
  add_executable(att_mt_jemalloc ${ATT_PROGRAMS}/att_mt.cpp)
  target_compile_options(att_mt_jemalloc PRIVATE ${HEAPPROF_WARNINGS} -O2 -g)
  target_link_libraries(att_mt_jemalloc PRIVATE pthread dl
                        -Wl,--no-as-needed ${PEER_jemalloc})
endif()

# att_test(NAME SOURCE ARGS...): the driver SOURCE as test NAME, label
# attach; the command, with the library beside it, built first.
function(att_test name source)
  heapprof_test(${name} SOURCES ${ATT}/${source} LINK att_util
                ARGS ${ARGN} LABELS attach)
  add_dependencies(${name} heapprof heapprof_cli)
endfunction()

set(ATT_CLI $<TARGET_FILE:heapprof_cli>)

att_test(attach_mt_exact test_att_mt.c exact ${ATT_CLI} $<TARGET_FILE:att_mt>)
heapprof_test_variant(attach_mt_exact_nopie attach_mt_exact
                      ARGS exact ${ATT_CLI} $<TARGET_FILE:att_mt_nopie> LABELS attach)
heapprof_test_variant(attach_cycles attach_mt_exact
                      ARGS cycles ${ATT_CLI} $<TARGET_FILE:att_mt> LABELS attach)
heapprof_test_variant(attach_fds attach_mt_exact
                      ARGS fds ${ATT_CLI} $<TARGET_FILE:att_mt> LABELS attach)
heapprof_test_variant(attach_dump_detached attach_mt_exact
                      ARGS dump_detached ${ATT_CLI} $<TARGET_FILE:att_mt> LABELS attach)
# 50 cycles (two gdb runs each; ~1 s a cycle here) and, with jemalloc as
# the next allocator, 10: label slow as well.
set_tests_properties(attach_cycles PROPERTIES TIMEOUT 900 LABELS "attach;slow")
if(PEER_jemalloc)
  heapprof_test_variant(attach_mt_exact_jemalloc attach_mt_exact
                        ARGS exact ${ATT_CLI} $<TARGET_FILE:att_mt_jemalloc>
                        LABELS attach allocators)
  heapprof_test_variant(attach_cycles_jemalloc attach_mt_exact
                        ARGS cycles ${ATT_CLI} $<TARGET_FILE:att_mt_jemalloc> 10
                        LABELS attach allocators)
  set_tests_properties(attach_cycles_jemalloc PROPERTIES TIMEOUT 900
                       LABELS "attach;allocators;slow")
else()
  foreach(t attach_mt_exact_jemalloc attach_cycles_jemalloc)
    add_test(NAME ${t} COMMAND sh -c "echo '${PEER_MISSING_jemalloc}'; exit 77")
    set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77 LABELS "attach;allocators")
  endforeach()
endif()

att_test(attach_redis test_att_redis.c ${ATT_CLI})
att_test(attach_python test_att_python.c ${ATT_CLI} ${ATT}/att_rounds.py)
set_tests_properties(attach_redis attach_python PROPERTIES LABELS "attach;realworld")

att_test(attach_race_exit test_att_race.c exit ${ATT_CLI} $<TARGET_FILE:att_race>)
heapprof_test_variant(attach_race_reuse attach_race_exit
                      ARGS reuse ${ATT_CLI} $<TARGET_FILE:att_race> LABELS attach)

# The command itself, interrupted, run twice at once, finding records of
# processes long gone, attached again with other settings, without a
# usable state directory (test_att_cli.c says what each checks).
add_executable(att_cli_target ${ATT}/att_cli_target.c)
target_compile_options(att_cli_target PRIVATE ${HEAPPROF_WARNINGS})
target_link_libraries(att_cli_target PRIVATE pthread)
att_test(attach_cli_killed test_att_cli.c killed ${ATT_CLI} $<TARGET_FILE:att_cli_target>
         $<TARGET_FILE:att_mt>)
add_dependencies(attach_cli_killed att_cli_target att_mt)
foreach(mode stale concurrent reattach statedir messages idle_dump)
  heapprof_test_variant(attach_cli_${mode} attach_cli_killed
                        ARGS ${mode} ${ATT_CLI} $<TARGET_FILE:att_cli_target>
                             $<TARGET_FILE:att_mt> LABELS attach)
endforeach()

att_test(attach_tls test_att_tls.c ${CMAKE_READELF} $<TARGET_FILE:heapprof>
         $<TARGET_FILE:attach_stub_tls>)
