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

#endif /* HEAPPROF_SYMBOLS_CHECK_H */
