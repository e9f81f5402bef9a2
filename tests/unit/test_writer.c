/*
 * test_writer — path templates and the atomic file writer: complete files
 * or none, and never a write through a planted file or symlink.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testlib.h"
#include "writer.h"

static void templates(void) {
  char out[64];
  CHECK(writer_expand("a.%p.%n.%t.pb.gz", 42, 7, 1700000000, out, sizeof out) == 0 &&
            strcmp(out, "a.42.7.1700000000.pb.gz") == 0, "got %s", out);
  CHECK(writer_expand("100%%.%n", 1, 3, 0, out, sizeof out) == 0 &&
            strcmp(out, "100%.3") == 0, "got %s", out);
  CHECK(writer_expand("bad.%q", 1, 1, 0, out, sizeof out) == -1, "%%q accepted");
  CHECK(writer_expand("trailing%", 1, 1, 0, out, sizeof out) == -1,
        "trailing %% accepted");
  CHECK(writer_expand("0123456789", 1, 1, 0, out, 8) == -1, "overflow accepted");
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void atomic_files(const char *dir) {
  char path[1024], victim[1024], link_path[1024];
  const uint8_t data[] = "profile bytes";
  snprintf(path, sizeof path, "%s/out.bin", dir);
  CHECK(writer_write_file(path, data, sizeof data) == 0, "write: %s",
        strerror(errno));
  struct stat st;
  CHECK(stat(path, &st) == 0 && st.st_size == sizeof data &&
            (st.st_mode & 0777) == 0600, "mode %o size %lld",
        st.st_mode & 0777, (long long)st.st_size);
  CHECK(count_entries(dir) == 1, "temp file left behind");
  CHECK(writer_write_file(path, data, sizeof data) == 0,
        "an existing regular file is replaced atomically");

  /* A symlink planted at the target is refused: neither followed nor
   * replaced. */
  snprintf(victim, sizeof victim, "%s/victim", dir);
  snprintf(link_path, sizeof link_path, "%s/planted.bin", dir);
  FILE *f = fopen(victim, "w");
  fputs("keep me", f);
  fclose(f);
  CHECK(symlink(victim, link_path) == 0, "symlink");
  CHECK(writer_write_file(link_path, data, sizeof data) == -1 && errno == ELOOP,
        "a planted symlink must be refused (errno %d)", errno);
  CHECK(lstat(link_path, &st) == 0 && S_ISLNK(st.st_mode), "the link was touched");
  /* So is a FIFO (or a device: as root, renaming over /dev/null would
   * destroy it). */
  char fifo[1024];
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
  CHECK(writer_write_file(fifo, data, sizeof data) == -1 && errno == EEXIST,
        "a FIFO target must be refused (errno %d)", errno);
  CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
  char buf[16] = {0};
  f = fopen(victim, "r");
  CHECK(fgets(buf, sizeof buf, f) && strcmp(buf, "keep me") == 0,
        "the symlink's target was written through");
  fclose(f);

  /* A missing directory fails cleanly, with errno, leaving nothing. */
  snprintf(path, sizeof path, "%s/missing/out.bin", dir);
  CHECK(writer_write_file(path, data, sizeof data) == -1 && errno == ENOENT,
        "missing dir: errno %d", errno);
}

int main(void) {
  templates();
  char dir[512];
  snprintf(dir, sizeof dir, "%s/w", tl_tmpdir());
  mkdir(dir, 0700);
  atomic_files(dir);
  printf("ok\n");
  return 0;
}
