/*
 * symbols — a frozen view of the running process's executable mappings,
 * and the symbolizer that turns its program counters into function names,
 * source files and lines, built on elfutils' libdwfl.
 *
 * Invariant: a symbols_t answers every question from one reading of
 * /proc/self/maps, made by symbols_open(). Its mapping table, the modules it
 * reports to libdwfl and its per-address cache all describe that reading, so
 * the same address always gets the same answer. Every string it hands out is
 * interned in its own arena — one copy per distinct string, so equal strings
 * are equal pointers — and stays valid until symbols_close().
 *
 * Nothing here may reach the network. libdwfl's standard callbacks ask a
 * debuginfod server when DEBUGINFOD_URLS is set, so this module installs its
 * own find_elf and find_debuginfo callbacks, which only open local files.
 *
 * Build ids come from the ELF notes in memory (dl_iterate_phdr, which takes
 * the loader lock: callers must not hold a lock that malloc needs), because
 * the file at a mapped path may have been replaced since it was loaded; a
 * file whose build id disagrees with memory is never used for symbols.
 *
 * Names come from the ELF symbol tables as they spell them (mangled for
 * C++: go tool pprof demangles a Function itself when its system_name equals
 * its name). Lines come from DWARF; inside inlined code the line is the call
 * site in the function the name belongs to. Both are found through indexes
 * built on first use (per module, per CU), since libdwfl's own lookups scan
 * the whole symbol table or CU each time.
 *
 * Not thread-safe: one thread at a time per symbols_t. It writes nothing to
 * stdout or stderr and starts no threads or processes.
 */
#define _GNU_SOURCE
#include "symbols.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Longest build id kept; GNU ld writes 20 bytes (SHA-1), --build-id=0x… up to
 * whatever the user typed, so anything longer is treated as absent. */
#define BUILD_ID_MAX_BYTES 64

/* No mapping starts below the kernel's mmap_min_addr (4096 at the very
 * least), so such addresses are answered at once, which frees key 0 to mark
 * an empty cache slot. */
#define LOWEST_MAPPED_ADDR 4096

#define ARENA_CHUNK_BYTES (64 * 1024)

static const char DELETED_SUFFIX[] = " (deleted)";

typedef ElfW(Phdr) phdr_t;
typedef ElfW(Nhdr) nhdr_t;

/* ---- string arena and intern set -------------------------------------- */

struct chunk {
  struct chunk *next;
  size_t used_bytes, cap_bytes;
  char data[];
};

/* Open-addressing set of the strings stored in the chunks; NULL = empty. */
struct strtab {
  struct chunk *chunks;
  const char **slots;
  size_t nslots, count; /* nslots is 0 or a power of two */
  size_t chunk_bytes;   /* sum of all chunk allocations */
};

static uint64_t hash_string(const char *str) {
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
  for (; *str; str++)
    h = (h ^ (unsigned char)*str) * 0x100000001b3u;
  return h;
}

static const char **strtab_slot(const char **slots, size_t nslots,
                                const char *str) {
  size_t i = hash_string(str) & (nslots - 1);
  while (slots[i] != NULL && strcmp(slots[i], str) != 0)
    i = (i + 1) & (nslots - 1);
  return &slots[i];
}

static bool strtab_grow(struct strtab *t) {
  size_t nslots = t->nslots ? 2 * t->nslots : 256;
  const char **slots = calloc(nslots, sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < t->nslots; i++)
    if (t->slots[i] != NULL)
      *strtab_slot(slots, nslots, t->slots[i]) = t->slots[i];
  free(t->slots);
  t->slots = slots;
  t->nslots = nslots;
  return true;
}

/* Copies `bytes` bytes into the arena; a string too long for a shared chunk
 * gets a chunk of its own. */
static char *arena_copy(struct strtab *t, const char *src, size_t bytes) {
  struct chunk *c = t->chunks;
  if (c == NULL || c->cap_bytes - c->used_bytes < bytes) {
    size_t cap = bytes > ARENA_CHUNK_BYTES / 4 ? bytes : ARENA_CHUNK_BYTES;
    if ((c = malloc(sizeof *c + cap)) == NULL)
      return NULL;
    c->used_bytes = 0;
    c->cap_bytes = cap;
    c->next = t->chunks;
    t->chunks = c;
    t->chunk_bytes += sizeof *c + cap;
  }
  char *dst = memcpy(c->data + c->used_bytes, src, bytes);
  c->used_bytes += bytes;
  return dst;
}

/* The arena's copy of `str`, made on first sight; NULL for NULL or on OOM. */
static const char *intern(struct strtab *t, const char *str) {
  if (str == NULL)
    return NULL;
  if (4 * (t->count + 1) > 3 * t->nslots && !strtab_grow(t))
    return NULL;
  const char **slot = strtab_slot(t->slots, t->nslots, str);
  if (*slot == NULL && (*slot = arena_copy(t, str, strlen(str) + 1)) != NULL)
    t->count++;
  return *slot;
}

static void strtab_free(struct strtab *t) {
  while (t->chunks != NULL) {
    struct chunk *next = t->chunks->next;
    free(t->chunks);
    t->chunks = next;
  }
  free(t->slots);
}

/* ---- per-address cache ------------------------------------------------ */

/* A symbols_frame_t packed into 32 bytes; addr 0 marks an empty slot. */
struct cache_entry {
  uint64_t addr;
  const char *function, *file;
  int32_t line, mapping;
};

struct cache {
  struct cache_entry *slots;
  size_t nslots, count; /* nslots is 0 or a power of two */
};

static struct cache_entry *cache_slot(struct cache_entry *slots, size_t nslots,
                                      uint64_t addr) {
  size_t i = (addr * 0x9e3779b97f4a7c15u) >> 20 & (nslots - 1);
  while (slots[i].addr != 0 && slots[i].addr != addr)
    i = (i + 1) & (nslots - 1);
  return &slots[i];
}

static const struct cache_entry *cache_find(const struct cache *c,
                                            uint64_t addr) {
  if (c->nslots == 0)
    return NULL;
  const struct cache_entry *e = cache_slot(c->slots, c->nslots, addr);
  return e->addr == addr ? e : NULL;
}

static bool cache_grow(struct cache *c) {
  size_t nslots = c->nslots ? 2 * c->nslots : 1024;
  struct cache_entry *slots = calloc(nslots, sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < c->nslots; i++)
    if (c->slots[i].addr != 0)
      *cache_slot(slots, nslots, c->slots[i].addr) = c->slots[i];
  free(c->slots);
  c->slots = slots;
  c->nslots = nslots;
  return true;
}

/* Remembers `f` for `addr`; on OOM the answer is simply not cached. */
static void cache_put(struct cache *c, uint64_t addr,
                      const symbols_frame_t *f) {
  if (4 * (c->count + 1) > 3 * c->nslots && !cache_grow(c))
    return;
  struct cache_entry *e = cache_slot(c->slots, c->nslots, addr);
  *e = (struct cache_entry){addr, f->function, f->file,
                            f->line > INT32_MAX ? 0 : (int32_t)f->line,
                            f->mapping};
  c->count++;
}

/* ---- indexes built on first use ----------------------------------- */

/*
 * One function symbol. libdwfl's dwfl_module_addrinfo() scans the whole
 * symbol table on every call (~115 µs per address in libc's 10k-symbol
 * .symtab); an array of these, sorted by address, is built on a module's
 * first lookup and searched in O(log n).
 */
struct fn_symbol {
  uint64_t addr;       /* absolute, as loaded */
  const char *name;    /* libdw's string table copy, alive until dwfl_end() */
  uint32_t size_bytes; /* 0 = unknown */
  uint32_t rank;       /* STB_GLOBAL 0, STB_WEAK 1, else 2 */
};

/* One contiguous range of a concrete function DIE, in DWARF addresses. */
struct fn_range {
  Dwarf_Addr low, high;
  Dwarf_Off die;
};

/* Every function range of one CU, sorted by low; built on first use. */
struct cu_index {
  Dwarf_Die cu; /* key: cu.addr, its bytes in .debug_info; NULL = empty */
  struct fn_range *ranges;
  size_t nranges, cap;
};

struct cu_table {
  struct cu_index *slots;
  size_t nslots, count; /* nslots is 0 or a power of two */
};

/* ---- the view --------------------------------------------------------- */

/* One mapped file with code (or the vdso): the consecutive maps lines
 * naming it. */
struct module {
  uint64_t low, high;  /* first line's start, last line's end */
  uint64_t dev, inode; /* a live file's identity */
  const char *path;    /* interned, without " (deleted)" */
  bool vdso, deleted, executable;
  size_t build_id_bytes; /* 0 when unknown */
  unsigned char build_id[BUILD_ID_MAX_BYTES];
  void *image;        /* vdso only: private copy of its ELF image, for libelf */
  Dwfl_Module *dwmod; /* its libdwfl module, once reported */
  bool symbols_indexed;  /* fns is built on the module's first lookup */
  struct fn_symbol *fns; /* its function symbols, sorted by address */
  size_t nfns;
};

struct symbols {
  Dwfl *dwfl;
  symbols_mapping_t *mappings; /* sorted by start */
  size_t nmappings, mappings_cap;
  struct module *modules; /* in maps order, each with code; never moved once
                            reported, as libdwfl holds pointers to them */
  size_t nmodules, modules_cap;
  struct strtab strings;
  struct cache cache;
  struct cu_table cus; /* function extents of the CUs met so far */
};

/* Doubles *cap (from `first`) and reallocs *array to it when n reaches it. */
static bool reserve(void **array, size_t *cap, size_t n, size_t elem_bytes,
                    size_t first) {
  if (n < *cap)
    return true;
  size_t cap2 = *cap ? 2 * *cap : first;
  void *grown = realloc(*array, cap2 * elem_bytes);
  if (grown == NULL)
    return false;
  *array = grown;
  *cap = cap2;
  return true;
}

/* ---- /proc/self/maps -------------------------------------------------- */

struct maps_line {
  uint64_t start, end, offset, inode;
  unsigned dev_major, dev_minor;
  char perms[5];
  char *path; /* points into the line; "" for anonymous memory */
  bool deleted;
};

/* Splits one maps line in place; false for anything unrecognisable. */
static bool parse_maps_line(char *text, struct maps_line *m) {
  int path_at = -1;
  if (sscanf(text,
             "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n",
             &m->start, &m->end, m->perms, &m->offset, &m->dev_major,
             &m->dev_minor, &m->inode, &path_at) < 7 ||
      path_at < 0 || m->end <= m->start)
    return false;
  m->path = text + path_at;
  m->path[strcspn(m->path, "\n")] = '\0';
  size_t len = strlen(m->path), suffix = sizeof DELETED_SUFFIX - 1;
  m->deleted = len > suffix && !strcmp(m->path + len - suffix, DELETED_SUFFIX);
  if (m->deleted)
    m->path[len - suffix] = '\0';
  return true;
}

/* Files and the vdso can hold ELF images; [stack], [heap], [vvar] and
 * anonymous memory cannot. */
static bool maps_line_is_elf_candidate(const struct maps_line *m) {
  return m->path[0] == '/' || strcmp(m->path, "[vdso]") == 0;
}

static bool continues_module(const struct module *mod,
                             const struct maps_line *m) {
  return !mod->vdso && mod->inode == m->inode &&
         mod->dev == makedev(m->dev_major, m->dev_minor) &&
         m->start >= mod->high;
}

/* Forgets the last module if it turned out to hold no code (a data file). */
static void drop_data_module(symbols_t *s) {
  if (s->nmodules > 0 && !s->modules[s->nmodules - 1].executable)
    s->nmodules--;
}

/* The module `m` belongs to: the last one if `m` continues it, else new. */
static struct module *module_for_line(symbols_t *s, const struct maps_line *m) {
  if (s->nmodules > 0 && continues_module(&s->modules[s->nmodules - 1], m))
    return &s->modules[s->nmodules - 1];
  drop_data_module(s);
  if (!reserve((void **)&s->modules, &s->modules_cap, s->nmodules,
               sizeof *s->modules, 64))
    return NULL;
  struct module *mod = &s->modules[s->nmodules++];
  *mod = (struct module){.low = m->start,
                         .dev = makedev(m->dev_major, m->dev_minor),
                         .inode = m->inode,
                         .vdso = m->path[0] == '[',
                         .deleted = m->deleted};
  return mod;
}

static bool add_mapping(symbols_t *s, const struct maps_line *m,
                        const struct module *mod) {
  if (!reserve((void **)&s->mappings, &s->mappings_cap, s->nmappings,
               sizeof *s->mappings, 64))
    return false;
  s->mappings[s->nmappings++] =
      (symbols_mapping_t){m->start, m->end, m->offset, mod->path, ""};
  return true;
}

static bool take_maps_line(symbols_t *s, const struct maps_line *m) {
  if (!maps_line_is_elf_candidate(m))
    return true;
  struct module *mod = module_for_line(s, m);
  if (mod == NULL)
    return false;
  mod->high = m->end;
  if (m->perms[2] != 'x')
    return true;
  mod->executable = true;
  if (mod->path == NULL && (mod->path = intern(&s->strings, m->path)) == NULL)
    return false;
  return add_mapping(s, m, mod);
}

static int by_start(const void *a, const void *b) {
  const symbols_mapping_t *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* The whole of /proc/self/maps as a malloc'd NUL-terminated string, read
 * with read(): a stdio stream would sit in glibc's list of open streams,
 * where the program's fcloseall() or fflush(NULL) on another thread can
 * reach it. NULL with errno set. */
static char *slurp_maps(void) {
  /* thread-self: once main has called pthread_exit, /proc/self (the
   * leader's) shows an empty map, and every frame would lose its name. */
  int fd = open("/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) /* before Linux 3.17 */
    fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 1 << 16, len = 0;
  char *text = malloc(cap);
  for (ssize_t r = 1; text != NULL && r > 0;) {
    if (cap - len < 4096) {
      char *w = realloc(text, cap *= 2);
      if (w == NULL) {
        free(text);
        text = NULL;
        errno = ENOMEM;
        break;
      }
      text = w;
    }
    while ((r = read(fd, text + len, cap - len - 1)) < 0 && errno == EINTR)
      ;
    if (r > 0)
      len += (size_t)r;
    else if (r < 0)
      free(text), text = NULL;
  }
  int saved = errno;
  close(fd);
  errno = saved;
  if (text != NULL)
    text[len] = '\0';
  return text;
}

/* Returns 0 or an errno value. Lines it cannot parse are skipped. */
static int read_maps(symbols_t *s) {
  char *text = slurp_maps();
  if (text == NULL)
    return errno;
  struct maps_line m;
  bool ok = true;
  for (char *line = text, *end; ok && *line != '\0'; line = end) {
    end = strchr(line, '\n');
    end = end != NULL ? (*end = '\0', end + 1) : line + strlen(line);
    ok = !parse_maps_line(line, &m) || take_maps_line(s, &m);
  }
  drop_data_module(s);
  free(text);
  /* /proc lists mappings in address order already; mapping_index() relies
   * on it, so it is not left to trust. */
  qsort(s->mappings, s->nmappings, sizeof *s->mappings, by_start);
  return ok ? 0 : ENOMEM;
}

static int mapping_index(const symbols_t *s, uint64_t addr) {
  size_t lo = 0, hi = s->nmappings;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (addr < s->mappings[mid].start)
      hi = mid;
    else if (addr >= s->mappings[mid].limit)
      lo = mid + 1;
    else
      return (int)mid;
  }
  return -1;
}

/* ---- build ids -------------------------------------------------------- */

static size_t align_up(size_t n, size_t align) {
  return (n + align - 1) & ~(align - 1);
}

/* Finds the NT_GNU_BUILD_ID descriptor among the notes in [p, p + len). */
static size_t find_build_id_note(const unsigned char *p, size_t len,
                                 size_t align, const unsigned char **desc) {
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

static void set_build_id(struct module *mod, const void *id, size_t bytes) {
  if (bytes == 0 || bytes > BUILD_ID_MAX_BYTES)
    return;
  memcpy(mod->build_id, id, bytes);
  mod->build_id_bytes = bytes;
}

/* The module holding `addr`, NULL if none. */
static struct module *module_at(symbols_t *s, uint64_t addr) {
  for (size_t i = 0; i < s->nmodules; i++)
    if (s->modules[i].low <= addr && addr < s->modules[i].high)
      return &s->modules[i];
  return NULL;
}

static struct module *module_of_object(symbols_t *s,
                                       const struct dl_phdr_info *info) {
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const phdr_t *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
      return module_at(s, info->dlpi_addr + ph->p_vaddr);
  }
  return NULL;
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

/* The build id in one segment of a loaded object, if it is a PT_NOTE. */
static size_t segment_build_id(const struct dl_phdr_info *info,
                               const phdr_t *ph, const unsigned char **desc) {
  if (ph->p_type != PT_NOTE || !note_is_loaded(info, ph))
    return 0;
  return find_build_id_note((const void *)(info->dlpi_addr + ph->p_vaddr),
                            ph->p_filesz, ph->p_align == 8 ? 8 : 4, desc);
}

/* dl_iterate_phdr callback: copies each loaded object's build id from its
 * PT_NOTE segments into the module mapped at its code. Runs under the
 * loader lock, which also keeps the object mapped while its notes are read;
 * it allocates nothing. */
static int note_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct module *mod = module_of_object(arg, info);
  for (size_t i = 0; mod != NULL && i < info->dlpi_phnum; i++) {
    const unsigned char *desc;
    size_t bytes = segment_build_id(info, &info->dlpi_phdr[i], &desc);
    if (bytes > 0) {
      set_build_id(mod, desc, bytes);
      break;
    }
  }
  return 0;
}

/* Opens a regular file read-only; -1 for devices, FIFOs and missing files
 * (O_NONBLOCK keeps a FIFO from blocking the open). */
static int open_regular(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* For executable files that the loader does not know (mapped by hand), the
 * build id is read from the file itself; not for deleted files, whose path
 * may now name something else. */
static void build_id_from_file(struct module *mod) {
  int fd = mod->vdso || mod->deleted ? -1 : open_regular(mod->path);
  Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
  const void *id;
  ssize_t bytes = elf ? dwelf_elf_gnu_build_id(elf, &id) : 0;
  if (bytes > 0)
    set_build_id(mod, id, (size_t)bytes);
  elf_end(elf);
  if (fd >= 0)
    close(fd);
}

static const char *hex_build_id(symbols_t *s, const struct module *mod) {
  char hex[2 * BUILD_ID_MAX_BYTES + 1] = "";
  for (size_t i = 0; mod != NULL && i < mod->build_id_bytes; i++)
    snprintf(hex + 2 * i, 3, "%02x", mod->build_id[i]);
  return intern(&s->strings, hex);
}

/* Returns 0 or ENOMEM. */
static int read_build_ids(symbols_t *s) {
  dl_iterate_phdr(note_object, s);
  for (size_t i = 0; i < s->nmodules; i++)
    if (s->modules[i].build_id_bytes == 0)
      build_id_from_file(&s->modules[i]);
  for (size_t i = 0; i < s->nmappings; i++) {
    const char *hex = hex_build_id(s, module_at(s, s->mappings[i].start));
    if (hex == NULL)
      return ENOMEM;
    s->mappings[i].build_id = hex;
  }
  return 0;
}

/* ---- libdwfl callbacks: local files only ------------------------------ */

static bool elf_has_build_id(Elf *elf, const struct module *mod) {
  const void *id;
  ssize_t bytes = dwelf_elf_gnu_build_id(elf, &id);
  return bytes > 0 && (size_t)bytes == mod->build_id_bytes &&
         memcmp(id, mod->build_id, mod->build_id_bytes) == 0;
}

/* A deleted file's path is only trusted when a build id proves it is the
 * same file; otherwise a file without a known id is taken as it is. */
static bool elf_matches(Elf *elf, const struct module *mod) {
  if (mod->build_id_bytes > 0)
    return elf_has_build_id(elf, mod);
  return !mod->deleted;
}

/* The vdso exists only in memory; libelf reads a private copy of it. */
static Elf *vdso_elf(struct module *mod) {
  size_t bytes = mod->high - mod->low;
  if (mod->image == NULL && (mod->image = malloc(bytes)) != NULL)
    memcpy(mod->image, (const void *)mod->low, bytes);
  return mod->image ? elf_memory(mod->image, bytes) : NULL;
}

static int find_elf(Dwfl_Module *dwmod, void **userdata, const char *name,
                    Dwarf_Addr base, char **file_name, Elf **elfp) {
  (void)dwmod, (void)name, (void)base;
  struct module *mod = *userdata;
  if (mod == NULL)
    return -1;
  if (mod->vdso) {
    *elfp = vdso_elf(mod);
    return -1;
  }
  int fd = open_regular(mod->path);
  Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (elf == NULL || !elf_matches(elf, mod) ||
      (*file_name = strdup(mod->path)) == NULL) {
    elf_end(elf);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *elfp = elf;
  return fd;
}

/* Opens `path` if it is an ELF file whose build id is `want`'s. */
static int open_if_same_build_id(const char *path, const struct module *want,
                                 char **debuginfo_file_name) {
  int fd = open_regular(path);
  Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
  bool same = elf != NULL && elf_has_build_id(elf, want);
  elf_end(elf);
  if (same && (*debuginfo_file_name = strdup(path)) != NULL)
    return fd;
  if (fd >= 0)
    close(fd);
  return -1;
}

/* The places GDB and libdwfl look for a .gnu_debuglink file, next to the
 * binary, in its .debug/ directory and under /usr/lib/debug. A file found
 * there is used only when its build id equals the module's, which stands in
 * for the link's CRC check; modules without a build id get no match. */
static int find_by_debuglink(const struct module *mod, const char *file_name,
                             const char *debuglink,
                             char **debuginfo_file_name) {
  static const char *const roots[] = {"", "", "/usr/lib/debug"};
  static const char *const subdirs[] = {"/", "/.debug/", "/"};
  const char *slash = strrchr(file_name, '/');
  int dir_len = slash ? (int)(slash - file_name) : 0;
  char path[PATH_MAX];
  int fd = -1;
  for (size_t i = 0; fd < 0 && mod->build_id_bytes && slash && i < 3; i++) {
    int n = snprintf(path, sizeof path, "%s%.*s%s%s", roots[i], dir_len,
                     file_name, subdirs[i], debuglink);
    if (n > 0 && (size_t)n < sizeof path && strcmp(path, file_name) != 0)
      fd = open_if_same_build_id(path, mod, debuginfo_file_name);
  }
  return fd;
}

/* First /usr/lib/debug/.build-id/xx/yyyy.debug (libdwfl's build-id search,
 * which never calls debuginfod), then the .gnu_debuglink places. */
static int find_debuginfo(Dwfl_Module *dwmod, void **userdata, const char *name,
                          Dwarf_Addr base, const char *file_name,
                          const char *debuglink, GElf_Word crc,
                          char **debuginfo_file_name) {
  int fd = dwfl_build_id_find_debuginfo(dwmod, userdata, name, base, file_name,
                                        debuglink, crc, debuginfo_file_name);
  if (fd >= 0 || file_name == NULL || debuglink == NULL || *userdata == NULL)
    return fd;
  return find_by_debuglink(*userdata, file_name, debuglink,
                           debuginfo_file_name);
}

static const Dwfl_Callbacks callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = find_debuginfo,
};

/* Returns 0 or ENOMEM. */
static int report_modules(symbols_t *s) {
  if ((s->dwfl = dwfl_begin(&callbacks)) == NULL)
    return ENOMEM;
  dwfl_report_begin(s->dwfl);
  for (size_t i = 0; i < s->nmodules; i++) {
    struct module *mod = &s->modules[i];
    Dwfl_Module *dwmod =
        dwfl_report_module(s->dwfl, mod->path, mod->low, mod->high);
    void **userdata;
    if (dwmod != NULL &&
        dwfl_module_info(dwmod, &userdata, 0, 0, 0, 0, 0, 0) != NULL) {
      *userdata = mod;
      mod->dwmod = dwmod;
    }
  }
  return dwfl_report_end(s->dwfl, NULL, NULL) == 0 ? 0 : ENOMEM;
}

/* ---- function names: a sorted index of each module's symbol table ---- */

static uint32_t binding_rank(const GElf_Sym *sym) {
  int bind = GELF_ST_BIND(sym->st_info);
  return bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
}

/* Aliases share an address (qsort and __GI_qsort, malloc and __libc_malloc,
 * signal and ssignal); the first in this order names them all: global over
 * weak over local, then the shortest name. */
static int by_addr_then_rank(const void *a, const void *b) {
  const struct fn_symbol *x = a, *y = b;
  if (x->addr != y->addr)
    return x->addr < y->addr ? -1 : 1;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  size_t xlen = strlen(x->name), ylen = strlen(y->name);
  return xlen != ylen ? (xlen < ylen ? -1 : 1) : strcmp(x->name, y->name);
}

static bool is_function(const GElf_Sym *sym, GElf_Word shndx,
                        const char *name) {
  int type = GELF_ST_TYPE(sym->st_info);
  return name != NULL && name[0] != '\0' && shndx != SHN_UNDEF &&
         shndx != (GElf_Word)-1 && (type == STT_FUNC || type == STT_GNU_IFUNC);
}

/* Keeps the best-ranked name per address (the first after sorting). */
static size_t drop_aliases(struct fn_symbol *v, size_t n) {
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (kept == 0 || v[kept - 1].addr != v[i].addr)
      v[kept++] = v[i];
  return kept;
}

/* Appends symbol `i` of the module's table if it names a function. */
static void add_symbol(struct module *mod, Dwfl_Module *dwmod, int i) {
  GElf_Sym sym;
  GElf_Addr addr;
  GElf_Word shndx;
  const char *name =
      dwfl_module_getsym_info(dwmod, i, &sym, &addr, &shndx, NULL, NULL);
  if (is_function(&sym, shndx, name))
    mod->fns[mod->nfns++] = (struct fn_symbol){
        addr, name, sym.st_size > UINT32_MAX ? 0 : (uint32_t)sym.st_size,
        binding_rank(&sym)};
}

static void index_symbols(struct module *mod, Dwfl_Module *dwmod) {
  mod->symbols_indexed = true;
  int n = dwfl_module_getsymtab(dwmod);
  if (n <= 0 || (mod->fns = malloc((size_t)n * sizeof *mod->fns)) == NULL)
    return;
  for (int i = 0; i < n; i++)
    add_symbol(mod, dwmod, i);
  qsort(mod->fns, mod->nfns, sizeof *mod->fns, by_addr_then_rank);
  mod->nfns = drop_aliases(mod->fns, mod->nfns);
  if (mod->nfns == 0) {
    free(mod->fns);
    mod->fns = NULL;
    return;
  }
  struct fn_symbol *fit = realloc(mod->fns, mod->nfns * sizeof *mod->fns);
  mod->fns = fit ? fit : mod->fns;
}

/* Index of the first element of sorted array `base` (n elements of
 * `stride` bytes) whose uint64_t at `key_offset` is above `pc`. */
static size_t first_above(const void *base, size_t n, size_t stride,
                          size_t key_offset, uint64_t pc) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t key;
    memcpy(&key, (const char *)base + mid * stride + key_offset, sizeof key);
    if (key <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Index of the first symbol above `pc`. */
static size_t symbols_above(const struct fn_symbol *v, size_t n, uint64_t pc) {
  return first_above(v, n, sizeof *v, offsetof(struct fn_symbol, addr), pc);
}

/* How far back a lookup looks for an enclosing entry when the nearest one
 * ends below pc (a symbol or function nested in a bigger one). */
#define NESTED_LOOKBACK 8

/* The function symbol whose extent holds `pc`; a sizeless symbol holds
 * everything up to the next symbol. NULL inside gaps, e.g. the static
 * functions of a library that ships only .dynsym. */
static const char *function_at(const struct module *mod, uint64_t pc) {
  size_t above = symbols_above(mod->fns, mod->nfns, pc);
  for (size_t i = above; i > 0 && above - i < NESTED_LOOKBACK; i--) {
    const struct fn_symbol *f = &mod->fns[i - 1];
    if (f->size_bytes == 0 ? i == above : pc - f->addr < f->size_bytes)
      return f->name;
  }
  return NULL;
}

/* ---- inline call sites: a per-CU index of function extents ------------ */

static struct cu_index *cu_slot(struct cu_index *slots, size_t nslots,
                                const void *key) {
  size_t i = ((uintptr_t)key * 0x9e3779b97f4a7c15u) >> 24 & (nslots - 1);
  while (slots[i].cu.addr != NULL && slots[i].cu.addr != key)
    i = (i + 1) & (nslots - 1);
  return &slots[i];
}

static bool cu_table_grow(struct cu_table *t) {
  size_t nslots = t->nslots ? 2 * t->nslots : 64;
  struct cu_index *slots = calloc(nslots, sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < t->nslots; i++)
    if (t->slots[i].cu.addr != NULL)
      *cu_slot(slots, nslots, t->slots[i].cu.addr) = t->slots[i];
  free(t->slots);
  t->slots = slots;
  t->nslots = nslots;
  return true;
}

/* dwarf_getfuncs callback: records each range of a function with code. */
static int add_function_ranges(Dwarf_Die *fn, void *arg) {
  struct cu_index *ci = arg;
  Dwarf_Addr base, low, high;
  for (ptrdiff_t at = 0; (at = dwarf_ranges(fn, at, &base, &low, &high)) > 0;) {
    if (!reserve((void **)&ci->ranges, &ci->cap, ci->nranges,
                 sizeof *ci->ranges, 16))
      return DWARF_CB_ABORT;
    ci->ranges[ci->nranges++] =
        (struct fn_range){low, high, dwarf_dieoffset(fn)};
  }
  return DWARF_CB_OK;
}

static int by_low(const void *a, const void *b) {
  const struct fn_range *x = a, *y = b;
  return x->low < y->low ? -1 : x->low > y->low;
}

/* The function index of `cu`, built on first use; NULL on OOM. */
static const struct cu_index *cu_index_of(struct cu_table *t, Dwarf_Die *cu) {
  if (4 * (t->count + 1) > 3 * t->nslots && !cu_table_grow(t))
    return NULL;
  struct cu_index *ci = cu_slot(t->slots, t->nslots, cu->addr);
  if (ci->cu.addr != NULL)
    return ci;
  *ci = (struct cu_index){.cu = *cu};
  t->count++;
  dwarf_getfuncs(cu, add_function_ranges, ci, 0);
  qsort(ci->ranges, ci->nranges, sizeof *ci->ranges, by_low);
  return ci;
}

/* Index of the first range starting above `pc`. */
static size_t ranges_above(const struct fn_range *v, size_t n, Dwarf_Addr pc) {
  _Static_assert(sizeof(Dwarf_Addr) == sizeof(uint64_t), "64-bit addresses");
  return first_above(v, n, sizeof *v, offsetof(struct fn_range, low), pc);
}

/* The concrete function DIE whose code holds `pc`. */
static bool function_die(const struct cu_index *ci, Dwarf_Addr pc,
                         Dwarf_Die *out) {
  size_t above = ranges_above(ci->ranges, ci->nranges, pc);
  for (size_t i = above; i > 0 && above - i < NESTED_LOOKBACK; i--)
    if (pc < ci->ranges[i - 1].high)
      return dwarf_offdie(dwarf_cu_getdwarf(ci->cu.cu), ci->ranges[i - 1].die,
                          out) != NULL;
  return false;
}

/* The outermost inlined call holding `pc` inside `scope`, looking through
 * lexical blocks. */
static bool outermost_inlined(Dwarf_Die *scope, Dwarf_Addr pc, Dwarf_Die *out) {
  Dwarf_Die child;
  if (dwarf_child(scope, &child) != 0)
    return false;
  do {
    int tag = dwarf_tag(&child);
    if ((tag != DW_TAG_inlined_subroutine && tag != DW_TAG_lexical_block) ||
        dwarf_haspc(&child, pc) != 1)
      continue;
    *out = child;
    return tag == DW_TAG_inlined_subroutine ||
           outermost_inlined(&child, pc, out);
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
}

/* Where the inlined subroutine `inl` was called from, as file:line. */
static void call_site(Dwarf_Die *inl, const char **file, int *line) {
  Dwarf_Attribute attr;
  Dwarf_Word file_index, call_line;
  Dwarf_Die cu;
  Dwarf_Files *files;
  size_t nfiles;
  if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &file_index) ||
      dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &call_line) ||
      dwarf_diecu(inl, &cu, NULL, NULL) == NULL ||
      dwarf_getsrcfiles(&cu, &files, &nfiles) || file_index >= nfiles ||
      call_line > INT_MAX)
    return;
  const char *call_file = dwarf_filesrc(files, file_index, NULL, NULL);
  if (call_file != NULL) {
    *file = call_file;
    *line = (int)call_line;
  }
}

/*
 * The line table describes the innermost inlined body at `addr`, but the
 * frame is named after the symbol that physically holds it, the outermost
 * function. To keep name and line consistent, an address inside inlined
 * code is placed at the call site of its outermost inlined call, which is a
 * line of that function. (dwarf_getscopes() is no help: it stops at the
 * innermost inlined call and rescans the CU on every call.)
 */
static void outer_call_site(symbols_t *s, Dwfl_Module *dwmod, Dwarf_Addr addr,
                            const char **file, int *line) {
  Dwarf_Addr bias;
  Dwarf_Die *cu = dwfl_module_addrdie(dwmod, addr, &bias);
  const struct cu_index *ci = cu ? cu_index_of(&s->cus, cu) : NULL;
  Dwarf_Die fn, inl;
  if (ci != NULL && function_die(ci, addr - bias, &fn) &&
      outermost_inlined(&fn, addr - bias, &inl))
    call_site(&inl, file, line);
}

/* ---- lookup ----------------------------------------------------------- */

/* DWARF names files relative to the compilation directory when the compiler
 * was given a relative path; pprof and people want the absolute one. */
static const char *intern_path(symbols_t *s, const char *comp_dir,
                               const char *file) {
  char path[PATH_MAX];
  if (file[0] == '/' || comp_dir == NULL || comp_dir[0] != '/' ||
      snprintf(path, sizeof path, "%s/%s", comp_dir, file) >= (int)sizeof path)
    return intern(&s->strings, file);
  return intern(&s->strings, path);
}

static void source_line(symbols_t *s, Dwfl_Module *dwmod, Dwarf_Addr addr,
                        symbols_frame_t *out) {
  Dwfl_Line *row = dwfl_module_getsrc(dwmod, addr);
  int line = 0;
  const char *file = row ? dwfl_lineinfo(row, NULL, &line, 0, 0, 0) : NULL;
  if (file == NULL)
    return;
  outer_call_site(s, dwmod, addr, &file, &line);
  out->file = intern_path(s, dwfl_line_comp_dir(row), file);
  out->line = out->file && line > 0 ? line : 0;
}
/* A symbol name without its ELF symbol version ("__libc_start_main@@GLIBC_2.34"
 * → "__libc_start_main"): the version is linker detail that only clutters
 * a profile. The result lives in a static buffer until the next call. */
static const char *unversioned(const char *name) {
  static char buf[512];
  const char *at = name ? strchr(name, '@') : NULL;
  if (at == NULL || at == name || (size_t)(at - name) >= sizeof buf)
    return name;
  memcpy(buf, name, (size_t)(at - name));
  buf[at - name] = '\0';
  return buf;
}


static void resolve(symbols_t *s, uint64_t addr, symbols_frame_t *out) {
  out->mapping = mapping_index(s, addr);
  /* Code outside every file-backed executable mapping (JIT, anonymous
   * pages in a hole inside a module's address range) is nobody's: libdwfl
   * would name it after the module whose range spans the hole. */
  if (out->mapping < 0)
    return;
  Dwfl_Module *dwmod = dwfl_addrmodule(s->dwfl, addr);
  void **userdata;
  if (dwmod == NULL ||
      dwfl_module_info(dwmod, &userdata, 0, 0, 0, 0, 0, 0) == NULL)
    return;
  struct module *mod = *userdata;
  if (!mod->symbols_indexed)
    index_symbols(mod, dwmod);
  out->function = intern(&s->strings, unversioned(function_at(mod, addr)));
  source_line(s, dwmod, addr, out);
}

/* ---- public ----------------------------------------------------------- */

symbols_t *symbols_open(void) {
  symbols_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  elf_version(EV_CURRENT);
  int err = read_maps(s);
  if (err == 0)
    err = read_build_ids(s);
  if (err == 0)
    err = report_modules(s);
  if (err != 0) {
    symbols_close(s);
    errno = err;
    return NULL;
  }
  return s;
}

const symbols_mapping_t *symbols_mappings(symbols_t *s, size_t *n) {
  *n = s->nmappings;
  return s->mappings;
}

void symbols_lookup(symbols_t *s, uint64_t addr, symbols_frame_t *out) {
  *out = (symbols_frame_t){NULL, NULL, 0, -1};
  if (addr < LOWEST_MAPPED_ADDR)
    return;
  const struct cache_entry *e = cache_find(&s->cache, addr);
  if (e != NULL) {
    *out = (symbols_frame_t){e->function, e->file, e->line, e->mapping};
    return;
  }
  resolve(s, addr, out);
  cache_put(&s->cache, addr, out);
}

static size_t index_bytes(const symbols_t *s) {
  size_t bytes = s->cus.nslots * sizeof *s->cus.slots;
  for (size_t i = 0; i < s->cus.nslots; i++)
    bytes += s->cus.slots[i].cap * sizeof *s->cus.slots[i].ranges;
  for (size_t i = 0; i < s->nmodules; i++)
    bytes += s->modules[i].nfns * sizeof *s->modules[i].fns +
             (s->modules[i].image ? s->modules[i].high - s->modules[i].low : 0);
  return bytes;
}

/* Bytes of `dwmod`'s debug sections that libdw decompressed into the heap
 * (sections read in place from the mapped file cost no heap). Looks only at
 * DWARF already loaded, so that asking never loads it. */
static size_t decompressed_bytes(Dwfl_Module *dwmod) {
  Dwarf_Addr dwbias = (Dwarf_Addr)-1;
  dwfl_module_info(dwmod, NULL, NULL, NULL, &dwbias, NULL, NULL, NULL);
  Dwarf *dw =
      dwbias == (Dwarf_Addr)-1 ? NULL : dwfl_module_getdwarf(dwmod, &dwbias);
  Elf *elf = dw ? dwarf_getelf(dw) : NULL;
  size_t raw_bytes = 0, shstrndx, bytes = 0;
  const char *raw = elf ? elf_rawfile(elf, &raw_bytes) : NULL;
  if (raw == NULL || elf_getshdrstrndx(elf, &shstrndx) != 0)
    return 0;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
    GElf_Shdr shdr;
    const char *name = gelf_getshdr(scn, &shdr)
                           ? elf_strptr(elf, shstrndx, shdr.sh_name)
                           : NULL;
    Elf_Data *data =
        name && strstr(name, "debug_") ? elf_getdata(scn, NULL) : NULL;
    if (data && data->d_buf &&
        ((const char *)data->d_buf < raw ||
         (const char *)data->d_buf >= raw + raw_bytes))
      bytes += data->d_size;
  }
  return bytes;
}

/*
 * What libdw allocates per CU it decodes: a per-row cost for the line table
 * and a per-CU cost (abbreviations, file table, unit headers). Fitted with
 * glibc's mallinfo2() over 300..10k libc addresses (197..1271 CUs,
 * 166k..284k rows): 58 bytes per row and ~1.9 KiB per CU.
 */
#define LINE_ROW_BYTES 60
#define CU_BYTES 2048

static size_t cu_bytes(const struct cu_table *t) {
  size_t bytes = 0;
  for (size_t i = 0; i < t->nslots; i++) {
    Dwarf_Die cu = t->slots[i].cu;
    Dwarf_Lines *lines;
    size_t nlines;
    if (cu.addr != NULL && dwarf_getsrclines(&cu, &lines, &nlines) == 0)
      bytes += CU_BYTES + nlines * LINE_ROW_BYTES;
  }
  return bytes;
}

/* An estimate of libdw's heap for this view: the debug sections it
 * decompressed and the CUs it decoded. It leaves out libdw's per-module
 * bookkeeping, so it reads 5-10% low (31.1 MB estimated, 32.4 MB measured
 * after 10k lookups spread over all of libc, with its debug file). */
static size_t libdw_bytes(const symbols_t *s) {
  size_t bytes = cu_bytes(&s->cus);
  for (size_t i = 0; i < s->nmodules; i++)
    if (s->modules[i].dwmod != NULL)
      bytes += decompressed_bytes(s->modules[i].dwmod);
  return bytes;
}

static size_t own_bytes(const symbols_t *s) {
  return sizeof *s + s->mappings_cap * sizeof *s->mappings +
         s->modules_cap * sizeof *s->modules +
         s->strings.nslots * sizeof *s->strings.slots + s->strings.chunk_bytes +
         s->cache.nslots * sizeof *s->cache.slots + index_bytes(s);
}

size_t symbols_memory_bytes(const symbols_t *s) {
  return own_bytes(s) + libdw_bytes(s);
}

void symbols_close(symbols_t *s) {
  if (s == NULL)
    return;
  dwfl_end(s->dwfl);
  for (size_t i = 0; i < s->nmodules; i++) {
    free(s->modules[i].image);
    free(s->modules[i].fns);
  }
  for (size_t i = 0; i < s->cus.nslots; i++)
    free(s->cus.slots[i].ranges);
  free(s->cus.slots);
  free(s->modules);
  free(s->mappings);
  strtab_free(&s->strings);
  free(s->cache.slots);
  free(s);
}
