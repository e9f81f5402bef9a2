# What `cmake --install` puts in place: libheapprof.so and heapprof.h, the
# CMake package (find_package(heapprof) gives heapprof::heapprof) and
# heapprof.pc (pkg-config --cflags --libs heapprof). Included by the
# top-level CMakeLists.txt once the heapprof target exists; the heapprof
# command installs itself (cli/). tests/integration/packaging.cmake builds
# consumers against an installed tree.
include(CMakePackageConfigHelpers)

set(HEAPPROF_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/heapprof)
set(HEAPPROF_GENERATED ${CMAKE_BINARY_DIR}/cmake)

install(TARGETS heapprof EXPORT heapprofTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The CMake package: the file find_package reads, the exported targets it
# includes, and the version file. SameMajorVersion: a request for X.Y is
# met by any installed X.* at least X.Y, as the library's SOVERSION (the
# major version) promises.
install(EXPORT heapprofTargets NAMESPACE heapprof::
  DESTINATION ${HEAPPROF_PACKAGE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/heapprofConfig.cmake.in
  ${HEAPPROF_GENERATED}/heapprofConfig.cmake
  INSTALL_DESTINATION ${HEAPPROF_PACKAGE_DIR})
write_basic_package_version_file(
  ${HEAPPROF_GENERATED}/heapprofConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${HEAPPROF_GENERATED}/heapprofConfig.cmake
              ${HEAPPROF_GENERATED}/heapprofConfigVersion.cmake
  DESTINATION ${HEAPPROF_PACKAGE_DIR})

# heapprof.pc names the prefix it is installed under, and
# `cmake --install --prefix` may choose that after configuring: the
# directories are filled in now, the prefix when installing.
foreach(dir LIBDIR INCLUDEDIR)
  set(HEAPPROF_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(HEAPPROF_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(HEAPPROF_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")
configure_file(${PROJECT_SOURCE_DIR}/scripts/heapprof.pc.in
  ${HEAPPROF_GENERATED}/heapprof.pc.in @ONLY)
set(pc_file "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/heapprof.pc")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(pc_file "${CMAKE_INSTALL_LIBDIR}/pkgconfig/heapprof.pc")
endif()
install(CODE "
  set(heapprof_pc \"\$ENV{DESTDIR}${pc_file}\")
  message(STATUS \"Installing: \${heapprof_pc}\")
  configure_file(\"${HEAPPROF_GENERATED}/heapprof.pc.in\" \"\${heapprof_pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${heapprof_pc}\")")
