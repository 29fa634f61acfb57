# cmake -DVIT3D_INCLUDE_ROOT=<include dir> -P check_layering.cmake
#
# Checks two rules over every header under <include dir>/vit3d/:
#   1. Includes point down only. Directories are layered
#          core < detail < tensor < einops < nn < models < transforms < formats < dicom < io
#      and a header includes only headers of its own layer or of layers below it. (The umbrella vit3d.hpp
#      and version.hpp stand outside the layers.) Only io/ headers include nlohmann/json.
#   2. There is one internal namespace, vit3d::detail, always opened by its full name at namespace scope.
#      A nested one (vit3d::nn::detail, ...) would capture unqualified detail:: lookups in that namespace.
#   3. Every list of instances a header declares extern (VIT3D_EXTERN_INSTANCES(NAME), core/instances.hpp)
#      is defined by an implementation header (VIT3D_DEFINE_INSTANCES(NAME) in vit3d/implementation.hpp or
#      vit3d/io/implementation.hpp): else a program would miss those instances at link time.
# Prints every violation and fails if there is one.

cmake_policy(SET CMP0057 NEW)  # if(... IN_LIST ...)

if(NOT VIT3D_INCLUDE_ROOT)
    message(FATAL_ERROR "check_layering.cmake: pass -DVIT3D_INCLUDE_ROOT=<include directory>")
endif()

set(_layers core detail tensor einops nn models transforms formats dicom io)
file(GLOB_RECURSE _headers RELATIVE "${VIT3D_INCLUDE_ROOT}" "${VIT3D_INCLUDE_ROOT}/vit3d/*.hpp")
list(LENGTH _headers _count)
if(_count EQUAL 0)
    message(FATAL_ERROR "check_layering.cmake: no headers under ${VIT3D_INCLUDE_ROOT}/vit3d")
endif()

set(_violations 0)
set(_extern_lists)   # "<header>=<list>" for every VIT3D_EXTERN_INSTANCES(<list>)
set(_defined_lists)  # every <list> of a VIT3D_DEFINE_INSTANCES(<list>) in an implementation header
foreach(header IN LISTS _headers)
    set(_layer "")
    if(header MATCHES "^vit3d/([a-z_]+)/")
        set(_layer "${CMAKE_MATCH_1}")
        list(FIND _layers "${_layer}" _rank)
        if(_rank LESS 0)
            message(SEND_ERROR "${header}: directory ${_layer}/ is not one of the layers ${_layers}")
            math(EXPR _violations "${_violations} + 1")
            continue()
        endif()
    endif()
    # Read as one string and split by hand: file(STRINGS) and list iteration treat ';' and unbalanced
    # '[' ']' (both common in C++) as list syntax.
    file(READ "${VIT3D_INCLUDE_ROOT}/${header}" _text)
    string(REPLACE ";" "," _text "${_text}")
    string(REPLACE "[" "(" _text "${_text}")
    string(REPLACE "]" ")" _text "${_text}")
    string(REPLACE "\n" ";" _lines "${_text}")
    set(_open_namespaces 0)  # namespaces opened and not yet closed (clang-format comments every closing brace)
    foreach(line IN LISTS _lines)
        if(line MATCHES "^namespace vit3d::detail {$" AND _open_namespaces GREATER 0)
            message(SEND_ERROR "${header}: \"namespace vit3d::detail {\" opened inside another namespace")
            math(EXPR _violations "${_violations} + 1")
        endif()
        if(line MATCHES "^[ \t]*namespace[ \t]+[A-Za-z0-9_:]+[ \t]*{$")
            math(EXPR _open_namespaces "${_open_namespaces} + 1")
        elseif(line MATCHES "^[ \t]*}[ \t]*// namespace")
            math(EXPR _open_namespaces "${_open_namespaces} - 1")
        endif()
        if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*[\"<](vit3d/([a-z_]+)/[^\">]+)[\">]" AND _layer)
            set(_target "${CMAKE_MATCH_1}")
            list(FIND _layers "${CMAKE_MATCH_2}" _target_rank)
            if(_target_rank GREATER _rank)
                message(SEND_ERROR "${header} (layer ${_layer}) includes ${_target}, a layer above it")
                math(EXPR _violations "${_violations} + 1")
            endif()
        endif()
        if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*[\"<]nlohmann/" AND NOT _layer STREQUAL "io")
            message(SEND_ERROR "${header} includes nlohmann/json, which only vit3d/io/ headers may use")
            math(EXPR _violations "${_violations} + 1")
        endif()
        if(line MATCHES "^VIT3D_EXTERN_INSTANCES\\(([A-Z0-9_]+)\\)")
            list(APPEND _extern_lists "${header}=${CMAKE_MATCH_1}")
        endif()
        if(header MATCHES "(^|/)implementation\\.hpp$" AND line MATCHES "^VIT3D_DEFINE_INSTANCES\\(([A-Z0-9_]+)\\)")
            list(APPEND _defined_lists "${CMAKE_MATCH_1}")
        endif()
        if(line MATCHES "namespace[ \t]+([A-Za-z0-9_:]*detail)[ \t]*{" AND
           NOT line MATCHES "^namespace vit3d::detail {$")
            message(SEND_ERROR "${header}: \"${line}\": open the internal namespace as \"namespace vit3d::detail {\" "
                               "at namespace scope (one detail namespace for the whole library)")
            math(EXPR _violations "${_violations} + 1")
        endif()
    endforeach()
endforeach()

foreach(entry IN LISTS _extern_lists)
    string(REPLACE "=" ";" entry "${entry}")
    list(GET entry 0 _header)
    list(GET entry 1 _list)
    if(NOT _list IN_LIST _defined_lists)
        message(SEND_ERROR "${_header} declares the instances ${_list} extern, but no implementation header "
                           "defines them (add VIT3D_DEFINE_INSTANCES(${_list}) to vit3d/implementation.hpp or "
                           "vit3d/io/implementation.hpp)")
        math(EXPR _violations "${_violations} + 1")
    endif()
endforeach()
list(LENGTH _extern_lists _extern_count)
if(_extern_count EQUAL 0)
    message(SEND_ERROR "check_layering.cmake: no VIT3D_EXTERN_INSTANCES found; has core/instances.hpp changed?")
    math(EXPR _violations "${_violations} + 1")
endif()

if(_violations GREATER 0)
    message(FATAL_ERROR "check_layering.cmake: ${_violations} violation(s) in ${_count} headers")
endif()
message(STATUS "check_layering.cmake: ${_count} headers, includes point down, one detail namespace, "
               "${_extern_count} extern instance lists each defined by an implementation header")
