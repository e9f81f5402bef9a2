/*
 * proc_dlclose — dlclose behaves as without heapprof, which exports it
 * (to keep an unloading library's sampled frames): the same return
 * values, dlerror messages and errno, the library unmapped and its
 * destructor run at the same call; and no deadlock when a library's
 * destructor closes another library (the loader's lock held) while
 * profiles are being written on another thread at the same time.
 *
 * The program (--child INNER OUTER) writes a transcript: reference counts
 * (two handles of one library), a library opened RTLD_NODELETE closed
 * twice, 100 closes while another thread opens and closes /dev/null,
 * and 300 cycles of outer (which opens
 * inner in its constructor and closes it in its destructor) loaded,
 * allocated from and closed, while a thread writes a profile through the
 * API every few milliseconds (into /dev/null) when heapprof is there. It runs without heapprof (the
 * reference) and preloaded at rate 1; the preloaded run must end within
 * 60 s with the reference's transcript.
 *
 * usage: proc_dlclose LIBHEAPPROF INNER OUTER
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static char logbuf[256];

static void say(const char *what) {
  size_t len = strlen(logbuf);
  snprintf(logbuf + len, sizeof logbuf - len, "%s%s", len ? " " : "", what);
}

/* Whether a library whose path ends with `name` is in the map now. */
static int mapped(const char *name) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  int found = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    found |= strstr(line, name) != NULL;
  if (f != NULL)
    fclose(f);
  return found;
}

/* The process's thread count, from /proc/self/status. */
static int threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Threads:", 8) == 0)
      n = atoi(line + 8);
  if (f != NULL)
    fclose(f);
  return n;
}

static void report(const char *what, int rc, int err) {
  const char *msg = dlerror();
  printf("%s: rc %d, errno %d, dlerror %s, log [%s]\n", what, rc, err,
         msg ? msg : "(none)", logbuf);
  logbuf[0] = '\0';
}

static void *open_lib(const char *path, int flags) {
  void *h = dlopen(path, flags);
  if (h == NULL) {
    printf("dlopen %s: %s\n", path, dlerror());
    exit(1);
  }
  void (*set_log)(void (*)(const char *)) = dlsym(h, "lib_set_log");
  void *(*alloc)(size_t) = dlsym(h, "lib_alloc");
  set_log(say);
  for (int i = 0; i < 8; i++)
    alloc(100 + 16 * (size_t)i);
  return h;
}

static atomic_int done;

/* Opens and closes /dev/null over and over: each time it must get the
 * lowest free number, `want`, which it would not while another thread of
 * the process held a descriptor it did not before. */
static atomic_int spinning, strays;

static void *spinner(void *arg) {
  int want = *(int *)arg;
  while (atomic_load(&spinning)) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd != want)
      atomic_fetch_add(&strays, 1);
    if (fd >= 0)
      close(fd);
  }
  return NULL;
}

/* Profiles into /dev/null, one after another (0 is HEAPPROF_HEAP). */
static void *dumper(void *arg) {
  int (*write_fd)(int, int) = arg;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  while (!atomic_load(&done)) {
    write_fd(fd, 0);
    usleep(1000); /* a profile every few ms: the lock is free in between */
  }
  close(fd);
  return NULL;
}

static int child(const char *inner, const char *outer) {
  pc_deadline(60);
  /* Two handles of one library: the first dlclose leaves it loaded. */
  void *a = open_lib(inner, RTLD_NOW), *b = open_lib(inner, RTLD_NOW);
  errno = EDOM;
  int rc = dlclose(a);
  report("first of two", rc, errno);
  printf("mapped after the first: %d\n", mapped("proc_dlclose_inner"));
  errno = EDOM;
  rc = dlclose(b);
  report("second of two", rc, errno);
  printf("mapped after the second: %d\n", mapped("proc_dlclose_inner"));

  /* dlclose leaves the process with the threads it had (heapprof's worker
   * is gone when it returns: a program single-threaded but for heapprof's
   * own threads, which unshare() ends, must not meet an extra one). */
  int extra = 0;
  for (int i = 0; i < 50; i++) {
    void *h = open_lib(inner, RTLD_NOW);
    int before = threads();
    dlclose(h);
    logbuf[0] = '\0';
    extra += threads() != before;
  }
  printf("closes after which the process had another thread: %d\n", extra);

  /* RTLD_NODELETE: closed once, then once too often. */
  void *c = open_lib(inner, RTLD_NOW | RTLD_NODELETE);
  errno = EDOM;
  rc = dlclose(c);
  report("nodelete", rc, errno);
  errno = EDOM;
  rc = dlclose(c);
  report("nodelete again", rc, errno);

  /* The lowest free descriptor stays the program's to take while
   * libraries with samples in their code are closed (heapprof reads
   * their files then). */
  int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(lowest);
  pthread_t spin;
  atomic_store(&spinning, 1);
  pthread_create(&spin, NULL, spinner, &lowest);
  for (int i = 0; i < 100; i++) {
    pc_stage("descriptor cycle %d", i);
    void *h = open_lib(inner, RTLD_NOW);
    if (dlclose(h) != 0)
      printf("descriptor cycle %d: dlclose: %s\n", i, dlerror());
    logbuf[0] = '\0';
  }
  atomic_store(&spinning, 0);
  pthread_join(spin, NULL);
  printf("opens that did not get the lowest free descriptor: %d\n",
         atomic_load(&strays));

  /* dlclose inside a destructor, while profiles are written. */
  pthread_t t;
  void *dump = pc_api("heapprof_write_profile_fd");
  if (dump != NULL)
    pthread_create(&t, NULL, dumper, dump);
  unsigned dtors = 0;
  for (int i = 0; i < 300; i++) {
    pc_stage("nested cycle %d", i);
    void *h = open_lib(outer, RTLD_NOW);
    void (*open_inner)(const char *) = dlsym(h, "outer_open_inner");
    open_inner(inner);
    if (dlclose(h) != 0)
      printf("cycle %d: dlclose: %s\n", i, dlerror());
    dtors += strcmp(logbuf, "inner-dtor outer-dtor") == 0 ||
             strcmp(logbuf, "outer-dtor") == 0;
    logbuf[0] = '\0';
  }
  atomic_store(&done, 1);
  if (dump != NULL)
    pthread_join(t, NULL);
  printf("nested: %u of 300 cycles ran outer's destructor at dlclose; "
         "mapped after: %d %d\n", dtors, mapped("proc_dlclose_inner"),
         mapped("proc_dlclose_outer"));
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return child(argv[2], argv[3]);
  CHECK(argc == 4, "usage: proc_dlclose LIBHEAPPROF INNER OUTER");
  char *args[] = {argv[0], "--child", argv[2], argv[3], NULL};
  pc_result_t ref, r;
  pc_run(args, pc_env(NULL, NULL, 0), NULL, NULL, 0, 60, &ref);
  CHECK(ref.exited && ref.status == 0 &&
            strstr(ref.out, "log [inner-dtor]\nmapped after the second: 0") !=
                NULL &&
            strstr(ref.out, "nested: 300 of 300") != NULL,
        "the reference run is not what this test expects (%s):\n%s\n%s",
        pc_describe(&ref), ref.out, ref.err);
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/d.%%p.%%n.pb.gz", tl_tmpdir());
  char *vars[] = {out, "HEAPPROF_RATE=1"};
  pc_run(args, pc_env(argv[1], vars, 2), NULL, NULL, 0, 60, &r);
  printf("without heapprof (%s):\n%s\nwith heapprof (%s):\n%s\nstderr:\n%s",
         pc_describe(&ref), ref.out, pc_describe(&r), r.out, r.err);
  pc_expect(!r.hung, "hung (killed after 60 s): a dlclose inside a "
                     "destructor deadlocked against a profile being written");
  pc_expect(r.hung || (r.exited && r.status == 0), "ended with %s",
            pc_describe(&r));
  pc_expect(strcmp(r.out, ref.out) == 0,
            "dlclose's results, messages, errno, unmapping or destructors "
            "differ from those without heapprof");
  return pc_finish("dlclose behaves as without heapprof, and a dlclose in "
                   "a destructor does not deadlock with profiles");
}
