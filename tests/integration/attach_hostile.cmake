# A hostile reviewer's attach cases (issue 15), with the real library:
# test_attach_hostile and its never-blocking target attach_busy.
add_executable(attach_busy ${PROJECT_SOURCE_DIR}/tests/programs/attach_busy.c)
target_compile_options(attach_busy PRIVATE ${HEAPPROF_WARNINGS})
heapprof_test(test_attach_hostile_busy_rate1
  SOURCES test_attach_hostile.c
  ARGS busy_rate1 $<TARGET_FILE:heapprof_cli> $<TARGET_FILE:attach_busy>)
add_dependencies(test_attach_hostile_busy_rate1 heapprof)
heapprof_test_variant(test_attach_hostile_dump_after_detach test_attach_hostile_busy_rate1
  ARGS dump_after_detach $<TARGET_FILE:heapprof_cli> $<TARGET_FILE:attach_busy>)
if(PEER_tcmalloc)
  heapprof_test_variant(test_attach_hostile_tcmalloc test_attach_hostile_busy_rate1
    ARGS peer $<TARGET_FILE:heapprof_cli> $<TARGET_FILE:attach_busy> ${PEER_tcmalloc})
else()
  add_test(NAME test_attach_hostile_tcmalloc
           COMMAND sh -c "echo '${PEER_MISSING_tcmalloc}'; exit 77")
  set_tests_properties(test_attach_hostile_tcmalloc PROPERTIES SKIP_RETURN_CODE 77)
endif()
