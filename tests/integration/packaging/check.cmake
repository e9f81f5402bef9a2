# The packaging tests (../packaging.cmake), run as cmake -P with MODE:
#   install    installs the build tree BUILD into PREFIX, emptied first
#   cmake      builds the consumer project SOURCE in WORK against PREFIX
#              through find_package(heapprof) (CMAKE_PREFIX_PATH)
#   pkgconfig  compiles SOURCE/main.c with CC and the flags of
#              `pkg-config --cflags --libs heapprof` (PKG_CONFIG_PATH)
# Both consumers must run with PREFIX's libheapprof.so and no other, and
# write a profile in which `go tool pprof -raw` finds their allocation,
# with its label. The installed C++ header must compile on its own.
# Every missing prerequisite fails the test with what to install.

# step(WHAT COMMAND...): runs COMMAND; fails the test, with its output,
# unless it exits 0. Its stdout is left in step_out.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err TIMEOUT 240)
  if(NOT rc EQUAL 0)
    string(JOIN " " cmd ${ARGN})
    message(FATAL_ERROR "${what} failed (${rc}): ${cmd}\n${out}${err}")
  endif()
  set(step_out "${out}" PARENT_SCOPE)
endfunction()

# run_consumer(APP): runs APP, which must map PREFIX's libheapprof and no
# other, and write a profile that pprof reads with consumer_alloc in it.
function(run_consumer app)
  set(profile ${WORK}/consumer.pb.gz)
  unset(ENV{LD_PRELOAD})
  unset(ENV{LD_LIBRARY_PATH})
  step("running the consumer" ${app} ${profile})
  string(REGEX MATCHALL "mapped [^\n]*" maps "${step_out}")
  if(NOT maps)
    message(FATAL_ERROR "${app} mapped no libheapprof:\n${step_out}")
  endif()
  file(REAL_PATH ${PREFIX} real_prefix)
  foreach(m ${maps})
    string(REGEX REPLACE "^mapped " "" path "${m}")
    string(FIND "${path}" "${real_prefix}/" at)
    if(NOT at EQUAL 0)
      message(FATAL_ERROR "${app} runs with ${path}, not the one installed "
                          "in ${real_prefix}")
    endif()
  endforeach()
  step("go tool pprof -raw" ${GO} tool pprof -raw ${profile})
  if(NOT step_out MATCHES "consumer_alloc" OR
     NOT step_out MATCHES "side:\\[consumer\\][ \n\t]+bytes:\\[123457\\]")
    message(FATAL_ERROR "${profile} lacks consumer_alloc's 123457 bytes "
                        "labelled side=consumer:\n${step_out}")
  endif()
  list(GET maps 0 first)
  message(STATUS "ok: ${first}; pprof reads consumer_alloc's 123457 bytes")
endfunction()

# version_compatible(WANT EXPECT): the installed version file answers
# find_package(heapprof WANT) with EXPECT.
function(version_compatible want expect)
  set(PACKAGE_FIND_VERSION ${want})
  string(REGEX MATCH "^[0-9]+" PACKAGE_FIND_VERSION_MAJOR ${want})
  include(${PREFIX}/${LIBDIR}/cmake/heapprof/heapprofConfigVersion.cmake)
  if(NOT PACKAGE_VERSION_COMPATIBLE STREQUAL expect)
    message(FATAL_ERROR "heapprofConfigVersion.cmake ${PACKAGE_VERSION} "
      "answers a request for ${want} with '${PACKAGE_VERSION_COMPATIBLE}'")
  endif()
endfunction()

if(MODE STREQUAL install)
  file(REMOVE_RECURSE ${PREFIX})
  step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD} --prefix ${PREFIX})
  message("${step_out}")
  file(WRITE ${PREFIX}/labels_check.cpp
       "#include <heapprof_labels.hpp>\n"
       "int f() { heapprof::label_scope s(\"k\", \"v\"); return s.error(); }\n")
  step("compiling the installed heapprof_labels.hpp"
       ${CXX} -std=c++11 -Wall -Wextra -Werror -fsyntax-only
       -I${PREFIX}/include ${PREFIX}/labels_check.cpp)

elseif(MODE STREQUAL cmake)
  file(REMOVE_RECURSE ${WORK})
  step("configuring the consumer with find_package(heapprof)"
       ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK} -G ${GENERATOR}
       -DCMAKE_C_COMPILER=${CC} -DCMAKE_BUILD_TYPE=Release
       -DCMAKE_PREFIX_PATH=${PREFIX})
  # The package came from PREFIX, with its version file.
  set(found "heapprof ${VERSION} in ${PREFIX}/${LIBDIR}/cmake/heapprof")
  string(FIND "${step_out}" "-- ${found}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "want '${found}' from the consumer:\n${step_out}")
  endif()
  string(REGEX MATCH "^[0-9]+" major ${VERSION})
  math(EXPR next "${major} + 1")
  version_compatible(${VERSION} TRUE)
  version_compatible(${next}.0 FALSE)
  step("building the consumer" ${CMAKE_COMMAND} --build ${WORK})
  run_consumer(${WORK}/app)

elseif(MODE STREQUAL pkgconfig)
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "pkg-config not found: install pkg-config (scripts/setup.sh)")
  endif()
  file(REMOVE_RECURSE ${WORK})
  file(MAKE_DIRECTORY ${WORK})
  set(ENV{PKG_CONFIG_PATH} ${PREFIX}/${LIBDIR}/pkgconfig)
  foreach(var prefix libdir)
    step("pkg-config --variable=${var}" ${PKG_CONFIG} --variable=${var} heapprof)
    string(STRIP "${step_out}" pc_${var})
  endforeach()
  step("pkg-config --modversion" ${PKG_CONFIG} --modversion heapprof)
  string(STRIP "${step_out}" pc_version)
  if(NOT pc_prefix STREQUAL PREFIX OR NOT pc_version STREQUAL VERSION)
    message(FATAL_ERROR "heapprof.pc says prefix '${pc_prefix}' version "
      "'${pc_version}', want '${PREFIX}' '${VERSION}'")
  endif()
  step("pkg-config --cflags --libs" ${PKG_CONFIG} --cflags --libs heapprof)
  separate_arguments(flags UNIX_COMMAND "${step_out}")
  step("compiling the consumer"
       ${CC} -Wall -Wextra -Werror -o ${WORK}/app ${SOURCE}/main.c ${flags}
       -Wl,-rpath,${pc_libdir})
  run_consumer(${WORK}/app)

else()
  message(FATAL_ERROR "MODE must be install, cmake or pkgconfig, not '${MODE}'")
endif()
