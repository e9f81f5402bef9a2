/*
 * attach — heapprof in a process that started without it (`heapprof
 * attach PID`, issue 15).
 *
 * The command loads the library into the running process with dlopen
 * (RTLD_LOCAL: no later lookup of the program's finds heapprof), from a
 * thread stopped at the entry of the program's allocator, where it holds
 * no allocator lock, and calls heapprof_attach_start there. The constructor
 * saw a late load and started nothing (control.c). Here, in order:
 *   1. the settings, parsed as the environment's would be (silently: the
 *      target's stderr is not heapprof's to write on);
 *   2. the next allocator: the program's own binding, dlsym(RTLD_DEFAULT),
 *      never RTLD_NEXT (alloc_attach.h);
 *   3. sampling and the triggers, as a preloaded start would (control.c);
 *   4. every module's GOT slots of what heapprof exports when preloaded —
 *      the malloc family and operator new/delete (attach-mode versions:
 *      header-less sampled blocks), dlclose, sigaction and signal, unshare
 *      and setns, pipe2/read/syscall — plus dlopen and dlmopen, so that a
 *      library loaded later is patched as it loads (got.h). The free
 *      family goes first: once a slot hands out heapprof's blocks, every
 *      path that frees them already leads to heapprof (and a block freed by
 *      a path that does not is the allocator's own anyway).
 * heapprof_attach_stop undoes 4 and 3 (the library stays: -z nodelete).
 *
 * Both run on a program thread, inside a debugger's call: no lock of the
 * program's is waited for, nothing is allocated through the program's
 * malloc once step 2 is done but by libc's own internal calls, errno and
 * the cancellation state are put back, and nothing is written to the
 * program's descriptors.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "heapprof.h"

#include "alloc_attach.h"
#include "attach.h"
#include "config.h"
#include "control.h"
#include "got.h"
#include "thread.h"

/* Besides the malloc family: what a preloaded heapprof exports and why
 * (docs/RELIABILITY.md), found in heapprof's own symbol table. */
static const char *const also_hooked[] = {
    "dlclose", "sigaction", "signal", "unshare", "setns", "pipe2", "read",
    "syscall",
};
#define NALSO (sizeof also_hooked / sizeof *also_hooked)
#define NHOOKS_MAX 64

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;
static got_hook_t hooks[NHOOKS_MAX];
static size_t nhooks;

static void *(*next_dlopen)(const char *, int);
static void *(*next_dlmopen)(Lmid_t, const char *, int);

/* The modules a dlopen brought in are patched before it returns. */
static void patch_new_modules(void) {
  int saved = errno;
  pthread_mutex_lock(&attach_lock);
  if (nhooks != 0)
    got_patch(hooks, nhooks, (const void *)&patch_new_modules, NULL);
  pthread_mutex_unlock(&attach_lock);
  errno = saved;
}

static void *attach_dlopen(const char *file, int flags) {
  void *h = next_dlopen(file, flags);
  if (h != NULL)
    patch_new_modules();
  return h;
}

static void *attach_dlmopen(Lmid_t lmid, const char *file, int flags) {
  void *h = next_dlmopen(lmid, file, flags);
  if (h != NULL)
    patch_new_modules();
  return h;
}

/* ---- the settings ---- */

/* `name`'s value in the settings ("NAME=VALUE\n" lines), copied into
 * `buf`; NULL if absent. */
typedef struct settings {
  const char *text;
  char value[CONFIG_PATH_MAX];
} settings_t;

static const char *setting(const char *name, void *ctx) {
  settings_t *s = ctx;
  size_t len = strlen(name);
  for (const char *line = s->text; line != NULL && *line != '\0';) {
    const char *end = strchr(line, '\n');
    size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
    if (n > len && strncmp(line, name, len) == 0 && line[len] == '=' &&
        n - len - 1 < sizeof s->value) {
      memcpy(s->value, line + len + 1, n - len - 1);
      s->value[n - len - 1] = '\0';
      return s->value;
    }
    line = end != NULL ? end + 1 : NULL;
  }
  return NULL;
}

/* ---- the hooks ---- */

/* The hook table, in patching order: the other calls heapprof watches
 * (its own definitions as replacements), the malloc family's (free family
 * first), then dlopen and dlmopen. 0, or -1 with errno. */
static int build_hooks(void) {
  Dl_info self;
  void *me = NULL;
  if (dladdr((const void *)&build_hooks, &self) != 0)
    me = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (me == NULL) {
    errno = ENOENT;
    return -1;
  }
  /* These first: libunwind's pipe2/read/syscall must lead to heapprof
   * before the first sample, or its memory checks would open a pipe in
   * the program's descriptor table. Then the free family, then the
   * allocating functions (alloc_attach_hooks' order). */
  nhooks = 0;
  for (size_t i = 0; i < NALSO && nhooks < NHOOKS_MAX; i++) {
    void *ours = dlsym(me, also_hooked[i]), *alias;
    void *theirs = alloc_attach_binding(also_hooked[i], &alias);
    if (ours != NULL && theirs != NULL && ours != theirs)
      hooks[nhooks++] = (got_hook_t){also_hooked[i], ours, theirs, alias};
  }
  for (size_t i = 0; i < alloc_attach_nhooks && nhooks < NHOOKS_MAX; i++)
    if (alloc_attach_hooks[i].original != NULL)
      hooks[nhooks++] = alloc_attach_hooks[i];
  next_dlopen = (void *(*)(const char *, int))alloc_attach_binding("dlopen", NULL);
  next_dlmopen =
      (void *(*)(Lmid_t, const char *, int))alloc_attach_binding("dlmopen", NULL);
  void *alias;
  if (next_dlopen != NULL && nhooks < NHOOKS_MAX)
    hooks[nhooks++] = (got_hook_t){"dlopen", (void *)attach_dlopen,
                                   alloc_attach_binding("dlopen", &alias), alias};
  if (next_dlmopen != NULL && nhooks < NHOOKS_MAX)
    hooks[nhooks++] = (got_hook_t){"dlmopen", (void *)attach_dlmopen,
                                   alloc_attach_binding("dlmopen", &alias), alias};
  dlclose(me);
  return 0;
}

void attach_fork_prepare(void) { pthread_mutex_lock(&attach_lock); }
void attach_fork_parent(void) { pthread_mutex_unlock(&attach_lock); }
void attach_fork_child(void) { pthread_mutex_init(&attach_lock, NULL); }

/* ---- the entry points ---- */

static int start_locked(const char *text) {
  if (nhooks != 0) { /* attached: nothing may be resolved or forgotten again */
    errno = EBUSY;
    return -1;
  }
  settings_t s = {text, {0}};
  hp_config_t cfg;
  if (text == NULL || config_read_with(&cfg, setting, &s) != 0) {
    errno = EINVAL;
    return -1;
  }
  if (alloc_attach_resolve() != 0 || build_hooks() != 0)
    goto failed;
  /* Records an earlier attach left (put by a thread that was sampling as
   * it detached, or a realloc's put back), whose blocks the program has
   * freed since through the allocator: counted freed now, not in use for
   * ever. */
  alloc_attach_forget();
  if (control_attach(&cfg) != 0)
    goto failed;
  if (got_patch(hooks, nhooks, (const void *)&start_locked, NULL) < 0) {
    int err = errno;
    got_restore();
    control_detach();
    errno = err;
    goto failed;
  }
  return 0;
failed:
  nhooks = 0; /* not attached (the test at the top) */
  return -1;
}

/* What the last start or stop said (config_capture): the attaching
 * command prints it, so the program's stderr gets nothing at attach. */
static char said[2048];

HEAPPROF_EXPORT const char *heapprof_attach_messages(void) { return said; }

HEAPPROF_EXPORT int heapprof_attach_start(const char *settings) {
  int saved = errno;
  hp_own_work_t own = hp_own_begin(&hp_self);
  pthread_mutex_lock(&attach_lock);
  config_capture(said, sizeof said);
  int rc = start_locked(settings);
  int err = errno;
  config_capture(NULL, 0);
  pthread_mutex_unlock(&attach_lock);
  hp_own_end(&hp_self, own);
  errno = saved;
  return rc == 0 ? 0
         : err == EINVAL ? HEAPPROF_EINVAL
         : err == ENOMEM ? HEAPPROF_ENOMEM
         : err == EBUSY ? HEAPPROF_EBUSY
                        : HEAPPROF_EIO; /* the allocator not found, the
                                           module list never settling */
}

HEAPPROF_EXPORT int heapprof_attach_stop(void) {
  int saved = errno;
  hp_own_work_t own = hp_own_begin(&hp_self);
  pthread_mutex_lock(&attach_lock);
  config_capture(said, sizeof said);
  int rc = control_detach();
  if (rc == 0) {
    got_restore();
    alloc_attach_forget();
    nhooks = 0;
  }
  config_capture(NULL, 0);
  pthread_mutex_unlock(&attach_lock);
  hp_own_end(&hp_self, own);
  errno = saved;
  return rc == 0 ? 0 : HEAPPROF_EBUSY;
}
