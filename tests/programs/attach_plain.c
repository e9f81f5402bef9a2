/*
 * attach_plain — prints "ready" and reads stdin until EOF. test_attach_cli
 * builds it three ways heapprof attach must refuse: -static, and linked
 * against a dynamic linker that is not glibc's by name (ld-musl-x86_64.so.1,
 * a copy of glibc's own, so that it runs).
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  char buf[64];
  fputs("ready\n", stdout);
  fflush(stdout);
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}
