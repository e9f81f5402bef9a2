/*
 * test_symbols — checks profile/symbols against the running test process:
 * its own functions, libc, a dlopen'ed library, the vdso, the main
 * executable's build id (recomputed here by parsing the ELF file itself),
 * unmapped addresses, and odd mappings (deleted files, a deleted library
 * whose path now holds a different ELF file, a path near PATH_MAX).
 *
 * Usage: test_symbols --lines      (built with -g: file:line must be right)
 *        test_symbols --no-lines   (built without -g: names only)
 * Exit 0 = pass; otherwise each failure is one line on stderr.
 *
 * DEBUGINFOD_URLS is pointed at a closed port before anything is looked up;
 * the test fails if libdebuginfod was ever loaded, which is the only way
 * libdwfl reaches a debuginfod server.
 */
#define _GNU_SOURCE
#include "symbols.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int failures;
static bool expect_lines;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "test_symbols:%d: %s: ", __LINE__, #cond);               \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static const char *str(const char *s) { return s ? s : "(null)"; }

static bool ends_with(const char *s, const char *suffix) {
  size_t n = s ? strlen(s) : 0, k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- functions of our own, with their source line ranges -------------- */

static volatile uintptr_t captured_pc;
static volatile int captured_line;

__attribute__((noipa)) static void capture_return_address(int line) {
  captured_pc = (uintptr_t)__builtin_return_address(0);
  captured_line = line;
}

enum { OUTER_FIRST_LINE = __LINE__ };
__attribute__((noipa)) int symbols_test_outer(int n) {
  int sum = 0;
  for (int i = 0; i < n; i++)
    sum += i * n;
  capture_return_address(__LINE__);
  return sum + (int)(captured_pc & 1);
}
enum { OUTER_LAST_LINE = __LINE__ };

/* Two levels of inlining: the line table places the capture in
 * inner_capture(); the frame must name the outer function and the line in
 * it that starts the inlined chain, `line`. */
static inline __attribute__((always_inline)) void inner_capture(int line) {
  capture_return_address(line);
}

static inline __attribute__((always_inline)) void middle_capture(int line) {
  inner_capture(line);
  captured_pc += 0; /* keeps the call from being the last instruction */
}

__attribute__((noipa)) int symbols_test_inliner(int n) {
  middle_capture(__LINE__);
  return n + (int)(captured_pc & 1);
}

/* ---- ELF parsing done here, independently of the module --------------- */

static void *read_file(const char *path, size_t *bytes) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  void *buf = NULL;
  if (fd >= 0 && fstat(fd, &st) == 0 && (buf = malloc(st.st_size)) != NULL &&
      pread(fd, buf, st.st_size, 0) != st.st_size) {
    free(buf);
    buf = NULL;
  }
  if (fd >= 0)
    close(fd);
  *bytes = buf ? (size_t)st.st_size : 0;
  return buf;
}

static const Elf64_Shdr *section(const unsigned char *img, size_t bytes,
                                 Elf64_Word type, size_t nth) {
  const Elf64_Ehdr *eh = (const void *)img;
  if (bytes < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > bytes)
    return NULL;
  const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff);
  for (size_t i = 0; i < eh->e_shnum; i++)
    if (sh[i].sh_type == type && nth-- == 0)
      return &sh[i];
  return NULL;
}

/* Walks every SHT_NOTE section for NT_GNU_BUILD_ID; "" when there is none. */
static void build_id_hex(const unsigned char *img, size_t bytes, char *hex) {
  hex[0] = '\0';
  const Elf64_Shdr *sh;
  for (size_t k = 0; (sh = section(img, bytes, SHT_NOTE, k)) != NULL; k++) {
    size_t align = sh->sh_addralign == 8 ? 8 : 4;
    for (size_t at = sh->sh_offset;
         at + sizeof(Elf64_Nhdr) <= sh->sh_offset + sh->sh_size;) {
      const Elf64_Nhdr *n = (const void *)(img + at);
      size_t desc = (at + sizeof *n + n->n_namesz + align - 1) & ~(align - 1);
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
          memcmp(n + 1, "GNU", 4) == 0) {
        for (size_t i = 0; i < n->n_descsz; i++)
          sprintf(hex + 2 * i, "%02x", img[desc + i]);
        return;
      }
      at = (desc + n->n_descsz + align - 1) & ~(align - 1);
    }
  }
}

/* st_value of a dynamic symbol of an in-memory ELF image, 0 if absent. */
static uint64_t dynsym_value(const unsigned char *img, size_t bytes,
                             const char *name) {
  const Elf64_Shdr *dynsym = section(img, bytes, SHT_DYNSYM, 0);
  if (dynsym == NULL)
    return 0;
  const Elf64_Shdr *strtab =
      (const Elf64_Shdr *)(img + ((const Elf64_Ehdr *)img)->e_shoff) +
      dynsym->sh_link;
  const Elf64_Sym *sym = (const void *)(img + dynsym->sh_offset);
  for (size_t i = 0; i < dynsym->sh_size / sizeof *sym; i++)
    if (strcmp((const char *)img + strtab->sh_offset + sym[i].st_name, name) ==
        0)
      return sym[i].st_value;
  return 0;
}

/* ---- helpers over the module ------------------------------------------ */

static const symbols_mapping_t *mapping_of(symbols_t *s,
                                           const symbols_frame_t *f) {
  size_t n;
  const symbols_mapping_t *m = symbols_mappings(s, &n);
  return f->mapping >= 0 && (size_t)f->mapping < n ? &m[f->mapping] : NULL;
}

static const symbols_mapping_t *mapping_named(symbols_t *s, const char *path) {
  size_t n;
  const symbols_mapping_t *m = symbols_mappings(s, &n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].path, path) == 0)
      return &m[i];
  return NULL;
}

/* ---- the checks ------------------------------------------------------- */

static void check_mappings_sorted(symbols_t *s) {
  size_t n;
  const symbols_mapping_t *m = symbols_mappings(s, &n);
  CHECK(n >= 3, "only %zu executable mappings", n);
  for (size_t i = 0; i < n; i++) {
    CHECK(m[i].start < m[i].limit, "empty mapping %zu", i);
    CHECK(i == 0 || m[i - 1].limit <= m[i].start, "mapping %zu unsorted", i);
    CHECK(m[i].path != NULL && m[i].build_id != NULL, "mapping %zu", i);
    CHECK(!ends_with(m[i].path, " (deleted)"), "%s", m[i].path);
  }
}

static void check_own_function(symbols_t *s) {
  symbols_test_outer(3);
  symbols_frame_t f, g;
  symbols_lookup(s, captured_pc - 1, &f);
  CHECK(f.function && strcmp(f.function, "symbols_test_outer") == 0,
        "return address resolved to %s", str(f.function));
  CHECK(mapping_of(s, &f) != NULL, "own code outside every mapping");
  symbols_lookup(s, (uintptr_t)symbols_test_outer + 4, &g);
  CHECK(g.function == f.function, "entry+4 resolved to %s (interned %p/%p)",
        str(g.function), (void *)g.function, (void *)f.function);
  if (expect_lines) {
    CHECK(ends_with(f.file, "/test_symbols.c"), "file %s", str(f.file));
    CHECK(f.line > OUTER_FIRST_LINE && f.line < OUTER_LAST_LINE,
          "line %lld outside %d..%d", (long long)f.line, OUTER_FIRST_LINE,
          OUTER_LAST_LINE);
    CHECK(f.line == captured_line, "return address on line %lld, call on %d",
          (long long)f.line, captured_line);
  } else {
    CHECK(f.file == NULL && f.line == 0, "line info %s:%lld without -g",
          str(f.file), (long long)f.line);
  }
}

static void check_inlined_call_site(symbols_t *s) {
  symbols_test_inliner(1);
  symbols_frame_t f;
  symbols_lookup(s, captured_pc - 1, &f);
  CHECK(f.function && strcmp(f.function, "symbols_test_inliner") == 0,
        "inlined capture resolved to %s", str(f.function));
  if (expect_lines)
    CHECK(ends_with(f.file, "/test_symbols.c") && f.line == captured_line,
          "inlined code placed at %s:%lld, want the call on line %d",
          str(f.file), (long long)f.line, captured_line);
}

static void check_main_executable_build_id(symbols_t *s) {
  char exe[PATH_MAX], hex[2 * 64 + 1] = "?";
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = '\0';
  size_t bytes;
  unsigned char *img = read_file(exe, &bytes);
  if (img != NULL)
    build_id_hex(img, bytes, hex);
  free(img);
  symbols_frame_t f;
  symbols_lookup(s, (uintptr_t)symbols_test_outer, &f);
  const symbols_mapping_t *m = mapping_of(s, &f);
  CHECK(m && strcmp(m->path, exe) == 0, "exe mapping %s, want %s",
        m ? m->path : "none", exe);
  CHECK(hex[0] != '\0' && hex[0] != '?', "no build id in %s", exe);
  CHECK(m && strcmp(m->build_id, hex) == 0, "build id %s, file says %s",
        m ? m->build_id : "none", hex);
}

static void check_libc(symbols_t *s) {
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *fn = libc ? dlsym(libc, "qsort") : NULL;
  CHECK(fn != NULL, "no qsort in libc.so.6: %s", dlerror());
  symbols_frame_t f;
  symbols_lookup(s, (uintptr_t)fn + 3, &f);
  const symbols_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function && strcmp(f.function, "qsort") == 0, "qsort+3 is %s",
        str(f.function));
  CHECK(m && strstr(m->path, "/libc.so.6"), "qsort in %s",
        m ? m->path : "no mapping");
  CHECK(m && strlen(m->build_id) == 40, "libc build id '%s'",
        m ? m->build_id : "");
  if (libc)
    dlclose(libc);
}

static void check_dlopened(symbols_t *s, void *deflate_fn) {
  symbols_frame_t f;
  symbols_lookup(s, (uintptr_t)deflate_fn + 8, &f);
  const symbols_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function && strcmp(f.function, "deflate") == 0, "deflate+8 is %s",
        str(f.function));
  CHECK(m && strstr(m->path, "/libz.so"), "deflate in %s",
        m ? m->path : "no mapping");
}

static void check_vdso(symbols_t *s) {
  const unsigned char *img = (const void *)getauxval(AT_SYSINFO_EHDR);
  const symbols_mapping_t *m = mapping_named(s, "[vdso]");
  if (img == NULL) { /* e.g. under valgrind, which maps no vdso */
    fprintf(stderr, "test_symbols: note: this process has no vdso\n");
    CHECK(m == NULL, "a [vdso] mapping without AT_SYSINFO_EHDR");
    return;
  }
  CHECK(m != NULL, "the vdso at %p is not among the mappings", (void *)img);
  if (m == NULL)
    return;
  char hex[2 * 64 + 1];
  build_id_hex(img, m->limit - m->start, hex);
  CHECK(strcmp(m->build_id, hex) == 0, "vdso build id %s, image says %s",
        m->build_id, hex);
  uint64_t value =
      dynsym_value(img, m->limit - m->start, "__vdso_clock_gettime");
  symbols_frame_t f;
  symbols_lookup(s, (uintptr_t)img + value + 2, &f);
  CHECK(value && f.function && strstr(f.function, "clock_gettime"),
        "vdso clock_gettime resolved to %s", str(f.function));
}

static void check_unmapped(symbols_t *s) {
  /* ...ff600000 is the [vsyscall] page: executable, but no ELF file. */
  static const uint64_t addrs[] = {0,
                                   0x10,
                                   0xfff,
                                   UINT64_MAX,
                                   0xffffffffff600000 - 1,
                                   0xffffffffff600000 + 1};
  for (size_t i = 0; i < sizeof addrs / sizeof *addrs; i++) {
    symbols_frame_t f;
    symbols_lookup(s, addrs[i], &f);
    CHECK(f.function == NULL && f.file == NULL && f.line == 0 &&
              f.mapping == -1,
          "0x%llx gave %s mapping %d", (unsigned long long)addrs[i],
          str(f.function), f.mapping);
  }
  void *anon = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  symbols_t *t = symbols_open();
  symbols_frame_t f;
  symbols_lookup(t, (uintptr_t)anon + 100, &f);
  CHECK(f.function == NULL && f.mapping == -1, "anonymous exec gave %s/%d",
        str(f.function), f.mapping);
  symbols_close(t);
  munmap(anon, 4096);
}

static void check_cache(symbols_t *s) {
  symbols_frame_t a, b;
  symbols_lookup(s, captured_pc - 1, &a);
  symbols_lookup(s, captured_pc - 1, &b);
  CHECK(a.function == b.function && a.file == b.file && a.line == b.line &&
            a.mapping == b.mapping,
        "cached answer differs");
  size_t before = symbols_memory_bytes(s);
  for (int i = 0; i < 2000; i++)
    symbols_lookup(s, (uintptr_t)symbols_test_outer + (uintptr_t)(i % 40), &a);
  CHECK(symbols_memory_bytes(s) >= before, "memory shrank");
  CHECK(symbols_memory_bytes(s) < 64u << 20, "view holds %zu bytes",
        symbols_memory_bytes(s));
}

/* ---- odd mappings ----------------------------------------------------- */

static char tmpdir[] = "/tmp/test_symbols.XXXXXX";

static bool copy_file(const char *from, const char *to) {
  size_t bytes;
  void *data = read_file(from, &bytes);
  int fd = data ? open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700) : -1;
  bool ok = fd >= 0 && write(fd, data, bytes) == (ssize_t)bytes;
  if (fd >= 0)
    close(fd);
  free(data);
  return ok;
}

/* A path of about 3000 bytes with spaces, made of nested directories. */
static void long_path(char *path, size_t cap) {
  char part[201];
  memset(part, 'd', 200);
  part[200] = '\0';
  part[7] = ' ';
  snprintf(path, cap, "%s", tmpdir);
  for (int i = 0; i < 14; i++) {
    size_t n = strlen(path);
    snprintf(path + n, cap - n, "/%s", part);
    mkdir(path, 0700);
  }
  strncat(path, "/code (deleted) x", cap - strlen(path) - 1);
}

static void *map_exec_file(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  void *p = MAP_FAILED;
  if (fd >= 0 && ftruncate(fd, 8192) == 0)
    p = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  if (fd >= 0)
    close(fd);
  return p == MAP_FAILED ? NULL : p;
}

/* Deleted files keep their path; a path that now holds a different ELF
 * file (this test's executable where a copy of libz was) must not lend it
 * its symbols. */
static void check_odd_mappings(void *deflate_fn) {
  char deleted[PATH_MAX], lib[PATH_MAX], longp[PATH_MAX];
  snprintf(deleted, sizeof deleted, "%s/gone", tmpdir);
  snprintf(lib, sizeof lib, "%s/libzcopy.so", tmpdir);
  long_path(longp, sizeof longp);
  void *gone = map_exec_file(deleted), *odd = map_exec_file(longp);
  Dl_info libz;
  bool copied = dladdr(deflate_fn, &libz) && copy_file(libz.dli_fname, lib);
  void *h = copied ? dlopen(lib, RTLD_NOW | RTLD_LOCAL) : NULL;
  void *fn = h ? dlsym(h, "deflate") : NULL;
  CHECK(gone && odd && fn, "setup failed: %s", dlerror());
  if (!gone || !odd || !fn)
    return;
  unlink(deleted);
  unlink(lib);
  copy_file("/proc/self/exe", lib);

  symbols_t *s = symbols_open();
  CHECK(s != NULL, "symbols_open failed with odd mappings");
  if (s == NULL)
    return;
  symbols_frame_t f;
  symbols_lookup(s, (uintptr_t)gone + 10, &f);
  CHECK(f.function == NULL && mapping_of(s, &f) &&
            strcmp(mapping_of(s, &f)->path, deleted) == 0,
        "deleted file: %s in %s", str(f.function),
        mapping_of(s, &f) ? mapping_of(s, &f)->path : "no mapping");
  symbols_lookup(s, (uintptr_t)odd + 10, &f);
  CHECK(mapping_of(s, &f) && strcmp(mapping_of(s, &f)->path, longp) == 0,
        "long path mapping lost");
  symbols_lookup(s, (uintptr_t)fn + 8, &f);
  const symbols_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function == NULL, "replaced library lent name %s", f.function);
  CHECK(m && strcmp(m->path, lib) == 0 && strlen(m->build_id) == 40,
        "deleted library mapping %s id '%s'", m ? m->path : "none",
        m ? m->build_id : "");
  symbols_close(s);
  unlink(lib);
}

/* libdwfl reaches debuginfod only through a dlopen'ed libdebuginfod. */
static void check_no_debuginfod(double elapsed_ms) {
  FILE *maps = fopen("/proc/self/maps", "re");
  char line[8192];
  bool loaded = false;
  while (maps && fgets(line, sizeof line, maps))
    loaded = loaded || strstr(line, "libdebuginfod") != NULL;
  if (maps)
    fclose(maps);
  CHECK(maps && !loaded, "libdebuginfod was loaded");
  CHECK(elapsed_ms < 5000, "symbolization took %.0f ms", elapsed_ms);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 2 ||
      (strcmp(argv[1], "--lines") != 0 && strcmp(argv[1], "--no-lines") != 0)) {
    fprintf(stderr, "usage: %s --lines|--no-lines\n", argv[0]);
    return 2;
  }
  expect_lines = strcmp(argv[1], "--lines") == 0;
  setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1", 1);
  void *z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  void *deflate_fn = z ? dlsym(z, "deflate") : NULL;
  CHECK(deflate_fn != NULL, "cannot dlopen libz.so.1: %s", dlerror());
  CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");

  double t0 = now_ms();
  symbols_t *s = symbols_open();
  CHECK(s != NULL, "symbols_open failed");
  if (s == NULL)
    return 1;
  check_mappings_sorted(s);
  check_own_function(s);
  check_inlined_call_site(s);
  check_main_executable_build_id(s);
  check_libc(s);
  if (deflate_fn)
    check_dlopened(s, deflate_fn);
  check_vdso(s);
  check_unmapped(s);
  check_cache(s);
  double elapsed_ms = now_ms() - t0;
  symbols_close(s);
  if (deflate_fn)
    check_odd_mappings(deflate_fn);
  check_no_debuginfod(elapsed_ms);
  if (nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "test_symbols: could not remove %s\n", tmpdir);
  if (failures == 0)
    printf("test_symbols: all checks passed (%s)\n", argv[1]);
  return failures ? 1 : 0;
}
