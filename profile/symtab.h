/*
 * symtab — what the encoders need to know about the process a profile
 * came from, as an interface: its executable mappings, what each address
 * is (function, file, line), and its memory map as text. profile/ asks;
 * runtime/introspect answers (symbolizer.h), and tests answer with tables.
 *
 * Every string an implementation hands out stays valid until the encoder
 * call that asked for it returns.
 */
#ifndef HEAPPROF_PROFILE_SYMTAB_H
#define HEAPPROF_PROFILE_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

#include "sink.h"

/* One executable range of the process's address space. */
typedef struct prof_mapping {
  uint64_t start;       /* memory_start: start of the range */
  uint64_t limit;       /* memory_limit: end of the range (exclusive) */
  uint64_t offset;      /* file offset of the range */
  const char *path;     /* mapped file, "[vdso]" etc.; never NULL */
  const char *build_id; /* lower-case hex GNU build-id, "" when none */
} prof_mapping_t;

/* What is known about one address; NULL / 0 where nothing is known. */
typedef struct prof_frame {
  const char *function; /* symbol name as in the ELF symbol table */
  const char *file;     /* source file from DWARF line info */
  int64_t line;         /* source line, 0 when unknown */
  int mapping;          /* index into mappings(), -1 when unmapped */
} prof_frame_t;

typedef struct prof_symtab {
  /* The executable mappings, sorted by start address. */
  const prof_mapping_t *(*mappings)(void *ctx, size_t *n);
  /* Describes `addr`, an address inside a call instruction (return
   * address minus one). Never fails: an address nobody knows gets
   * function = file = NULL, line = 0, mapping -1. */
  void (*lookup)(void *ctx, uint64_t addr, prof_frame_t *out);
  /* Streams the memory map as /proc/self/maps spells it into `out` (Go's
   * debug=1 text ends with it). 0, or -1 with the sink's errno. May be
   * NULL: the text then has no map. */
  int (*maps_text)(void *ctx, const pprof_sink_t *out);
  void *ctx;
} prof_symtab_t;

#endif /* HEAPPROF_PROFILE_SYMTAB_H */
