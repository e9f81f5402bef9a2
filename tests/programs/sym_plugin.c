/*
 * sym_plugin — a plugin that allocates, for
 * tests/integration/symbols/sym_plugin.py (through sym_plugin_host).
 *
 * Built twice as a MODULE library, from this one source: sym_plugin
 * exports plugin_alloc (blocks of PLUGIN_BYTES = 1111), sym_plugin2
 * (-DSYM_PLUGIN2) exports plugin_again (2222). The two names have the same
 * length and the two sizes the same encoding, so both libraries have the
 * same layout: loaded at the same address, their allocating calls have the
 * same return address, and only what heapprof learnt before the first was
 * unloaded tells the two apart. DECL:x marks the line declaring x, LINE:x
 * the allocating call in it.
 */
#include <stdlib.h>

#ifdef SYM_PLUGIN2
#define PLUGIN_ALLOC plugin_again
#define PLUGIN_BYTES 2222
#else
#define PLUGIN_ALLOC plugin_alloc
#define PLUGIN_BYTES 1111
#endif

void *PLUGIN_ALLOC(void);

__attribute__((noinline)) void *PLUGIN_ALLOC(void) /* DECL:plugin_alloc */
{
  char *p = malloc(PLUGIN_BYTES); /* LINE:plugin_alloc */
  if (p)
    p[0] = 1;
  return p;
}
