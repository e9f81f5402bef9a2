/*
 * api — the heapprof_* functions of heapprof.h. Each calls the module
 * that does the work and turns its result into the public HEAPPROF_E*
 * code (api_code). errno is the program's: kept, except after
 * HEAPPROF_EIO, where it says what the file or descriptor met.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "heapprof.h"

#include "control.h"
#include "pipeline.h"
#include "stats.h"

/* The public code for a module's result (0; -1 with errno; or
 * PIPELINE_EIO, the write's errno kept for the program). */
static int api_code(int rc, int saved_errno) {
  if (rc == PIPELINE_EIO)
    return HEAPPROF_EIO;
  int code = rc == 0 ? 0
             : errno == EINVAL ? HEAPPROF_EINVAL
             : errno == ENOMEM ? HEAPPROF_ENOMEM
             : errno == EBUSY ? HEAPPROF_EBUSY
             : errno == ENODATA ? HEAPPROF_EOFF
                                : HEAPPROF_EIO;
  if (code != HEAPPROF_EIO)
    errno = saved_errno;
  return code;
}

HEAPPROF_EXPORT int heapprof_set_rate(long rate) {
  int saved = errno;
  return api_code(control_set_rate(rate), saved);
}

HEAPPROF_EXPORT long heapprof_get_rate(void) {
  return (long)atomic_load(&control_rate);
}

HEAPPROF_EXPORT int heapprof_write_profile(const char *path,
                                           heapprof_kind_t kind) {
  int saved = errno;
  return api_code(pipeline_write_file(kind, path), saved);
}

HEAPPROF_EXPORT int heapprof_write_profile_fd(int fd, heapprof_kind_t kind) {
  int saved = errno;
  return api_code(pipeline_write_fd(kind, fd), saved);
}

HEAPPROF_EXPORT int heapprof_dump(char *path_out, size_t path_len) {
  int saved = errno;
  return api_code(pipeline_dump(HEAPPROF_HEAP, path_out, path_len), saved);
}

HEAPPROF_EXPORT int heapprof_read_stats(heapprof_stats_t *s) {
  int saved = errno;
  return api_code(stats_read(s), saved);
}

HEAPPROF_EXPORT const char *heapprof_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case HEAPPROF_EINVAL: return "invalid argument";
  case HEAPPROF_ENOMEM: return "out of memory for the profile";
  case HEAPPROF_EIO: return "cannot write the profile";
  case HEAPPROF_EBUSY: return "the profiler is not started in this process";
  case HEAPPROF_EOFF: return "profiling (or peak tracking) is off";
  default: return "unknown heapprof error";
  }
}
