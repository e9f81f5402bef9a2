/*
 * writer — gzip, whole writes, atomic files, path templates.
 *
 * A profile file is created as "<path>.tmp.<pid>.<n>" in the target's own
 * directory (rename is only atomic within a file system), written, fsync'd
 * and renamed over the target. The target must be absent or a regular
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
#include <zlib.h>

int writer_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen) {
  z_stream z;
  memset(&z, 0, sizeof z);
  /* 15 window bits + 16: a gzip header and trailer instead of zlib's. */
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  size_t cap = deflateBound(&z, len) + 64;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) {
    deflateEnd(&z);
    return -1;
  }
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)len; /* profiles stay far below 4 GiB */
  z.next_out = buf;
  z.avail_out = (uInt)cap;
  int rc = deflate(&z, Z_FINISH);
  *outlen = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    free(buf);
    return -1;
  }
  *out = buf;
  return 0;
}

int writer_write_all(int fd, const uint8_t *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

static _Atomic unsigned temp_counter;

int writer_write_file(const char *path, const uint8_t *buf, size_t len) {
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    errno = S_ISLNK(st.st_mode) ? ELOOP : EEXIST;
    return -1;
  }
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(),
                   atomic_fetch_add(&temp_counter, 1));
  if (n < 0 || (size_t)n >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
  if (fd < 0)
    return -1;
  int rc = writer_write_all(fd, buf, len);
  if (rc == 0)
    rc = fsync(fd);
  int saved = errno;
  if (close(fd) != 0 && rc == 0) {
    rc = -1;
    saved = errno;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = -1;
    saved = errno;
  }
  if (rc != 0)
    unlink(tmp);
  errno = saved;
  return rc;
}

const char *writer_strerror(int err) {
  if (err == ELOOP)
    return "it is a symbolic link, which heapprof neither follows nor replaces";
  if (err == EEXIST)
    return "something heapprof will not replace is there (not a regular "
           "file, or a taken temp name)";
  return strerror(err);
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
      default: return -1;
      }
    }
    if (!put(out, cap, &at, piece))
      return -1;
  }
  if (cap == 0)
    return -1;
  out[at] = '\0';
  return 0;
}
