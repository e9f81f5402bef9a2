/*
 * proc_atfork — the program's fork handlers run as they do without
 * heapprof: in the usual order (prepare handlers in reverse order of
 * registration, parent and child handlers in order), and free to allocate.
 *
 * The program links proc_atfork_lib, whose constructor registers fork
 * handlers that allocate at new call sites and sizes; the loader runs that
 * constructor before heapprof's (a program's libraries are loaded after
 * the preloaded one and initialised first), so heapprof's handlers come
 * later in the list: its prepare handler runs first, and the library's
 * prepare, parent and child handlers run while heapprof's own fork locks
 * are held. main registers handlers of its own, after heapprof's. The
 * program forks from main and from a thread; each child prints the
 * handlers' order and exits. It runs without heapprof (the reference) and
 * preloaded (at HEAPPROF_RATE=1 and at the default rate, where the
 * handlers' 4 MiB allocations are sampled with p = 1 - e^-8 each); the
 * preloaded run must end within 30 s with the reference's output.
 *
 * usage: proc_atfork LIBHEAPPROF [HEAPPROF_X=V...]  (program: --child)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

void atfork_log(const char *what);
const char *atfork_log_text(void);
void atfork_log_clear(void);

static void *volatile sink;
static unsigned n;

static __attribute__((noipa)) void main_alloc(unsigned salt) {
  sink = malloc((4 << 20) + 4096 + 16 * (size_t)(n * 3 + salt));
  free(sink);
}

static void prepare(void) { atfork_log("main-prepare"); main_alloc(0); }
static void parent(void) { main_alloc(1); atfork_log("main-parent"); n++; }
static void child_h(void) { main_alloc(2); atfork_log("main-child"); n++; }

static void fork_once(const char *from) {
  atfork_log_clear();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    printf("child forked from %s: %s\n", from, atfork_log_text());
    fflush(stdout);
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  printf("parent, fork from %s: %s; child status %d\n", from,
         atfork_log_text(), WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  fflush(stdout);
}

static void *thread_fork(void *arg) {
  (void)arg;
  fork_once("a thread");
  return NULL;
}

static int child(void) {
  printf("at main: %s\n", atfork_log_text());
  pthread_atfork(prepare, parent, child_h);
  for (int i = 0; i < 3; i++)
    fork_once("main");
  pthread_t t;
  pthread_create(&t, NULL, thread_fork, NULL);
  pthread_join(t, NULL);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--child") == 0)
    return child();
  CHECK(argc >= 2, "usage: proc_atfork LIBHEAPPROF [HEAPPROF_X=V...]");
  char *args[] = {argv[0], "--child", NULL};
  pc_result_t ref, r;
  pc_run(args, pc_env(NULL, NULL, 0), NULL, NULL, 0, 30, &ref);
  CHECK(ref.exited && ref.status == 0 &&
            strstr(ref.out, "main-prepare lib-prepare lib-parent "
                            "main-parent") != NULL,
        "the reference run is not what this test expects (%s):\n%s",
        pc_describe(&ref), ref.out);
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/a.%%p.%%n.pb.gz", tl_tmpdir());
  size_t nvars = (size_t)argc - 2;
  char **vars = calloc(nvars + 2, sizeof *vars);
  vars[0] = out;
  for (size_t i = 0; i < nvars; i++)
    vars[i + 1] = argv[2 + i];
  pc_run(args, pc_env(argv[1], vars, nvars + 1), NULL, NULL, 0, 30, &r);
  printf("without heapprof (%s):\n%s\nwith heapprof (%s):\n%s\nstderr:\n%s",
         pc_describe(&ref), ref.out, pc_describe(&r), r.out, r.err);
  pc_expect(!r.hung, "fork never returned (killed after 30 s): a fork "
                     "handler of the program that allocates deadlocked "
                     "against heapprof's fork locks");
  pc_expect(r.hung || (r.exited && r.status == 0), "ended with %s",
            pc_describe(&r));
  pc_expect(strcmp(r.out, ref.out) == 0,
            "the handlers ran otherwise than without heapprof");
  return pc_finish("the program's fork handlers run in order and may "
                   "allocate");
}
