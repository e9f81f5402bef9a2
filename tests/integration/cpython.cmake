# A real test suite nobody here wrote, run under heapprof: a part of
# CPython's own (Debian's libpython3.11-testsuite, cpython/modules.txt)
# must give every test case the same outcome under heapprof, at rate 4096
# and at the default rate, as without it.
#
# cpython_baseline runs the modules without heapprof first (a fixture of the
# other two) and must pass with the exclusions of cpython/exclude.txt: that
# proves the list right on this machine, and records each case's outcome
# for the two runs under heapprof to match exactly. The runner
# (cpython/run_regrtest.py) fails loudly when the test suite is not
# installed. Each run uses both cores (regrtest -j4: many cases sleep), so
# each reserves two CTest processors and they run one at a time.

set(CPY ${CMAKE_CURRENT_LIST_DIR}/cpython)
set(CPY_TMP ${CMAKE_BINARY_DIR}/test-tmp)
set(CPY_RESULTS ${CPY_TMP}/cpython-baseline.json)
set(CPY_COMMON --python /usr/bin/python3.11 --modules ${CPY}/modules.txt
    --exclude ${CPY}/exclude.txt --results ${CPY_RESULTS} --jobs 4
    --timeout 240)

# cpython_test(NAME MODE ARGS...): one run of the runner; the runner, not
# CTest, sets LD_PRELOAD for the regrtest process tree.
function(cpython_test name mode)
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${CPY}/run_regrtest.py
           ${mode} ${CPY_COMMON} --work ${CPY_TMP}/${name} ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${TEST_TMP}"
                       LABELS "realworld;contract" PROCESSORS 2 TIMEOUT 900)
endfunction()

cpython_test(cpython_baseline baseline)
set_tests_properties(cpython_baseline PROPERTIES FIXTURES_SETUP cpython_base)

foreach(config rate4096 default)
  set(rate "")
  if(config STREQUAL rate4096)
    set(rate --rate 4096)
  endif()
  cpython_test(cpython_${config} heapprof --lib $<TARGET_FILE:heapprof>
               --go ${GO_EXECUTABLE} --seed 12345 ${rate})
  set_tests_properties(cpython_${config} PROPERTIES
                       FIXTURES_REQUIRED cpython_base)
endforeach()
