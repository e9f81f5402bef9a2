/*
 * api — the heapprof_* functions of heapprof.h. Each checks its
 * arguments, calls the module that does the work, and turns that
 * module's errno into the public HEAPPROF_E* code (api_code).
 */
#define _GNU_SOURCE
#include <errno.h>

#include "heapprof.h"

#include "control.h"
#include "pipeline.h"
#include "stats.h"

/* The public code for an internal failure (0, or -1 with errno). */
static int api_code(int rc) {
  if (rc == 0)
    return 0;
  switch (errno) {
  case EINVAL: return HEAPPROF_EINVAL;
  case ENOMEM: return HEAPPROF_ENOMEM;
  case EBUSY: return HEAPPROF_EBUSY;
  case ENODATA: return HEAPPROF_EOFF;
  default: return HEAPPROF_EIO; /* errno says what the write met */
  }
}

HEAPPROF_EXPORT int heapprof_set_rate(long rate) {
  return api_code(control_set_rate(rate));
}

HEAPPROF_EXPORT long heapprof_get_rate(void) {
  return (long)atomic_load(&control_rate);
}

HEAPPROF_EXPORT int heapprof_write_profile(const char *path,
                                           heapprof_kind_t kind) {
  return api_code(pipeline_write_file(kind, path));
}

HEAPPROF_EXPORT int heapprof_write_profile_fd(int fd, heapprof_kind_t kind) {
  return api_code(pipeline_write_fd(kind, fd));
}

HEAPPROF_EXPORT int heapprof_dump(char *path_out, size_t path_len) {
  return api_code(pipeline_dump(HEAPPROF_HEAP, path_out, path_len));
}

HEAPPROF_EXPORT int heapprof_read_stats(heapprof_stats_t *s) {
  return api_code(stats_read(s));
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
