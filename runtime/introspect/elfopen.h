/*
 * elfopen — the one place where introspection opens files: ELF images
 * held in memory with no descriptor kept.
 *
 * Invariant: no descriptor outlives the call that opened it. Each call
 * may come from a thread with its own descriptor table (the program's,
 * the dump thread's, the HTTP thread's), so a descriptor kept for later
 * would be a number in the wrong table: closing it later could close one
 * of the program's files. Every Elf handed out has its file mapped (or
 * read) into memory and its descriptor closed and detached
 * (ELF_C_FDREAD), so libelf and libdw never read through it again.
 *
 * A file image is mapped, not copied (ELF_C_READ_MMAP): reading pages of
 * it that lie past the file's end after someone truncated the file in
 * place raises SIGBUS, which would kill the program. So whoever keeps an
 * image keeps the stamp of its file too, and asks elfopen_changed()
 * before reading the image again after a pause (symbolizer.h says when).
 */
#ifndef HEAPPROF_INTROSPECT_ELFOPEN_H
#define HEAPPROF_INTROSPECT_ELFOPEN_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What a file was when it was opened: its identity and the state of its
 * contents. */
typedef struct elfopen_stamp {
  uint64_t dev, ino;
  int64_t size;
  struct timespec mtime, ctime;
} elfopen_stamp_t;

/* `path` as an ELF handle, if it names a regular file holding an ELF
 * image; NULL otherwise (missing, unreadable, a device or FIFO, not ELF).
 * With `stamp` non-NULL, the file's stamp is stored there, taken from the
 * open descriptor before the image was mapped. Release with elf_end().
 * Keeps errno. */
Elf *elfopen_file(const char *path, elfopen_stamp_t *stamp);

/* Whether the file that elfopen_file opened at `path` with `stamp` may
 * have been written since, in place: `path` still names the same file
 * (device and inode) but its size, modification or change time moved
 * (ctime too, since cp -p and touch can restore an mtime). Then pages of
 * its image may be gone, and the image must be released unread.
 *
 * A path that now names another file, or nothing, is no reason: the
 * image holds the old inode, which no one can reach through that path
 * any more (a program's library replaced by rename or unlinked stays
 * readable; a second hard link or someone's open descriptor could still
 * truncate it, which is not checked). A stat that fails otherwise (EACCES,
 * EIO) counts as changed: nothing then vouches for the file. One stat();
 * keeps errno. */
bool elfopen_changed(const char *path, const elfopen_stamp_t *stamp);

/* An ELF handle reading `bytes` bytes at `image`, which must stay valid
 * and unchanged until elf_end(); NULL if it is not an ELF image. */
Elf *elfopen_memory(void *image, size_t bytes);

/* Whether `elf` has a section of `type` with contents (not SHT_NOBITS,
 * which is how separate debug files keep the sections they left out). */
bool elfopen_has_section_type(Elf *elf, unsigned type);

/* Whether `elf` carries DWARF (a .debug_info section with contents). */
bool elfopen_has_dwarf(Elf *elf);

/* Bytes of DWARF section data held on the heap for `elf`, beyond the file
 * image itself: what libdw decompressed when it opened the sections. */
size_t elfopen_heap_bytes(Elf *elf);

#endif /* HEAPPROF_INTROSPECT_ELFOPEN_H */
