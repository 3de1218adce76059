# What `cmake --install` puts under the prefix (README, "Installing and using the library").
# Included by the top-level CMakeLists.txt once every layer of GMEMKIT_LIBRARY_LAYERS exists.
#
#   bin/gmem-migrate, gmem-snapshot, gmem-soak, gmem-vmm      (tools/CMakeLists.txt)
#   LIBDIR/libgmemkit.a                                         every layer's objects, static
#   LIBDIR/libgmemkit.so.0.1.0, libgmemkit.so.0 (the soname), libgmemkit.so
#   include/gmemkit/version.h                                   generated (cmake/version.h.in)
#   include/gmemkit/<layer>/*.h                                 each layer's headers, as in the tree
#   include/gmemkit/gmemkit.h                                   the C API (capi/), plain C
#   LIBDIR/cmake/gmemkit/gmemkitConfig.cmake, ...ConfigVersion.cmake, gmemkitTargets*.cmake
#   LIBDIR/pkgconfig/gmemkit.pc
#
# Both include/ and include/gmemkit/ are on a consumer's include path: consumers write
# <gmemkit/format/image_writer.h>, and the headers keep including each other as
# "base/status.h", the way they do in the tree.
#
# The two libraries hold the same objects as the layers' static libraries (PIC everywhere:
# CMAKE_POSITION_INDEPENDENT_CODE), so nothing is compiled twice. The tools keep linking the
# layers' static libraries.

include(CMakePackageConfigHelpers)
find_package(nlohmann_json 3.10 REQUIRED)  # migrate/vmm_client.h includes <nlohmann/json.hpp>

set(gmemkit_objects "")
foreach(layer_target IN LISTS GMEMKIT_LIBRARY_TARGETS)
  list(APPEND gmemkit_objects $<TARGET_OBJECTS:${layer_target}>)
endforeach()

add_library(gmemkit_shared SHARED ${gmemkit_objects})
add_library(gmemkit_static STATIC ${gmemkit_objects})
set_target_properties(gmemkit_shared PROPERTIES
  OUTPUT_NAME gmemkit VERSION ${PROJECT_VERSION} SOVERSION ${GMEMKIT_SOVERSION}
  LINKER_LANGUAGE CXX EXPORT_NAME gmemkit_shared)
set_target_properties(gmemkit_static PROPERTIES
  OUTPUT_NAME gmemkit LINKER_LANGUAGE CXX EXPORT_NAME gmemkit_static)
# A symbol no layer defines and no dependency below provides fails here, not in a consumer's
# link. (Sanitizer builds leave the runtime's symbols to the executable, as clang does.)
if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
  target_link_options(gmemkit_shared PRIVATE LINKER:--no-undefined)
endif()
foreach(lib gmemkit_shared gmemkit_static)
  target_include_directories(${lib} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>)
  # What the public headers include is PUBLIC; what only the .cc files use is PRIVATE, which a
  # static consumer still links ($<LINK_ONLY:...> in the export; gmemkitConfig.cmake finds it).
  target_link_libraries(${lib}
    PUBLIC nlohmann_json::nlohmann_json Threads::Threads
    PRIVATE PkgConfig::ZSTD PkgConfig::XXHASH OpenSSL::Crypto)
endforeach()

install(TARGETS gmemkit_shared gmemkit_static EXPORT gmemkitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT devel
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} ${CMAKE_INSTALL_INCLUDEDIR}/gmemkit)

foreach(layer IN LISTS GMEMKIT_LIBRARY_LAYERS)
  if(layer STREQUAL "capi")  # the C API's one public header; the rest of capi/ is internal
    install(FILES ${PROJECT_SOURCE_DIR}/capi/gmemkit.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gmemkit COMPONENT devel)
    continue()
  endif()
  file(GLOB layer_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${layer}/*.h)
  install(FILES ${layer_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gmemkit/${layer} COMPONENT devel)
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/include/gmemkit/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gmemkit COMPONENT devel)

# ---- find_package(gmemkit): gmemkit::gmemkit ------------------------------------------------
set(gmemkit_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/gmemkit)
install(EXPORT gmemkitTargets NAMESPACE gmemkit:: DESTINATION ${gmemkit_cmake_dir} COMPONENT devel)
configure_package_config_file(cmake/gmemkitConfig.cmake.in ${PROJECT_BINARY_DIR}/gmemkitConfig.cmake
  INSTALL_DESTINATION ${gmemkit_cmake_dir})
# Before 1.0 a minor release may break the API: 0.1.x satisfies a request for 0.1, not 0.2.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gmemkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gmemkitConfig.cmake ${PROJECT_BINARY_DIR}/gmemkitConfigVersion.cmake
  DESTINATION ${gmemkit_cmake_dir} COMPONENT devel)

# ---- pkg-config: gmemkit.pc -----------------------------------------------------------------
# Written at install time, so that its prefix is the one installed to (cmake --install --prefix).
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(gmemkit_pc_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(gmemkit_pc_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
install(CODE "
  set(GMEMKIT_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(GMEMKIT_PC_LIBDIR [[${gmemkit_pc_LIBDIR}]])
  set(GMEMKIT_PC_INCLUDEDIR [[${gmemkit_pc_INCLUDEDIR}]])
  set(GMEMKIT_PC_VERSION [[${PROJECT_VERSION}]])
  configure_file([[${PROJECT_SOURCE_DIR}/cmake/gmemkit.pc.in]] [[${PROJECT_BINARY_DIR}/gmemkit.pc]] @ONLY)
" COMPONENT devel)
install(FILES ${PROJECT_BINARY_DIR}/gmemkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devel)
