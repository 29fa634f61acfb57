# Defines the imported target vit3d::stb_headers (the directory holding stb_image.h and stb_image_write.h)
# if those headers can be found: in <prefix>/include/stb/ on Debian (libstb-dev) and distributions like it,
# in <prefix>/include/ for package managers that install them flat (vcpkg, conda). Set
# VIT3D_STB_INCLUDE_DIR to use another copy. Used when vit3d is configured and by the installed
# vit3dConfig.cmake, so that the path comes from the machine that builds, never from where vit3d was
# configured. vit3d/formats/image.hpp compiles stb's implementation itself, so no stb library is linked.
if(NOT TARGET vit3d::stb_headers)
    find_path(VIT3D_STB_INCLUDE_DIR NAMES stb_image.h PATH_SUFFIXES stb
              DOC "Directory holding stb_image.h and stb_image_write.h")
    if(VIT3D_STB_INCLUDE_DIR AND EXISTS "${VIT3D_STB_INCLUDE_DIR}/stb_image_write.h")
        add_library(vit3d::stb_headers INTERFACE IMPORTED GLOBAL)
        set_target_properties(vit3d::stb_headers PROPERTIES
            INTERFACE_INCLUDE_DIRECTORIES "${VIT3D_STB_INCLUDE_DIR}")
    endif()
endif()
