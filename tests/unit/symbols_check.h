/*
 * symbols_check — what the symbolizer's unit tests share: a CHECK that
 * counts a failure and goes on (one run reports every wrong answer, not
 * the first), two helpers for the strings a lookup returns, and a whole
 * file read into memory. Each test defines SYMBOLS_TEST_NAME before
 * including it.
 */
#ifndef HEAPPROF_SYMBOLS_CHECK_H
#define HEAPPROF_SYMBOLS_CHECK_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symtab.h"

static int failures;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, SYMBOLS_TEST_NAME ":%d: %s: ", __LINE__, #cond);         \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      failures++;                                                              \
    }                                                                          \
  } while (0)

__attribute__((unused)) static const char *str(const char *s) {
  return s ? s : "(null)";
}

__attribute__((unused)) static bool ends_with(const char *s,
                                              const char *suffix) {
  size_t n = s ? strlen(s) : 0, k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* `path`'s bytes in a malloc'd buffer (one byte of room after them), their
 * count in *bytes; NULL (and 0) if it cannot be read whole. */
__attribute__((unused)) static void *read_file(const char *path,
                                               size_t *bytes) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  void *buf = NULL;
  if (fd >= 0 && fstat(fd, &st) == 0 && (buf = malloc(st.st_size + 1)) &&
      pread(fd, buf, st.st_size, 0) != st.st_size) {
    free(buf);
    buf = NULL;
  }
  if (fd >= 0)
    close(fd);
  *bytes = buf ? (size_t)st.st_size : 0;
  return buf;
}

/* What these tests check of an answer: the function holding the code
 * (its name, and its line: the call site of what was inlined there) and
 * the mapping; test_inline checks the inlined functions. */
typedef struct flat_frame {
  const char *function, *file;
  int64_t line;
  int mapping;
} flat_frame_t;

__attribute__((unused)) static void flatten(const prof_frame_t *fr,
                                            flat_frame_t *out) {
  const prof_line_t *fn = prof_frame_function(fr);
  *out = (flat_frame_t){fn ? prof_line_system_name(fn) : NULL,
                        fn ? fn->file : NULL, fn ? fn->line : 0, fr->mapping};
}

#endif /* HEAPPROF_SYMBOLS_CHECK_H */
