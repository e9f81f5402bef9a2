# The host contract, threads, cancellation, fork, exec, signals, process
# lifetime and profile names (docs/RELIABILITY.md): one clause per test,
# each under the configurations it names; each fails with the defect it
# guards against planted back. Every wait has a deadline of tens of
# seconds, so a hang fails the test instead of blocking the run.
set(PROC_SRC ${CMAKE_CURRENT_LIST_DIR}/contract)

# proc_exe(NAME SOURCE [LINK libs...]): a program of contract/ with the
# process tests' helpers.
function(proc_exe name source)
  add_executable(${name} ${PROC_SRC}/${source} ${PROC_SRC}/proc_common.c)
  target_compile_options(${name} PRIVATE ${HEAPPROF_WARNINGS})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(${name} PRIVATE testlib pthread ${ARGN})
endfunction()

# proc_dir(VAR NAME TEST...): a directory under test-tmp that each run of
# the tests named starts empty; its path in VAR.
function(proc_dir var name)
  set(dir ${CMAKE_BINARY_DIR}/test-tmp/${name})
  file(MAKE_DIRECTORY ${dir})
  add_test(NAME fresh_dir_${name} COMMAND sh -c "rm -rf '${dir}' && mkdir -p '${dir}'")
  set_tests_properties(fresh_dir_${name} PROPERTIES FIXTURES_SETUP dir_${name}
                       LABELS contract)
  foreach(t ${ARGN})
    set_tests_properties(${t} PROPERTIES FIXTURES_REQUIRED dir_${name})
  endforeach()
  set(${var} ${dir} PARENT_SCOPE)
endfunction()

set(proc_pre "LD_PRELOAD=$<TARGET_FILE:heapprof>")

# ---- B4: malloc, calloc, realloc and free are not cancellation points,
# with the growth trigger firing from the allocating thread, with the peak
# copy, with leak watch, and by default.
proc_exe(proc_cancel proc_cancel.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-cancel)
set(out "HEAPPROF_OUT=${dir}/p.%p.%n.pb.gz")
set(cancel_growth "${out};HEAPPROF_RATE=1;HEAPPROF_GROWTH=1M")
set(cancel_peak "${out};HEAPPROF_RATE=1;HEAPPROF_PEAK=1")
set(cancel_leak "${out};HEAPPROF_RATE=1;HEAPPROF_LEAKWATCH=1")
set(cancel_default "${out}")
set(cancel_tests "")
foreach(cfg growth peak leak default)
  set(mode other)
  if(cfg STREQUAL growth)
    set(mode growth)
  endif()
  heapprof_test_variant(contract_proc_cancel_${cfg} proc_cancel
    ARGS ${mode} ${dir} ENV "${proc_pre};${cancel_${cfg}}"
    LABELS contract integration)
  list(APPEND cancel_tests contract_proc_cancel_${cfg})
endforeach()
proc_dir(dir proc-cancel ${cancel_tests})

# ---- B5: fork never waits for a dump in progress; a child forked during
# one can profile itself and exit.
proc_exe(proc_fork proc_fork.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-fork)
foreach(mode latency child)
  heapprof_test_variant(contract_proc_fork_${mode} proc_fork ARGS ${mode} ${dir}
    ENV "${proc_pre};HEAPPROF_RATE=1;HEAPPROF_OUT=${dir}/f.%p.%n.pb.gz"
    LABELS contract hostile)
endforeach()
proc_dir(dir proc-fork contract_proc_fork_latency contract_proc_fork_child)

# ---- B6: a process ends when its last program thread does: main's
# pthread_exit with a worker that returns later, or alone; a child forked
# from a worker thread whose start function returns. By default, at rate
# 1, with the HTTP server and interval dumps (each its own thread).
proc_exe(proc_lifetime proc_lifetime.c)
set(life_default "")
set(life_rate1 HEAPPROF_RATE=1)
set(life_http HEAPPROF_HTTP=127.0.0.1:0 HEAPPROF_INTERVAL=1)
set(life_http_rate1 HEAPPROF_HTTP=127.0.0.1:0 HEAPPROF_INTERVAL=1 HEAPPROF_RATE=1)
foreach(mode main-exit main-alone fork-thread)
  foreach(cfg default rate1 http http_rate1)
    heapprof_test_variant(contract_proc_lifetime_${mode}_${cfg} proc_lifetime
      ARGS ${mode} $<TARGET_FILE:heapprof> ${life_${cfg}}
      LABELS contract hostile)
  endforeach()
endforeach()

# ---- B7: profiles of one pid across exec never collide; `heapprof dump`
# finds the exec'd image's new profile.
proc_exe(proc_exec proc_exec.c)
heapprof_test_variant(contract_proc_exec proc_exec
  ARGS $<TARGET_FILE:heapprof_cli> $<TARGET_FILE:heapprof>
  LABELS contract hostile)

# ---- B8, B9: every legal file name works; a template that cannot fit
# PATH_MAX is refused at start-up in one line; a failed dump says why.
proc_exe(proc_names proc_names.c)
foreach(mode name248 name255 pathmax pathmax-verbose unwritable
             unwritable-verbose)
  heapprof_test_variant(contract_proc_names_${mode} proc_names
    ARGS ${mode} $<TARGET_FILE:heapprof> LABELS contract integration)
endforeach()

# ---- Signals: masks and the program's own SIGUSR2 handlers.
proc_exe(proc_signals proc_signals.c)
foreach(mode own ignored)
  heapprof_test_variant(contract_proc_signals_${mode} proc_signals
    ARGS ${mode} $<TARGET_FILE:heapprof> LABELS contract integration)
endforeach()

# ---- Found while hunting (issue 10's "more of the same kind").
# Cancelling a thread inside a heapprof API call leaves heapprof working.
proc_exe(proc_cancel_api proc_cancel_api.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-cancel-api)
heapprof_test_variant(contract_proc_cancel_api proc_cancel_api ARGS ${dir}
  ENV "${proc_pre};HEAPPROF_RATE=1;HEAPPROF_OUT=${dir}/c.%p.%n.pb.gz"
  LABELS contract hostile)
proc_dir(dir proc-cancel-api contract_proc_cancel_api)

# exit() ends the process while a dump is blocked in another thread (the
# exit profile, the exit peak profile).
proc_exe(proc_exit_dump proc_exit_dump.c)
heapprof_test_variant(contract_proc_exit_dump proc_exit_dump
  ARGS $<TARGET_FILE:heapprof> LABELS contract hostile)
heapprof_test_variant(contract_proc_exit_dump_peak proc_exit_dump
  ARGS $<TARGET_FILE:heapprof> HEAPPROF_PEAK=1 LABELS contract hostile)

# A library's fork handlers, registered before heapprof's, may allocate.
add_library(proc_atfork_lib SHARED ${PROC_SRC}/proc_atfork_lib.c)
target_compile_options(proc_atfork_lib PRIVATE ${HEAPPROF_WARNINGS})
target_link_libraries(proc_atfork_lib PRIVATE pthread)
proc_exe(proc_atfork proc_atfork.c proc_atfork_lib)
heapprof_test_variant(contract_proc_atfork proc_atfork
  ARGS $<TARGET_FILE:heapprof> HEAPPROF_RATE=1 LABELS contract hostile)
heapprof_test_variant(contract_proc_atfork_default proc_atfork
  ARGS $<TARGET_FILE:heapprof> LABELS contract hostile)

# A program at its RLIMIT_NOFILE still gets its profile on SIGUSR2.
proc_exe(proc_rlimit proc_rlimit.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-rlimit)
heapprof_test_variant(contract_proc_rlimit proc_rlimit ARGS ${dir}
  ENV "${proc_pre};HEAPPROF_RATE=1;HEAPPROF_OUT=${dir}/r.%p.%n.pb.gz"
  LABELS contract hostile)
proc_dir(dir proc-rlimit contract_proc_rlimit)

# A single-threaded program can unshare(CLONE_NEWUSER) (the kernel refuses
# it to a multithreaded process): once heapprof has sampled (16 MiB), by
# default and with the HTTP server, and before any allocation of its own
# (a fixed seed: the same start-up allocations sample the same way).
proc_exe(proc_unshare proc_unshare.c)
heapprof_test_variant(contract_proc_unshare proc_unshare
  ARGS sampled $<TARGET_FILE:heapprof> LABELS contract hostile)
heapprof_test_variant(contract_proc_unshare_http proc_unshare
  ARGS sampled $<TARGET_FILE:heapprof> HEAPPROF_HTTP=127.0.0.1:0
  LABELS contract hostile)
heapprof_test_variant(contract_proc_unshare_fresh proc_unshare
  ARGS fresh $<TARGET_FILE:heapprof> HEAPPROF_SEED=1 LABELS contract hostile)

# A forked child's dump signal is answered even if it came before the
# child's first allocation (before its dump thread exists).
proc_exe(proc_fork_signal proc_fork_signal.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-fork-signal)
heapprof_test_variant(contract_proc_fork_signal proc_fork_signal ARGS ${dir}
  ENV "${proc_pre};HEAPPROF_RATE=1;HEAPPROF_OUT=${dir}/f.%p.%n.pb.gz"
  LABELS contract hostile)
proc_dir(dir proc-fork-signal contract_proc_fork_signal)

# Profiles written after main's pthread_exit (the API's, the signal's) are
# symbolized: /proc/self shows no maps once the main thread has ended.
proc_exe(proc_main_exited proc_main_exited.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-main-exited)
heapprof_test_variant(contract_proc_main_exited proc_main_exited ARGS ${dir}
  ENV "${proc_pre};HEAPPROF_RATE=1;HEAPPROF_OUT=${dir}/m.%p.%n.pb.gz"
  LABELS contract hostile)
proc_dir(dir proc-main-exited contract_proc_main_exited)

# ---- the dump signal's handler is invisible: sigaction and signal report
# SIG_DFL, so a program can save and restore it (CPython could not).
proc_exe(proc_sigview proc_sigview.c)
set(dir ${CMAKE_BINARY_DIR}/test-tmp/proc-sigview)
heapprof_test_variant(contract_proc_sigview proc_sigview ARGS ${dir}
  ENV "${proc_pre};HEAPPROF_RATE=4096;HEAPPROF_OUT=${dir}/p.%n.pb.gz"
  LABELS contract integration)
proc_dir(dir proc-sigview contract_proc_sigview)

# The API keeps the program's errno, except after HEAPPROF_EIO; a write's
# errno that the profiler also uses (EINVAL) is still HEAPPROF_EIO.
proc_exe(proc_api_errno proc_api_errno.c heapprof)
heapprof_test_variant(contract_proc_api_errno proc_api_errno
  ENV "HEAPPROF_RATE=1" LABELS contract)

# A forked child keeps its parent's errno (the HTTP server's fork handler
# used to leave fstat's EBADF there).
proc_exe(proc_fork_errno proc_fork_errno.c)
heapprof_test_variant(contract_proc_fork_errno proc_fork_errno
  ENV "${PRELOAD};HEAPPROF_HTTP=127.0.0.1:0;HEAPPROF_RATE=4096" LABELS contract)

# dlclose, which heapprof exports to keep an unloading library's frames:
# the same results, messages and errno, and no deadlock when a destructor
# closes a library while profiles are being written.
foreach(which inner outer)
  add_library(proc_dlclose_${which} MODULE ${PROC_SRC}/proc_dlclose_lib.c)
  target_compile_options(proc_dlclose_${which} PRIVATE ${HEAPPROF_WARNINGS})
endforeach()
target_compile_definitions(proc_dlclose_outer PRIVATE OUTER)
target_link_libraries(proc_dlclose_outer PRIVATE dl)
proc_exe(proc_dlclose proc_dlclose.c dl)
heapprof_test_variant(contract_proc_dlclose proc_dlclose
  ARGS $<TARGET_FILE:heapprof> $<TARGET_FILE:proc_dlclose_inner>
       $<TARGET_FILE:proc_dlclose_outer>
  LABELS contract hostile)
