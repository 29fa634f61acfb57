# Finds GDCM's CMake package (Debian: libgdcm-dev, /usr/lib/<triplet>/gdcm-3.0/GDCMConfig.cmake), whose
# gdcmMSFF target vit3d::dicom links. Used when vit3d is configured and by the installed vit3dConfig.cmake.
# Debian's GDCMTargets.cmake also imports the command-line tools of libgdcm-tools and reports each one that
# is not installed with message(STATUS), fifteen notes that say nothing about the libraries: the log level
# hides them while the package loads (CMAKE_MESSAGE_LOG_LEVEL, CMake 3.17 and newer; older ones show them).
if(NOT TARGET gdcmMSFF)
    if(DEFINED CMAKE_MESSAGE_LOG_LEVEL)
        set(_vit3d_gdcm_log_level "${CMAKE_MESSAGE_LOG_LEVEL}")
    else()
        unset(_vit3d_gdcm_log_level)
    endif()
    set(CMAKE_MESSAGE_LOG_LEVEL NOTICE)
    find_package(GDCM CONFIG QUIET)
    if(DEFINED _vit3d_gdcm_log_level)
        set(CMAKE_MESSAGE_LOG_LEVEL "${_vit3d_gdcm_log_level}")
    else()
        unset(CMAKE_MESSAGE_LOG_LEVEL)
    endif()
endif()
