/*
 * srclines — source files and lines from an object's DWARF, built on
 * libdw: line tables, and the call sites of inlined code, through indexes
 * built on first use (the CUs' address runs per object, the function
 * extents per CU), since a plain libdw walk rescans a whole CU each time.
 *
 * Inside inlined code the line is the call site in the function the
 * address's name belongs to (the outermost function, which the symbol
 * table names), so that name and line agree.
 *
 * Keeps no descriptor: it reads Elf handles from elfopen.c, and installs
 * the dwz alternate file itself (dwarf_setalt) before libdw would open it
 * and keep the descriptor. libdw 0.188 opens no other file it keeps (split
 * .dwo files are closed at once). Not thread-safe. Whoever keeps it must
 * check the files it reads (the Elf given, and srclines_alt_file) before
 * it is used after a pause (elfopen.h).
 */
#ifndef HEAPPROF_INTROSPECT_SRCLINES_H
#define HEAPPROF_INTROSPECT_SRCLINES_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elfopen.h"

typedef struct srclines srclines_t;

/* The DWARF in `elf` (the object itself or its separate debug file, at
 * `path`), which must stay open until srclines_free(). NULL when it has
 * none, when memory runs out, or when it needs a dwz alternate file that
 * cannot be found with the build id it names. */
srclines_t *srclines_open(Elf *elf, const char *path);

/* Where `pc`, an address as the file numbers it (memory address minus
 * load bias), is in the source: the file as DWARF names it, the
 * compilation directory of its CU (NULL if none) and the line. false when
 * the DWARF does not cover pc. */
bool srclines_find(srclines_t *d, uint64_t pc, const char **file,
                   const char **comp_dir, int *line);

/* Bytes of memory held for this DWARF: the indexes (exact) and libdw's
 * own heap (estimated; see srclines.c). */
size_t srclines_bytes(const srclines_t *d);

/* The dwz alternate file `d` holds an image of, and its stamp when it was
 * opened (elfopen_changed); NULL when it holds none. */
const char *srclines_alt_file(const srclines_t *d,
                              const elfopen_stamp_t **stamp);

void srclines_free(srclines_t *d);

#endif /* HEAPPROF_INTROSPECT_SRCLINES_H */
