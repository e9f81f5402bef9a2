# ---- attach mode's malloc family (runtime/alloc_attach.c), called
# directly: the library is dlopen'ed RTLD_LOCAL as an attach loads it, and
# no GOT is patched. Never preloaded or linked: dlsym(RTLD_DEFAULT) must
# find glibc's malloc. HEAPPROF_RATE=0 so that nothing samples until the
# test sets rate 1. ----
add_executable(test_alloc_attach test_alloc_attach.cpp)
target_compile_options(test_alloc_attach PRIVATE ${HEAPPROF_WARNINGS} -g)
target_link_libraries(test_alloc_attach PRIVATE testlib pthread)
target_include_directories(test_alloc_attach PRIVATE
  ${PROJECT_SOURCE_DIR}/runtime
  $<TARGET_PROPERTY:heapprof,INTERFACE_INCLUDE_DIRECTORIES>)
add_dependencies(test_alloc_attach heapprof)
foreach(mode exact blocks realloc stale forget errno cxx threads fork)
  heapprof_test_variant(test_alloc_attach_${mode} test_alloc_attach
    ARGS $<TARGET_FILE:heapprof> ${mode} ENV "HEAPPROF_RATE=0")
endforeach()
heapprof_test_variant(test_alloc_attach_maxmem test_alloc_attach
  ARGS $<TARGET_FILE:heapprof> maxmem
  ENV "HEAPPROF_RATE=0;HEAPPROF_MAX_MEM=16M" LABELS hostile)
