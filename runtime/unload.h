/*
 * unload — heapprof's dlclose, which keeps what an unloading library's
 * sampled frames were before the loader unmaps it (unload.c).
 */
#ifndef HEAPPROF_UNLOAD_H
#define HEAPPROF_UNLOAD_H

/* Finds the loader's dlclose; called at start-up, before the program can
 * call it. */
void unload_resolve(void);

#endif /* HEAPPROF_UNLOAD_H */
