/*
 * attach — heapprof_attach_start/stop (heapprof.h), for a process that
 * started without heapprof (attach.c says how).
 */
#ifndef HEAPPROF_ATTACH_H
#define HEAPPROF_ATTACH_H

/* Fork: an attach or detach in progress (or a later dlopen's patching)
 * is finished before the process forks, so that the child's attach lock
 * is free. */
void attach_fork_prepare(void);
void attach_fork_parent(void);
void attach_fork_child(void);

#endif /* HEAPPROF_ATTACH_H */
