# The streaming pprof encoder (profile/pprof.c, profile/sink.c), and what
# every object of profile/ may call.
#
# Included from tests/unit/CMakeLists.txt, and run as a script (cmake -P)
# by the test_encoder_libc test below: the two modes share this file so
# that the check lives beside the tests it belongs with.

if(CMAKE_SCRIPT_MODE_FILE)
  # ---- script mode. (1) No object of profile/ (heapprof_core) does OS
  # work or allocates for itself: its memory is handed in (alloc.h), its
  # symbols asked of an interface (symtab.h), its bytes given to a sink.
  # So none references the malloc family, a descriptor call, the file
  # system, mappings, the loader or a clock. (2) The encoder's objects
  # reference no libc function that touches state the program can see:
  # stdio streams (a FILE* sits in glibc's global list, reachable by the
  # program's fflush(NULL) or fcloseall() from another thread), the printf
  # family (locale), strtok's hidden state, strerror's shared buffer, the
  # environment. ----
  set(os_calls "malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc|reallocarray|open|open64|openat|openat64|creat|read|pread|pread64|write|pwrite|writev|close|fsync|fdatasync|rename|renameat|renameat2|link|linkat|unlink|unlinkat|stat|stat64|fstat|fstat64|lstat|mmap|mmap64|munmap|mprotect|dl_iterate_phdr|dlopen|dlsym|dlvsym|dladdr|getpid|gettid|syscall|clock_gettime|time|gettimeofday|getrandom")
  set(visible_state "_IO_[a-z_]+|fopen|fopen64|fdopen|freopen|fclose|fcloseall|fflush|fgets|fgetc|getc|getline|fread|fwrite|fputs|fputc|putc|puts|perror|[a-z_]*printf[a-z_]*|setvbuf|setbuf|popen|tmpfile|stdin|stdout|stderr|strtok|strerror|strerror_l|setlocale|newlocale|uselocale|localeconv|getenv|secure_getenv|setenv|putenv|environ")
  string(REPLACE "|" ";" objects "${OBJECTS}")
  set(checked 0)
  set(encoder 0)
  foreach(obj ${objects})
    execute_process(COMMAND ${NM} -u ${obj} OUTPUT_VARIABLE undef
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${NM} -u ${obj} failed (${rc})")
    endif()
    set(forbidden "${os_calls}")
    if(obj MATCHES "/(pprof|sink)\\.c\\.o$")
      set(forbidden "${os_calls}|${visible_state}")
      math(EXPR encoder "${encoder} + 1")
    endif()
    string(REGEX MATCHALL "[ \t](${forbidden})(@[A-Z0-9_.]+)?\n" bad "${undef}")
    if(bad)
      string(REPLACE "\n" "" bad "${bad}")
      message(FATAL_ERROR "${obj} references${bad}")
    endif()
    math(EXPR checked "${checked} + 1")
  endforeach()
  if(NOT encoder EQUAL 2 OR checked LESS 4)
    message(FATAL_ERROR "found ${checked} objects, ${encoder} of the 2 encoder objects, in: ${objects}")
  endif()
  message(STATUS "${checked} objects of profile/: no allocation, no OS call; "
          "pprof.c.o and sink.c.o: no stdio, printf, strtok, strerror, locale or environment")
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
