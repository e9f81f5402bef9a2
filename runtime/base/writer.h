/*
 * writer — gets an encoded profile onto disk or into a descriptor,
 * and never half-written: files appear complete (temp file, fsync, rename)
 * or not at all.
 */
#ifndef HEAPPROF_WRITER_H
#define HEAPPROF_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "sink.h"

/* Writes all of `buf` to `fd`, retrying short writes and EINTR. 0 or -1
 * with errno set. */
int writer_write_all(int fd, const uint8_t *buf, size_t len);

/* A sink (profile/sink.h) that writes every byte to `fd` with
 * writer_write_all. The descriptor stays the caller's: never closed. */
pprof_sink_t writer_sink_fd(int fd);

/*
 * Writes `buf` to `path` atomically: a temp file beside it (mode 0600,
 * O_EXCL|O_NOFOLLOW, so a planted file or symlink is never followed or
 * clobbered), fsync, rename. `path` must be absent or a regular file: a
 * symlink there fails with ELOOP, any other kind of file with EEXIST, and
 * it is left untouched. 0 or -1 with errno set; the temp file is gone
 * either way.
 */
int writer_write_file(const char *path, const uint8_t *buf, size_t len);

/* A profile file being written: a temp file in the target's directory. */
typedef struct writer_file {
  int fd;          /* open for writing; -2 once finished, -1 when gone */
  char tmp[4096];  /* its name */
} writer_file_t;

/* Creates the temp file for a profile that will be placed at `path`
 * (mode 0600, O_EXCL|O_NOFOLLOW). 0 or -1 with errno set. */
int writer_begin(const char *path, writer_file_t *f);

/* fsyncs and closes it. 0 or -1 with errno set. */
int writer_finish(writer_file_t *f);

/* Gives the finished temp file the name `path`. With `replace`, a regular
 * file there is replaced atomically and anything else is refused (ELOOP for
 * a symlink, EEXIST for the rest). Without it, any file there fails with
 * EEXIST and the temp file waits for another name. 0 or -1 with errno. */
int writer_place(writer_file_t *f, const char *path, int replace);

/* Removes the temp file, whatever state it is in (errno kept). */
void writer_discard(writer_file_t *f);

/* Words for an errno left by writer_write_file, including the two it sets
 * itself (ELOOP: a symlink at the target; EEXIST: something else there, or
 * a taken temp name). */
const char *writer_strerror(int err);

/*
 * Expands a path template: %p pid, %n sequence number, %t unix seconds,
 * %% a percent sign. 0, or -1 with errno ENAMETOOLONG if the result does
 * not fit in `cap` bytes, EINVAL if the template holds another % sequence.
 */
int writer_expand(const char *tmpl, pid_t pid, uint64_t seq, time_t now,
                  char *out, size_t cap);

#endif /* HEAPPROF_WRITER_H */
