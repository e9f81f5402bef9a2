/*
 * att_race — targets for test_att_race (tests/integration/attach/).
 *
 *   att_race spin FLAG   prints "ready", then computes without a system
 *       call or an allocator call (so `heapprof attach` finds no safe point
 *       and keeps looking) until the first byte of the file FLAG, mapped
 *       shared, is nonzero; then exits 0 at once. The test sets the byte
 *       once gdb is attached: the process exits in the middle of the
 *       attach.
 *   att_race plain       prints "ready", then reads stdin until EOF and
 *       exits 0 (blocked in read: an attach would succeed at once).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void ready(void) {
  if (write(1, "ready\n", 6) != 6)
    _exit(2);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "spin") == 0) {
    int fd = open(argv[2], O_RDONLY);
    volatile const unsigned char *flag =
        fd >= 0 ? mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (flag == MAP_FAILED)
      return 2;
    ready();
    while (flag[0] == 0) {
    }
    _exit(0);
  }
  if (argc == 2 && strcmp(argv[1], "plain") == 0) {
    ready();
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
  }
  return 2;
}
