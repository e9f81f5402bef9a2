/*
 * proc_dlclose_lib — the libraries proc_dlclose loads and unloads: built
 * as "inner" and as "outer" (-DOUTER). Each allocates in its own code and
 * says when its constructor and destructor run, through a log function
 * the program hands it; outer's constructor opens inner, and its
 * destructor closes it: a dlclose inside a dlclose, with the loader's lock
 * held.
 */
#include <dlfcn.h>
#include <stdlib.h>

static void (*say)(const char *what);
static void *kept[64];
static unsigned nkept;

#ifdef OUTER
static void *inner;
#define NAME "outer"
#else
#define NAME "inner"
#endif

void lib_set_log(void (*fn)(const char *what)) { say = fn; }

__attribute__((noinline)) void *lib_alloc(size_t n) {
  void *p = malloc(n);
  free(kept[nkept % 64]);
  kept[nkept++ % 64] = p;
  return p;
}

#ifdef OUTER
void outer_open_inner(const char *path) { inner = dlopen(path, RTLD_NOW); }
#endif

__attribute__((destructor)) static void bye(void) {
#ifdef OUTER
  if (inner != NULL)
    dlclose(inner);
#endif
  for (unsigned i = 0; i < 64; i++)
    free(kept[i]);
  if (say != NULL)
    say(NAME "-dtor");
}
