/*
 * state — the attach records (state.h). A record is written to a
 * temporary name and renamed, so a reader sees a whole one or none, and is
 * trusted only if it is a regular file of this user's that nobody else can
 * write, in a directory only this user can enter.
 */
#define _GNU_SOURCE
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "target.h"

static void state_dir_path(char *dir, size_t cap) {
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg != NULL && xdg[0] == '/')
    snprintf(dir, cap, "%s/heapprof", xdg);
  else
    snprintf(dir, cap, "/tmp/heapprof-%lu", (unsigned long)geteuid());
}

int state_dir_open(char *dir, size_t dircap, int create, char *why, size_t whycap) {
  state_dir_path(dir, dircap);
  if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(why, whycap, "cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    snprintf(why, whycap, "cannot open %s: %s", dir,
             errno == ELOOP || errno == ENOTDIR ? "not a directory (a symbolic link?)"
                                                : strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
    snprintf(why, whycap, "%s must be yours and mode 0700 (it is uid %lu, mode %04o)",
             dir, (unsigned long)sb.st_uid, (unsigned)(sb.st_mode & 07777));
    close(fd);
    return -1;
  }
  return fd;
}

int state_write(int dirfd, const attach_state_t *s) {
  char name[64], tmp[96], text[CONFIG_PATH_MAX + 128];
  snprintf(name, sizeof name, "%d.attach", (int)s->pid);
  snprintf(tmp, sizeof tmp, ".%d.attach.%d.tmp", (int)s->pid, (int)getpid());
  int n = snprintf(text, sizeof text, "pid %d\nstart %llu\nsignal %d\nout %s\n",
                   (int)s->pid, s->start, s->signal, s->out);
  unlinkat(dirfd, tmp, 0);
  int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  int ok = n > 0 && (size_t)n < sizeof text && write(fd, text, (size_t)n) == n;
  int saved = errno;
  if (close(fd) != 0 || !ok || renameat(dirfd, tmp, dirfd, name) != 0) {
    saved = ok ? errno : saved;
    unlinkat(dirfd, tmp, 0);
    errno = saved;
    return -1;
  }
  return 0;
}

static int parse(const char *text, pid_t pid, attach_state_t *s) {
  int got_pid;
  int used = 0;
  if (sscanf(text, "pid %d\nstart %llu\nsignal %d\nout %n", &got_pid, &s->start,
             &s->signal, &used) != 3 || used == 0 || got_pid != (int)pid)
    return 0;
  const char *out = text + used;
  size_t len = strcspn(out, "\n");
  if (out[len] != '\n' || out[len + 1] != '\0' || len == 0 || len >= sizeof s->out ||
      out[0] != '/')
    return 0;
  memcpy(s->out, out, len);
  s->out[len] = '\0';
  s->pid = pid;
  return config_parse_out(s->out) == 0;
}

int state_read(pid_t pid, attach_state_t *s) {
  char dir[4096], why[256], name[64], text[CONFIG_PATH_MAX + 128];
  int dirfd = state_dir_open(dir, sizeof dir, 0, why, sizeof why);
  if (dirfd < 0)
    return 0;
  snprintf(name, sizeof name, "%d.attach", (int)pid);
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  close(dirfd);
  if (fd < 0)
    return 0;
  struct stat sb;
  ssize_t n = -1;
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
      (sb.st_mode & 022) == 0)
    n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0)
    return 0;
  text[n] = '\0';
  unsigned long long now;
  return parse(text, pid, s) && target_start_time(pid, &now) == 0 && now == s->start;
}

void state_remove(int dirfd, pid_t pid) {
  char name[64];
  snprintf(name, sizeof name, "%d.attach", (int)pid);
  unlinkat(dirfd, name, 0);
}
