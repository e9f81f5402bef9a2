/*
 * module — one object with code in the process (an ELF file mapped with
 * an executable range, or the vdso) and what is learned about it: its ELF
 * image, separate debug file, load bias, symbol index and DWARF, loaded on
 * the first lookup inside it and kept while the object stays mapped.
 *
 * A file is used only if it is the object in memory: with a build id
 * known from memory, the file's must equal it; without one, a deleted
 * file's path is not trusted (it may now name another file). The vdso is
 * read from memory. Not thread-safe.
 *
 * An image maps its files (elfopen.h): before it is used after a pause,
 * module_image_stale() says whether one of them was written in place
 * since, and then the image must be freed unread.
 */
#ifndef HEAPPROF_INTROSPECT_MODULE_H
#define HEAPPROF_INTROSPECT_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buildid.h"
#include "srclines.h"

typedef struct module_image module_image_t;

typedef struct module {
  uint64_t low, high;  /* the object's code in the map (maps.h) */
  uint64_t offset;     /* file offset mapped at low */
  uint64_t dev, inode; /* the mapped file's identity (0 for the vdso) */
  char *path;          /* owned; without " (deleted)" */
  bool vdso, deleted;
  buildid_t id;          /* from memory (or the file, see symbolizer.c) */
  bool loader_known;     /* the loader lists it: bias is its load bias */
  uint64_t bias;         /* address in memory = address in the file + bias */
  module_image_t *image; /* NULL until the first lookup; owned */
} module_t;

/* Whether `now`, from a newer reading of the map, is the object `before`
 * described, at the same place: same path, range, file identity and
 * non-empty build id. Then before's image answers for it. */
bool module_same(const module_t *before, const module_t *now);

/* The module's image, loaded on first use. A module whose files cannot be
 * used gets an image that names nothing; NULL only when memory runs out.
 * Every file it opens is closed before it returns (elfopen.h). */
module_image_t *module_image(module_t *m);

/* The function symbol holding `addr` (a memory address); NULL if none. */
const char *module_image_function(const module_image_t *im, uint64_t addr);

/* Source position of `addr` (a memory address), as srclines_find(). */
bool module_image_line(module_image_t *im, uint64_t addr, const char **file,
                       const char **comp_dir, int *line);

/* The inline chain at `addr` (a memory address), as srclines_chain; 0
 * when the module has no DWARF covering it. */
size_t module_image_chain(module_image_t *im, uint64_t addr,
                          srcline_frame_t *out, size_t max);

/* Whether a file `im` holds an image of (the object, its separate debug
 * file, the dwz file) was written in place since it was opened
 * (elfopen_changed): reading the image could then fault. Adds the number
 * of files checked (one stat each) to *nchecked. */
bool module_image_stale(const module_image_t *im, uint64_t *nchecked);

size_t module_image_bytes(const module_image_t *im);

void module_image_free(module_image_t *im);

#endif /* HEAPPROF_INTROSPECT_MODULE_H */
