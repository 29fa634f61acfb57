# Makes sure the imported target OpenBLAS::OpenBLAS exists after find_package(OpenBLAS CONFIG). OpenBLAS's
# own config defines it from 0.3.27 on; older ones (Debian 12 ships 0.3.21) only set OpenBLAS_INCLUDE_DIRS
# and OpenBLAS_LIBRARIES, so the target is made from those. Used both when vit3d is configured and by the
# installed vit3dConfig.cmake, so that the paths always come from the machine that links, never from the
# machine vit3d was configured on.
if(NOT TARGET OpenBLAS::OpenBLAS)
    add_library(OpenBLAS::OpenBLAS INTERFACE IMPORTED GLOBAL)
    set_target_properties(OpenBLAS::OpenBLAS PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${OpenBLAS_INCLUDE_DIRS}"
        INTERFACE_LINK_LIBRARIES "${OpenBLAS_LIBRARIES}")
endif()
