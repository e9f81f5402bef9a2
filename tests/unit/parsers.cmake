# The parsers: what the environment, the heapprof command and the HTTP
# server accept (runtime/config.c, runtime/httpreq.c, cli/heapprof.c).
# test_config, test_cli and test_http are registered in CMakeLists.txt.
# The unit test links only heapprof_core, so it also runs in the sanitizer
# builds when this file is included there.
heapprof_test(test_httpreq SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_httpreq.c LINK heapprof_core
              LABELS unit)
