/*
 * api — the heapprof_* functions of heapprof.h. Each calls the module
 * that does the work and turns its result into the public HEAPPROF_E*
 * code (api_code). errno is the program's: kept, except after
 * HEAPPROF_EIO, where it says what the file or descriptor met.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "heapprof.h"

#include "arena.h"
#include "control.h"
#include "labels.h"
#include "pipeline.h"
#include "stats.h"
#include "thread.h"

_Static_assert(HEAPPROF_LABEL_KEY_MAX == LABEL_KEY_MAX &&
                   HEAPPROF_LABEL_VALUE_MAX == LABEL_VALUE_MAX &&
                   HEAPPROF_LABELS_MAX == LABELS_PER_SET &&
                   HEAPPROF_LABEL_DEPTH_MAX == LABEL_DEPTH_MAX &&
                   HEAPPROF_LABEL_SETS_MAX == LABEL_SETS_MAX &&
                   HEAPPROF_LABEL_PATHS_MAX == LABEL_NODES_MAX &&
                   HEAPPROF_LABEL_BYTES_MAX == LABEL_STRING_BYTES,
               "heapprof.h's label limits are labels.h's");

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
             : errno == ENOSPC ? HEAPPROF_ELIMIT
             : errno == ENOENT ? HEAPPROF_ENOENT
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

/* ---- labels (labels.h keeps them; the thread holds its position) ---- */

/* A push never seen before makes a node under the label tables' lock,
 * which must not be taken on a thread already inside heapprof: a signal
 * handler may have interrupted the thread holding it, and fork's prepare
 * handler holds it while the program's own prepare handlers run. */
static int label_push(const char *key, const char *value) {
  hp_thread_t *t = &hp_self;
  const label_node_t *at = t->labels, *n;
  int rc = labels_push(at, key, value, 0, &n);
  if (rc != 0 && errno == EAGAIN) {
    if (t->busy) {
      errno = EBUSY;
      return -1;
    }
    t->busy++; /* a signal handler's push meanwhile stays away from the lock */
    labels_set_memory(arena_alloc); /* the constructor may not have run */
    rc = labels_push(at, key, value, 1, &n);
    t->busy--;
  }
  if (rc == 0)
    t->labels = n;
  return rc;
}

HEAPPROF_EXPORT int heapprof_label_push(const char *key, const char *value) {
  int saved = errno;
  return api_code(label_push(key, value), saved);
}

HEAPPROF_EXPORT int heapprof_label_pop(void) {
  const label_node_t *at = hp_self.labels;
  if (at == NULL)
    return HEAPPROF_ENOENT;
  hp_self.labels = at->parent;
  return 0;
}

HEAPPROF_EXPORT int heapprof_label_get(const char *key, const char **value) {
  if (key == NULL || value == NULL)
    return HEAPPROF_EINVAL;
  const label_node_t *at = hp_self.labels;
  const label_set_t *s = at != NULL ? labels_set(at->set_id) : NULL;
  for (uint32_t i = 0; s != NULL && i < s->n; i++)
    if (strcmp(s->kv[2 * i], key) == 0) {
      *value = s->kv[2 * i + 1];
      return 0;
    }
  return HEAPPROF_ENOENT;
}

HEAPPROF_EXPORT int heapprof_label_list(heapprof_label_t *out, size_t cap) {
  if (out == NULL && cap > 0)
    return HEAPPROF_EINVAL;
  const label_node_t *at = hp_self.labels;
  const label_set_t *s = at != NULL ? labels_set(at->set_id) : NULL;
  uint32_t n = s != NULL ? s->n : 0;
  for (uint32_t i = 0; i < n && i < cap; i++)
    out[i] = (heapprof_label_t){s->kv[2 * i], s->kv[2 * i + 1]};
  return (int)n;
}

HEAPPROF_EXPORT heapprof_label_token_t heapprof_label_save(void) {
  const label_node_t *at = hp_self.labels;
  return at != NULL ? at->id : 0;
}

HEAPPROF_EXPORT int heapprof_label_restore(heapprof_label_token_t token,
                                           heapprof_label_token_t *prev) {
  const label_node_t *to = labels_node(token);
  if (token != 0 && to == NULL)
    return HEAPPROF_EINVAL;
  if (prev != NULL)
    *prev = heapprof_label_save();
  hp_self.labels = to;
  return 0;
}

HEAPPROF_EXPORT const char *heapprof_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case HEAPPROF_EINVAL: return "invalid argument";
  case HEAPPROF_ENOMEM: return "out of memory for the profile";
  case HEAPPROF_EIO: return "cannot write the profile";
  case HEAPPROF_EBUSY:
    return "the profiler is not started in this process, or busy on this thread";
  case HEAPPROF_EOFF: return "profiling (or peak tracking) is off";
  case HEAPPROF_ELIMIT: return "a label limit is reached (labels, depth, label sets or bytes)";
  case HEAPPROF_ENOENT: return "no such label, or no label pushed";
  default: return "unknown heapprof error";
  }
}
