/*
 * symbolizer — the running process, as the profile encoders see it: its
 * executable mappings with their build ids, and the function, file and
 * line of each address (prof_symtab_t, profile/symtab.h).
 *
 * One symbolizer lives as long as the process and is kept between dumps:
 * what it learned (symbol indexes, DWARF line tables, answered addresses)
 * is reused. symbolizer_refresh, before each dump, reads the map again
 * and rebuilds the view only when the code in it changed: a dlopen or
 * dlclose (the loader's counts of loads and unloads), or an ELF file
 * mapped or unmapped by hand (the map's executable ranges).
 *
 * Files between dumps. The images of the object files, separate debug
 * files and dwz files stay mapped (not copied) between dumps, and a page
 * of a file truncated in place past its new end faults (SIGBUS) when it
 * is read. So each refresh stats every file an image holds (one stat per
 * file: typically the main program, libc and its debug file, a few
 * libraries) and frees the image of any file that its path still names
 * but whose size, mtime or ctime changed; it is opened again, as it is
 * now, at the next lookup in it (and used only if its build id still
 * matches the code in memory: otherwise the module gets no lines, or no
 * names). A file replaced by rename, or deleted, is kept: the image holds
 * the old inode, which is no longer reachable by its path.
 *
 * What is not covered, as in the old design that mapped every file only
 * for the length of one dump: a file truncated in place DURING a dump,
 * after the refresh checked it and before a lookup reads the truncated
 * part; and a kept old inode truncated through another name (a second
 * hard link, a renamed path) or another process's open descriptor. Either
 * faults in the thread making the dump.
 *
 * Not thread-safe: the dump pipeline serialises every call, and nothing
 * here is shared between symbolizers (no static buffer). It keeps no
 * descriptor open between calls (each call may come from a thread with a
 * different descriptor table: the program's, the dump thread's, the HTTP
 * thread's), writes nothing to stdout or stderr, and never reaches the
 * network.
 */
#ifndef HEAPPROF_SYMBOLIZER_H
#define HEAPPROF_SYMBOLIZER_H

#include <stddef.h>
#include <stdint.h>

#include "demangle.h"
#include "symtab.h"

typedef struct symbolizer symbolizer_t;

/* An empty symbolizer that names C++ and Rust functions in `style`
 * (demangle.h); it reads nothing until symbolizer_refresh. NULL with errno
 * ENOMEM. */
symbolizer_t *symbolizer_new(demangle_style_t style);

/* Brings `s` up to date with the process before a dump: frees the images
 * of files changed in place (above), reads /proc/thread-self/maps, and
 * rebuilds the view — dropping what no longer describes the process,
 * keeping the rest — on the first call and whenever the map's objects and
 * executable ranges differ from the view's or a library was loaded or
 * unloaded. With nothing changed it costs one dl_iterate_phdr, one read
 * of the map and one stat per file held: about 0.1 ms for a map of 75
 * lines and 4 files held, nearly all of it the kernel writing the map's
 * text, and growing with the number of mappings (bench/symbolize_cost
 * prints the figure). Takes the loader lock: the caller holds no lock
 * that malloc needs. 1 if the view was rebuilt, 0 if unchanged, -1 with
 * errno (the old view is kept). */
int symbolizer_refresh(symbolizer_t *s);

/* The prof_symtab_t that answers from `s`; its strings stay valid until
 * the next symbolizer_refresh or symbolizer_free. */
prof_symtab_t symbolizer_symtab(symbolizer_t *s);

/*
 * Modules that go away. A frame in a library unloaded before a dump must
 * keep its names, lines and mapping, whatever then happens to the file;
 * and its addresses may be reused by a library loaded later. So before
 * the library goes, the caller hands over the sampled addresses in its
 * code and the number of buckets recorded so far (bucket_total()):
 * symbolizer_retire answers them now and keeps those answers, and from
 * then on the symtab's space() sends an address of a stack recorded
 * before (a bucket numbered below) to them, and every other to the code
 * mapped now. At most 256 modules are kept (ENOSPC beyond: their frames
 * are bare addresses, as before); a library unloaded again and again at
 * the same place keeps one record.
 */

/* The code [low, high) of the module the view (as of the last refresh)
 * knows to be loaded at load bias `bias`. 0, or -1 when there is none. */
int symbolizer_module_at_bias(const symbolizer_t *s, uint64_t bias,
                              uint64_t *low, uint64_t *high);

/* Keeps the answers for addresses `addrs` (inside call instructions; those
 * outside [low, high) are skipped) of the module at [low, high), which is
 * about to go away; `serial` is bucket_total() now. 0, or -1 with errno
 * (ENOENT: no such module in the view; ENOSPC; ENOMEM). */
int symbolizer_retire(symbolizer_t *s, uint64_t low, uint64_t high,
                      const uint64_t *addrs, size_t n, uint64_t serial);

/* Frees the images of the modules in [low, high) (the files they map),
 * which are about to go away: nothing of an unloaded library stays mapped
 * by heapprof until the next refresh. Their answers stay cached; a lookup
 * in them before the next refresh would load the image again. */
void symbolizer_release(symbolizer_t *s, uint64_t low, uint64_t high);

/* Bytes of memory `s` holds now (its caches, strings, libdw state). */
size_t symbolizer_memory_bytes(const symbolizer_t *s);

void symbolizer_free(symbolizer_t *s);

/* ---- For tests and benchmarks only: the dump path does not need these.
 * Counts since symbolizer_new, to observe what the caching saves. */
typedef struct symbolizer_counts {
  uint64_t refreshes;      /* symbolizer_refresh calls */
  uint64_t maps_reads;     /* of which read the map */
  uint64_t views_built;    /* of which rebuilt the view: the code changed */
  uint64_t lookups;        /* addresses asked about */
  uint64_t resolved;       /* of which not answered from the cache */
  uint64_t modules_loaded; /* module images loaded (files opened, indexed) */
  uint64_t modules_kept;   /* images carried over a rebuild of the view */
  uint64_t files_checked;  /* stats of files held by images, at refreshes */
  uint64_t images_dropped; /* images freed: a file changed in place */
} symbolizer_counts_t;

void symbolizer_counts(const symbolizer_t *s, symbolizer_counts_t *out);

#endif /* HEAPPROF_SYMBOLIZER_H */
