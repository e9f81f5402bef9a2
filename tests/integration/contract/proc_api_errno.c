/*
 * proc_api_errno — the heapprof_* API leaves the program's errno alone,
 * except after HEAPPROF_EIO, where errno says what the file or descriptor
 * met; and a descriptor that fails with an errno the profiler also uses
 * for itself (EINVAL: an eventfd refuses an 80-byte write) is still
 * HEAPPROF_EIO, not HEAPPROF_EINVAL.
 *
 * Linked with -lheapprof; HEAPPROF_RATE=1 and HEAPPROF_PEAK unset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "heapprof.h"
#include "proc_common.h"
#include "testlib.h"

#define SENTINEL 4242

/* Calls `call` with errno set to SENTINEL; checks its code and errno. */
#define EXPECT(call, want_code, want_errno)                                 \
  do {                                                                      \
    errno = SENTINEL;                                                       \
    int code_ = (call);                                                     \
    int err_ = errno;                                                       \
    CHECK(code_ == (want_code) && err_ == (want_errno),                     \
          "%s: code %d errno %d, want code %d errno %d", #call, code_,     \
          err_, (int)(want_code), (int)(want_errno));                       \
  } while (0)

int main(void) {
  pc_deadline(60);
  void *keep = malloc(4096); /* a sample to profile */
  char dir[] = "/tmp/proc-api-errno.XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char path[256], missing[300];
  snprintf(path, sizeof path, "%s/p.pb.gz", dir);
  snprintf(missing, sizeof missing, "%s/no/such/dir/p.pb.gz", dir);

  /* Success, and the program's own failures of argument: errno kept. */
  EXPECT(heapprof_write_profile(path, HEAPPROF_HEAP), 0, SENTINEL);
  EXPECT(heapprof_write_profile(NULL, HEAPPROF_HEAP), HEAPPROF_EINVAL, SENTINEL);
  EXPECT(heapprof_write_profile("", HEAPPROF_HEAP), HEAPPROF_EINVAL, SENTINEL);
  EXPECT(heapprof_write_profile(path, (heapprof_kind_t)7), HEAPPROF_EINVAL,
         SENTINEL);
  EXPECT(heapprof_write_profile_fd(-1, HEAPPROF_HEAP), HEAPPROF_EINVAL, SENTINEL);
  EXPECT(heapprof_read_stats(NULL), HEAPPROF_EINVAL, SENTINEL);
  EXPECT(heapprof_set_rate(-5), HEAPPROF_EINVAL, SENTINEL);
  EXPECT(heapprof_write_profile(path, HEAPPROF_PEAK), HEAPPROF_EOFF, SENTINEL);

  /* The file or descriptor failed: HEAPPROF_EIO, errno from the call. */
  EXPECT(heapprof_write_profile(missing, HEAPPROF_HEAP), HEAPPROF_EIO, ENOENT);
  int closed = open("/dev/null", O_WRONLY | O_CLOEXEC);
  close(closed);
  EXPECT(heapprof_write_profile_fd(closed, HEAPPROF_HEAP), HEAPPROF_EIO, EBADF);
  int efd = eventfd(0, EFD_CLOEXEC);
  CHECK(efd >= 0, "eventfd: %s", strerror(errno));
  EXPECT(heapprof_write_profile_fd(efd, HEAPPROF_HEAP), HEAPPROF_EIO, EINVAL);
  close(efd);

  unlink(path);
  rmdir(dir);
  free(keep);
  printf("proc_api_errno: errno kept, write failures are HEAPPROF_EIO\n");
  return 0;
}
