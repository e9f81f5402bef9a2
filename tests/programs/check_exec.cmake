# test_exec_profile: exactly one exit profile, from the exec chain's last
# image, and go tool pprof reads it.
file(GLOB profiles "${DIR}/e.*.pb.gz")
list(LENGTH profiles n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "want 1 exit profile from the exec chain, found ${n}: ${profiles}")
endif()
execute_process(COMMAND go tool pprof -raw ${profiles}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "chain_alloc")
  message(FATAL_ERROR "go tool pprof on ${profiles}: ${rc}\n${err}\n${out}")
endif()
file(REMOVE ${profiles})
message(STATUS "ok: ${profiles} holds the last image's chain_alloc")
