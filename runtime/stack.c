/*
 * stack — glibc's backtrace() with the profiler's own frames cut off.
 *
 * backtrace() walks the stack with libgcc's unwinder, which follows the
 * CFI of each frame (≈ 0.2 µs for a 26-frame stack here) and, with glibc
 * 2.35+ and GCC 12+, finds each frame's object with _dl_find_object, which
 * takes no lock. It opens no descriptor and keeps none: libunwind, used
 * before, validated memory through a pipe it cached, and once a daemon had
 * closed every descriptor above 2 and opened its own files, that pipe's
 * numbers were the program's files, which libunwind read, closed and
 * replaced (the host contract, docs/RELIABILITY.md). A frame without CFI
 * ends the stack instead of being guessed at.
 *
 * Our own frames are the leading ones whose address falls in this
 * library's executable segments, learned once from dl_iterate_phdr, so the
 * trim does not depend on how the compiler inlined the malloc wrappers.
 */
#define _GNU_SOURCE
#include "stack.h"

#include <link.h>
#include <stddef.h>

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

void stack_init(void) {
  if (nown == 0)
    dl_iterate_phdr(find_own, (void *)(uintptr_t)&stack_capture);
  uintptr_t warm[8];
  stack_capture(warm, 8);
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
