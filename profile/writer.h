/*
 * writer — gets an encoded profile onto disk or into a descriptor, gzipped,
 * and never half-written: files appear complete (temp file, fsync, rename)
 * or not at all.
 */
#ifndef HEAPPROF_WRITER_H
#define HEAPPROF_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Gzips `in` into a new malloc'd buffer. 0 or -1 (out of memory). */
int writer_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

/* Writes all of `buf` to `fd`, retrying short writes and EINTR. 0 or -1
 * with errno set. */
int writer_write_all(int fd, const uint8_t *buf, size_t len);

/*
 * Writes `buf` to `path` atomically: a temp file beside it (mode 0600,
 * O_EXCL|O_NOFOLLOW, so a planted file or symlink is never followed or
 * clobbered), fsync, rename. `path` must be absent or a regular file: a
 * symlink there fails with ELOOP, any other kind of file with EEXIST, and
 * it is left untouched. 0 or -1 with errno set; the temp file is gone
 * either way.
 */
int writer_write_file(const char *path, const uint8_t *buf, size_t len);

/* Words for an errno left by writer_write_file, including the two it sets
 * itself (ELOOP: a symlink at the target; EEXIST: something else there, or
 * a taken temp name). */
const char *writer_strerror(int err);

/*
 * Expands a path template: %p pid, %n sequence number, %t unix seconds,
 * %% a percent sign. 0, or -1 if the result does not fit in `cap` bytes or
 * the template holds another % sequence.
 */
int writer_expand(const char *tmpl, pid_t pid, uint64_t seq, time_t now,
                  char *out, size_t cap);

#endif /* HEAPPROF_WRITER_H */
