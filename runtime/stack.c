/*
 * stack — unw_backtrace with the profiler's own frames cut off.
 *
 * unw_backtrace is libunwind's fast tracer (it caches frame shapes per
 * address, ~0.2 µs for a 26-frame stack here); the unw_step loop would be
 * 70x slower and is never used on the sampling path. Our own frames are the
 * leading ones whose address falls in this library's executable segments,
 * learned once from dl_iterate_phdr, so the trim does not depend on how the
 * compiler inlined the malloc wrappers.
 *
 * libunwind validates memory before it reads a frame it has not cached
 * yet: it writes the byte into a pipe it opened once, and an EFAULT says
 * the address is not readable. Left alone, that pipe takes the lowest free
 * numbers (3 and 4 in a new process); once a daemon has closed every
 * descriptor above 2 and opened its own files there, the next validation
 * read from, closed and replaced the program's files; and a program that
 * lists its descriptors saw two it never opened. So libunwind gets no
 * pipe: heapprof exports pipe2, read and syscall, and for calls from
 * libunwind's own code only, hands out two numbers no descriptor can
 * have, answers the drain read with EAGAIN, and answers the one-byte
 * write with process_vm_readv on the address, which says the same thing
 * without a descriptor. Every other caller gets glibc's functions,
 * unchanged. Where process_vm_readv is refused (a seccomp filter), the
 * pipe is real, moved far above the numbers a program is given.
 * (glibc's backtrace() needs no descriptor, but walks CFI without
 * libunwind's per-address cache: 13 times the instructions per sample.)
 */
#define _GNU_SOURCE
#include "stack.h"

#include <dlfcn.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <link.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stddef.h>
#include <unistd.h>

#include "fdtable.h"

#define MAX_SEGMENTS 4

/* The executable segments of one loaded object. */
typedef struct code {
  struct {
    uintptr_t lo, hi;
  } seg[MAX_SEGMENTS];
  int n;
} code_t;

static code_t own;    /* this library: its frames are cut from stacks */
static code_t unwind; /* libunwind: its pipe calls are answered here */

static int in_code(const code_t *c, uintptr_t pc) {
  for (int i = 0; i < c->n; i++)
    if (pc >= c->seg[i].lo && pc < c->seg[i].hi)
      return 1;
  return 0;
}

/* dl_iterate_phdr callback: fills the code_t of the object that holds
 * the probe address. */
struct find {
  uintptr_t probe;
  code_t *code;
};

static int find_code(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct find *f = arg;
  int holds = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && f->probe >= lo && f->probe < lo + ph->p_memsz)
      holds = 1;
  }
  if (!holds)
    return 0;
  for (int i = 0; i < info->dlpi_phnum && f->code->n < MAX_SEGMENTS; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      f->code->seg[f->code->n].lo = info->dlpi_addr + ph->p_vaddr;
      f->code->seg[f->code->n].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
      f->code->n++;
    }
  }
  return 1;
}

static void learn_code(const void *probe, code_t *code) {
  struct find f = {(uintptr_t)probe, code};
  dl_iterate_phdr(find_code, &f);
}

/* The pipe libunwind is given: two numbers no descriptor can have (the
 * kernel's hard ceiling, fs.nr_open, is far below them). */
#define FAKE_READ (INT_MAX - 2)
#define FAKE_WRITE (INT_MAX - 1)

static int (*next_pipe2)(int[2], int);
static ssize_t (*next_read)(int, void *, size_t);
static long (*next_syscall)(long, ...);
static int fake_ok; /* process_vm_readv works here: the pipe can be faked */

static int from_unwind(uintptr_t from) { return in_code(&unwind, from); }

/* Whether one byte at `addr` is readable: what libunwind's write of it
 * into its pipe tells it, without a descriptor. */
static int readable(const void *addr) {
  char byte;
  struct iovec local = {&byte, 1}, remote = {(void *)addr, 1};
  /* This thread, not the process: once main has exited, its zombie (the
   * process id) has no memory to read. */
  return process_vm_readv(gettid(), &local, 1, &remote, 1, 0) == 1;
}

HEAPPROF_EXPORT int pipe2(int fds[2], int flags) {
  if (next_pipe2 == NULL)
    next_pipe2 = (int (*)(int[2], int))dlsym(RTLD_NEXT, "pipe2");
  if (!from_unwind((uintptr_t)__builtin_return_address(0)))
    return next_pipe2(fds, flags);
  if (fake_ok) {
    fds[0] = FAKE_READ, fds[1] = FAKE_WRITE;
    return 0;
  }
  /* process_vm_readv refused (a seccomp filter): a real pipe, far up the
   * table. libunwind's array is read by other threads' unwinds: it only
   * ever sees the final, high numbers. */
  int got[2];
  int rc = next_pipe2(got, flags);
  if (rc == 0) {
    __atomic_store_n(&fds[1], fdtable_move_high(got[1]), __ATOMIC_RELEASE);
    __atomic_store_n(&fds[0], fdtable_move_high(got[0]), __ATOMIC_RELEASE);
  }
  return rc;
}

/* libunwind drains its pipe before each check: an empty one says EAGAIN. */
HEAPPROF_EXPORT ssize_t read(int fd, void *buf,
                                                    size_t n) {
  if (__builtin_expect(fd == FAKE_READ, 0) &&
      from_unwind((uintptr_t)__builtin_return_address(0))) {
    errno = EAGAIN;
    return -1;
  }
  if (next_read == NULL)
    next_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
  return next_read(fd, buf, n);
}

/* libunwind checks a byte with syscall(SYS_write, pipe, addr, 1). It
 * loops while errno is EINTR, whatever the result, so errno is cleared on
 * success (the slow path restores the program's errno afterwards). */
HEAPPROF_EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int k = 0; k < 6; k++)
    a[k] = va_arg(ap, long);
  va_end(ap);
  if (__builtin_expect(number == SYS_write && a[0] == FAKE_WRITE, 0) &&
      from_unwind((uintptr_t)__builtin_return_address(0))) {
    if (readable((const void *)a[1])) {
      errno = 0;
      return 1;
    }
    errno = EFAULT;
    return -1;
  }
  if (next_syscall == NULL)
    next_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return next_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void stack_resolve(void) {
  next_pipe2 = (int (*)(int[2], int))dlsym(RTLD_NEXT, "pipe2");
  next_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
  next_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
}

void stack_init(void) {
  if (own.n == 0) {
    learn_code((const void *)(uintptr_t)&stack_capture, &own);
    learn_code((const void *)(uintptr_t)&unw_backtrace, &unwind);
  }
  int probe = 1;
  fake_ok = readable(&probe) && !readable(NULL);
  /* No warm-up capture: libunwind's first use allocates (forwarded: the
   * slow path is busy) and takes the loader lock, which is recursive,
   * while no profiler lock is held. */
}

int stack_trim(void *const *raw, int n, uintptr_t *pcs, int max) {
  int skip = 0;
  while (skip < n && in_code(&own, (uintptr_t)raw[skip]))
    skip++;
  int kept = n - skip < max ? n - skip : max;
  for (int i = 0; i < kept; i++)
    pcs[i] = (uintptr_t)raw[skip + i];
  return kept;
}

/* ---- the loader gate (stack.h) ---- */

_Atomic int stack_gate_closed; /* a fork is between prepare and its end */
_Atomic int stack_gate_inside; /* calls between enter and leave */
/* This thread's calls inside: a fork from a signal handler that
 * interrupted one must not wait for itself. */
__thread int stack_gate_here __attribute__((tls_model("initial-exec")));

void stack_loader_wait(void) {
  while (atomic_load_explicit(&stack_gate_closed, memory_order_acquire))
    sched_yield();
}

void stack_fork_prepare(void) {
  atomic_store(&stack_gate_closed, 1);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (atomic_load(&stack_gate_inside) > stack_gate_here) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000000000L +
            (now.tv_nsec - start.tv_nsec) > 100000000L)
      break; /* stuck behind something of the program's: fork anyway */
    sched_yield();
  }
}

void stack_fork_parent(void) { atomic_store(&stack_gate_closed, 0); }

/* Only this thread came along: the others' calls are not inside here. */
void stack_fork_child(void) {
  atomic_store(&stack_gate_inside, stack_gate_here);
  atomic_store(&stack_gate_closed, 0);
}
