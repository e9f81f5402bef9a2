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
 * libunwind validates memory through a pipe it opens once and keeps. Left
 * alone, that pipe takes the lowest free numbers (3 and 4 in a new
 * process), and once a daemon has closed every descriptor above 2 and
 * opened its own files there, the next validation reads from, closes and
 * replaces the program's files. So heapprof exports pipe2: a call from
 * libunwind gets its pipe far above the numbers a program is given, close-
 * on-exec (fdtable_move_high), and every other caller gets glibc's pipe2
 * unchanged. And since pipe2 hands us libunwind's own array, the last
 * unwind in progress closes the pipe and writes -1 there: libunwind opens
 * a new one when it next validates (only while its frame cache is cold),
 * so in steady state heapprof holds no descriptor in the program's table.
 * (glibc's backtrace() needs no descriptor, but walks CFI without
 * libunwind's per-address cache: 13 times the instructions per sample.)
 */
#define _GNU_SOURCE
#include "stack.h"

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdtable.h"

#define MAX_SEGMENTS 4

static struct {
  uintptr_t lo, hi;
} own[MAX_SEGMENTS];
static int nown;

static int is_own(uintptr_t pc) {
  for (int i = 0; i < nown; i++)
    if (pc >= own[i].lo && pc < own[i].hi)
      return 1;
  return 0;
}

static int find_own(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t probe = (uintptr_t)arg;
  int mine = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && probe >= lo && probe < lo + ph->p_memsz)
      mine = 1;
  }
  if (!mine)
    return 0;
  for (int i = 0; i < info->dlpi_phnum && nown < MAX_SEGMENTS; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      own[nown].lo = info->dlpi_addr + ph->p_vaddr;
      own[nown].hi = own[nown].lo + ph->p_memsz;
      nown++;
    }
  }
  return 1;
}

/* libunwind's code, whose pipe2 calls are moved high. */
static uintptr_t unwind_lo, unwind_hi;

static int find_unwind(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t probe = (uintptr_t)arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && probe >= lo &&
        probe < lo + ph->p_memsz) {
      unwind_lo = lo, unwind_hi = lo + ph->p_memsz;
      return 1;
    }
  }
  return 0;
}

static int (*next_pipe2)(int[2], int);

__attribute__((visibility("default"))) int pipe2(int fds[2], int flags) {
  if (next_pipe2 == NULL)
    next_pipe2 = (int (*)(int[2], int))dlsym(RTLD_NEXT, "pipe2");
  int rc = next_pipe2(fds, flags);
  uintptr_t from = (uintptr_t)__builtin_return_address(0);
  if (rc == 0 && from >= unwind_lo && from < unwind_hi) {
    fds[0] = fdtable_move_high(fds[0]);
    fds[1] = fdtable_move_high(fds[1]);
    __atomic_store_n(&stack_pipe, fds, __ATOMIC_RELEASE);
  }
  return rc;
}

int *stack_pipe;
int stack_unwinding;

/* libunwind keeps the numbers in its array; -1 there makes it open a new
 * pipe (through pipe2 above) the next time it must validate memory, which
 * happens only while its frame cache is cold. */
void stack_close_pipe(void) {
  int a = __atomic_exchange_n(&stack_pipe[0], -1, __ATOMIC_ACQ_REL);
  int b = __atomic_exchange_n(&stack_pipe[1], -1, __ATOMIC_ACQ_REL);
  if (a >= 0)
    syscall(SYS_close, a); /* close() is a cancellation point */
  if (b >= 0)
    syscall(SYS_close, b);
}

void stack_fork_child(void) { stack_unwinding = 0; }

void stack_init(void) {
  if (nown == 0) {
    dl_iterate_phdr(find_own, (void *)(uintptr_t)&stack_capture);
    dl_iterate_phdr(find_unwind, (void *)(uintptr_t)&unw_backtrace);
  }
  /* No warm-up capture: libunwind's first use opens its pipe, and a
   * program that never has a sample should never see it. Its first use
   * allocates (forwarded: the slow path is busy) and takes the loader
   * lock, which is recursive, while no profiler lock is held. */
}

int stack_trim(void *const *raw, int n, uintptr_t *pcs, int max) {
  int skip = 0;
  while (skip < n && is_own((uintptr_t)raw[skip]))
    skip++;
  int kept = n - skip < max ? n - skip : max;
  for (int i = 0; i < kept; i++)
    pcs[i] = (uintptr_t)raw[skip + i];
  return kept;
}
