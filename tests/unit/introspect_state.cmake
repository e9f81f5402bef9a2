# test_introspect_state (script mode, run by CTest): the symbolizer and
# everything under it (runtime/introspect, libheapprof_introspect) keep no
# state shared between callers. A profile may be made on any thread, and
# several threads use the symbolizer one after another (the API on the
# program's threads, the dump thread, the HTTP thread for profiles and
# /debug/pprof/symbol, the leak watch): a static buffer handed out by one
# call and overwritten by the next is a data race the dump lock does not
# cover once a string outlives the call. So no object of the library
# defines writable static data (objects in .data or .bss, where a
# function's static locals live too; .data.rel.ro is read-only once
# relocated), and none calls a libc function
# whose answer lives in a buffer libc shares between callers.

if(CMAKE_SCRIPT_MODE_FILE)
  set(shared_answers "strtok|strerror|strsignal|localtime|gmtime|ctime|asctime|getpwnam|getpwuid|getgrnam|getgrgid|gethostbyname|inet_ntoa|ttyname|tmpnam|ptsname|dirname|getlogin|ecvt|fcvt|gcvt|l64a|setlocale|readdir")
  string(REPLACE "|" ";" objects "${OBJECTS}")
  set(checked 0)
  foreach(obj ${objects})
    execute_process(COMMAND ${NM} ${obj} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
    execute_process(COMMAND ${OBJDUMP} -t ${obj} OUTPUT_VARIABLE table
                    RESULT_VARIABLE rc2)
    if(NOT rc EQUAL 0 OR NOT rc2 EQUAL 0)
      message(FATAL_ERROR "${NM} or ${OBJDUMP} -t ${obj} failed (${rc}, ${rc2})")
    endif()
    # Objects in .data or .bss (and their .data.* / .bss.* pieces), but not
    # .data.rel.ro*: constant tables of pointers live there in
    # position-independent code, read-only once relocated.
    string(REGEX MATCHALL "[ \t]O[ \t]+\\.(data|bss)(\\.[^ \t]*)?[ \t][^\n]+" data "${table}")
    list(FILTER data EXCLUDE REGEX "\\.data\\.rel\\.ro")
    if(data)
      message(FATAL_ERROR "${obj} defines writable static data: ${data}")
    endif()
    string(REGEX MATCHALL "[ \t]U (${shared_answers})(@[A-Z0-9_.]+)?\n" bad "${syms}")
    if(bad)
      string(REPLACE "\n" "" bad "${bad}")
      message(FATAL_ERROR "${obj} calls${bad}")
    endif()
    math(EXPR checked "${checked} + 1")
  endforeach()
  if(checked LESS 10)
    message(FATAL_ERROR "found ${checked} objects in: ${objects}")
  endif()
  message(STATUS "${checked} objects of runtime/introspect: no writable static "
          "data, no libc call answering from a shared buffer")
  return()
endif()

add_test(NAME test_introspect_state
         COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DOBJDUMP=${CMAKE_OBJDUMP}
                 "-DOBJECTS=$<JOIN:$<TARGET_OBJECTS:heapprof_introspect>,|>"
                 -P ${CMAKE_CURRENT_LIST_FILE})
