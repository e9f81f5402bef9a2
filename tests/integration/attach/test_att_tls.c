/*
 * test_att_tls — libheapprof.so's static TLS stays within budget: its
 * PT_TLS segment's MemSiz is at most 128 bytes (readelf -lW). A library
 * loaded by `heapprof attach` comes in with dlopen, so its initial-exec TLS
 * must fit in what is left of glibc's static TLS reserve in a process that
 * is already running (issue 15's research, section 1: 1664 bytes in a
 * plain program here, far less once other libraries took their share).
 *
 * usage: test_att_tls READELF LIBHEAPPROF BIG_TLS_LIB
 * BIG_TLS_LIB is a library known to have far more (the attach stub built
 * with STUB_BIG_TLS): the same reading must find it over budget, so the
 * check is shown able to fail.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "att_util.h"

#define BUDGET 128

/* MemSiz of the PT_TLS program header of `lib`, 0 if it has none. */
static unsigned long tls_memsz(const char *readelf, const char *lib) {
  char *argv[] = {(char *)readelf, "-lW", (char *)lib, NULL};
  char *env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
  att_result_t r = att_run(argv, env);
  CHECK(r.status == 0, "readelf -lW %s: status %d\n%s", lib, r.status, r.err);
  unsigned long memsz = 0;
  int found = 0;
  for (char *l = r.out; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
    /*   TLS  Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align */
    char type[32], off[32], va[32], pa[32], filesz[32], mem[32];
    if (sscanf(l, " %31s %31s %31s %31s %31s %31s", type, off, va, pa, filesz, mem) == 6 &&
        strcmp(type, "TLS") == 0) {
      memsz = strtoul(mem, NULL, 16);
      found++;
    }
  }
  CHECK(found <= 1, "%s has %d PT_TLS headers", lib, found);
  free(r.out), free(r.err);
  return memsz;
}

int main(int argc, char **argv) {
  CHECK(argc == 4, "usage: test_att_tls READELF LIBHEAPPROF BIG_TLS_LIB");
  att_require(argv[1], "readelf (binutils)");
  unsigned long big = tls_memsz(argv[1], argv[3]);
  CHECK(big > BUDGET, "the check cannot fail: %s reads as %lu bytes of TLS", argv[3], big);
  unsigned long ours = tls_memsz(argv[1], argv[2]);
  CHECK(ours <= BUDGET,
        "%s has %lu bytes of static TLS (PT_TLS MemSiz), over the budget of %d: a dlopen "
        "into a running process may find glibc's static TLS reserve too small "
        "(\"cannot allocate memory in static TLS block\")", argv[2], ours, BUDGET);
  printf("ok: PT_TLS MemSiz %lu <= %d bytes (a %lu-byte library is refused by the same "
         "check)\n", ours, BUDGET, big);
  return 0;
}
