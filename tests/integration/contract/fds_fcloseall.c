/*
 * fds_fcloseall — stdio's list of streams is the program's: fcloseall()
 * and fflush(NULL) on a program thread, while heapprof writes profiles and
 * answers HTTP, never move, close or touch one of the program's own
 * descriptors, and never crash the program.
 *
 * usage: fds_fcloseall LIBHEAPPROF
 *
 * glibc's fcloseall() walks every FILE in the process and syncs it: for a
 * read stream with unread buffered input it lseek()s the stream's
 * descriptor back by that amount, in the calling thread's descriptor
 * table. A FILE that heapprof opened (libdw and the maps reader read
 * /proc/self/maps with fopen) on a thread with a descriptor table of its
 * own has a number that, in the program's table, is one of the program's
 * files: the program's thread then moves the program's file offset. The
 * program here holds 40 files on descriptors 3..42, each at a known
 * offset past 1 MiB, makes its /proc/self/maps long (4,096 mappings),
 * and for 6 s calls fcloseall() and fflush(NULL) in a
 * loop, raising SIGUSR2 every 20 ms, while the driver keeps heapprof's
 * HTTP thread busy with symbol and heap requests. Every offset must stay
 * where it was, and a profile must have been written.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

#define NFILES 40
#define RUN_MS 6000

static off_t where(int i) { return (off_t)(1 << 20) + i * 8; }

/* Counts (and puts back) the offsets that moved; the first is described. */
static long moved_offsets(const int *fds, char *first, size_t cap, long so_far) {
  long moved = 0;
  for (int i = 0; i < NFILES; i++) {
    off_t at = lseek(fds[i], 0, SEEK_CUR);
    if (at == where(i))
      continue;
    if (so_far + moved++ == 0)
      snprintf(first, cap, "fd %d at %lld, not %lld", fds[i], (long long)at,
               (long long)where(i));
    lseek(fds[i], where(i), SEEK_SET);
  }
  return moved;
}

/* Many small mappings of alternating protection (which cannot merge) make
 * /proc/self/maps long, so every reader of it keeps its stream open, with
 * unread input buffered, for much longer. */
static void long_maps(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *area = mmap(NULL, (size_t)page * 4096, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  FU_EXPECT(area != MAP_FAILED, "mmap");
  for (int i = 0; area != MAP_FAILED && i < 4096; i += 2)
    mprotect(area + (size_t)i * (size_t)page, (size_t)page, PROT_NONE);
}

static int program(const char *dir) {
  alarm(120);
  long_maps();
  int fds[NFILES];
  for (int i = 0; i < NFILES; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/own-%d", dir, i);
    fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    FU_EXPECT(fds[i] >= 0 && lseek(fds[i], where(i), SEEK_SET) == where(i),
              "cannot open %s", path);
  }
  ssize_t ignored = write(1, "@ready\n", 7);
  long long end = fu_now_ms() + RUN_MS, next_signal = 0;
  long moved = 0, rounds = 0;
  char first[256] = "";
  while (fu_now_ms() < end) {
    fcloseall();
    fflush(NULL);
    sched_yield(); /* heapprof's threads need stdio's list lock too */
    if (++rounds % 64 != 0) /* a moved offset stays moved until we look */
      continue;
    moved += moved_offsets(fds, first, sizeof first, moved);
    if (fu_now_ms() >= next_signal) {
      raise(SIGUSR2);
      free(fu_malloc(64 << 10)); /* programs allocate: samples happen */
      next_signal = fu_now_ms() + 20;
    }
  }
  moved += moved_offsets(fds, first, sizeof first, moved);
  char line[512];
  int n = snprintf(line, sizeof line, "program: %ld rounds of fcloseall()\n",
                   rounds);
  ignored = write(1, line, (size_t)n);
  (void)ignored;
  FU_EXPECT(moved == 0, "the program's file offsets moved %ld times while it "
                        "called fcloseall(); first: %s", moved, first);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "c.%d.", (int)getpid());
  FU_EXPECT(fu_wait_files(dir, prefix, 1, 30000) == 0,
            "no profile was written for the SIGUSR2s");
  int failed = fu_finish("fcloseall() and fflush(NULL) touch only the program's");
  ignored = write(1, "@done\n", 6);
  return failed;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return program(argv[2]);
  CHECK(argc == 2, "usage: fds_fcloseall LIBHEAPPROF");
  const char *dir = tl_tmpdir();
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/c.%%p.%%n.pb.gz", dir);
  char **env = fu_env(argv[1], out, "HEAPPROF_RATE=4096",
                      "HEAPPROF_HTTP=127.0.0.1:0", (char *)NULL);
  char *args[] = {(char *)fu_self(), "--child", (char *)dir, NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  int port = fu_port_line(p.err, 30000, NULL, 0);
  FU_EXPECT(port > 0, "no \"serving http://\" line on the program's stderr");
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_expect_line(p.out, "@ready", 30000) == 0, "the program is not ready");
  /* Keep heapprof's HTTP thread reading /proc/self/maps meanwhile. */
  long long end = fu_now_ms() + RUN_MS;
  int requests = 0;
  while (port > 0 && fu_now_ms() < end) {
    fu_post(port, "/debug/pprof/symbol", "0x401000+0x401010", NULL);
    if (++requests % 8 == 0)
      fu_get(port, "/debug/pprof/heap", NULL, NULL);
  }
  printf("driver: %d requests\n", requests);
  FU_EXPECT(fu_relay(p.out, 90000) == 0, "the program did not finish");
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above); "
                         "its stderr:\n%s", status, err);
  return fu_finish("fcloseall() and fflush(NULL) touch only the program's");
}
