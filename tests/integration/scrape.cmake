# Issue 12's scrape test with real traffic: Parca's and Grafana Alloy's
# scrape schedules replayed for 70 s against examples/leaky_service under
# load and heapprof (HEAPPROF_HTTP on a port of its own), with a human's
# heap?seconds=10, a `go tool pprof` fetch, idle keep-alive connections and
# slowloris clients at the same time. Every memory scrape must answer in its
# engine's timeout and pass Parca's and Pyroscope's rules, the 404s must be
# fast, and delta_heap's windows must add up to the cumulative growth
# (scrape/scrape_replay.py says how, and with which tolerances).
#
# The runner, not CTest, sets LD_PRELOAD, and only on the service. The
# service, its load and the replay keep both cores busy, so the test
# reserves them.

if(HEAPPROF_BUILD_EXAMPLES)
  add_test(NAME test_scrape_replay
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/scrape/scrape_replay.py
                   --lib $<TARGET_FILE:heapprof>
                   --service $<TARGET_FILE:leaky_service>
                   --go ${GO_EXECUTABLE} --seconds 70 --rate 65536)
  set_tests_properties(test_scrape_replay PROPERTIES
                       ENVIRONMENT "${TEST_TMP}"
                       LABELS "integration;scrape;slow"
                       PROCESSORS 2 TIMEOUT 240)
endif()
