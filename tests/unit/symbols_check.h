/*
 * symbols_check — what the symbolizer's unit tests share: a CHECK that
 * counts a failure and goes on (one run reports every wrong answer, not
 * the first), and two helpers for the strings a lookup returns. Each test
 * defines SYMBOLS_TEST_NAME before including it.
 */
#ifndef HEAPPROF_SYMBOLS_CHECK_H
#define HEAPPROF_SYMBOLS_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

#endif /* HEAPPROF_SYMBOLS_CHECK_H */
