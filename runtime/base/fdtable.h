/*
 * fdtable — a descriptor table of their own for heapprof's threads, and the
 * way their messages reach the program's stderr (fdtable.c).
 */
#ifndef HEAPPROF_FDTABLE_H
#define HEAPPROF_FDTABLE_H

#include <stddef.h>

/* Gives the calling thread a descriptor table of its own, holding nothing
 * of the program's (0, 1 and 2 are /dev/null). 0, or -1 when the kernel
 * refused (the thread then shares the program's table). errno is kept. */
int fdtable_private(void);

/* Whether the calling thread has a table of its own. */
int fdtable_is_private(void);

/* For a thread that shares the program's table: moves long-lived `fd` far
 * above the low numbers a program expects to be given (close-on-exec) and
 * returns the new number (or `fd` if there is no room up there). In a
 * private table it returns `fd` unchanged. */
int fdtable_move_high(int fd);

/* Writes `buf` to the program's current stderr (descriptor 2 of the
 * program's table, whichever thread calls). errno is kept. */
void fdtable_stderr(const void *buf, size_t len);

#endif /* HEAPPROF_FDTABLE_H */
