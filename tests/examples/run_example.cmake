# One example smoke test: runs RUN_1, RUN_2, ... (commands as "|"-separated lists) in a fresh WORK_DIR,
# each of which must succeed (its stdout goes to WORK_DIR/stdout_<i>.txt and is echoed), then CHECK (the
# same form), which compares the outputs against an in-process computation. With USAGE set instead, runs
# that command and requires a non-zero exit with exactly one line on stderr, starting with USAGE.
#   cmake -DWORK_DIR=... -DRUN_1="example|arg|..." [-DRUN_2=...] -DCHECK="checker|mode|..." -P run_example.cmake
#   cmake -DWORK_DIR=... -DUSAGE=classify_image: -DRUN_1="example|bad|args" -P run_example.cmake

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(DEFINED USAGE)
    string(REPLACE "|" ";" command "${RUN_1}")
    execute_process(COMMAND ${command} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
                    OUTPUT_VARIABLE out ERROR_VARIABLE err)
    string(REGEX REPLACE "\n$" "" line "${err}")
    if(rc EQUAL 0 OR NOT rc MATCHES "^[0-9]+$")
        message(FATAL_ERROR "expected a non-zero exit, got '${rc}'; stderr: ${err}")
    endif()
    if(line MATCHES "\n" OR NOT line MATCHES "^${USAGE} ")
        message(FATAL_ERROR "expected one line on stderr starting with '${USAGE} ', got:\n${err}")
    endif()
    message(STATUS "exit ${rc}: ${line}")
    return()
endif()

foreach(i RANGE 1 9)
    if(NOT DEFINED RUN_${i})
        break()
    endif()
    string(REPLACE "|" ";" command "${RUN_${i}}")
    execute_process(COMMAND ${command} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
                    OUTPUT_FILE "${WORK_DIR}/stdout_${i}.txt" ERROR_VARIABLE err)
    file(READ "${WORK_DIR}/stdout_${i}.txt" out)
    message(STATUS "run ${i}:\n${out}${err}")
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "run ${i} failed (exit ${rc}): ${err}")
    endif()
endforeach()

string(REPLACE "|" ";" command "${CHECK}")
execute_process(COMMAND ${command} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "check:\n${out}${err}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the check failed (exit ${rc})")
endif()
