/*
 * fdtable — heapprof's threads keep their descriptors out of the program's
 * table.
 *
 * A program owns its descriptor table: open() must return the lowest free
 * number, a daemon closes every descriptor above 2 and then opens its own,
 * and a child must see exactly the descriptors it was given. Every
 * descriptor heapprof opens in that table breaks one of these (CPython's
 * test_posix and test_subprocess found them), and every number heapprof
 * remembers there may become the program's file the moment the program
 * closes it.
 *
 * So each thread of heapprof's own (the dump thread, the HTTP thread) first
 * calls fdtable_private(): unshare(CLONE_FILES) gives the thread a table of
 * its own, a copy of the program's, in which it closes every descriptor at
 * once (a copy would keep the program's files, pipes and terminals open
 * after the program closed them) and puts /dev/null on 0, 1 and 2 so that
 * nothing of heapprof's is ever mistaken for standard I/O. From then on,
 * nothing the thread opens — profile files, sockets, libdw's ELF files —
 * exists in the program's table, and nothing the program does to its own
 * table reaches the thread's. POSIX record locks belong to the table that
 * took them, so closing the copies releases none of the program's.
 *
 * Where unshare is refused (a seccomp filter, as in some containers), the
 * thread shares the program's table and fdtable_private() says so with -1;
 * the caller then keeps long-lived descriptors at high numbers
 * (fdtable_move_high) and checks them before use.
 *
 * Messages for the program's stderr are written with fdtable_stderr(),
 * which reaches the program's descriptor 2 as it is now (pidfd_getfd), not
 * a copy of what it was when the thread started: a daemon that redirects
 * stderr to its log gets heapprof's lines there.
 */
#define _GNU_SOURCE
#include "fdtable.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Set in a thread whose table is its own. */
static __thread int private_table __attribute__((tls_model("initial-exec")));
/* The thread's pidfd for the process, opened on first need (private
 * tables only; it is the thread's own descriptor). */
static __thread int self_pidfd __attribute__((tls_model("initial-exec")));

static void close_all(void) {
  if (syscall(SYS_close_range, 0U, ~0U, 0U) == 0)
    return;
  struct rlimit rl;
  long top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                 ? (long)rl.rlim_cur : 65536;
  for (long fd = 0; fd < top; fd++)
    close((int)fd);
}

int fdtable_private(void) {
  int saved = errno;
  if (unshare(CLONE_FILES) != 0) {
    errno = saved;
    return -1;
  }
  close_all();
  for (int fd = 0; fd < 3; fd++) /* lands on 0, 1, 2 in turn */
    open("/dev/null", O_RDWR | O_CLOEXEC);
  private_table = 1;
  self_pidfd = -1;
  errno = saved;
  return 0;
}

int fdtable_is_private(void) { return private_table; }

int fdtable_move_high(int fd) {
  if (fd < 0 || private_table)
    return fd;
  struct rlimit rl;
  long base = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      (long)rl.rlim_cur > 64)
    base = (long)rl.rlim_cur - 64 > 4096 ? 4096 : (long)rl.rlim_cur - 64;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)base);
  if (high < 0)
    return fd; /* no room up there: keep it where it is */
  syscall(SYS_close, fd); /* close() is a cancellation point; this may run
                             inside malloc (libunwind's pipe) */
  return high;
}

/* The program's descriptor 2 as a descriptor of this thread's table, or -1. */
static int program_stderr(void) {
  if (self_pidfd < 0)
    self_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0U);
  if (self_pidfd >= 0) {
    int fd = (int)syscall(SYS_pidfd_getfd, self_pidfd, 2, 0U);
    if (fd >= 0)
      return fd;
  }
  /* An older kernel: the same file through /proc, appending so that a
   * separate file offset cannot write over what the program wrote. */
  return open("/proc/self/fd/2", O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
}

void fdtable_stderr(const void *buf, size_t len) {
  int saved = errno;
  int fd = private_table ? program_stderr() : STDERR_FILENO;
  if (fd >= 0) {
    ssize_t ignored = write(fd, buf, len);
    (void)ignored;
    if (fd != STDERR_FILENO)
      close(fd);
  }
  errno = saved;
}
