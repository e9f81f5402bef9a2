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
 * (the command always passes an absolute template), and returns 0, or the
 * number in the target's ATTACH_STUB_RC if set; a second start without a
 * stop returns -4 (HEAPPROF_EBUSY), as the library will.
 * heapprof_attach_stop() appends a line to DIR/stub.PID.stop and returns
 * 0, or -4 if not started. Both use only system calls: they run on a
 * program thread stopped by gdb. The constructor does nothing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int started;
static char dir[4096];

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
  record("start", settings);
  started = 1;
  return 0;
}

__attribute__((visibility("default"))) int heapprof_attach_stop(void) {
  if (!started)
    return -4;
  record("stop", "stopped\n");
  started = 0;
  return 0;
}
