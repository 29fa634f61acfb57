# cmake -DVIT3D_INCLUDE_ROOT=<include dir> -P check_layering.cmake
#
# Checks two rules over every header under <include dir>/vit3d/:
#   1. Includes point down only. Directories are layered
#          core < detail < tensor < einops < nn < models < io
#      and a header includes only headers of its own layer or of layers below it. (The umbrella vit3d.hpp
#      and version.hpp stand outside the layers.) Only io/ headers include nlohmann/json.
#   2. There is one internal namespace, vit3d::detail, always opened by its full name at namespace scope.
#      A nested one (vit3d::nn::detail, ...) would capture unqualified detail:: lookups in that namespace.
# Prints every violation and fails if there is one.

if(NOT VIT3D_INCLUDE_ROOT)
    message(FATAL_ERROR "check_layering.cmake: pass -DVIT3D_INCLUDE_ROOT=<include directory>")
endif()

set(_layers core detail tensor einops nn models io)
file(GLOB_RECURSE _headers RELATIVE "${VIT3D_INCLUDE_ROOT}" "${VIT3D_INCLUDE_ROOT}/vit3d/*.hpp")
list(LENGTH _headers _count)
if(_count EQUAL 0)
    message(FATAL_ERROR "check_layering.cmake: no headers under ${VIT3D_INCLUDE_ROOT}/vit3d")
endif()

set(_violations 0)
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
        if(line MATCHES "namespace[ \t]+([A-Za-z0-9_:]*detail)[ \t]*{" AND
           NOT line MATCHES "^namespace vit3d::detail {$")
            message(SEND_ERROR "${header}: \"${line}\": open the internal namespace as \"namespace vit3d::detail {\" "
                               "at namespace scope (one detail namespace for the whole library)")
            math(EXPR _violations "${_violations} + 1")
        endif()
    endforeach()
endforeach()

if(_violations GREATER 0)
    message(FATAL_ERROR "check_layering.cmake: ${_violations} violation(s) in ${_count} headers")
endif()
message(STATUS "check_layering.cmake: ${_count} headers, includes point down, one detail namespace")
