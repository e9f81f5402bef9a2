/*
 * symbols — turns program counters of the running process into function
 * names, source files and lines, and describes its executable mappings.
 *
 * Used only on the dump path (one thread, reentrancy guard on, so it may
 * call malloc freely). A symbols_t is a view of the process as it was when
 * symbols_open() ran: its mappings come from /proc/self/maps, with the GNU
 * build-id of each mapped ELF file.
 */
#ifndef HEAPPROF_SYMBOLS_H
#define HEAPPROF_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct symbols symbols_t;

/* One executable (r-xp) range of /proc/self/maps. */
typedef struct symbols_mapping {
  uint64_t start;       /* memory_start: start of the r-xp range */
  uint64_t limit;       /* memory_limit: end of the range (exclusive) */
  uint64_t offset;      /* file offset of the range */
  const char *path;     /* mapped file, "[vdso]" etc.; never NULL */
  const char *build_id; /* lower-case hex GNU build-id, "" when none */
} symbols_mapping_t;

/* What is known about one address; NULL / 0 where nothing is known. */
typedef struct symbols_frame {
  const char *function; /* symbol name as in the ELF symbol table */
  const char *file;     /* source file from DWARF line info */
  int64_t line;         /* source line, 0 when unknown */
  int mapping;          /* index into symbols_mappings(), -1 when unmapped */
} symbols_frame_t;

/* Opens a view of the current process. NULL on failure (errno set). */
symbols_t *symbols_open(void);

/* The executable mappings, sorted by start address. */
const symbols_mapping_t *symbols_mappings(symbols_t *s, size_t *n);

/*
 * Describes `addr`, an address inside a call instruction (return address
 * minus one). Strings stay valid until symbols_close(). Never fails: an
 * address nobody knows gets function = file = NULL, line = 0.
 */
void symbols_lookup(symbols_t *s, uint64_t addr, symbols_frame_t *out);

/* Bytes of memory the view holds now (its caches, strings, libdw state). */
size_t symbols_memory_bytes(const symbols_t *s);

void symbols_close(symbols_t *s);

#endif /* HEAPPROF_SYMBOLS_H */
