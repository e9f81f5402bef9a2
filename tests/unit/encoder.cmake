# The streaming pprof encoder (profile/pprof.c, profile/sink.c).
#
# Included from tests/unit/CMakeLists.txt, and run as a script (cmake -P)
# by the test_encoder_libc test below: the two modes share this file so
# that the check lives beside the tests it belongs with.

if(CMAKE_SCRIPT_MODE_FILE)
  # ---- script mode: the encoder's objects reference no libc function that
  # touches state the program can see: stdio streams (a FILE* sits in
  # glibc's global list, reachable by the program's fflush(NULL) or
  # fcloseall() from another thread), the printf family (locale), strtok's
  # hidden state, strerror's shared buffer, the environment. ----
  string(REPLACE "|" ";" objects "${OBJECTS}")
  set(checked 0)
  foreach(obj ${objects})
    if(NOT obj MATCHES "/(pprof|sink)\\.c\\.o$")
      continue()
    endif()
    execute_process(COMMAND ${NM} -u ${obj} OUTPUT_VARIABLE undef
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${NM} -u ${obj} failed (${rc})")
    endif()
    string(REGEX MATCHALL
      "[ \t](_IO_[a-z_]+|fopen|fopen64|fdopen|freopen|fclose|fcloseall|fflush|fgets|fgetc|getc|getline|fread|fwrite|fputs|fputc|putc|puts|perror|[a-z_]*printf[a-z_]*|setvbuf|setbuf|popen|tmpfile|stdin|stdout|stderr|strtok|strerror|strerror_l|setlocale|newlocale|uselocale|localeconv|getenv|secure_getenv|setenv|putenv|environ)\n"
      bad "${undef}")
    if(bad)
      string(REPLACE "\n" "" bad "${bad}")
      message(FATAL_ERROR "${obj} references${bad}")
    endif()
    math(EXPR checked "${checked} + 1")
  endforeach()
  if(NOT checked EQUAL 2)
    message(FATAL_ERROR "found ${checked} of the 2 encoder objects in: ${objects}")
  endif()
  message(STATUS "pprof.c.o and sink.c.o: no stdio, printf, strtok, strerror, locale or environment")
  return()
endif()

# test_pprof itself (label unit, also run under ASan+UBSan by
# sanitize_address_undefined) checks the encoder at sizes fit for a
# sanitizer; this variant checks its memory with a million fake buckets:
# the encoder's peak heap must be what it is with a hundred thousand, and
# far below the message.
heapprof_test_variant(test_pprof_memory test_pprof ARGS memory 1000000)

add_test(NAME test_encoder_libc
         COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM}
                 "-DOBJECTS=$<JOIN:$<TARGET_OBJECTS:heapprof_core>,|>"
                 -P ${CMAKE_CURRENT_LIST_FILE})
