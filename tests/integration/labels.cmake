# Issue 14's tests: labels reach every kind of profile. Each script of
# labels/ runs tests/programs/lab_tenants (a program driven line by line
# on stdin, linked with heapprof) at HEAPPROF_RATE=1, so that every
# label's bytes are known exactly, and reads what heapprof wrote both by
# decoding the protobuf (tests/integration/pprofpb.py) and through the
# real `go tool pprof`:
#   lab_http.py    HEAPPROF_HTTP: heap, allocs, ?seconds= windows,
#                  delta_heap asked twice, ?debug=1 text
#   lab_peak.py    HEAPPROF_PEAK=1: the peak keeps the labels of its moment
#   lab_files.py   heapprof_write_profile, heapprof_dump, the dump signal
#                  and the exit profile
#   lab_tools.py   go tool pprof -tags, -tagfocus, -tagignore, -tagroot
#                  (and the numeric-value gotcha of -tagfocus)
#   lab_plain.py   a program that never labels: only the `bytes` label,
#                  byte for byte as before labels existed
# The scripts share labels/lablib.py (and symbols/symlib.py's runner).

add_executable(lab_tenants ${PROJECT_SOURCE_DIR}/tests/programs/lab_tenants.c)
target_compile_options(lab_tenants PRIVATE ${HEAPPROF_WARNINGS} -O2 -g)
target_link_libraries(lab_tenants PRIVATE heapprof)

set(LAB_DIR ${CMAKE_CURRENT_LIST_DIR}/labels)

# lab_test(NAME SCRIPT [ARGS a...])
function(lab_test name script)
  cmake_parse_arguments(T "" "" "ARGS" ${ARGN})
  add_test(NAME ${name}
           COMMAND /usr/bin/python3 ${LAB_DIR}/${script}
                   --lib $<TARGET_FILE:heapprof> --go ${GO_EXECUTABLE}
                   --binary $<TARGET_FILE:lab_tenants> ${T_ARGS})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${TEST_TMP}"
                       LABELS "integration;labels" TIMEOUT 300)
endfunction()

lab_test(test_lab_http lab_http.py)
lab_test(test_lab_peak lab_peak.py)
lab_test(test_lab_files lab_files.py)
lab_test(test_lab_tools lab_tools.py)
lab_test(test_lab_plain lab_plain.py)
