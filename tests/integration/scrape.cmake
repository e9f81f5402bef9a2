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

# The server's serving behaviour, one clause a test (scrape/http_serve.py
# says what each checks): keep-alive, pipelining, no head-of-line blocking
# behind idle, slow or windowed clients, the connection and window caps'
# 503s, slots freed by clients that left, which idle connection is
# reclaimed, delta_heap's semantics, a window's dates, and the head
# deadline beside keep-alive. Each runs tests/programs/scrape_target
# under heapprof at rate 1 (the runner sets LD_PRELOAD on it alone).
foreach(case keepalive pipelined no_head_of_line slow_reader cap_503
             closed_slots_reused idle_reclaim reclaim_spares_requests
             windows_cap windows_freed_on_close delta_heap window_dates
             head_timeouts_still)
  add_test(NAME test_http_serve_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/scrape/http_serve.py
                   --lib $<TARGET_FILE:heapprof>
                   --target $<TARGET_FILE:scrape_target> --case ${case})
  set_tests_properties(test_http_serve_${case} PROPERTIES
                       ENVIRONMENT "${TEST_TMP}"
                       LABELS "integration;scrape" TIMEOUT 90)
endforeach()
