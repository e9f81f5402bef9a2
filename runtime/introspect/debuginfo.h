/*
 * debuginfo — where the DWARF and full symbol table of a stripped object
 * live: its separate debug file, and the dwz alternate file that a debug
 * file may share with others. Local files only: nothing here reaches the
 * network (no debuginfod), and every candidate is used only when its build
 * id is the one asked for, which stands in for the debuglink CRC.
 */
#ifndef HEAPPROF_INTROSPECT_DEBUGINFO_H
#define HEAPPROF_INTROSPECT_DEBUGINFO_H

#include <libelf.h>
#include <stddef.h>

#include "buildid.h"
#include "elfopen.h"

/* The separate debug file of the object at `path` (whose image is `main`
 * and build id `id`): /usr/lib/debug/.build-id/xx/yyyy.debug, then its
 * .gnu_debuglink name next to `path`, in the .debug/ directory beside it,
 * and under /usr/lib/debug plus its directory, as GDB looks. NULL when
 * there is none, or the object has no build id. The path found is copied
 * into `found` (PATH_MAX bytes), the file's stamp into `stamp`. */
Elf *debuginfo_find(const char *path, Elf *main, const buildid_t *id,
                    char *found, elfopen_stamp_t *stamp);

/* The dwz alternate file named by a .gnu_debugaltlink in the file at
 * `debug_path`: /usr/lib/debug/.build-id/xx/yyyy.debug, then `altname`
 * (absolute, or relative to `debug_path`'s directory). NULL when none has
 * build id `alt_id`. The path found is copied into `found` (PATH_MAX
 * bytes), the file's stamp into `stamp`. */
Elf *debuginfo_find_alt(const char *debug_path, const char *altname,
                        const void *alt_id, size_t alt_id_len, char *found,
                        elfopen_stamp_t *stamp);

#endif /* HEAPPROF_INTROSPECT_DEBUGINFO_H */
