/*
 * got_verref — calls malloc@GOT_FAKE_1 (linked against got_verdef, whose
 * definition comes first), through a lazy JUMP_SLOT; see got_verdef.c.
 */
#include <stdlib.h>

void *gotver_alloc(size_t n) { return malloc(n); }
