/*
 * http_target — a process for test_http to profile over HTTP: it keeps
 * allocating at one site until its standard input closes.
 */
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noipa)) void *served_leak(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(void) {
  struct pollfd in = {0, POLLIN, 0};
  for (int i = 0;; i++) {
    served_leak(50000 + (size_t)(i % 7) * 1000);
    if (poll(&in, 1, 5) > 0) {
      char c;
      if (read(0, &c, 1) <= 0)
        return 0;
    }
  }
}
