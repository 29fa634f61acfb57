# cmake -DVIT3D_PACKAGE_PREFIX=<install prefix> -DPKG_CONFIG=<pkg-config> -DCXX=<compiler> "-DCXX_FLAGS=<flags>"
#       -DSOURCE=<consumer.cpp> -DBINARY=<executable to write> -P check_pkg_config.cmake
#
# A consumer that uses pkg-config instead of CMake: compiles SOURCE with the flags that
# `pkg-config --cflags --libs vit3d-io vit3d-image vit3d-nifti` gives for the installed prefix, and nothing
# else, so that a module missing a dependency's flags fails here. The program is run by the caller.

foreach(var VIT3D_PACKAGE_PREFIX PKG_CONFIG CXX SOURCE BINARY)
    if(NOT ${var})
        message(FATAL_ERROR "check_pkg_config.cmake: pass -D${var}=...")
    endif()
endforeach()
file(GLOB _pc_dirs "${VIT3D_PACKAGE_PREFIX}/*/pkgconfig" "${VIT3D_PACKAGE_PREFIX}/*/*/pkgconfig")
if(NOT _pc_dirs)
    message(FATAL_ERROR "check_pkg_config.cmake: no pkgconfig directory under ${VIT3D_PACKAGE_PREFIX}")
endif()
# The installed modules first; the system's (eigen3, nlohmann_json, stb, zlib) from pkg-config's default path.
string(REPLACE ";" ":" _path "${_pc_dirs}")
if(DEFINED ENV{PKG_CONFIG_PATH} AND NOT "$ENV{PKG_CONFIG_PATH}" STREQUAL "")
    set(_path "${_path}:$ENV{PKG_CONFIG_PATH}")
endif()
set(ENV{PKG_CONFIG_PATH} "${_path}")

set(_modules vit3d-io vit3d-image vit3d-nifti)
execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs ${_modules}
                OUTPUT_VARIABLE _flags ERROR_VARIABLE _error RESULT_VARIABLE _result OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _result EQUAL 0)
    message(FATAL_ERROR "check_pkg_config.cmake: pkg-config ${_modules} failed (${_result}): ${_error}")
endif()
message(STATUS "pkg-config --cflags --libs ${_modules}: ${_flags}")
foreach(dependency "stb" "-lz")
    if(NOT _flags MATCHES "${dependency}")
        message(FATAL_ERROR "check_pkg_config.cmake: the flags name no ${dependency}: ${_flags}")
    endif()
endforeach()

separate_arguments(_flags UNIX_COMMAND "${_flags}")
separate_arguments(_cxx_flags UNIX_COMMAND "${CXX_FLAGS}")
execute_process(COMMAND "${CXX}" -std=c++17 -O1 ${_cxx_flags} "${SOURCE}" -o "${BINARY}" ${_flags}
                RESULT_VARIABLE _result ERROR_VARIABLE _error)
if(NOT _result EQUAL 0)
    message(FATAL_ERROR "check_pkg_config.cmake: compiling ${SOURCE} with pkg-config's flags failed:\n${_error}")
endif()
message(STATUS "check_pkg_config.cmake: built ${BINARY} with pkg-config's flags alone")
