/*
 * maps — the process's memory map as the kernel lists it in
 * /proc/thread-self/maps (/proc/self/maps before Linux 3.17): the mapped
 * ELF candidates (files and the vdso) and their executable ranges, and the
 * raw text for Go's debug=1 output.
 *
 * Read with open/read/close only: a stdio stream would sit in libc's list
 * of open streams, where the program's fflush(NULL) or fcloseall() on
 * another thread could reach it. Every descriptor is closed before a call
 * returns. thread-self, because once main has called pthread_exit the
 * leader's /proc/self/maps is empty.
 */
#ifndef HEAPPROF_INTROSPECT_MAPS_H
#define HEAPPROF_INTROSPECT_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"

/* One mapped file with code, or the vdso: the consecutive lines naming the
 * same file (same device and inode, rising addresses). Files mapped
 * without any executable line (data, locale archives) are left out.
 *
 * The object is placed by its code alone: a read-only view of the same
 * file mapped next to it (the symbolizer's own image of the file,
 * elfopen.c, or anyone else's) joins its lines, and must not move it. */
typedef struct maps_object {
  uint64_t low, high;  /* first executable line's start, last one's end */
  uint64_t offset;     /* file offset of the first executable line */
  uint64_t lines_end;  /* end of its last line, executable or not */
  uint64_t dev, inode; /* the file's identity (0 for the vdso) */
  const char *path;    /* into the view's text; " (deleted)" cut off */
  bool vdso;           /* "[vdso]": an image in memory only */
  bool deleted;        /* the kernel said " (deleted)" */
} maps_object_t;

/* One executable line of an object. */
typedef struct maps_range {
  uint64_t start, limit, offset;
  size_t object; /* index into objects */
} maps_range_t;

/* One reading of the map. Objects and ranges are in address order. */
typedef struct maps_view {
  maps_object_t *objects;
  size_t nobjects, objects_cap;
  maps_range_t *ranges;
  size_t nranges, ranges_cap;
  char *text; /* the text read, split into NUL-terminated lines */
} maps_view_t;

/* Reads the map into *v (which it initialises). 0, or an errno value with
 * *v empty. Lines it cannot parse are skipped. */
int maps_read(maps_view_t *v);

void maps_view_free(maps_view_t *v);

/* Streams the map text, as the kernel spells it, into `out`. 0, or -1
 * with the sink's errno. A map that cannot be opened or read streams
 * nothing (or what was read before the error) and returns 0. */
int maps_stream(const pprof_sink_t *out);

#endif /* HEAPPROF_INTROSPECT_MAPS_H */
