# heapprof attach / detach as commands (issue 15): test_attach_cli, one
# CTest test per mode, with the programs it attaches to. The library they
# load is a TEST-ONLY stub (attach_stub.c built as .../attach-stub/
# libheapprof.so, the name the command recognises, and reached through
# HEAPPROF_ATTACH_LIB), so that these tests check the command and its gdb
# script apart from the runtime's attach support. They need gdb
# (scripts/setup.sh) and root (for other users' and setuid targets).
set(P ${PROJECT_SOURCE_DIR}/tests/programs)
set(attach_dir ${CMAKE_BINARY_DIR}/attach-programs)

add_library(attach_stub SHARED ${P}/attach_stub.c)
add_library(attach_stub_tls SHARED ${P}/attach_stub.c)
target_compile_definitions(attach_stub_tls PRIVATE STUB_BIG_TLS)
foreach(lib attach_stub attach_stub_tls)
  target_compile_options(${lib} PRIVATE ${HEAPPROF_WARNINGS})
  set_target_properties(${lib} PROPERTIES OUTPUT_NAME heapprof
    LIBRARY_OUTPUT_DIRECTORY ${attach_dir}/${lib})
endforeach()

add_executable(attach_victim ${P}/attach_victim.c)
target_compile_options(attach_victim PRIVATE ${HEAPPROF_WARNINGS})
target_link_libraries(attach_victim PRIVATE pthread dl)
# The targets attach refuses: static; a dynamic linker that is not
# glibc's by name (a copy of glibc's own, so that it runs); no libc at all.
add_executable(attach_static ${P}/attach_plain.c)
target_link_options(attach_static PRIVATE -static)
configure_file(/lib64/ld-linux-x86-64.so.2 ${attach_dir}/ld-musl-x86_64.so.1 COPYONLY)
add_executable(attach_musl ${P}/attach_plain.c)
target_link_options(attach_musl PRIVATE
  -Wl,--dynamic-linker=${attach_dir}/ld-musl-x86_64.so.1)
add_executable(attach_nolibc ${P}/attach_nolibc.c)
target_compile_options(attach_nolibc PRIVATE -fPIE)
target_link_options(attach_nolibc PRIVATE -pie -nostdlib
  -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2)

heapprof_test(test_attach_cli_usage
  SOURCES test_attach_cli.c ${PROJECT_SOURCE_DIR}/cli/target.c
  FLAGS -I${PROJECT_SOURCE_DIR}/cli
  ARGS usage $<TARGET_FILE:heapprof_cli> $<TARGET_FILE:attach_stub>
       $<TARGET_FILE:attach_stub_tls> $<TARGET_FILE:attach_victim>
       $<TARGET_FILE:attach_static> $<TARGET_FILE:attach_musl>
       $<TARGET_FILE:attach_nolibc> $<TARGET_FILE:heapprof>)
foreach(mode refusals safepoint idle revisit loader results state)
  heapprof_test_variant(test_attach_cli_${mode} test_attach_cli_usage
    ARGS ${mode} $<TARGET_FILE:heapprof_cli> $<TARGET_FILE:attach_stub>
         $<TARGET_FILE:attach_stub_tls> $<TARGET_FILE:attach_victim>
         $<TARGET_FILE:attach_static> $<TARGET_FILE:attach_musl>
         $<TARGET_FILE:attach_nolibc> $<TARGET_FILE:heapprof>)
endforeach()
