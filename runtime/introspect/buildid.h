/*
 * buildid — what the dynamic loader knows about the objects it loaded:
 * where each one's code is, its load bias, its GNU build id read from its
 * notes in memory, and the loader's counts of loads and unloads; and the
 * build id of an ELF file, for objects the loader does not know.
 *
 * Build ids come from memory because the file at a mapped path may have
 * been replaced since it was loaded; a file whose build id disagrees with
 * memory is never used (module.c checks).
 */
#ifndef HEAPPROF_INTROSPECT_BUILDID_H
#define HEAPPROF_INTROSPECT_BUILDID_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest build id kept; GNU ld writes 20 bytes (SHA-1), --build-id=0x…
 * whatever the user typed, so anything longer is treated as absent. */
#define BUILDID_MAX_BYTES 64
#define BUILDID_HEX_BYTES (2 * BUILDID_MAX_BYTES + 1)

typedef struct buildid {
  size_t len; /* 0: none known */
  unsigned char bytes[BUILDID_MAX_BYTES];
} buildid_t;

/* One object as the loader lists it. */
typedef struct loaded_object {
  uint64_t code_addr; /* start of its first executable segment in memory */
  uint64_t bias;      /* address in memory = address in the file + bias */
  buildid_t id;       /* from its loaded PT_NOTE segments */
} loaded_object_t;

/* Calls fn(ctx, o) for every object the loader has mapped, the main
 * program and the vdso included. It runs under the loader lock (which
 * also keeps each object mapped while its notes are read): fn must not
 * allocate, take locks or call into the loader. The caller holds no lock
 * that malloc needs. */
void buildid_each_loaded(void (*fn)(void *ctx, const loaded_object_t *o),
                         void *ctx);

/* The loader's counts of objects added and removed so far (glibc's
 * dlpi_adds and dlpi_subs); false if this libc does not keep them. */
bool buildid_loader_counts(uint64_t *adds, uint64_t *subs);

/* The span [low, high) of the executable segments of the loaded object
 * whose load bias is `bias`; false if the loader lists none. Takes the
 * loader's lock, allocates nothing, opens nothing. */
bool buildid_code_of(uint64_t bias, uint64_t *low, uint64_t *high);

/* The build id in `elf`'s notes; len 0 when it has none. */
void buildid_of_elf(Elf *elf, buildid_t *out);

bool buildid_equal(const buildid_t *a, const buildid_t *b);

/* `id` in lower-case hex, NUL-terminated ("" when none) into `hex`, which
 * holds BUILDID_HEX_BYTES. */
void buildid_hex(const buildid_t *id, char *hex);

#endif /* HEAPPROF_INTROSPECT_BUILDID_H */
