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
 */
#ifndef HEAPPROF_INTROSPECT_ELFOPEN_H
#define HEAPPROF_INTROSPECT_ELFOPEN_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>

/* `path` as an ELF handle, if it names a regular file holding an ELF
 * image; NULL otherwise (missing, unreadable, a device or FIFO, not ELF).
 * Release with elf_end(). Keeps errno. */
Elf *elfopen_file(const char *path);

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
