# cmake -DVIT3D_PACKAGE_PREFIX=<install prefix> -P check_relocatable.cmake
#
# The installed package must name no path of the machine it was configured on: dependencies are found again
# where the package is used (find_dependency, imported targets), and vit3d's own files relative to the
# config. Fails on any absolute path in the installed CMake files and vit3d*.pc (other than CMake's own
# `_IMPORT_PREFIX STREQUAL "/"` check).

if(NOT VIT3D_PACKAGE_PREFIX)
    message(FATAL_ERROR "check_relocatable.cmake: pass -DVIT3D_PACKAGE_PREFIX=<install prefix>")
endif()
file(GLOB_RECURSE _files "${VIT3D_PACKAGE_PREFIX}/*/cmake/vit3d/*.cmake" "${VIT3D_PACKAGE_PREFIX}/*/vit3d*.pc")
if(NOT _files)
    message(FATAL_ERROR "check_relocatable.cmake: no vit3d package files under ${VIT3D_PACKAGE_PREFIX}")
endif()
set(_bad 0)
foreach(file IN LISTS _files)
    file(STRINGS "${file}" _lines REGEX "(^|[\"=: ;-])/[A-Za-z]")
    foreach(line IN LISTS _lines)
        if(NOT line MATCHES "^[ \t]*#")
            message(SEND_ERROR "${file}: absolute path in \"${line}\"")
            math(EXPR _bad "${_bad} + 1")
        endif()
    endforeach()
endforeach()
if(_bad GREATER 0)
    message(FATAL_ERROR "check_relocatable.cmake: ${_bad} absolute path(s) in the installed package")
endif()
list(LENGTH _files _count)
message(STATUS "check_relocatable.cmake: ${_count} package files, no absolute paths")
