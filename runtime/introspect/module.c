/*
 * module — a mapped object's image and indexes (see module.h).
 *
 * Invariant: an image's Elf handles, symbol index and DWARF describe the
 * object the module was read from; they are built once and never change,
 * so a module carried over a re-read of the map (module_same) keeps them,
 * as long as the files they map are the files that were opened (the
 * stamps, checked by module_image_stale).
 */
#define _GNU_SOURCE
#include "module.h"

#include <gelf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debuginfo.h"
#include "elfopen.h"
#include "elfsym.h"
#include "srclines.h"

struct module_image {
  void *vdso_copy; /* the vdso's bytes, for libelf */
  size_t vdso_bytes;
  Elf *elf;   /* the object's own image; NULL when none could be used */
  Elf *debug; /* its separate debug file, or NULL */
  char *elf_path, *debug_path; /* owned: where elf and debug were opened */
  elfopen_stamp_t elf_stamp, debug_stamp;
  bool has_bias;
  uint64_t bias;
  elfsym_t syms;
  srclines_t *lines; /* NULL without DWARF */
};

bool module_same(const module_t *before, const module_t *now) {
  return before->id.len > 0 && buildid_equal(&before->id, &now->id) &&
         before->low == now->low && before->high == now->high &&
         before->offset == now->offset && before->dev == now->dev &&
         before->inode == now->inode && before->vdso == now->vdso &&
         strcmp(before->path, now->path) == 0;
}

/* ---- loading ---------------------------------------------------------- */

static bool is_the_object(Elf *elf, const module_t *m) {
  buildid_t id;
  if (m->id.len == 0)
    return !m->deleted;
  buildid_of_elf(elf, &id);
  return buildid_equal(&id, &m->id);
}

/* An image with no path (NULL: out of memory) is not used: it could not
 * be checked later. */
static Elf *keep_path(Elf *elf, const char *path, char **copy) {
  if (elf != NULL && (*copy = strdup(path)) == NULL) {
    elf_end(elf);
    elf = NULL;
  }
  return elf;
}

static Elf *open_object(const module_t *m, module_image_t *im) {
  if (m->vdso) {
    im->vdso_bytes = m->high - m->low;
    if ((im->vdso_copy = malloc(im->vdso_bytes)) == NULL)
      return NULL;
    memcpy(im->vdso_copy, (const void *)(uintptr_t)m->low, im->vdso_bytes);
    return elfopen_memory(im->vdso_copy, im->vdso_bytes);
  }
  Elf *elf = elfopen_file(m->path, &im->elf_stamp);
  if (elf != NULL && !is_the_object(elf, m)) {
    elf_end(elf);
    elf = NULL;
  }
  return keep_path(elf, m->path, &im->elf_path);
}

/* For objects the loader does not list (mapped by hand): the bias that
 * puts the loadable segment holding file offset m->offset at m->low. */
static bool bias_from_segments(Elf *elf, const module_t *m, uint64_t *bias) {
  size_t n;
  GElf_Phdr ph;
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  if (elf_getphdrnum(elf, &n) != 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (gelf_getphdr(elf, (int)i, &ph) == NULL || ph.p_type != PT_LOAD ||
        (ph.p_offset & ~(page - 1)) > m->offset ||
        m->offset >= ph.p_offset + ph.p_filesz)
      continue;
    *bias = m->low - (ph.p_vaddr - ph.p_offset + m->offset);
    return true;
  }
  return false;
}

static void load(const module_t *m, module_image_t *im) {
  char debug_path[PATH_MAX];
  if ((im->elf = open_object(m, im)) == NULL)
    return;
  im->bias = m->bias;
  im->has_bias = m->loader_known || bias_from_segments(im->elf, m, &im->bias);
  if (!im->has_bias)
    return;
  bool own_dwarf = elfopen_has_dwarf(im->elf);
  if (!own_dwarf || !elfopen_has_section_type(im->elf, SHT_SYMTAB))
    im->debug = keep_path(
        debuginfo_find(m->path, im->elf, &m->id, debug_path, &im->debug_stamp),
        debug_path, &im->debug_path);
  elfsym_build(&im->syms, im->elf, im->debug, im->bias);
  if (own_dwarf)
    im->lines = srclines_open(im->elf, m->path);
  else if (im->debug != NULL && elfopen_has_dwarf(im->debug))
    im->lines = srclines_open(im->debug, debug_path);
}

module_image_t *module_image(module_t *m) {
  if (m->image == NULL && (m->image = calloc(1, sizeof *m->image)) != NULL)
    load(m, m->image);
  return m->image;
}

/* ---- answers ---------------------------------------------------------- */

const char *module_image_function(const module_image_t *im, uint64_t addr) {
  return im->has_bias ? elfsym_function_at(&im->syms, addr) : NULL;
}

bool module_image_line(module_image_t *im, uint64_t addr, const char **file,
                       const char **comp_dir, int *line) {
  return im->has_bias && im->lines != NULL &&
         srclines_find(im->lines, addr - im->bias, file, comp_dir, line);
}

size_t module_image_chain(module_image_t *im, uint64_t addr,
                          srcline_frame_t *out, size_t max) {
  return im->has_bias && im->lines != NULL
             ? srclines_chain(im->lines, addr - im->bias, out, max)
             : 0;
}

bool module_image_stale(const module_image_t *im, uint64_t *nchecked) {
  const elfopen_stamp_t *alt_stamp = NULL;
  const char *alt = im->lines ? srclines_alt_file(im->lines, &alt_stamp) : NULL;
  const char *paths[] = {im->elf_path, im->debug_path, alt};
  const elfopen_stamp_t *stamps[] = {&im->elf_stamp, &im->debug_stamp,
                                     alt_stamp};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    if (paths[i] == NULL)
      continue;
    ++*nchecked;
    if (elfopen_changed(paths[i], stamps[i]))
      return true;
  }
  return false;
}

size_t module_image_bytes(const module_image_t *im) {
  return sizeof *im + im->vdso_bytes + elfsym_bytes(&im->syms) +
         (im->elf_path ? strlen(im->elf_path) + 1 : 0) +
         (im->debug_path ? strlen(im->debug_path) + 1 : 0) +
         (im->lines ? srclines_bytes(im->lines) : 0);
}

void module_image_free(module_image_t *im) {
  if (im == NULL)
    return;
  srclines_free(im->lines);
  elfsym_free(&im->syms);
  if (im->debug != NULL)
    elf_end(im->debug);
  if (im->elf != NULL)
    elf_end(im->elf);
  free(im->elf_path);
  free(im->debug_path);
  free(im->vdso_copy);
  free(im);
}
