/*
 * symbolizer — the running process, as the profile encoders see it: its
 * executable mappings with their build ids, and the function, file and
 * line of each address (prof_symtab_t, profile/symtab.h).
 *
 * One symbolizer lives as long as the process and is kept between dumps:
 * what it learned (symbol indexes, DWARF line tables, answered addresses)
 * is reused, and symbolizer_refresh re-reads the mappings only when the
 * loader's count of loads or unloads moved (dlopen / dlclose).
 *
 * Not thread-safe: the dump pipeline serialises every call. It keeps no
 * descriptor open between calls (each call may come from a thread with a
 * different descriptor table: the program's, the dump thread's, the HTTP
 * thread's), writes nothing to stdout or stderr, and never reaches the
 * network.
 */
#ifndef HEAPPROF_SYMBOLIZER_H
#define HEAPPROF_SYMBOLIZER_H

#include <stddef.h>
#include <stdint.h>

#include "symtab.h"

typedef struct symbolizer symbolizer_t;

/* An empty symbolizer; it reads nothing until symbolizer_refresh. NULL
 * with errno ENOMEM. */
symbolizer_t *symbolizer_new(void);

/* Brings `s` up to date with the process before a dump: the first call,
 * and any call after a library was loaded or unloaded, re-reads the
 * mappings (dropping what no longer describes them); otherwise it costs
 * one dl_iterate_phdr. Takes the loader lock: the caller holds no lock
 * that malloc needs. 1 if the mappings were re-read, 0 if unchanged, -1
 * with errno (the old view is kept). */
int symbolizer_refresh(symbolizer_t *s);

/* The prof_symtab_t that answers from `s`; its strings stay valid until
 * the next symbolizer_refresh or symbolizer_free. */
prof_symtab_t symbolizer_symtab(symbolizer_t *s);

/* Bytes of memory `s` holds now (its caches, strings, libdw state). */
size_t symbolizer_memory_bytes(const symbolizer_t *s);

void symbolizer_free(symbolizer_t *s);

/* ---- For tests and benchmarks only: the dump path does not need these.
 * Counts since symbolizer_new, to observe what the caching saves. */
typedef struct symbolizer_counts {
  uint64_t refreshes;      /* symbolizer_refresh calls */
  uint64_t maps_reads;     /* of which re-read the mappings */
  uint64_t lookups;        /* addresses asked about */
  uint64_t resolved;       /* of which not answered from the cache */
  uint64_t modules_loaded; /* module images loaded (files opened, indexed) */
  uint64_t modules_kept;   /* images carried over a re-read of the mappings */
} symbolizer_counts_t;

void symbolizer_counts(const symbolizer_t *s, symbolizer_counts_t *out);

#endif /* HEAPPROF_SYMBOLIZER_H */
