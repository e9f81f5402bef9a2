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

#include <stdbool.h>
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

/* One function's part in the code at an address: a Line of a Location.
 * Strings are NULL (and numbers 0) where nothing is known. */
typedef struct prof_line {
  const char *name;        /* readable name (C++ and Rust demangled) */
  const char *system_name; /* the linker's name; NULL: the same as name */
  const char *file;        /* source file from DWARF */
  int64_t line;            /* source line (a call site, but for lines[0]) */
  int64_t start_line;      /* the function's first line */
} prof_line_t;

/* What is known about one address: the functions whose code it is, as Go
 * writes a Location's lines. lines[0] is the innermost function inlined
 * there, each next one the function it was inlined into (its line the
 * call site), and lines[nlines - 1] the function that holds the code. */
typedef struct prof_frame {
  const prof_line_t *lines;
  uint32_t nlines;   /* 0 when no function is known */
  int mapping;       /* index into mappings(), -1 when unmapped */
  bool inline_known; /* debug info was read for what is inlined here */
} prof_frame_t;

typedef struct prof_symtab {
  /* The executable mappings: first those of the code mapped now, sorted by
   * start address, then those of modules unloaded since (see space). */
  const prof_mapping_t *(*mappings)(void *ctx, size_t *n);
  /* Which code `addr` was when a stack holding it was recorded, as the
   * bucket of creation number `serial` (bucket_t.serial): 0 for the code
   * mapped now, k > 0 for the k-th module unloaded since, whose answers
   * were kept when it went away. May be NULL: always 0. Spaces other than
   * 0 are only given for addresses below 2^48. */
  uint32_t (*space)(void *ctx, uint64_t addr, uint64_t serial);
  /* Describes `addr`, an address inside a call instruction (return
   * address minus one), in code space `space`. Never fails: an address
   * nobody knows gets nlines 0 and mapping -1. */
  void (*lookup)(void *ctx, uint64_t addr, uint32_t space, prof_frame_t *out);
  /* Streams the memory map as /proc/self/maps spells it into `out` (Go's
   * debug=1 text ends with it). 0, or -1 with the sink's errno. May be
   * NULL: the text then has no map. */
  int (*maps_text)(void *ctx, const pprof_sink_t *out);
  void *ctx;
} prof_symtab_t;

/* The linker's name of `l`'s function: its system name, or its name when
 * the two are the same (NULL system name). */
static inline const char *prof_line_system_name(const prof_line_t *l) {
  return l->system_name ? l->system_name : l->name;
}

/* The function that holds the code of `f` (its last line); NULL if none. */
static inline const prof_line_t *prof_frame_function(const prof_frame_t *f) {
  return f->nlines > 0 ? &f->lines[f->nlines - 1] : NULL;
}

#endif /* HEAPPROF_PROFILE_SYMTAB_H */
