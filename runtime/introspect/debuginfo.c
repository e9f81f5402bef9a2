/*
 * debuginfo — finding separate debug files (see debuginfo.h).
 *
 * Invariant: an Elf returned here has the build id that was asked for;
 * every other candidate is released (elfopen.c keeps no descriptor). Paths
 * are built by hand into PATH_MAX buffers, never with stdio; a path that
 * would not fit is not tried.
 */
#include "debuginfo.h"

#include <elfutils/libdwelf.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "elfopen.h"

#define DEBUG_ROOT "/usr/lib/debug"

/* Appends the `n` bytes at `s` to the path being built in buf[PATH_MAX]. */
static bool append(char *buf, size_t *len, const char *s, size_t n) {
  if (n >= PATH_MAX - *len)
    return false;
  memcpy(buf + *len, s, n);
  *len += n;
  buf[*len] = '\0';
  return true;
}

static bool append_str(char *buf, size_t *len, const char *s) {
  return append(buf, len, s, strlen(s));
}

/* `path` if it is an ELF file whose build id is `want`; else NULL. */
static Elf *open_if_id(const char *path, const buildid_t *want,
                       elfopen_stamp_t *stamp) {
  Elf *elf = elfopen_file(path, stamp);
  buildid_t id;
  if (elf != NULL)
    buildid_of_elf(elf, &id);
  if (elf != NULL && !buildid_equal(&id, want)) {
    elf_end(elf);
    elf = NULL;
  }
  return elf;
}

/* DEBUG_ROOT/.build-id/xx/yyyy.debug, where xxyyyy is `id` in hex. */
static Elf *by_build_id(const buildid_t *id, char *path,
                        elfopen_stamp_t *stamp) {
  char hex[BUILDID_HEX_BYTES];
  size_t len = 0;
  if (id->len < 2)
    return NULL;
  buildid_hex(id, hex);
  if (!append_str(path, &len, DEBUG_ROOT "/.build-id/") ||
      !append(path, &len, hex, 2) || !append(path, &len, "/", 1) ||
      !append_str(path, &len, hex + 2) || !append_str(path, &len, ".debug"))
    return NULL;
  return open_if_id(path, id, stamp);
}

/* The places GDB and libdwfl look for a .gnu_debuglink file: next to the
 * object, in its .debug/ directory and under DEBUG_ROOT. */
static Elf *by_debuglink(const char *file, const char *link,
                         const buildid_t *id, char *path,
                         elfopen_stamp_t *stamp) {
  static const char *const roots[] = {"", "", DEBUG_ROOT};
  static const char *const subdirs[] = {"/", "/.debug/", "/"};
  const char *slash = strrchr(file, '/');
  if (slash == NULL)
    return NULL;
  for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
    size_t len = 0;
    if (!append_str(path, &len, roots[i]) ||
        !append(path, &len, file, (size_t)(slash - file)) ||
        !append_str(path, &len, subdirs[i]) || !append_str(path, &len, link) ||
        strcmp(path, file) == 0)
      continue;
    Elf *elf = open_if_id(path, id, stamp);
    if (elf != NULL)
      return elf;
  }
  return NULL;
}

Elf *debuginfo_find(const char *path, Elf *main, const buildid_t *id,
                    char *found, elfopen_stamp_t *stamp) {
  if (id->len == 0)
    return NULL;
  Elf *elf = by_build_id(id, found, stamp);
  GElf_Word crc;
  const char *link = elf ? NULL : dwelf_elf_gnu_debuglink(main, &crc);
  if (link != NULL && link[0] != '\0')
    elf = by_debuglink(path, link, id, found, stamp);
  return elf;
}

Elf *debuginfo_find_alt(const char *debug_path, const char *altname,
                        const void *alt_id, size_t alt_id_len, char *path,
                        elfopen_stamp_t *stamp) {
  buildid_t id = {0};
  if (alt_id_len == 0 || alt_id_len > BUILDID_MAX_BYTES)
    return NULL;
  id.len = alt_id_len;
  memcpy(id.bytes, alt_id, alt_id_len);
  Elf *elf = by_build_id(&id, path, stamp);
  if (elf != NULL || altname == NULL || altname[0] == '\0')
    return elf;
  size_t len = 0;
  const char *slash = strrchr(debug_path, '/');
  if (altname[0] != '/' &&
      (slash == NULL ||
       !append(path, &len, debug_path, (size_t)(slash - debug_path + 1))))
    return NULL;
  return append_str(path, &len, altname) ? open_if_id(path, &id, stamp) : NULL;
}
