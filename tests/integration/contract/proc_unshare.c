/*
 * proc_unshare — a single-threaded program stays single-threaded where
 * the kernel asks it: unshare(CLONE_NEWUSER) works under heapprof as it
 * does without it.
 *
 * The kernel refuses unshare(CLONE_NEWUSER) (and setns into a user or
 * mount namespace) with EINVAL in a process that has more than one
 * thread. unshare(1), nsenter, bubblewrap and container runtimes call it
 * from a program with one thread; heapprof's own threads (the dump thread,
 * started at start-up for the dump signal; the HTTP thread) must not make
 * it fail. The program allocates, calls unshare(CLONE_NEWUSER) and prints
 * the result; it runs without heapprof (the reference, which must succeed:
 * a machine where it cannot fails this test loudly) and preloaded with the
 * settings given, and must print the same.
 *
 * usage: proc_unshare LIBHEAPPROF [HEAPPROF_X=V...]  (program: --child)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;

static int child(int sampled) {
  if (sampled)
    sink = malloc(16 << 20);
  int rc = unshare(CLONE_NEWUSER);
  printf("unshare(CLONE_NEWUSER) = %d (%s)\n", rc,
         rc == 0 ? "ok" : strerror(errno));
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return child(strcmp(argv[2], "sampled") == 0);
  CHECK(argc >= 3 && (strcmp(argv[1], "sampled") == 0 ||
                      strcmp(argv[1], "fresh") == 0),
        "usage: proc_unshare sampled|fresh LIBHEAPPROF [HEAPPROF_X=V...]");
  char *args[] = {argv[0], "--child", argv[1], NULL};
  pc_result_t ref, r;
  pc_run(args, pc_env(NULL, NULL, 0), NULL, NULL, 0, 30, &ref);
  CHECK(ref.exited && ref.status == 0 && strstr(ref.out, "= 0 (ok)") != NULL,
        "prerequisite: unshare(CLONE_NEWUSER) must work here without "
        "heapprof (user namespaces enabled), but: %s %s", pc_describe(&ref),
        ref.out);
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/u.%%p.%%n.pb.gz", tl_tmpdir());
  size_t nvars = (size_t)argc - 3;
  char **vars = calloc(nvars + 2, sizeof *vars);
  vars[0] = out;
  for (size_t i = 0; i < nvars; i++)
    vars[i + 1] = argv[3 + i];
  pc_run(args, pc_env(argv[2], vars, nvars + 1), NULL, NULL, 0, 30, &r);
  printf("without heapprof: %swith heapprof (%s): %s%s", ref.out,
         pc_describe(&r), r.out, r.err);
  pc_expect(r.exited && r.status == 0, "ended with %s", pc_describe(&r));
  pc_expect(strcmp(r.out, ref.out) == 0,
            "unshare(CLONE_NEWUSER) fails under heapprof: its threads make "
            "a single-threaded program multithreaded");
  return pc_finish("a single-threaded program can unshare its user "
                   "namespace");
}
