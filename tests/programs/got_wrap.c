/*
 * got_wrap — test_got's stand-in for libheapprof.so: runtime/got.c linked
 * in, and the hooks it installs. Each hook counts its call and calls on by
 * name, through this library's own GOT: got_patch is given an address in
 * this library as `self`, and if it patched this module too the hooks
 * would call themselves until the stack ran out.
 */
#include <stdatomic.h>
#include <stdlib.h>

/* Calls seen, by hook: malloc, free, calloc, _dl_catch_exception. */
_Atomic long got_wrap_calls[4];

void *got_wrap_malloc(size_t n) {
  got_wrap_calls[0]++;
  return malloc(n);
}

void got_wrap_free(void *p) {
  got_wrap_calls[1]++;
  free(p);
}

void *got_wrap_calloc(size_t n, size_t size) {
  got_wrap_calls[2]++;
  return calloc(n, size);
}

/* glibc's private _dl_catch_exception (what ld.so's only JUMP_SLOTs name):
 * the hook that shows ld.so is left alone. */
int (*got_wrap_catch_next)(void *, void (*)(void *), void *);

int got_wrap_catch(void *exception, void (*operate)(void *), void *args) {
  got_wrap_calls[3]++;
  return got_wrap_catch_next(exception, operate, args);
}
