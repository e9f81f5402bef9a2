/*
 * attach_stub — TEST-ONLY stand-in for libheapprof.so's attach entry
 * points, so that the heapprof command's injection (cli/attach_gdb.py) can
 * be tested before and apart from the runtime's attach support. It is
 * built as .../attach-stub/libheapprof.so (the name the command looks for
 * in /proc/PID/maps) and reached through HEAPPROF_ATTACH_LIB, which only
 * the tests set.
 *
 * heapprof_attach_start(settings) records the settings it was given in
 * DIR/stub.PID.start, where DIR is the directory of the HEAPPROF_OUT line
 * (the command always passes an absolute template), installs a handler
 * for HEAPPROF_SIGNAL that "dumps" by creating the next empty file the
 * template names (%p and %n filled in: enough for `heapprof dump`), and
 * returns 0; or the number in the target's ATTACH_STUB_RC if set; or it
 * ends the process (_exit 3) if ATTACH_STUB_EXIT is set. A second start
 * without a stop returns -4 (HEAPPROF_EBUSY), as the library will.
 * heapprof_attach_stop() appends a line to DIR/stub.PID.stop, puts the
 * signal's disposition back and returns 0, or -4 if not started.
 * Built with STUB_BIG_TLS it also has 4 KiB of initial-exec TLS, more
 * than glibc's static TLS reserve: its dlopen into a running process fails.
 * The constructor does nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef STUB_BIG_TLS
__attribute__((tls_model("initial-exec"))) __thread char stub_big_tls[4096];
__attribute__((visibility("default"))) char *stub_tls(void) { return stub_big_tls; }
#endif

static int started;
static char dir[4096];
static char before[4096], after[4096]; /* the template around %n, %p filled */
static int dump_signal;
static volatile sig_atomic_t dumps;
static struct sigaction old_action;

static void dumped(int sig) {
  (void)sig;
  int saved = errno;
  char path[8300], digits[16];
  int n = ++dumps, k = 0;
  do
    digits[k++] = (char)('0' + n % 10);
  while ((n /= 10) != 0);
  size_t at = strlen(before);
  memcpy(path, before, at);
  while (k > 0)
    path[at++] = digits[--k];
  strcpy(path + at, after);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0)
    close(fd);
  errno = saved;
}

/* Splits the template at %n, with %p filled in. */
static void split_template(const char *t, size_t len) {
  char *out = before;
  size_t at = 0;
  for (size_t i = 0; i < len && at + 16 < sizeof before; i++) {
    if (t[i] == '%' && i + 1 < len && t[i + 1] == 'p') {
      at += (size_t)snprintf(out + at, sizeof before - at, "%d", (int)getpid());
      i++;
    } else if (t[i] == '%' && i + 1 < len && t[i + 1] == 'n' && out == before) {
      out[at] = '\0';
      out = after, at = 0;
      i++;
    } else {
      out[at++] = t[i];
    }
  }
  out[at] = '\0';
}

static void record(const char *what, const char *text) {
  char path[4200];
  size_t n = strlen(dir);
  memcpy(path, dir, n);
  n += (size_t)snprintf(path + n, sizeof path - n, "/stub.%d.%s", (int)getpid(), what);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    (void)!write(fd, text, strlen(text));
    close(fd);
  }
}

__attribute__((visibility("default"))) int heapprof_attach_start(const char *settings) {
  if (started)
    return -4;
  const char *out = strstr(settings, "HEAPPROF_OUT=/");
  if (out == NULL)
    return -1;
  out += strlen("HEAPPROF_OUT=");
  size_t len = strcspn(out, "\n");
  split_template(out, len);
  const char *slash = out + len;
  while (slash > out && *slash != '/')
    slash--;
  len = (size_t)(slash - out);
  if (len == 0 || len >= sizeof dir)
    return -1;
  memcpy(dir, out, len);
  dir[len] = '\0';
  const char *rc = getenv("ATTACH_STUB_RC");
  if (rc != NULL && atoi(rc) != 0)
    return atoi(rc);
  if (getenv("ATTACH_STUB_EXIT") != NULL)
    _exit(3);
  const char *sig = strstr(settings, "HEAPPROF_SIGNAL=");
  dump_signal = sig != NULL ? atoi(sig + strlen("HEAPPROF_SIGNAL=")) : 0;
  if (dump_signal > 0) {
    struct sigaction sa = {.sa_handler = dumped, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(dump_signal, &sa, &old_action);
  }
  record("start", settings);
  started = 1;
  return 0;
}

__attribute__((visibility("default"))) int heapprof_attach_stop(void) {
  if (!started)
    return -4;
  record("stop", "stopped\n");
  if (dump_signal > 0)
    sigaction(dump_signal, &old_action, NULL);
  started = 0;
  return 0;
}
