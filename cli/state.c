/*
 * state — the attach records and their locks (state.h). A record is
 * written to a temporary name and renamed, so a reader sees a whole one or
 * none, and is trusted only if it is a regular file of this user's that
 * nobody else can write, in a directory only this user can enter. Every
 * change to PID's record is made holding PID's lock; reading takes none.
 */
#define _GNU_SOURCE
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
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

/* ---- locks ---- */

static void lock_name(char *name, size_t cap, pid_t pid) {
  snprintf(name, cap, "%d.lock", (int)pid);
}

/* One try: the fd of the locked file still at `name`, or -1 (errno
 * EWOULDBLOCK if held; ESTALE if the file was replaced meanwhile). */
static int lock_once(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  struct stat held, named;
  if (fstat(fd, &held) == 0 && fstatat(dirfd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
      held.st_dev == named.st_dev && held.st_ino == named.st_ino)
    return fd;
  close(fd); /* its holder removed it as it let go: lock the next one */
  errno = ESTALE;
  return -1;
}

/* Waits up to `wait_ms` for a held lock: another command's attach takes
 * seconds and is refused at once, but a sweep holds a lock for
 * microseconds and must not make a command refuse. */
static int lock_wait(int dirfd, pid_t pid, int wait_ms) {
  char name[32];
  lock_name(name, sizeof name, pid);
  struct timespec pause = {0, 10 * 1000 * 1000};
  for (int waited = 0;; waited += 10) {
    int fd = lock_once(dirfd, name);
    if (fd >= 0 || (errno != EWOULDBLOCK && errno != ESTALE) || waited >= wait_ms)
      return fd;
    nanosleep(&pause, NULL);
  }
}

int state_lock(int dirfd, pid_t pid) {
  int fd = lock_wait(dirfd, pid, 300);
  if (fd >= 0 && fd <= 2) { /* the lock goes with the open file: keep it off gdb's stdio */
    int moved = fcntl(fd, F_DUPFD, 3);
    close(fd);
    fd = moved;
  }
  return fd;
}

void state_unlock(int dirfd, pid_t pid, int lockfd) {
  char name[32];
  lock_name(name, sizeof name, pid);
  unlinkat(dirfd, name, 0); /* before letting go: see lock_once */
  close(lockfd);
}

/* ---- records ---- */

int state_write(int dirfd, const attach_state_t *s) {
  char name[64], tmp[64], text[CONFIG_PATH_MAX + 128];
  snprintf(name, sizeof name, "%d.attach", (int)s->pid);
  snprintf(tmp, sizeof tmp, ".%d.attach.tmp", (int)s->pid);
  int n = snprintf(text, sizeof text, "pid %d\nstart %llu\nsignal %d\nout %s\n%s",
                   (int)s->pid, s->start, s->signal, s->out, s->pending ? "pending\n" : "");
  unlinkat(dirfd, tmp, 0); /* left by a writer killed before its rename */
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
  const char *rest = out + len + 1;
  if (out[len] != '\n' || len == 0 || len >= sizeof s->out || out[0] != '/')
    return 0;
  if (strcmp(rest, "") == 0)
    s->pending = 0;
  else if (strcmp(rest, "pending\n") == 0)
    s->pending = 1;
  else
    return 0;
  memcpy(s->out, out, len);
  s->out[len] = '\0';
  s->pid = pid;
  return config_parse_out(s->out) == 0;
}

int state_load(int dirfd, pid_t pid, attach_state_t *s) {
  char name[64], text[CONFIG_PATH_MAX + 128];
  snprintf(name, sizeof name, "%d.attach", (int)pid);
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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
  return parse(text, pid, s);
}

int state_current(const attach_state_t *s) {
  unsigned long long now;
  return target_start_time(s->pid, &now) == 0 && now == s->start;
}

void state_remove(int dirfd, pid_t pid) {
  char name[64];
  snprintf(name, sizeof name, "%d.attach", (int)pid);
  unlinkat(dirfd, name, 0);
}

int state_read(pid_t pid, attach_state_t *s) {
  char dir[4096], why[256];
  int dirfd = state_dir_open(dir, sizeof dir, 0, why, sizeof why);
  if (dirfd < 0)
    return 0;
  state_sweep(dirfd); /* this pid's stale record too */
  int found = state_load(dirfd, pid, s) && state_current(s);
  close(dirfd);
  return found;
}

/* ---- sweeping ---- */

static int process_gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

/* What a directory entry is: its pid and kind, or 0. */
enum { RECORD = 1, LOCKFILE, TMPFILE };

static int entry_kind(const char *name, pid_t *pid) {
  char *end;
  const char *digits = name[0] == '.' ? name + 1 : name;
  long n = strtol(digits, &end, 10);
  if (end == digits || n <= 0 || n > 0x7fffffffL)
    return 0;
  *pid = (pid_t)n;
  if (name[0] != '.' && strcmp(end, ".attach") == 0)
    return RECORD;
  if (name[0] != '.' && strcmp(end, ".lock") == 0)
    return LOCKFILE;
  /* ".PID.attach.tmp", and ".PID.attach.CMDPID.tmp" of earlier versions */
  if (name[0] == '.' && strncmp(end, ".attach.", 8) == 0 &&
      strcmp(end + strlen(end) - 4, ".tmp") == 0)
    return TMPFILE;
  return 0;
}

/* Whether the entry is left over: a record of a process that is gone or
 * that is another process now; anything else of a pid with no process. A
 * record this user did not write as one (a symbolic link, say) is left
 * alone while its pid lives. */
static int leftover(int dirfd, int kind, pid_t pid) {
  attach_state_t s;
  if (kind == RECORD && state_load(dirfd, pid, &s))
    return !state_current(&s);
  return process_gone(pid);
}

void state_sweep(int dirfd) {
  int fd = dup(dirfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    if (fd >= 0)
      close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    pid_t pid;
    int kind = entry_kind(e->d_name, &pid);
    if (kind == 0 || !leftover(dirfd, kind, pid))
      continue;
    int lock = lock_wait(dirfd, pid, 0);
    if (lock < 0)
      continue; /* an attach or detach of that pid is under way: its business */
    if (leftover(dirfd, kind, pid)) /* again, now that nobody else may change it */
      unlinkat(dirfd, e->d_name, 0);
    state_unlock(dirfd, pid, lock);
  }
  closedir(d);
}
