/*
 * test_symbols — checks runtime/introspect's symbolizer against the
 * running test process: its own functions, libc, a dlopen'ed library, the
 * vdso, C++ names, the main executable's build id (recomputed here by
 * parsing the ELF file itself), unmapped addresses, the raw map text, odd
 * mappings (deleted files, a deleted library whose path now holds a
 * different ELF file, a path near PATH_MAX), and what makes it
 * long-lived: a refresh with nothing changed rebuilds nothing and answers
 * the same, dlopen and dlclose are seen, answers come from the cache the
 * second time, and no descriptor is left open, or closed later, in any
 * thread's descriptor table.
 *
 * Usage: test_symbols --lines      (built with -g: file:line must be right)
 *        test_symbols --no-lines   (built without -g: names only)
 * Exit 0 = pass; otherwise each failure is one line on stderr.
 *
 * DEBUGINFOD_URLS is pointed at a closed port before anything is looked up;
 * the test fails if libdebuginfod was ever loaded, which is the only way
 * elfutils reaches a debuginfod server.
 */
#define _GNU_SOURCE
#include "symbolizer.h"
#include "buildid.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
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

#define SYMBOLS_TEST_NAME "test_symbols"
#include "symbols_check.h"

static bool expect_lines;

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

/* ---- helpers over the symbolizer -------------------------------------- */

static void lookup(symbolizer_t *s, uint64_t addr, flat_frame_t *f) {
  prof_symtab_t t = symbolizer_symtab(s);
  prof_frame_t fr;
  t.lookup(t.ctx, addr, 0, &fr);
  flatten(&fr, f);
}

static const prof_mapping_t *all_mappings(symbolizer_t *s, size_t *n) {
  prof_symtab_t t = symbolizer_symtab(s);
  return t.mappings(t.ctx, n);
}

static const prof_mapping_t *mapping_of(symbolizer_t *s,
                                        const flat_frame_t *f) {
  size_t n;
  const prof_mapping_t *m = all_mappings(s, &n);
  return f->mapping >= 0 && (size_t)f->mapping < n ? &m[f->mapping] : NULL;
}

static const prof_mapping_t *mapping_named(symbolizer_t *s, const char *path) {
  size_t n;
  const prof_mapping_t *m = all_mappings(s, &n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].path, path) == 0)
      return &m[i];
  return NULL;
}

static bool same_frame(const flat_frame_t *a, const flat_frame_t *b) {
  return a->function == b->function && a->file == b->file &&
         a->line == b->line && a->mapping == b->mapping;
}

/* A new symbolizer with one refresh made; the test stops if it fails. */
static symbolizer_t *fresh(void) {
  symbolizer_t *s = symbolizer_new(DEMANGLE_NONE);
  int rc = s ? symbolizer_refresh(s) : -1;
  if (rc != 1) {
    fprintf(stderr, "test_symbols: new symbolizer: refresh gave %d (%s)\n", rc,
            strerror(errno));
    exit(1);
  }
  return s;
}

static void *libc_qsort(void) {
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *fn = libc ? dlsym(libc, "qsort") : NULL;
  if (libc)
    dlclose(libc);
  return fn;
}

/* The start of __vdso_clock_gettime, or NULL without a vdso. */
static void *vdso_clock_gettime(void);

/* ---- the checks ------------------------------------------------------- */

static void check_mappings_sorted(symbolizer_t *s) {
  size_t n;
  const prof_mapping_t *m = all_mappings(s, &n);
  CHECK(n >= 3, "only %zu executable mappings", n);
  for (size_t i = 0; i < n; i++) {
    CHECK(m[i].start < m[i].limit, "empty mapping %zu", i);
    CHECK(i == 0 || m[i - 1].limit <= m[i].start, "mapping %zu unsorted", i);
    CHECK(m[i].path != NULL && m[i].build_id != NULL, "mapping %zu", i);
    CHECK(!ends_with(m[i].path, " (deleted)"), "%s", m[i].path);
  }
}

static void check_own_function(symbolizer_t *s) {
  symbols_test_outer(3);
  flat_frame_t f, g;
  lookup(s, captured_pc - 1, &f);
  CHECK(f.function && strcmp(f.function, "symbols_test_outer") == 0,
        "return address resolved to %s", str(f.function));
  CHECK(mapping_of(s, &f) != NULL, "own code outside every mapping");
  lookup(s, (uintptr_t)symbols_test_outer + 4, &g);
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

static void check_inlined_call_site(symbolizer_t *s) {
  symbols_test_inliner(1);
  flat_frame_t f;
  lookup(s, captured_pc - 1, &f);
  CHECK(f.function && strcmp(f.function, "symbols_test_inliner") == 0,
        "inlined capture resolved to %s", str(f.function));
  if (expect_lines)
    CHECK(ends_with(f.file, "/test_symbols.c") && f.line == captured_line,
          "inlined code placed at %s:%lld, want the call on line %d",
          str(f.file), (long long)f.line, captured_line);
}

static void check_main_executable_build_id(symbolizer_t *s) {
  char exe[PATH_MAX], hex[2 * 64 + 1] = "?";
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = '\0';
  size_t bytes;
  unsigned char *img = read_file(exe, &bytes);
  if (img != NULL)
    build_id_hex(img, bytes, hex);
  free(img);
  flat_frame_t f;
  lookup(s, (uintptr_t)symbols_test_outer, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  CHECK(m && strcmp(m->path, exe) == 0, "exe mapping %s, want %s",
        m ? m->path : "none", exe);
  CHECK(hex[0] != '\0' && hex[0] != '?', "no build id in %s", exe);
  CHECK(m && strcmp(m->build_id, hex) == 0, "build id %s, file says %s",
        m ? m->build_id : "none", hex);
}

static void check_libc(symbolizer_t *s) {
  void *fn = libc_qsort();
  CHECK(fn != NULL, "no qsort in libc.so.6: %s", dlerror());
  flat_frame_t f;
  lookup(s, (uintptr_t)fn + 3, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function && strcmp(f.function, "qsort") == 0, "qsort+3 is %s",
        str(f.function));
  CHECK(m && strstr(m->path, "/libc.so.6"), "qsort in %s",
        m ? m->path : "no mapping");
  CHECK(m && strlen(m->build_id) == 40, "libc build id '%s'",
        m ? m->build_id : "");
}

static void check_dlopened(symbolizer_t *s, void *deflate_fn) {
  flat_frame_t f;
  lookup(s, (uintptr_t)deflate_fn + 8, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function && strcmp(f.function, "deflate") == 0, "deflate+8 is %s",
        str(f.function));
  CHECK(m && strstr(m->path, "/libz.so"), "deflate in %s",
        m ? m->path : "no mapping");
}

/* C++ names stay as the symbol table spells them (mangled, without the
 * symbol version): go tool pprof demangles them itself. */
static void check_mangled(symbolizer_t *s, void *now_fn) {
  flat_frame_t f;
  lookup(s, (uintptr_t)now_fn + 1, &f);
  CHECK(f.function &&
            strcmp(f.function, "_ZNSt6chrono3_V212system_clock3nowEv") == 0,
        "std::chrono::system_clock::now+1 is %s", str(f.function));
}

static void *vdso_clock_gettime(void) {
  const unsigned char *img = (const void *)getauxval(AT_SYSINFO_EHDR);
  if (img == NULL)
    return NULL;
  /* The vdso's size: its section headers come last in the image. */
  const Elf64_Ehdr *eh = (const void *)img;
  size_t bytes = eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr);
  uint64_t value = dynsym_value(img, bytes, "__vdso_clock_gettime");
  return value ? (void *)(img + value) : NULL;
}

static void check_vdso(symbolizer_t *s) {
  const unsigned char *img = (const void *)getauxval(AT_SYSINFO_EHDR);
  const prof_mapping_t *m = mapping_named(s, "[vdso]");
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
  flat_frame_t f;
  lookup(s, (uintptr_t)img + value + 2, &f);
  CHECK(value && f.function && strstr(f.function, "clock_gettime"),
        "vdso clock_gettime resolved to %s", str(f.function));
}

static void check_unmapped(symbolizer_t *s) {
  /* ...ff600000 is the [vsyscall] page: executable, but no ELF file. */
  static const uint64_t addrs[] = {0,
                                   0x10,
                                   0xfff,
                                   UINT64_MAX,
                                   0xffffffffff600000 - 1,
                                   0xffffffffff600000 + 1};
  for (size_t i = 0; i < sizeof addrs / sizeof *addrs; i++) {
    flat_frame_t f;
    lookup(s, addrs[i], &f);
    CHECK(f.function == NULL && f.file == NULL && f.line == 0 &&
              f.mapping == -1,
          "0x%llx gave %s mapping %d", (unsigned long long)addrs[i],
          str(f.function), f.mapping);
  }
  void *anon = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  symbolizer_t *t = fresh();
  flat_frame_t f;
  lookup(t, (uintptr_t)anon + 100, &f);
  CHECK(f.function == NULL && f.mapping == -1, "anonymous exec gave %s/%d",
        str(f.function), f.mapping);
  symbolizer_free(t);
  munmap(anon, 4096);
}

static void check_cache(symbolizer_t *s) {
  flat_frame_t a, b;
  lookup(s, captured_pc - 1, &a);
  lookup(s, captured_pc - 1, &b);
  CHECK(same_frame(&a, &b), "cached answer differs");
  size_t before = symbolizer_memory_bytes(s);
  for (int i = 0; i < 2000; i++)
    lookup(s, (uintptr_t)symbols_test_outer + (uintptr_t)(i % 40), &a);
  CHECK(symbolizer_memory_bytes(s) >= before, "memory shrank");
  CHECK(symbolizer_memory_bytes(s) < 64u << 20, "symbolizer holds %zu bytes",
        symbolizer_memory_bytes(s));
}

/* ---- long-lived: the cache, refresh, dlopen and dlclose --------------- */

#define NADDRS 1000

/* NADDRS distinct addresses spread over the executable mappings of the
 * main program, libc and libz: the code a profile's stacks run through. */
static size_t spread_addresses(symbolizer_t *s, void *deflate_fn,
                               uint64_t *addrs) {
  flat_frame_t f[3];
  lookup(s, (uintptr_t)symbols_test_outer, &f[0]);
  lookup(s, (uintptr_t)libc_qsort(), &f[1]);
  lookup(s, (uintptr_t)deflate_fn, &f[2]);
  size_t n = 0;
  for (int k = 0; k < 3; k++) {
    const prof_mapping_t *m = mapping_of(s, &f[k]);
    CHECK(m != NULL, "no mapping for module %d", k);
    size_t want = NADDRS / 3 + (k == 0 ? NADDRS % 3 : 0);
    uint64_t step = m ? (m->limit - m->start) / want : 0;
    for (size_t i = 0; m && step > 0 && i < want; i++)
      addrs[n++] = m->start + i * step + step / 2;
  }
  return n;
}

/* (d): the second pass over the same addresses is answered from the
 * cache: nothing is resolved again, no module loaded, no memory taken.
 * (A new symbolizer, so that the first pass must resolve every one.) */
static void check_second_pass_cached(void *deflate_fn) {
  symbolizer_t *s = fresh();
  static uint64_t addrs[NADDRS];
  static flat_frame_t first[NADDRS];
  size_t n = spread_addresses(s, deflate_fn, addrs);
  CHECK(n == NADDRS, "only %zu addresses", n);
  symbolizer_counts_t c0, c1, c2;
  symbolizer_counts(s, &c0);
  for (size_t i = 0; i < n; i++)
    lookup(s, addrs[i], &first[i]);
  symbolizer_counts(s, &c1);
  size_t bytes = symbolizer_memory_bytes(s);
  size_t named = 0;
  for (size_t i = 0; i < n; i++) {
    flat_frame_t f;
    lookup(s, addrs[i], &f);
    CHECK(same_frame(&f, &first[i]), "address %zu answered differently", i);
    named += f.function != NULL;
  }
  symbolizer_counts(s, &c2);
  CHECK(c1.lookups - c0.lookups == n && c2.lookups - c1.lookups == n,
        "lookups counted %llu then %llu",
        (unsigned long long)(c1.lookups - c0.lookups),
        (unsigned long long)(c2.lookups - c1.lookups));
  CHECK(c1.resolved - c0.resolved == n, "first pass resolved %llu of %zu",
        (unsigned long long)(c1.resolved - c0.resolved), n);
  CHECK(c2.resolved == c1.resolved, "second pass resolved %llu again",
        (unsigned long long)(c2.resolved - c1.resolved));
  CHECK(c2.modules_loaded == c1.modules_loaded, "second pass loaded modules");
  CHECK(symbolizer_memory_bytes(s) == bytes, "second pass took %zu bytes",
        symbolizer_memory_bytes(s) - bytes);
  CHECK(named > n / 2, "only %zu of %zu addresses named", named, n);
  symbolizer_free(s);
}

/* (b): with nothing mapped, unmapped or changed, a refresh reads the map
 * and stats the files it holds but rebuilds nothing, drops nothing, and
 * every answer stays the same, down to the string pointers. (The images
 * loaded since the last refresh are mapped files too, next to the
 * libraries they describe: they must not count as a change of the map.) */
static void check_refresh_unchanged(symbolizer_t *s, void *deflate_fn) {
  uint64_t addrs[] = {captured_pc - 1, (uintptr_t)symbols_test_outer + 4,
                      (uintptr_t)libc_qsort() + 3, (uintptr_t)deflate_fn + 8,
                      (uintptr_t)vdso_clock_gettime() + 2};
  enum { N = sizeof addrs / sizeof *addrs };
  flat_frame_t before[N], after;
  for (size_t i = 0; i < N; i++)
    lookup(s, addrs[i], &before[i]);
  size_t nmaps_before;
  const prof_mapping_t *maps_before = all_mappings(s, &nmaps_before);
  symbolizer_counts_t c0, c1;
  symbolizer_counts(s, &c0);
  int rc = symbolizer_refresh(s);
  symbolizer_counts(s, &c1);
  CHECK(rc == 0, "refresh with nothing loaded gave %d", rc);
  CHECK(c1.maps_reads == c0.maps_reads + 1, "the map was not read");
  CHECK(c1.views_built == c0.views_built, "the view was rebuilt");
  CHECK(c1.files_checked >= c0.files_checked + 3,
        "%llu files checked (main program, libc, libz at least)",
        (unsigned long long)(c1.files_checked - c0.files_checked));
  CHECK(c1.images_dropped == c0.images_dropped, "an image was dropped");
  size_t nmaps;
  const prof_mapping_t *maps = all_mappings(s, &nmaps);
  CHECK(maps == maps_before && nmaps == nmaps_before, "mapping table rebuilt");
  for (size_t i = 0; i < N; i++) {
    lookup(s, addrs[i], &after);
    CHECK(same_frame(&before[i], &after), "address %zu (%s) changed to %s", i,
          str(before[i].function), str(after.function));
  }
  symbolizer_counts(s, &c0);
  CHECK(c0.resolved == c1.resolved, "answers resolved again after refresh");
}

static char tmpdir[] = "/tmp/test_symbols.XXXXXX";

static bool copy_file(const char *from, const char *to);

/* (c): a dlopen is seen by the next refresh, which names the new
 * library's code and keeps what it knew of the others; a dlclose is seen
 * too, and the library's mapping is gone. */
static void check_dlopen_dlclose(symbolizer_t *s, void *deflate_fn) {
  char lib[PATH_MAX];
  snprintf(lib, sizeof lib, "%s/libznew.so", tmpdir);
  Dl_info z;
  CHECK(dladdr(deflate_fn, &z) && copy_file(z.dli_fname, lib), "copy libz");
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  void *fn = h ? dlsym(h, "deflate") : NULL;
  CHECK(fn != NULL && fn != deflate_fn, "dlopen %s: %s", lib, dlerror());
  if (fn == NULL || fn == deflate_fn)
    return;
  symbolizer_counts_t c0, c1;
  symbolizer_counts(s, &c0);
  int rc = symbolizer_refresh(s);
  symbolizer_counts(s, &c1);
  CHECK(rc == 1, "refresh after dlopen gave %d", rc);
  flat_frame_t f;
  lookup(s, (uintptr_t)fn + 8, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function && strcmp(f.function, "deflate") == 0,
        "new library's deflate+8 is %s", str(f.function));
  CHECK(m && strcmp(m->path, lib) == 0, "new deflate in %s",
        m ? m->path : "no mapping");
  CHECK(c1.modules_kept > c0.modules_kept,
        "no loaded module was kept over the re-read");
  check_libc(s); /* kept modules still answer, through the new view */
  check_own_function(s);

  /* Before it goes: keep the answers for an address in it, for stacks
   * recorded in buckets numbered below 7. */
  struct link_map *lm = NULL;
  uint64_t low = 0, high = 0, addr = (uintptr_t)fn + 8;
  CHECK(dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL, "dlinfo");
  CHECK(lm && symbolizer_module_at_bias(s, lm->l_addr, &low, &high) == 0 &&
            low <= addr && addr < high,
        "the module at the library's bias holds its deflate");
  CHECK(symbolizer_retire(s, low, high, &addr, 1, 7) == 0, "retire: %s",
        strerror(errno));
  const prof_mapping_t *kept = mapping_of(s, &f);
  char kept_id[BUILDID_HEX_BYTES];
  snprintf(kept_id, sizeof kept_id, "%s", kept ? kept->build_id : "");

  dlclose(h);
  unlink(lib); /* what was kept must not need the file */
  CHECK(symbolizer_refresh(s) == 1, "refresh after dlclose rebuilt nothing");
  prof_symtab_t t = symbolizer_symtab(s);
  CHECK(t.space != NULL && t.space(t.ctx, addr, 6) == 1 &&
            t.space(t.ctx, addr, 7) == 0 && t.space(t.ctx, addr + 0x100000000, 6) == 0,
        "space: stacks recorded before the unload are the kept module's");
  prof_frame_t was;
  if (t.space != NULL) {
    t.lookup(t.ctx, addr, 1, &was);
    flatten(&was, &f);
    m = mapping_of(s, &f);
    CHECK(f.function && strcmp(f.function, "deflate") == 0,
          "the unloaded library's deflate+8 is now %s", str(f.function));
    CHECK(m && strcmp(m->path, lib) == 0 && strcmp(m->build_id, kept_id) == 0 &&
              m->start <= addr && addr < m->limit,
          "its mapping is kept: %s %s", m ? m->path : "none",
          m ? m->build_id : "");
  }
  size_t nall, named = 0;
  const prof_mapping_t *all = all_mappings(s, &nall);
  for (size_t i = 0; i < nall; i++)
    named += strcmp(all[i].path, lib) == 0;
  CHECK(named == 1 && strcmp(all[nall - 1].path, lib) == 0,
        "after dlclose, %s is listed %zu times; want once, as the kept "
        "module after the live ones", lib, named);
  lookup(s, (uintptr_t)fn + 8, &f);
  m = mapping_of(s, &f);
  CHECK(m == NULL || strcmp(m->path, lib) != 0,
        "the unloaded library still answers for its address");
  CHECK(symbolizer_refresh(s) == 0, "a third refresh rebuilt the view");
}

/* ---- descriptors ------------------------------------------------------ */

/* The calling thread's descriptors as "fd -> target" lines, sorted (the
 * listing's own descriptor left out); malloc'd. */
static char *fd_table(void) {
  DIR *d = opendir("/proc/thread-self/fd");
  size_t cap = 1 << 16, len = 0;
  char *out = calloc(1, cap);
  int self = d ? dirfd(d) : -1;
  int fds[1024];
  size_t n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL && n < 1024;)
    if (e->d_name[0] != '.' && atoi(e->d_name) != self)
      fds[n++] = atoi(e->d_name);
  if (d)
    closedir(d);
  for (size_t i = 0; i < n; i++) /* insertion sort: a few dozen entries */
    for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
      int t = fds[j];
      fds[j] = fds[j - 1];
      fds[j - 1] = t;
    }
  for (size_t i = 0; i < n && len + PATH_MAX + 32 < cap; i++) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/thread-self/fd/%d", fds[i]);
    ssize_t k = readlink(link, target, sizeof target - 1);
    target[k > 0 ? k : 0] = '\0';
    len += (size_t)snprintf(out + len, cap - len, "%d -> %s\n", fds[i], target);
  }
  return out;
}

/* Refreshes and looks up code in libc, a dlopen'ed library, the main
 * program and the vdso: every kind of file (and the vdso's memory) the
 * symbolizer reads, with libc's separate debug file. */
static void exercise(symbolizer_t *s, void *deflate_fn) {
  flat_frame_t f;
  CHECK(symbolizer_refresh(s) >= 0, "refresh: %s", strerror(errno));
  lookup(s, (uintptr_t)libc_qsort() + 3, &f);
  CHECK(f.function != NULL, "libc unnamed");
  lookup(s, (uintptr_t)deflate_fn + 8, &f);
  CHECK(f.function != NULL, "libz unnamed");
  lookup(s, (uintptr_t)symbols_test_outer + 4, &f);
  CHECK(f.function != NULL, "main program unnamed");
  if (vdso_clock_gettime() != NULL) {
    lookup(s, (uintptr_t)vdso_clock_gettime() + 2, &f);
    CHECK(f.function != NULL, "vdso unnamed");
  }
}

struct other_table {
  void *deflate_fn;
  symbolizer_t *s;
  bool same;
};

/* Runs in a thread with a descriptor table of its own, as heapprof's dump
 * and HTTP threads do. */
static void *use_in_own_table(void *arg) {
  struct other_table *o = arg;
  if (unshare(CLONE_FILES) != 0) {
    fprintf(stderr, "test_symbols: unshare(CLONE_FILES): %s\n",
            strerror(errno));
    return NULL;
  }
  char *before = fd_table();
  o->s = symbolizer_new(DEMANGLE_NONE);
  exercise(o->s, o->deflate_fn);
  char *after = fd_table();
  o->same = strcmp(before, after) == 0;
  if (!o->same)
    fprintf(stderr, "test_symbols: own table before:\n%safter:\n%s", before,
            after);
  free(before);
  free(after);
  return NULL;
}

/* (a): the symbolizer keeps no descriptor between calls. In this thread:
 * the table after a refresh and lookups everywhere is the table before.
 * Across threads: a symbolizer filled in a thread with its own table, then
 * refreshed, used and freed here, must not touch descriptors here that
 * happen to have the numbers it used there (sentinels). */
static void check_no_descriptor_left(void *deflate_fn) {
  char *before = fd_table();
  symbolizer_t *s = symbolizer_new(DEMANGLE_NONE);
  exercise(s, deflate_fn);
  char *after = fd_table();
  CHECK(strcmp(before, after) == 0, "descriptors before:\n%safter:\n%s", before,
        after);
  symbolizer_free(s);
  free(after);

  struct other_table o = {deflate_fn, NULL, false};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, use_in_own_table, &o) == 0, "thread");
  pthread_join(t, NULL);
  CHECK(o.s != NULL && o.same, "descriptors left in the thread's own table");
  enum { NSENTINELS = 16 };
  int sentinel[NSENTINELS];
  struct stat st[NSENTINELS];
  for (int i = 0; i < NSENTINELS; i++) {
    sentinel[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fstat(sentinel[i], &st[i]);
  }
  if (o.s != NULL) {
    void *h = dlopen("libresolv.so.2", RTLD_NOW | RTLD_LOCAL);
    exercise(o.s, deflate_fn); /* re-reads: libresolv came (then goes) */
    if (h)
      dlclose(h);
    exercise(o.s, deflate_fn);
    symbolizer_free(o.s);
  }
  for (int i = 0; i < NSENTINELS; i++) {
    struct stat now;
    CHECK(fstat(sentinel[i], &now) == 0 && now.st_ino == st[i].st_ino &&
              now.st_dev == st[i].st_dev,
          "descriptor %d was closed or replaced by the symbolizer",
          sentinel[i]);
    close(sentinel[i]);
  }
  after = fd_table();
  CHECK(strcmp(before, after) == 0, "descriptors before:\n%safter:\n%s", before,
        after);
  free(before);
  free(after);
}

/* ---- the raw map ------------------------------------------------------ */

static int append_sink(void *ctx, const void *buf, size_t len) {
  char **text = ctx;
  size_t have = *text ? strlen(*text) : 0;
  char *grown = realloc(*text, have + len + 1);
  if (grown == NULL)
    return -1;
  memcpy(grown + have, buf, len);
  grown[have + len] = '\0';
  *text = grown;
  return 0;
}

static int failing_sink(void *ctx, const void *buf, size_t len) {
  (void)ctx, (void)buf, (void)len;
  errno = ENOSPC;
  return -1;
}

/* maps_text streams the map as the kernel spells it: every executable
 * mapping shows up in it, and a failing sink's errno comes back. */
static void check_maps_text(symbolizer_t *s) {
  prof_symtab_t t = symbolizer_symtab(s);
  char *text = NULL;
  pprof_sink_t sink = {append_sink, &text};
  CHECK(t.maps_text != NULL && t.maps_text(t.ctx, &sink) == 0, "maps_text");
  size_t n;
  const prof_mapping_t *m = all_mappings(s, &n);
  for (size_t i = 0; text && i < n; i++) {
    char start[32];
    snprintf(start, sizeof start, "%llx-", (unsigned long long)m[i].start);
    CHECK(strstr(text, start) && strstr(text, m[i].path),
          "mapping %s at %s not in the text", m[i].path, start);
  }
  CHECK(text && strstr(text, "[stack]"), "no [stack] line");
  free(text);
  pprof_sink_t broken = {failing_sink, NULL};
  errno = 0;
  CHECK(t.maps_text(t.ctx, &broken) == -1 && errno == ENOSPC,
        "failing sink: errno %d", errno);
}

/* ---- odd mappings ----------------------------------------------------- */

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

static void check_odd_in(symbolizer_t *s, const char *deleted,
                         const char *longp, const char *lib, void *gone,
                         void *odd, void *fn) {
  flat_frame_t f;
  lookup(s, (uintptr_t)gone + 10, &f);
  CHECK(f.function == NULL && mapping_of(s, &f) &&
            strcmp(mapping_of(s, &f)->path, deleted) == 0,
        "deleted file: %s in %s", str(f.function),
        mapping_of(s, &f) ? mapping_of(s, &f)->path : "no mapping");
  lookup(s, (uintptr_t)odd + 10, &f);
  CHECK(mapping_of(s, &f) && strcmp(mapping_of(s, &f)->path, longp) == 0,
        "long path mapping lost");
  lookup(s, (uintptr_t)fn + 8, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function == NULL, "replaced library lent name %s", f.function);
  CHECK(m && strcmp(m->path, lib) == 0 && strlen(m->build_id) == 40,
        "deleted library mapping %s id '%s'", m ? m->path : "none",
        m ? m->build_id : "");
}

/* Deleted files keep their path; a path that now holds a different ELF
 * file (this test's executable where a copy of libz was) must not lend it
 * its symbols. Checked with a new symbolizer, and with the long-lived one,
 * whose refresh sees the dlopen. */
static void check_odd_mappings(symbolizer_t *longlived, void *deflate_fn) {
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

  symbolizer_t *s = fresh();
  check_odd_in(s, deleted, longp, lib, gone, odd, fn);
  symbolizer_free(s);
  CHECK(symbolizer_refresh(longlived) == 1, "dlopen not seen by refresh");
  check_odd_in(longlived, deleted, longp, lib, gone, odd, fn);
  unlink(lib);
}

/* libdw reaches debuginfod only through a dlopen'ed libdebuginfod. */
static void check_no_debuginfod(void) {
  FILE *maps = fopen("/proc/self/maps", "re");
  char line[8192];
  bool loaded = false;
  while (maps && fgets(line, sizeof line, maps))
    loaded = loaded || strstr(line, "libdebuginfod") != NULL;
  if (maps)
    fclose(maps);
  CHECK(maps && !loaded, "libdebuginfod was loaded");
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
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
  void *cxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
  void *now_fn =
      cxx ? dlsym(cxx, "_ZNSt6chrono3_V212system_clock3nowEv") : NULL;
  CHECK(now_fn != NULL, "cannot dlopen libstdc++.so.6: %s", dlerror());
  CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");
  if (deflate_fn == NULL || now_fn == NULL)
    return 1;

  symbolizer_t *s = symbolizer_new(DEMANGLE_NONE);
  CHECK(s != NULL, "symbolizer_new failed");
  if (s == NULL)
    return 1;
  int rc = symbolizer_refresh(s);
  CHECK(rc == 1, "first refresh gave %d, want 1 (a reading)", rc);
  check_mappings_sorted(s);
  check_own_function(s);
  check_inlined_call_site(s);
  check_main_executable_build_id(s);
  check_libc(s);
  check_dlopened(s, deflate_fn);
  check_mangled(s, now_fn);
  check_vdso(s);
  check_unmapped(s);
  check_cache(s);
  check_second_pass_cached(deflate_fn);
  check_refresh_unchanged(s, deflate_fn);
  check_maps_text(s);
  check_no_descriptor_left(deflate_fn);
  check_dlopen_dlclose(s, deflate_fn);
  check_odd_mappings(s, deflate_fn);
  symbolizer_free(s);
  check_no_debuginfod();
  if (nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "test_symbols: could not remove %s\n", tmpdir);
  if (failures == 0)
    printf("test_symbols: all checks passed (%s)\n", argv[1]);
  return failures ? 1 : 0;
}
