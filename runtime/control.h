/*
 * control — start-up, the sampling settings, fork, unshare/setns and exit
 * (control.c says what each step hands to which module).
 */
#ifndef HEAPPROF_CONTROL_H
#define HEAPPROF_CONTROL_H

#include <stdatomic.h>
#include <stdint.h>

/* Sampling rate in bytes (0 = off); read by the slow path only. */
extern _Atomic int64_t control_rate;
/* Bumped whenever the rate changes: a thread whose epoch differs redraws
 * its gap. 0 means "not started": nothing is sampled before start-up. */
extern _Atomic uint32_t control_epoch;
/* Maximum frames recorded per stack. */
extern int control_depth;
/* Per-process seed for the thread generators. */
extern uint64_t control_seed;

/* heapprof_set_rate: the calling thread redraws at its next allocation,
 * every other thread at its next sample. 0, or -1 with errno EINVAL. */
int control_set_rate(long rate);

/* In a process heapprof was dlopen'ed into (heapprof attach): starts
 * sampling and the triggers as `c` says (again after a detach). 0, or -1
 * with errno EBUSY (preloaded or linked, or attached already). */
struct hp_config;
int control_attach(const struct hp_config *c);

/* Sampling off, the HTTP server and dump thread stopped, the dump signal
 * given back: 0, or -1 with errno EBUSY (not attached). */
int control_detach(void);

/* Samples that could not be recorded (profiler memory exhausted). */
void control_count_drop(void);
uint64_t control_drops(void);

#endif /* HEAPPROF_CONTROL_H */
