/*
 * forward — an interposer that only forwards malloc and free to glibc.
 *
 * It is the floor under any LD_PRELOAD heap profiler: the extra call and
 * indirect jump every allocation pays before a profiler does anything.
 * The suite runs it beside heapprof so that a ratio can be split into
 * what interposing costs and what heapprof adds. glibc only.
 */
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

__attribute__((visibility("default"))) void *malloc(size_t n) {
  return __libc_malloc(n);
}

__attribute__((visibility("default"))) void free(void *p) { __libc_free(p); }
