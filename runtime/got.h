/*
 * got — hooking a running process through its modules' GOT slots (attach
 * mode, issue 15). x86-64 glibc only. How slots are chosen, written and
 * remembered, and the lock, are got.c's top comment.
 */
#ifndef HEAPPROF_GOT_H
#define HEAPPROF_GOT_H

#include <stddef.h>

typedef struct got_hook {
  const char *name;     /* the symbol: "malloc", "_Znwm", "dlopen", … */
  void *replacement;    /* what the slot gets */
  void *original;       /* what the slot must hold now to be patched (the program's binding,
                           dlsym(RTLD_DEFAULT)); a lazy slot still pointing into its module's
                           own PLT is patched too */
  void *alias;          /* another value a slot may hold and be patched from (NULL: none):
                           when `original` is a non-PIE executable's canonical PLT stub
                           (it takes the function's address), the definition behind it,
                           which the executable's own slot holds */
} got_hook_t;

/* Patches, in every module loaded now and not patched before (dl_iterate_phdr; skipping
 * ld.so, the vdso, the module containing `self`, and a module that defines the symbol
 * itself — except the C library, see got.c), every R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT
 * and R_X86_64_64 (addend 0) slot of hooks[i].name whose value is hooks[i].original (or
 * its own PLT, for JUMP_SLOT) to hooks[i].replacement: a slot in PT_GNU_RELRO is made
 * writable for the store and read-only again; stores are 8-byte atomic, and R_X86_64_64
 * slots (data: a program's own function table) are compare-and-swapped. Hooks are applied
 * in the order given (callers put the free family first). Every patched slot is recorded
 * (arena memory, never malloc) for got_restore. Returns how many slots were patched, or
 * -1 with errno (EINVAL: a hook without a name or replacement; ENOMEM: the arena refused;
 * EAGAIN: the module list kept changing under the walk; nothing was patched then). Slots
 * whose value is neither (another tool's hook, DEEPBIND) are left and counted in *skipped
 * (may be NULL). A hook whose original is NULL (a name the program does not define) is
 * passed over. A module another thread is still relocating is left for a later call.
 * Cheap when nothing was loaded or unloaded since the last call. errno is kept on
 * success. Calls serialize on got.c's lock; every call must pass the same hooks table
 * (the same names at the same indexes), since got_restore orders by index. */
int got_patch(const got_hook_t *hooks, size_t n, const void *self, size_t *skipped);

/* Puts back every slot got_patch recorded (CAS replacement → original; a slot the program
 * has changed since is left, as is a slot of a module unloaded since), free family LAST
 * (the reverse of patching: highest hook index first). Then forgets every module, so a
 * later got_patch patches the process afresh. 0 or -1 (EAGAIN: the module list kept
 * changing; nothing was forgotten, call again). errno is kept on success. */
int got_restore(void);

/* For pthread_atfork: prepare takes got.c's lock (waits for a walk in progress, which
 * holds the loader's lock: a child must not inherit either), parent releases it, child
 * re-initialises it. See got.c's top comment for where it sits in the lock order. */
void got_fork_prepare(void);
void got_fork_parent(void);
void got_fork_child(void);

#endif /* HEAPPROF_GOT_H */
