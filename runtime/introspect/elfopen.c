/*
 * elfopen — ELF handles without descriptors (see elfopen.h).
 *
 * A file is stat'ed before it is opened, so that no device or FIFO is
 * ever opened (opening some devices has side effects), then opened with
 * O_NONBLOCK | O_NOCTTY in case it was swapped for one in between, and
 * checked again with fstat. elf_begin(ELF_C_READ_MMAP) maps it;
 * elf_cntl(ELF_C_FDREAD) reads whatever could not be mapped and marks the
 * descriptor unusable, so closing it at once is safe. The fstat also
 * gives the file's stamp, taken before the mapping: a write that lands
 * between the two makes the stamp stale, so it is seen (elfopen_changed)
 * rather than missed.
 */
#define _GNU_SOURCE
#include "elfopen.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void take_stamp(const struct stat *st, elfopen_stamp_t *stamp) {
  *stamp = (elfopen_stamp_t){.dev = st->st_dev,
                             .ino = st->st_ino,
                             .size = st->st_size,
                             .mtime = st->st_mtim,
                             .ctime = st->st_ctim};
}

static bool same_time(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static int open_regular(const char *path, elfopen_stamp_t *stamp) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    close(fd);
    fd = -1;
  }
  if (fd >= 0 && stamp != NULL)
    take_stamp(&st, stamp);
  return fd;
}

Elf *elfopen_file(const char *path, elfopen_stamp_t *stamp) {
  int saved = errno;
  int fd = open_regular(path, stamp);
  Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (elf != NULL &&
      (elf_kind(elf) != ELF_K_ELF || elf_cntl(elf, ELF_C_FDREAD) != 0)) {
    elf_end(elf);
    elf = NULL;
  }
  if (fd >= 0)
    close(fd);
  errno = saved;
  return elf;
}

bool elfopen_changed(const char *path, const elfopen_stamp_t *stamp) {
  int saved = errno;
  struct stat st;
  bool changed;
  if (stat(path, &st) != 0)
    changed = errno != ENOENT && errno != ENOTDIR;
  else
    changed =
        st.st_dev == stamp->dev && st.st_ino == stamp->ino &&
        (st.st_size != stamp->size || !same_time(&st.st_mtim, &stamp->mtime) ||
         !same_time(&st.st_ctim, &stamp->ctime));
  errno = saved;
  return changed;
}

Elf *elfopen_memory(void *image, size_t bytes) {
  Elf *elf = elf_memory(image, bytes);
  if (elf != NULL && elf_kind(elf) != ELF_K_ELF) {
    elf_end(elf);
    elf = NULL;
  }
  return elf;
}

/* The name of the section `shdr` describes, or "". */
static const char *section_name(Elf *elf, size_t shstrndx, GElf_Shdr *shdr) {
  const char *name = elf_strptr(elf, shstrndx, shdr->sh_name);
  return name ? name : "";
}

bool elfopen_has_section_type(Elf *elf, unsigned type) {
  GElf_Shdr shdr;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;)
    if (gelf_getshdr(scn, &shdr) != NULL && shdr.sh_type == type)
      return true;
  return false;
}

bool elfopen_has_dwarf(Elf *elf) {
  size_t shstrndx;
  GElf_Shdr shdr;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0)
    return false;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
    if (gelf_getshdr(scn, &shdr) == NULL || shdr.sh_type == SHT_NOBITS)
      continue;
    const char *name = section_name(elf, shstrndx, &shdr);
    if (strcmp(name, ".debug_info") == 0 || strcmp(name, ".zdebug_info") == 0)
      return true;
  }
  return false;
}

size_t elfopen_heap_bytes(Elf *elf) {
  size_t raw_bytes = 0, shstrndx, bytes = 0;
  const char *raw = elf ? elf_rawfile(elf, &raw_bytes) : NULL;
  GElf_Shdr shdr;
  if (raw == NULL || elf_getshdrstrndx(elf, &shstrndx) != 0)
    return 0;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
    /* Only DWARF sections: libdw decompresses them into the heap when it
     * opens them; every other section is read in place from the map. */
    if (gelf_getshdr(scn, &shdr) == NULL ||
        strstr(section_name(elf, shstrndx, &shdr), "debug_") == NULL)
      continue;
    Elf_Data *data = elf_getdata(scn, NULL);
    if (data && data->d_buf &&
        ((const char *)data->d_buf < raw ||
         (const char *)data->d_buf >= raw + raw_bytes))
      bytes += data->d_size;
  }
  return bytes;
}
