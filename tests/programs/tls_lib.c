/*
 * tls_lib — a shared library with a large general-dynamic TLS block and a
 * constructor that allocates, for test_tls. Built twice: linked into the
 * test (its constructor runs among the first code of the process) and as a
 * plugin the test dlopens from many threads (each first touch of its TLS
 * makes __tls_get_addr allocate the thread's block with malloc).
 */
#include <stdlib.h>

__thread char tls_block[64 * 1024];
static void *kept;

__attribute__((constructor)) static void tls_lib_init(void) {
  kept = malloc(1000);
}

int tls_lib_touch(int i) {
  tls_block[(unsigned)i % sizeof tls_block] = (char)i;
  return tls_block[(unsigned)i % sizeof tls_block] + (kept != NULL);
}
