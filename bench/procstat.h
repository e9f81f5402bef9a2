/*
 * procstat — what the benchmarks read of their own process's memory: a
 * /proc/self/status field, and the reset of its peak RSS. Without stdio
 * or malloc, so that reading it allocates nothing the profiler would see.
 */
#ifndef HEAPPROF_BENCH_PROCSTAT_H
#define HEAPPROF_BENCH_PROCSTAT_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "VmRSS:" or "VmHWM:" from /proc/self/status, in KiB; -1 if unreadable. */
static inline long status_kb(const char *key) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  const char *at = strstr(buf, key);
  return at != NULL ? strtol(at + strlen(key), NULL, 10) : -1;
}

/* Resets the peak RSS (VmHWM) to the current RSS; 0 if the kernel
 * refuses. */
static inline int reset_peak(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  int ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

#endif /* HEAPPROF_BENCH_PROCSTAT_H */
