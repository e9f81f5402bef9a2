/*
 * writer — whole writes, the descriptor sink, atomic files, path
 * templates.
 *
 * A profile file is created as ".heapprof-<pid>-<n>.tmp" in the target's
 * own directory (rename is only atomic within a file system), written,
 * fsync'd and renamed over the target — or, where the caller must never
 * replace a file (numbered profiles), linked in only if the name is free
 * (renameat2 RENAME_NOREPLACE, else link), so that the caller can take the
 * next number instead. The target must be absent or a regular
 * file: anything else in its place — a symlink (the classic planted-link
 * attack), a device, a FIFO, a directory — is refused and left as it was,
 * because renaming over it would destroy it (as root, /dev/null itself)
 * and following it would write where it points. The temp name is opened
 * with O_EXCL|O_NOFOLLOW, so no existing file is ever written through; a
 * link swapped in after the check is replaced by the rename, never
 * followed.
 */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int writer_write_all(int fd, const uint8_t *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (w == 0) { /* a write that takes nothing would loop forever */
      errno = EIO;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

static int fd_write(void *ctx, const void *buf, size_t len) {
  return writer_write_all((int)(intptr_t)ctx, buf, len);
}

pprof_sink_t writer_sink_fd(int fd) {
  return (pprof_sink_t){fd_write, (void *)(intptr_t)fd};
}

static _Atomic unsigned temp_counter;

/* "<dir of path>/.heapprof-<pid>-<n>.tmp": short whatever the target's
 * name, so every name the file system allows as a target works (a temp
 * name made by adding a suffix to a 250-byte name is too long), and
 * hidden, so no glob for profiles matches it. */
static int temp_name(const char *path, char *tmp, size_t cap) {
  const char *slash = strrchr(path, '/');
  int dirlen = slash == NULL ? 0 : (int)(slash - path + 1);
  int n = snprintf(tmp, cap, "%.*s.heapprof-%d-%u.tmp", dirlen, path,
                   (int)getpid(), atomic_fetch_add(&temp_counter, 1));
  if (n < 0 || (size_t)n >= cap) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

int writer_begin(const char *path, writer_file_t *f) {
  f->fd = -1;
  if (temp_name(path, f->tmp, sizeof f->tmp) != 0)
    return -1;
  f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               0600);
  return f->fd < 0 ? -1 : 0;
}

int writer_finish(writer_file_t *f) {
  int rc = fsync(f->fd);
  if (close(f->fd) != 0)
    rc = -1;
  f->fd = -2; /* closed; the temp file still waits for writer_place */
  return rc;
}

/* Puts the finished temp file at `path` only if nothing is there. */
static int place_new(const char *tmp, const char *path) {
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    return -1;
  /* A file system without RENAME_NOREPLACE: link fails just as atomically
   * on an existing name. */
  if (link(tmp, path) != 0)
    return -1;
  unlink(tmp);
  return 0;
}

int writer_place(writer_file_t *f, const char *path, int replace) {
  struct stat st;
  if (replace && lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    errno = S_ISLNK(st.st_mode) ? ELOOP : EEXIST;
    return -1;
  }
  return replace ? rename(f->tmp, path) : place_new(f->tmp, path);
}

void writer_discard(writer_file_t *f) {
  int saved = errno;
  if (f->fd >= 0)
    close(f->fd);
  if (f->fd != -1)
    unlink(f->tmp);
  f->fd = -1;
  errno = saved;
}

int writer_write_file(const char *path, const uint8_t *buf, size_t len) {
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    errno = S_ISLNK(st.st_mode) ? ELOOP : EEXIST;
    return -1;
  }
  writer_file_t f;
  if (writer_begin(path, &f) != 0)
    return -1;
  int rc = writer_write_all(f.fd, buf, len) == 0 && writer_finish(&f) == 0
               ? writer_place(&f, path, 1) : -1;
  if (rc != 0)
    writer_discard(&f);
  return rc;
}

const char *writer_strerror(int err) {
  if (err == ELOOP)
    return "it is a symbolic link, which heapprof neither follows nor replaces";
  if (err == EEXIST)
    return "something heapprof will not replace is there (not a regular "
           "file, or a taken temp name)";
  const char *s = strerrordesc_np(err); /* static: no buffer shared with
                                          the program's strerror() */
  return s != NULL ? s : "unknown error";
}

/* Appends `s` to out[*at..cap); false when it does not fit. */
static int put(char *out, size_t cap, size_t *at, const char *s) {
  size_t n = strlen(s);
  if (*at + n >= cap)
    return 0;
  memcpy(out + *at, s, n);
  *at += n;
  return 1;
}

int writer_expand(const char *tmpl, pid_t pid, uint64_t seq, time_t now,
                  char *out, size_t cap) {
  size_t at = 0;
  char num[32];
  for (const char *c = tmpl; *c != '\0'; c++) {
    const char *piece = num;
    if (*c != '%') {
      num[0] = *c;
      num[1] = '\0';
    } else {
      switch (*++c) {
      case 'p': snprintf(num, sizeof num, "%d", (int)pid); break;
      case 'n': snprintf(num, sizeof num, "%llu", (unsigned long long)seq); break;
      case 't': snprintf(num, sizeof num, "%lld", (long long)now); break;
      case '%': piece = "%"; break;
      default: errno = EINVAL; return -1;
      }
    }
    if (!put(out, cap, &at, piece)) {
      errno = ENAMETOOLONG;
      return -1;
    }
  }
  if (cap == 0) {
    errno = ENAMETOOLONG;
    return -1;
  }
  out[at] = '\0';
  return 0;
}
