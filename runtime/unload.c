/*
 * unload — dlclose, seen before the library goes.
 *
 * A library unloaded before a profile is written takes its symbols and
 * debug info with it (and its file may be gone or replaced by then). So
 * heapprof exports dlclose, as it exports malloc: before the loader's own
 * dlclose runs, the pipeline answers and keeps the sampled addresses in
 * the library's code (pipeline_unloading). Nothing of this is on the
 * allocation path; a program that never calls dlclose never runs it.
 *
 * What it does not see: unloads glibc makes itself (NSS and iconv
 * modules, through its internal entry points), dlmopen namespaces (their
 * handles are answered like any: the module is looked up by load bias),
 * and a program that found the loader's dlclose by other means (dlsym of
 * libc's own, a static link).
 *
 * The program's view is unchanged: the real dlclose gets the same handle
 * and its return value and errno (and dlerror's message) are the
 * program's. dlinfo, which finds the load bias, clears dlerror's state on
 * success exactly as the dlclose that follows would anyway.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include "control.h"
#include "pipeline.h"
#include "thread.h"
#include "unload.h"

typedef int (*dlclose_fn)(void *);

static dlclose_fn next_dlclose;

/* dlcloses this thread is inside (a destructor that closes another
 * library): the loader's lock is held there. */
static __thread int depth __attribute__((tls_model("initial-exec")));

void unload_resolve(void) {
  next_dlclose = (dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
}

HEAPPROF_EXPORT int dlclose(void *handle) {
  if (next_dlclose == NULL)
    unload_resolve();
  if (next_dlclose == NULL) {
    errno = ENOSYS;
    return -1;
  }
  /* glibc's dlclose(NULL) faults; it must still be glibc's that does (the
   * parameter is declared nonnull, so the check reads it through h). */
  void *volatile h = handle;
  if (h != NULL && hp_self.busy == 0)
    pipeline_unloading(handle, depth > 0);
  depth++;
  int rc = next_dlclose(handle);
  depth--;
  return rc;
}
