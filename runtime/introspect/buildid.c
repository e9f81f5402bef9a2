/*
 * buildid — loaded objects and their build ids (see buildid.h).
 *
 * Invariant: the dl_iterate_phdr callbacks allocate nothing and read only
 * memory the loader keeps mapped while they run: a PT_NOTE segment is read
 * only when it lies inside a PT_LOAD segment's file image.
 */
#define _GNU_SOURCE
#include "buildid.h"

#include <elfutils/libdwelf.h>
#include <link.h>
#include <stddef.h>
#include <string.h>

typedef ElfW(Phdr) phdr_t;
typedef ElfW(Nhdr) nhdr_t;

static void set_id(buildid_t *id, const void *bytes, size_t len) {
  id->len = 0;
  if (len == 0 || len > BUILDID_MAX_BYTES)
    return;
  memcpy(id->bytes, bytes, len);
  id->len = len;
}

static size_t align_up(size_t n, size_t align) {
  return (n + align - 1) & ~(align - 1);
}

/* The NT_GNU_BUILD_ID descriptor among the notes in [p, p + len). */
static size_t find_note(const unsigned char *p, size_t len, size_t align,
                        const unsigned char **desc) {
  while (len >= sizeof(nhdr_t)) {
    const nhdr_t *n = (const void *)p;
    /* 32-bit sizes in a 64-bit size_t: these sums cannot wrap. */
    size_t desc_at = align_up(sizeof *n + n->n_namesz, align);
    size_t next = align_up(desc_at + n->n_descsz, align);
    if (next > len)
      return 0;
    if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == sizeof "GNU" &&
        memcmp(p + sizeof *n, "GNU", sizeof "GNU") == 0) {
      *desc = p + desc_at;
      return n->n_descsz;
    }
    p += next;
    len -= next;
  }
  return 0;
}

/* Whether a PT_NOTE's bytes are loaded, i.e. inside some PT_LOAD's file
 * image; only then may they be read in memory. */
static bool note_is_loaded(const struct dl_phdr_info *info,
                           const phdr_t *note) {
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const phdr_t *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && note->p_vaddr >= ph->p_vaddr &&
        note->p_vaddr + note->p_filesz <= ph->p_vaddr + ph->p_filesz)
      return true;
  }
  return false;
}

static void id_in_memory(const struct dl_phdr_info *info, buildid_t *id) {
  id->len = 0;
  for (size_t i = 0; i < info->dlpi_phnum && id->len == 0; i++) {
    const phdr_t *ph = &info->dlpi_phdr[i];
    const unsigned char *desc;
    if (ph->p_type != PT_NOTE || !note_is_loaded(info, ph))
      continue;
    size_t len = find_note((const void *)(info->dlpi_addr + ph->p_vaddr),
                           ph->p_filesz, ph->p_align == 8 ? 8 : 4, &desc);
    set_id(id, desc, len);
  }
}

/* The start of the object's first executable segment; 0 if none. */
static uint64_t code_start(const struct dl_phdr_info *info) {
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const phdr_t *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
      return info->dlpi_addr + ph->p_vaddr;
  }
  return 0;
}

struct each {
  void (*fn)(void *ctx, const loaded_object_t *o);
  void *ctx;
};

static int each_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  const struct each *e = arg;
  loaded_object_t o = {.code_addr = code_start(info), .bias = info->dlpi_addr};
  if (o.code_addr == 0)
    return 0;
  id_in_memory(info, &o.id);
  e->fn(e->ctx, &o);
  return 0;
}

void buildid_each_loaded(void (*fn)(void *ctx, const loaded_object_t *o),
                         void *ctx) {
  struct each e = {fn, ctx};
  dl_iterate_phdr(each_object, &e);
}

struct code_of {
  uint64_t bias, low, high;
  bool found;
};

static int code_span(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct code_of *c = arg;
  if (info->dlpi_addr != c->bias)
    return 0;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const phdr_t *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
      continue;
    uint64_t low = info->dlpi_addr + ph->p_vaddr, high = low + ph->p_memsz;
    c->low = c->found && c->low < low ? c->low : low;
    c->high = c->found && c->high > high ? c->high : high;
    c->found = true;
  }
  return c->found;
}

bool buildid_code_of(uint64_t bias, uint64_t *low, uint64_t *high) {
  struct code_of c = {.bias = bias};
  dl_iterate_phdr(code_span, &c);
  *low = c.low;
  *high = c.high;
  return c.found;
}

struct counts {
  bool known;
  uint64_t adds, subs;
};

/* Reads the counters off the first object and stops. */
static int first_object(struct dl_phdr_info *info, size_t size, void *arg) {
  struct counts *c = arg;
  if (size >=
      offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    c->known = true;
    c->adds = info->dlpi_adds;
    c->subs = info->dlpi_subs;
  }
  return 1;
}

bool buildid_loader_counts(uint64_t *adds, uint64_t *subs) {
  struct counts c = {0};
  dl_iterate_phdr(first_object, &c);
  *adds = c.adds;
  *subs = c.subs;
  return c.known;
}

void buildid_of_elf(Elf *elf, buildid_t *out) {
  const void *bytes;
  ssize_t len = dwelf_elf_gnu_build_id(elf, &bytes);
  set_id(out, bytes, len > 0 ? (size_t)len : 0);
}

bool buildid_equal(const buildid_t *a, const buildid_t *b) {
  return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

void buildid_hex(const buildid_t *id, char *hex) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < id->len; i++) {
    hex[2 * i] = digits[id->bytes[i] >> 4];
    hex[2 * i + 1] = digits[id->bytes[i] & 15];
  }
  hex[2 * id->len] = '\0';
}
