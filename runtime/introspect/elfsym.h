/*
 * elfsym — function names from an object's ELF symbol table: an index of
 * its function symbols sorted by address, searched in O(log n).
 *
 * Names are spelled as the table spells them (mangled for C++: go tool
 * pprof demangles a Function itself when its system_name equals its name)
 * and point into the ELF image, so they stay valid while the Elf handles
 * the index was built from are open.
 */
#ifndef HEAPPROF_INTROSPECT_ELFSYM_H
#define HEAPPROF_INTROSPECT_ELFSYM_H

#include <libelf.h>
#include <stddef.h>
#include <stdint.h>

struct elfsym_fn;

typedef struct elfsym {
  struct elfsym_fn *fns; /* sorted by address, one name per address */
  size_t nfns;
} elfsym_t;

/* Indexes the function symbols of the best table on offer, as libdwfl
 * chooses it: `main`'s .symtab; else `debug`'s .symtab (a separate debug
 * file, may be NULL); else `main`'s .dynsym. Addresses are the symbols'
 * values plus `bias`. On failure (no table, no memory) the index is empty
 * and names nothing. */
void elfsym_build(elfsym_t *ix, Elf *main, Elf *debug, uint64_t bias);

/* The function symbol whose extent holds `pc`; a sizeless symbol holds
 * everything up to the next symbol. NULL inside gaps, e.g. the static
 * functions of a library that ships only .dynsym. */
const char *elfsym_function_at(const elfsym_t *ix, uint64_t pc);

size_t elfsym_bytes(const elfsym_t *ix);

void elfsym_free(elfsym_t *ix);

#endif /* HEAPPROF_INTROSPECT_ELFSYM_H */
