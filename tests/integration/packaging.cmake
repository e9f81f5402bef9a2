# The installed package, used the ways the README promises
# (cmake/install.cmake). packaging_install installs this build tree into a
# prefix of its own; from there packaging_cmake builds a consumer project
# through find_package(heapprof) and packaging_pkgconfig the same program
# with pkg-config and cc. Each consumer must run with the installed
# libheapprof.so and no other, and pprof must read the profile it writes
# (packaging/check.cmake). Label packaging.
set(PKG_TMP ${CMAKE_BINARY_DIR}/test-tmp/packaging)
foreach(mode install cmake pkgconfig)
  add_test(NAME packaging_${mode}
    COMMAND ${CMAKE_COMMAND} -DMODE=${mode} -DBUILD=${CMAKE_BINARY_DIR}
      -DPREFIX=${PKG_TMP}/prefix -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
      -DVERSION=${PROJECT_VERSION} -DWORK=${PKG_TMP}/${mode}
      -DSOURCE=${CMAKE_CURRENT_SOURCE_DIR}/packaging/consumer
      -DGENERATOR=${CMAKE_GENERATOR} -DCC=${CMAKE_C_COMPILER}
      -DCXX=${CMAKE_CXX_COMPILER}
      -DPKG_CONFIG=${PKG_CONFIG_EXECUTABLE} -DGO=${GO_EXECUTABLE}
      -P ${CMAKE_CURRENT_SOURCE_DIR}/packaging/check.cmake)
  set_tests_properties(packaging_${mode} PROPERTIES LABELS packaging
                       TIMEOUT 300)
endforeach()
set_tests_properties(packaging_install PROPERTIES
                     FIXTURES_SETUP heapprof_installed)
set_tests_properties(packaging_cmake packaging_pkgconfig PROPERTIES
                     FIXTURES_REQUIRED heapprof_installed)
