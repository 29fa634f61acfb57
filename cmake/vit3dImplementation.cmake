# vit3d_add_implementation(<library> SOURCES <files>... LINKS <targets>...)
#
# A static library of vit3d's compiled part (include/vit3d/core/instances.hpp) built from <files>, linking
# <targets>. Shared by vit3d's own CMakeLists.txt (sources from the tree) and the installed package's config
# (sources from <prefix>/share/vit3d/src), so that a project builds it once, with its own compiler and flags.
# Position-independent, so that a shared library may link it. A configuration without a build type gives no
# optimisation flags at all, which would leave the kernels tens of times slower: then it is compiled at -O2.
function(vit3d_add_implementation library)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;LINKS")
    add_library(${library} STATIC ${arg_SOURCES})
    target_link_libraries(${library} PUBLIC ${arg_LINKS})
    set_target_properties(${library} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    get_property(multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
    if(NOT multi_config AND NOT CMAKE_BUILD_TYPE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang"
       AND NOT CMAKE_CXX_FLAGS MATCHES "(^| )-O")
        target_compile_options(${library} PRIVATE -O2)
    endif()
endfunction()
