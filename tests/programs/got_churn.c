/*
 * got_churn — the library test_got's stress loads and unloads while
 * got_patch runs. Its one hooked slot (malloc, R_X86_64_64) comes first in
 * a RELRO page, before 60 more relocations to libc functions: ld.so
 * relocates malloc's slot first and then keeps writing that page (60 symbol
 * lookups) before it makes it read-only. A got_patch that trusted a
 * relocated slot and made its page read-only again in that window would
 * crash ld.so; got.c waits until ld.so has protected the page.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define L(f) (const void *)f,
static const void *const many[] = {
    L(strlen) L(strcmp) L(memcpy) L(memset) L(strchr) L(strrchr) L(strstr)
    L(strncmp) L(strncpy) L(strcat) L(strncat) L(strspn) L(strcspn) L(strpbrk)
    L(memchr) L(memcmp) L(memmove) L(puts) L(fputs) L(fgets) L(fopen) L(fclose)
    L(fread) L(fwrite) L(fflush) L(fprintf) L(printf) L(snprintf) L(sscanf)
    L(perror) L(strerror) L(time) L(clock) L(rand) L(srand) L(toupper)
    L(tolower) L(exit) L(atexit) L(abort) L(getpid) L(write) L(read) L(close)
    L(lseek) L(usleep) L(sleep) L(atoi) L(atol) L(strtol) L(strtoul) L(qsort)
    L(bsearch) L(getenv) L(setenv) L(unsetenv) L(abs) L(labs) L(fseek) L(ftell)};
/* Defined after `many`, so gcc places it first (checked by test_got with
 * readelf: the lowest relocation of the page). */
static void *(*const ro_tab[1])(size_t) = {malloc};

const void *gotchurn_pick(size_t i) {
  const void *const *t = many;
  __asm__("" : "+r"(t));
  return t[i % (sizeof many / sizeof *many)];
}

void *gotchurn_alloc(size_t n) {
  void *(*const *t)(size_t) = ro_tab;
  __asm__("" : "+r"(t));
  return t[0](n);
}
