# Attach mode's side table (runtime/sidetable.c) over the sampled map
# (runtime/sampled.c), compiled in from runtime/ with no interposer, so
# that sanitizer builds (which have no libheapprof.so) run it too. The
# linker wraps the map's mark and unmark for sidetable.c's calls, so that
# the forget test can stop a thread at either. Each mode is its own
# process: the table is never given back.
heapprof_test(test_sidetable_churn
  SOURCES test_sidetable.c ${PROJECT_SOURCE_DIR}/runtime/sampled.c
          ${PROJECT_SOURCE_DIR}/runtime/sidetable.c
  ARGS churn LINK heapprof_base heapprof_core pthread)
target_include_directories(test_sidetable_churn PRIVATE ${PROJECT_SOURCE_DIR}/runtime)
target_link_options(test_sidetable_churn PRIVATE
  "LINKER:--wrap=sampled_bare_mark,--wrap=sampled_bare_unmark")
foreach(mode stale forget threads nomem)
  heapprof_test_variant(test_sidetable_${mode} test_sidetable_churn ARGS ${mode})
endforeach()
# The modes with threads also run under TSan (the sanitize_* tests).
set_tests_properties(test_sidetable_forget test_sidetable_threads
                     PROPERTIES LABELS threads)
