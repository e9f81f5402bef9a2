/*
 * attach_victim — a process for test_attach_cli to attach to. It prints
 * "ready" on stdout once it is in the state its mode asks for, then:
 *
 *   attach_victim plain [how...]  reads stdin until EOF, then exits 0. Each
 *       `how` is done first, in order: setuid (real uid 0, effective 65534:
 *       the Uid fields differ), nobody (every uid and gid 65534), nodump
 *       (PR_SET_DUMPABLE 0), dump (PR_SET_DUMPABLE 1), usr2 (a SIGUSR2 handler of its own), dlopen=LIB
 *       (LIB loaded now), hide=DIR (a new mount namespace where DIR is an
 *       empty tmpfs).
 *   attach_victim busy  two threads (main and one more) call malloc(100000)
 *       and free without end, checking the bytes written at each block's ends;
 *       exits 1 on a mismatch. The case where a naive gdb `call` deadlocks
 *       (issue 15's research, section 0.3): no thread ever blocks in a
 *       system call.
 *   attach_victim spin  computes without end: no allocator call, no system
 *       call, so no safe point.
 *   attach_victim loader  a thread inside dl_iterate_phdr for 40 s (the
 *       loader's lock held), main blocked in read(stdin)
 *   attach_victim sleeps  main in nanosleep, a thread in a timed condition
 *       wait, for ever (killed by the test)
 *   attach_victim idle  main blocks in read(stdin), a thread in epoll_wait
 *       on stdin, a thread in nanosleep(SECS, default 6 s); when they
 *       return it prints "read RC BYTE", "epoll RC", "sleep RC ERRNO" and
 *       exits 0: an attach must not change what they return.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static void ready(void) {
  fputs("ready\n", stdout);
  fflush(stdout);
}

static void on_usr2(int sig) { (void)sig; }

static void prepare(const char *how) {
  if (strcmp(how, "setuid") == 0 && setresuid(0, 65534, 0) != 0)
    perror("setresuid"), exit(2);
  if (strcmp(how, "nobody") == 0 &&
      (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0))
    perror("nobody"), exit(2);
  if (strcmp(how, "nodump") == 0 && prctl(PR_SET_DUMPABLE, 0) != 0)
    perror("prctl"), exit(2);
  if (strcmp(how, "dump") == 0 && prctl(PR_SET_DUMPABLE, 1) != 0)
    perror("prctl"), exit(2);
  if (strcmp(how, "usr2") == 0)
    signal(SIGUSR2, on_usr2);
  if (strncmp(how, "dlopen=", 7) == 0 && dlopen(how + 7, RTLD_NOW | RTLD_LOCAL) == NULL)
    fprintf(stderr, "%s\n", dlerror()), exit(2);
  if (strncmp(how, "hide=", 5) == 0 &&
      (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
       mount("tmpfs", how + 5, "tmpfs", 0, NULL) != 0))
    perror("hide"), exit(2);
}

static int plain(int argc, char **argv) {
  for (int i = 2; i < argc; i++)
    prepare(argv[i]);
  ready();
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}

static void *hammer(void *arg) {
  (void)arg;
  for (unsigned long n = 0;; n++) {
    /* Most of the time inside malloc and free (arena lock held), not in
     * this loop: that is what made the naive call deadlock at once. */
    unsigned char *volatile p = malloc(100000);
    if (p == NULL)
      exit(1);
    p[0] = p[99999] = (unsigned char)n;
    if (p[0] != (unsigned char)n || p[99999] != (unsigned char)n)
      exit(1);
    free(p);
  }
  return NULL;
}

static int busy(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, hammer, NULL) != 0)
    return 2;
  ready();
  hammer(NULL);
  return 0;
}

static volatile unsigned long spun;

static int spin(void) {
  ready();
  for (;;)
    spun++;
  return 0;
}

static long sleep_rc, sleep_errno, epoll_rc;

static void *sleeper(void *arg) {
  struct timespec t = {(time_t)(long)arg, 0};
  sleep_rc = nanosleep(&t, NULL);
  sleep_errno = sleep_rc ? errno : 0;
  return NULL;
}

static void *poller(void *arg) {
  (void)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN}, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  epoll_rc = epoll_wait(ep, &got, 1, -1);
  if (epoll_rc < 0)
    epoll_rc = -errno;
  return NULL;
}

static int idle(int argc, char **argv) {
  long secs = argc > 2 ? atol(argv[2]) : 6;
  pthread_t s, p;
  if (pthread_create(&s, NULL, sleeper, (void *)secs) != 0 ||
      pthread_create(&p, NULL, poller, NULL) != 0)
    return 2;
  ready();
  char byte = 0;
  ssize_t rc = read(0, &byte, 1);
  int read_errno = rc < 0 ? errno : 0;
  pthread_join(p, NULL);
  pthread_join(s, NULL);
  printf("read %zd %c %d\nepoll %ld\nsleep %ld %ld\n", rc, byte ? byte : '-', read_errno,
         epoll_rc, sleep_rc, sleep_errno);
  return 0;
}

/* Only timed waits: main in nanosleep, a thread in a timed condition
 * wait (futex with a timeout). Interrupted by a tracer's stop, both are
 * resumed through restart_syscall, so a second visit finds no thread in
 * nanosleep or futex any more. */
static void *timed_waiter(void *arg) {
  (void)arg;
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  pthread_mutex_lock(&m);
  for (;;) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += 600;
    pthread_cond_timedwait(&c, &m, &at);
  }
  return NULL;
}

/* Holds the loader's write lock (dl_iterate_phdr's) for 40 s while main
 * waits in read: a dlopen called in now would wait as long. */
static int in_loader(struct dl_phdr_info *info, size_t size, void *data) {
  (void)info, (void)size, (void)data;
  sleep(40);
  return 1;
}

static void *iterate(void *arg) {
  (void)arg;
  dl_iterate_phdr(in_loader, NULL);
  return NULL;
}

static int loader(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, iterate, NULL) != 0)
    return 2;
  usleep(100000);
  ready();
  char byte;
  ssize_t rc = read(0, &byte, 1);
  printf("read %zd\n", rc);
  return 0;
}

static int sleeps(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, timed_waiter, NULL) != 0)
    return 2;
  ready();
  for (;;) {
    struct timespec t600 = {600, 0};
    nanosleep(&t600, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "plain") == 0)
    return plain(argc, argv);
  if (argc == 2 && strcmp(argv[1], "busy") == 0)
    return busy();
  if (argc == 2 && strcmp(argv[1], "spin") == 0)
    return spin();
  if (argc >= 2 && strcmp(argv[1], "idle") == 0)
    return idle(argc, argv);
  if (argc == 2 && strcmp(argv[1], "sleeps") == 0)
    return sleeps();
  if (argc == 2 && strcmp(argv[1], "loader") == 0)
    return loader();
  fprintf(stderr, "usage: attach_victim plain [how...] | busy | spin | idle [SECS] | sleeps | loader\n");
  return 2;
}
