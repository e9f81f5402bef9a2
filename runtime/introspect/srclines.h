/*
 * srclines — source files and lines from an object's DWARF, built on
 * libdw: line tables, and the call sites of inlined code, through indexes
 * built on first use (the CUs' address runs per object, from
 * .debug_aranges or else the CU DIEs; the function extents per CU; the
 * inline tree per function), since a plain libdw walk rescans a whole CU
 * each time.
 *
 * Inside inlined code, srclines_find gives the call site in the function
 * the address's name belongs to (the outermost function, which the symbol
 * table names), so that name and line agree; srclines_chain gives the
 * whole chain of inlined calls, one frame per function, as Go writes a
 * Location's Lines.
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

/* One function's part in an address, as DWARF tells it. */
typedef struct srcline_frame {
  /* DW_AT_linkage_name (or DW_AT_MIPS_linkage_name), else DW_AT_name,
   * following abstract_origin/specification (dwarf_attr_integrate); NULL
   * if none. */
  const char *function;
  const char *file;     /* source file as DWARF names it; NULL if unknown */
  const char *comp_dir; /* compilation directory of the CU, NULL if none */
  int line;             /* 0 if unknown */
  /* The function's DW_AT_decl_line (through abstract origin or
   * specification); 0 if none. */
  int start_line;
} srcline_frame_t;

#define SRCLINES_MAX_FRAMES 64

/* The inline chain at `pc` (an address as the file numbers it), innermost
 * first, as `addr2line -i` prints it:
 * - out[0] is the innermost inlined function, at the line table's
 *   file:line;
 * - each next frame is the function the previous one was inlined into, at
 *   the call site (DW_AT_call_file, DW_AT_call_line of the previous
 *   frame's DW_TAG_inlined_subroutine);
 * - the last frame is the concrete function (DW_TAG_subprogram) holding
 *   the code: at the call site of the outermost inlined call, or at the
 *   line table's file:line when nothing is inlined there.
 * Lexical blocks are looked through; a function nested in another (GNU C)
 * is a concrete function of its own. Returns the number of frames written
 * (1..max), 0 when the DWARF does not cover pc or max is 0. A chain deeper
 * than max keeps the innermost max-1 frames and the concrete function.
 * Code that DWARF gives lines but no function (assembly) is one frame with
 * a NULL function. Strings live as long as `d`. Allocates only when a
 * lookup meets something new (a CU, a function's inline tree, a frame's
 * DWARF facts, a deeper chain); a lookup seen before allocates nothing. */
size_t srclines_chain(srclines_t *d, uint64_t pc, srcline_frame_t *out,
                      size_t max);

/* Bytes of memory held for this DWARF: the indexes (exact) and libdw's
 * own heap (estimated; see srclines.c). */
size_t srclines_bytes(const srclines_t *d);

/* The dwz alternate file `d` holds an image of, and its stamp when it was
 * opened (elfopen_changed); NULL when it holds none. */
const char *srclines_alt_file(const srclines_t *d,
                              const elfopen_stamp_t **stamp);

void srclines_free(srclines_t *d);

#endif /* HEAPPROF_INTROSPECT_SRCLINES_H */
