# Issue 13's tests: symbols that read right in every pprof reader. Each runs
# a program of tests/programs (sym_*) under heapprof at rate 1 and reads
# its profile both by decoding the protobuf (names as stored,
# tests/integration/pprofpb.py) and through `go tool pprof`; the scripts in
# symbols/ say what each checks:
#   sym_cxx.py     C++ names in each HEAPPROF_DEMANGLE mode, inline frames
#                  (against addr2line -i), start lines
#   sym_inline.py  a C allocation inside two inlined static inline helpers
#   sym_plugin.py  a plugin allocated from, dlclose'd, its file deleted,
#                  overwritten, or another library loaded in its place
#   sym_rust.py    Rust names, v0 and legacy mangling
#   sym_text.py    ?debug=1 text over HTTP lists inlined frames
# Missing tools fail here, loudly: addr2line and readelf (binutils) are the
# references the tests compare with, rustc is checked in programs/.

find_program(ADDR2LINE addr2line REQUIRED)
find_program(READELF readelf REQUIRED)
set(SYM_DIR ${CMAKE_CURRENT_LIST_DIR}/symbols)

# sym_test(NAME SCRIPT [ARGS a...] [ENV e...])
function(sym_test name script)
  cmake_parse_arguments(T "" "" "ARGS;ENV" ${ARGN})
  add_test(NAME ${name}
           COMMAND /usr/bin/python3 ${SYM_DIR}/${script}
                   --lib $<TARGET_FILE:heapprof> --go ${GO_EXECUTABLE} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${TEST_TMP};${T_ENV}"
                       LABELS "integration;symbols" TIMEOUT 300)
endfunction()

set(cxx_args --binary $<TARGET_FILE:sym_cxx>
             --source ${PROJECT_SOURCE_DIR}/tests/programs/sym_cxx.cpp)
sym_test(test_sym_cxx sym_cxx.py ARGS ${cxx_args})
foreach(mode simple templates full none)
  sym_test(test_sym_cxx_${mode} sym_cxx.py ARGS ${cxx_args}
           ENV "HEAPPROF_DEMANGLE=${mode}")
endforeach()

sym_test(test_sym_inline sym_inline.py
         ARGS --binary $<TARGET_FILE:sym_inline>
              --source ${PROJECT_SOURCE_DIR}/tests/programs/sym_inline.c)

foreach(variant loaded delete overwrite reuse reload)
  sym_test(test_sym_plugin_${variant} sym_plugin.py
           ARGS --variant ${variant} --host $<TARGET_FILE:sym_plugin_host>
                --plugin $<TARGET_FILE:sym_plugin> --plugin2 $<TARGET_FILE:sym_plugin2>
                --source ${PROJECT_SOURCE_DIR}/tests/programs/sym_plugin.c)
endforeach()

foreach(mangling v0 legacy)
  get_target_property(bin sym_rust_${mangling} SYM_RUST_BINARY)
  sym_test(test_sym_rust_${mangling} sym_rust.py
           ARGS --mangling ${mangling} --binary ${bin}
                --source ${PROJECT_SOURCE_DIR}/tests/programs/sym_rust.rs)
endforeach()

sym_test(test_sym_text sym_text.py
         ARGS --binary $<TARGET_FILE:sym_inline>
              --source ${PROJECT_SOURCE_DIR}/tests/programs/sym_inline.c)
