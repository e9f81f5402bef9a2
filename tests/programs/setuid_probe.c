/*
 * setuid_probe — linked with heapprof; prints the sampling rate it runs at.
 * test_badinput runs it setuid as another user to show that HEAPPROF_* is
 * ignored there (secure_getenv), and not setuid to show it is read.
 */
#include <stdio.h>

#include "heapprof.h"

int main(void) {
  printf("%ld\n", heapprof_get_rate());
  return 0;
}
