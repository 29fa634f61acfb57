# vit3d_targets_of(<name> "<default targets>" <out_targets> <out_missing> <table entries>...)
#
# The targets a test or header <name> is built against: those its entry "<name>=<target>[,<target>...]" in
# the table names, else the defaults; and which of them this configuration does not define (their optional
# dependency was not found), so that the caller can skip <name> with a message. Used by tests/ only.
function(vit3d_targets_of name default_targets out_targets out_missing)
    set(targets ${default_targets})
    foreach(entry IN LISTS ARGN)
        if(entry MATCHES "^([^=]+)=(.+)$" AND CMAKE_MATCH_1 STREQUAL name)
            string(REPLACE "," ";" targets "${CMAKE_MATCH_2}")
        endif()
    endforeach()
    set(missing)
    foreach(target IN LISTS targets)
        if(NOT TARGET ${target})
            list(APPEND missing ${target})
        endif()
    endforeach()
    set(${out_targets} ${targets} PARENT_SCOPE)
    set(${out_missing} ${missing} PARENT_SCOPE)
endfunction()
