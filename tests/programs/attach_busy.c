/* attach_busy — a target for test_attach_hostile: a process that never
 * blocks. It fills 256 blocks, prints "ready", then calls malloc/free in a
 * loop (no blocking system call, so a debugger's only safe point is an
 * allocator entry) until the file argv[1] exists; then it checks that every
 * block from before kept its usable size and contents, reallocates each
 * (contents must survive), frees everything and exits 0, or 1 with a line
 * on stderr. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N = 256 };

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  static unsigned char *pre[N];
  static size_t usable[N];
  for (int i = 0; i < N; i++) {
    pre[i] = malloc(1 + (size_t)i * 97);
    usable[i] = malloc_usable_size(pre[i]);
    memset(pre[i], i, usable[i]);
  }
  printf("ready\n");
  fflush(stdout);
  for (unsigned long n = 0;; n++) {
    void *volatile p = malloc(64 + n % 512);
    free(p);
    if (n % 4096 == 0 && access(argv[1], F_OK) == 0)
      break;
  }
  for (int i = 0; i < N; i++) {
    if (malloc_usable_size(pre[i]) != usable[i]) {
      fprintf(stderr, "attach_busy: block %d usable size changed\n", i);
      return 1;
    }
    for (size_t j = 0; j < usable[i]; j++)
      if (pre[i][j] != (unsigned char)i) {
        fprintf(stderr, "attach_busy: block %d contents changed\n", i);
        return 1;
      }
    unsigned char *q = realloc(pre[i], usable[i] * 3 + 4096);
    for (size_t j = 0; q != NULL && j < usable[i]; j++)
      if (q[j] != (unsigned char)i) {
        fprintf(stderr, "attach_busy: realloc of block %d lost its contents\n", i);
        return 1;
      }
    free(q);
  }
  printf("done\n");
  return 0;
}
