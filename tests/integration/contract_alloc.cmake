# The host contract, allocator semantics and data (docs/RELIABILITY.md):
# one clause per test, each run under the configurations it names; each
# fails with the defect it guards against planted back.
set(ALLOC_CONTRACT_DIR ${CMAKE_CURRENT_LIST_DIR}/contract)

# alloc_contract_exe(NAME SOURCE [libs...]): a test program of contract/.
function(alloc_contract_exe name source)
  add_executable(${name} ${ALLOC_CONTRACT_DIR}/${source})
  target_compile_options(${name} PRIVATE ${HEAPPROF_WARNINGS})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(${name} PRIVATE testlib ${ARGN})
endfunction()

# alloc_contract_matrix(EXE): EXE under heapprof over glibc, and over
# jemalloc and tcmalloc (label allocators, see peer_variant), each at rates
# 1, 4096 and the default, with a fixed seed; EXE is told the allocator.
function(alloc_contract_matrix exe)
  set(rate_1 "HEAPPROF_RATE=1;HEAPPROF_SEED=11")
  set(rate_4096 "HEAPPROF_RATE=4096;HEAPPROF_SEED=11")
  set(rate_default "HEAPPROF_SEED=11")
  foreach(rate 1 4096 default)
    heapprof_test_variant(contract_${exe}_glibc_${rate} ${exe} ARGS glibc
      ENV "LD_PRELOAD=$<TARGET_FILE:heapprof>;${rate_${rate}}" LABELS contract)
    foreach(alloc jemalloc tcmalloc)
      peer_variant(contract_${exe}_${alloc}_${rate} ${exe} ${alloc}
        ARGS ${alloc} ENV "${rate_${rate}}" LABELS contract allocators)
    endforeach()
  endforeach()
endfunction()

# B1: every malloc_usable_size byte is the program's, and realloc carries
# min(old usable, new usable) of them, for every allocation function.
alloc_contract_exe(alloc_usable alloc_usable.c)
alloc_contract_matrix(alloc_usable)

# B1 for C++: every usable byte of an operator new block is the program's,
# kept while others come and go; every delete form gives it back.
alloc_contract_exe(alloc_new alloc_new.cpp)
alloc_contract_matrix(alloc_new)

# B1 as redis-server relies on it: APPEND/SETRANGE values read back intact.
alloc_contract_exe(alloc_redis alloc_redis.c)
heapprof_test_variant(contract_alloc_redis alloc_redis
  ARGS $<TARGET_FILE:heapprof> LABELS contract realworld)
heapprof_test_variant(contract_alloc_redis_4096 alloc_redis
  ARGS $<TARGET_FILE:heapprof> 4096 LABELS contract realworld)

# B14: a sample keeps the rate it was taken at; set_rate re-weights nothing.
alloc_contract_exe(alloc_setrate alloc_setrate.c m)
heapprof_test_variant(contract_alloc_setrate alloc_setrate
  ENV "LD_PRELOAD=$<TARGET_FILE:heapprof>;HEAPPROF_RATE=1;HEAPPROF_SEED=11"
  LABELS contract)

# Results, errno, alignment and zeroing are the allocator's own: the table
# made under heapprof equals the one made by the same allocator alone.
alloc_contract_exe(alloc_results alloc_results.c pthread)
alloc_contract_matrix(alloc_results)
