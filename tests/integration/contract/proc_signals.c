/*
 * proc_signals — heapprof never changes a program thread's signal mask,
 * and the SIGUSR2 handler the program installs is the one that runs.
 *
 * The program reports what it sees, one line per observation; it runs
 * without heapprof (the reference) and preloaded at HEAPPROF_RATE=1, and
 * the two reports must be the same. It starts with SIGHUP and signal 40
 * blocked (set by the test before exec).
 *
 *   own      a constructor of the program installs h1 for SIGUSR2
 *            (SA_SIGINFO|SA_RESTART, SIGUSR1 in sa_mask). Reported: the
 *            disposition sigaction(SIGUSR2, NULL, &old) shows in main, the
 *            mask in main at start, in a thread created before any dump,
 *            which handler raise(SIGUSR2) runs; then heapprof's API is
 *            called (write_profile, dump, set_rate, read_stats: the
 *            preloaded run only), and the mask of main after it, of a
 *            thread created after those dumps, of a thread after 2,000
 *            sampled allocations, of a forked child after its first
 *            allocation (which starts its dump thread); then main installs
 *            h2 with signal() and raises SIGUSR2 again.
 *   ignored  SIGUSR2 is inherited ignored (SIG_IGN): it stays ignored and
 *            raise(SIGUSR2) leaves the program running.
 *
 * usage: proc_signals own|ignored LIBHEAPPROF (program: --child MODE DIR)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static volatile sig_atomic_t h1_runs, h2_runs;
static void *volatile sink;

static void h1(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)si, (void)uc;
  h1_runs++;
}

static void h2(int sig) {
  (void)sig;
  h2_runs++;
}

/* A constructor of the program: runs after heapprof's (preloaded first). */
__attribute__((constructor)) static void install_h1(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "--child") != 0 || strcmp(argv[2], "own"))
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = h1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  sigaction(SIGUSR2, &sa, NULL);
}

static void mask_text(const sigset_t *s, char *buf, size_t cap) {
  size_t at = 0;
  buf[0] = '\0';
  for (int i = 1; i < 65 && at + 8 < cap; i++)
    if (sigismember(s, i) == 1)
      at += (size_t)snprintf(buf + at, cap - at, " %d", i);
  if (at == 0)
    snprintf(buf, cap, " (none)");
}

static void report_mask(const char *where) {
  sigset_t s;
  pthread_sigmask(SIG_SETMASK, NULL, &s);
  char m[400];
  mask_text(&s, m, sizeof m);
  printf("mask %s:%s\n", where, m);
  fflush(stdout);
}

static void report_usr2(const char *where) {
  struct sigaction old;
  sigaction(SIGUSR2, NULL, &old);
  const char *who;
  if (old.sa_flags & SA_SIGINFO)
    who = old.sa_sigaction == h1 ? "h1" : "another SA_SIGINFO handler";
  else
    who = old.sa_handler == SIG_DFL ? "SIG_DFL"
          : old.sa_handler == SIG_IGN ? "SIG_IGN"
          : old.sa_handler == h2 ? "h2" : "another handler";
  char m[400];
  mask_text(&old.sa_mask, m, sizeof m);
  printf("SIGUSR2 %s: %s, flags 0x%x, sa_mask%s\n", where, who,
         (unsigned)old.sa_flags & ~0x04000000u /* SA_RESTORER: libc's */, m);
}

static void *thread_report(void *arg) {
  report_mask((const char *)arg);
  return NULL;
}

static void *thread_allocating(void *arg) {
  for (int i = 0; i < 2000; i++)
    free(sink = malloc(16 + (size_t)i));
  report_mask((const char *)arg);
  return NULL;
}

static void in_thread(void *(*fn)(void *), const char *what) {
  pthread_t t;
  pthread_create(&t, NULL, fn, (void *)what);
  pthread_join(t, NULL);
}

static void call_api(const char *dir) {
  int (*write_profile)(const char *, int) =
      (int (*)(const char *, int))pc_api("heapprof_write_profile");
  int (*dump)(char *, size_t) = (int (*)(char *, size_t))pc_api("heapprof_dump");
  int (*set_rate)(long) = (int (*)(long))pc_api("heapprof_set_rate");
  int (*stats)(void *) = (int (*)(void *))pc_api("heapprof_read_stats");
  if (write_profile == NULL) /* the reference run */
    return;
  char path[1024];
  snprintf(path, sizeof path, "%s/api.pb.gz", dir);
  char statbuf[4096];
  int rc[4] = {write_profile(path, 0), dump(NULL, 0), set_rate(1),
               stats(statbuf)};
  fprintf(stderr, "api: %d %d %d %d\n", rc[0], rc[1], rc[2], rc[3]);
}

static int child(const char *mode, const char *dir) {
  if (strcmp(mode, "ignored") == 0) {
    report_usr2("in main");
    raise(SIGUSR2);
    printf("alive after raise(SIGUSR2)\n");
    return 0;
  }
  report_usr2("in main (installed by a constructor)");
  report_mask("main at start");
  in_thread(thread_report, "thread before any dump");
  raise(SIGUSR2);
  printf("raise(SIGUSR2): h1 ran %d, h2 ran %d\n", (int)h1_runs, (int)h2_runs);
  call_api(dir);
  report_mask("main after heapprof API calls");
  in_thread(thread_report, "thread created after dumps");
  in_thread(thread_allocating, "thread after 2000 allocations");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    free(sink = malloc(100)); /* the child's first allocation */
    report_mask("forked child after its first allocation");
    in_thread(thread_report, "thread of the forked child");
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  signal(SIGUSR2, h2);
  report_usr2("after signal(SIGUSR2, h2)");
  raise(SIGUSR2);
  printf("raise(SIGUSR2): h1 ran %d, h2 ran %d\n", (int)h1_runs, (int)h2_runs);
  report_mask("main at the end");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return child(argv[2], argv[3]);
  CHECK(argc == 3 && (strcmp(argv[1], "own") == 0 ||
                      strcmp(argv[1], "ignored") == 0),
        "usage: proc_signals own|ignored LIBHEAPPROF");
  int ignored = strcmp(argv[1], "ignored") == 0;
  char *args[] = {argv[0], "--child", argv[1], (char *)tl_tmpdir(), NULL};
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, 40);
  pc_result_t ref, r;
  pc_run(args, pc_env(NULL, NULL, 0), NULL, &mask, ignored, 30, &ref);
  CHECK(ref.exited && ref.status == 0, "the reference run ended with %s",
        pc_describe(&ref));
  CHECK(ignored ? strstr(ref.out, "alive after") != NULL
                : strstr(ref.out, "h1 ran 1, h2 ran 1") != NULL,
        "the reference run is not what this test expects:\n%s", ref.out);
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/s.%%p.%%n.pb.gz", tl_tmpdir());
  char *vars[] = {out, "HEAPPROF_RATE=1"};
  pc_run(args, pc_env(argv[2], vars, 2), NULL, &mask, ignored, 30, &r);
  printf("without heapprof (%s):\n%s\nwith heapprof (%s):\n%s\nstderr:\n%s",
         pc_describe(&ref), ref.out, pc_describe(&r), r.out, r.err);
  pc_expect(r.exited && r.status == 0, "the preloaded run ended with %s",
            pc_describe(&r));
  pc_expect(strcmp(r.out, ref.out) == 0,
            "the program sees other signal masks or handlers under heapprof");
  if (!ignored)
    pc_expect(strstr(r.err, "api: 0 0 0 0") != NULL,
              "the heapprof API calls did not all succeed");
  return pc_finish(ignored ? "an inherited SIG_IGN for SIGUSR2 stays"
                           : "masks and the program's SIGUSR2 handlers are "
                             "the program's");
}
