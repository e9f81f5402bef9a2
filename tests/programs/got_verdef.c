/*
 * got_verdef — defines malloc in a symbol version of its own (GOT_FAKE_1,
 * got_verdef.map), for test_got: got_verref's reference to malloc carries
 * that version, so glibc binds it here, not to libc's malloc@GLIBC_2.2.5.
 * A lazy slot of that reference must not be patched with libc's hook.
 */
#include <stddef.h>

int got_fake_calls;
static char block[64];

void *malloc(size_t n) {
  (void)n;
  got_fake_calls++;
  return block;
}
