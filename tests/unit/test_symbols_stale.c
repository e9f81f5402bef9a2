/*
 * test_symbols_stale — the long-lived symbolizer (runtime/introspect,
 * symbolizer.h) when files and mappings change between two dumps, i.e.
 * between two rounds of symbolizer_refresh + lookups:
 *
 *  (a) the separate debug file of a dlopen'ed library (built here with
 *      the compiler: gcc -g, objcopy --only-keep-debug, strip -g, objcopy
 *      --add-gnu-debuglink) is overwritten in place with a smaller debug
 *      file (another library's), as cp or a shell redirect do. The second
 *      round must not fault (SIGBUS: the first round left the file's image
 *      mapped) and must still name a function it had not been asked about
 *      (from the library's own symbol table; its line may go). The same
 *      debug file replaced by rename, or deleted, must keep its lines:
 *      the image holds the old inode, which nobody can truncate by path.
 *      And the library file itself overwritten in place (with another
 *      library, whose build id differs): no fault, no wrong name. Each
 *      case runs in a forked child, so that a fault is reported as a
 *      failure of this test, not its crash.
 *  (b) an ELF file mapped by hand (mmap PROT_READ|PROT_EXEC, no dlopen:
 *      the loader's counts do not move) after the first refresh is seen by
 *      the next refresh, which names code in it and lists its mapping; its
 *      munmap is seen too, and so is another file mapped at the same
 *      address with no refresh in between; with nothing changed, a refresh
 *      rebuilds nothing.
 *
 * Usage: test_symbols_stale CC OBJCOPY STRIP (the build's tools; a missing
 * one fails the test). Exit 0 = pass; each failure is one line on stderr.
 * Uses only symbolizer_new/refresh/symtab/free, so that it builds against
 * any version of the symbolizer.
 */
#define _GNU_SOURCE
#include "symbolizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYMBOLS_TEST_NAME "test_symbols_stale"
#include "symbols_check.h"


static char tmpdir[PATH_MAX / 2]; /* room for the names below */
static const char *cc, *objcopy, *strip_tool;

static void in_tmp(char *out, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
}

/* ---- files and commands ----------------------------------------------- */

static bool write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "we");
  bool ok = f && fputs(text, f) >= 0;
  return f && fclose(f) == 0 && ok;
}

/* Writes `from`'s bytes into `to` through O_TRUNC: an existing `to` keeps
 * its inode and is overwritten in place, as cp and `>` do. */
static bool overwrite_file(const char *from, const char *to) {
  size_t bytes;
  void *data = read_file(from, &bytes);
  int fd = data ? open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  bool ok = fd >= 0 && write(fd, data, bytes) == (ssize_t)bytes;
  if (fd >= 0)
    ok = close(fd) == 0 && ok;
  free(data);
  return ok;
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Runs argv (argv[0] found on PATH unless it has a slash); true if it
 * exits 0. */
static bool run(char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, "test_symbols_stale: cannot run %s: %s\n", argv[0],
            strerror(errno));
    _exit(127);
  }
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return false;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "test_symbols_stale: %s failed (status 0x%x)\n", argv[0],
            status);
    return false;
  }
  return true;
}

/* ---- the test libraries ----------------------------------------------- */

/* libstale.so: stale_first() in a CU fattened with a few hundred small
 * functions and types, so that the DWARF of stale_second(), in the next
 * CU, lies many pages into the debug file, past the end of the smaller
 * file written over it. */
static bool write_sources(void) {
  char a[PATH_MAX], b[PATH_MAX], small[PATH_MAX];
  in_tmp(a, "stale_a.c");
  in_tmp(b, "stale_b.c");
  in_tmp(small, "stale_small.c");
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  if (text == NULL)
    return false;
  len += (size_t)snprintf(text + len, cap - len,
                          "__attribute__((noinline)) int stale_first(int x) "
                          "{\n  return x * 3 + 1;\n}\n");
  for (int i = 0; i < 400 && len + 512 < cap; i++)
    len += (size_t)snprintf(
        text + len, cap - len,
        "struct pad%d { int a%d, b%d; double c%d; char name%d[8]; };\n"
        "int stale_pad%d(int x) {\n"
        "  struct pad%d p = {x, x + %d, x * 2.0, \"n\"};\n"
        "  return p.a%d + p.b%d + (int)p.c%d + p.name%d[0];\n}\n",
        i, i, i, i, i, i, i, i, i, i, i, i);
  bool ok = write_text(a, text) &&
            write_text(b, "__attribute__((noinline)) int stale_second(int x) "
                          "{\n  int y = x * 5;\n  return y - 7;\n}\n") &&
            write_text(small, "__attribute__((noinline)) int stale_small(int "
                              "x) {\n  return x - 2;\n}\n");
  free(text);
  return ok;
}

static char lib_full[PATH_MAX], lib[PATH_MAX], lib_debug[PATH_MAX],
    debug_orig[PATH_MAX], lib_orig[PATH_MAX], small_full[PATH_MAX],
    small_debug[PATH_MAX];

/* Builds libstale.full (with DWARF), libstale.so (stripped of it, with a
 * .gnu_debuglink to libstale.so.debug), libstale.so.debug, pristine copies
 * of those two, and small.full / small.debug from stale_small.c. */
static bool build_libraries(void) {
  char a[PATH_MAX], b[PATH_MAX], small_c[PATH_MAX], link[PATH_MAX + 32];
  in_tmp(a, "stale_a.c");
  in_tmp(b, "stale_b.c");
  in_tmp(small_c, "stale_small.c");
  in_tmp(lib_full, "libstale.full");
  in_tmp(lib, "libstale.so");
  in_tmp(lib_debug, "libstale.so.debug");
  in_tmp(debug_orig, "libstale.debug.orig");
  in_tmp(lib_orig, "libstale.so.orig");
  in_tmp(small_full, "small.full");
  in_tmp(small_debug, "small.debug");
  snprintf(link, sizeof link, "--add-gnu-debuglink=%s", lib_debug);
  char *cc_lib[] = {
      (char *)cc, "-g",     "-O1", "-shared", "-fPIC", "-Wl,--build-id",
      "-o",       lib_full, a,     b,         NULL};
  char *cc_small[] = {(char *)cc,       "-g", "-O1",      "-shared", "-fPIC",
                      "-Wl,--build-id", "-o", small_full, small_c,   NULL};
  char *keep_debug[] = {(char *)objcopy, "--only-keep-debug", lib_full,
                        lib_debug, NULL};
  char *keep_small[] = {(char *)objcopy, "--only-keep-debug", small_full,
                        small_debug, NULL};
  char *strip_g[] = {(char *)strip_tool, "-g", "-o", lib, lib_full, NULL};
  char *add_link[] = {(char *)objcopy, link, lib, NULL};
  return write_sources() && run(cc_lib) && run(cc_small) && run(keep_debug) &&
         run(keep_small) && run(strip_g) && run(add_link) &&
         overwrite_file(lib_debug, debug_orig) && overwrite_file(lib, lib_orig);
}

/* ---- helpers over the symbolizer -------------------------------------- */

static void lookup(symbolizer_t *s, uint64_t addr, flat_frame_t *f) {
  prof_symtab_t t = symbolizer_symtab(s);
  prof_frame_t fr;
  t.lookup(t.ctx, addr, 0, &fr);
  flatten(&fr, f);
}

static const prof_mapping_t *mapping_of(symbolizer_t *s,
                                        const flat_frame_t *f) {
  size_t n;
  prof_symtab_t t = symbolizer_symtab(s);
  const prof_mapping_t *m = t.mappings(t.ctx, &n);
  return f->mapping >= 0 && (size_t)f->mapping < n ? &m[f->mapping] : NULL;
}

static const prof_mapping_t *mapping_named(symbolizer_t *s, const char *path) {
  size_t n;
  prof_symtab_t t = symbolizer_symtab(s);
  const prof_mapping_t *m = t.mappings(t.ctx, &n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].path, path) == 0)
      return &m[i];
  return NULL;
}

/* ---- (a) files change under a kept image ----------------------------- */

enum change {
  OVERWRITE_IN_PLACE,
  REPLACE_BY_RENAME,
  DELETE,
  LIBRARY_OVERWRITTEN
};

static const char *const change_names[] = {
    "debug file overwritten in place", "debug file replaced by rename",
    "debug file deleted", "library file overwritten in place"};

static void change_file(enum change how) {
  char tmp[PATH_MAX];
  in_tmp(tmp, "libstale.so.debug.new");
  switch (how) {
  case OVERWRITE_IN_PLACE:
    CHECK(overwrite_file(small_debug, lib_debug), "overwrite %s", lib_debug);
    break;
  case LIBRARY_OVERWRITTEN: /* its code is not run again */
    CHECK(overwrite_file(small_full, lib), "overwrite %s", lib);
    break;
  case REPLACE_BY_RENAME:
    CHECK(overwrite_file(small_debug, tmp) && rename(tmp, lib_debug) == 0,
          "rename over %s", lib_debug);
    break;
  case DELETE:
    CHECK(unlink(lib_debug) == 0, "unlink %s", lib_debug);
    break;
  }
}

/* In a forked child: two rounds of refresh + lookup in libstale.so, with
 * its debug file, or the library itself, changed `how` in between. Exits
 * 0 if every check held. */
static void changed_file_child(enum change how) {
  alarm(60); /* hang detector */
  failures = 0;
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  void *first = h ? dlsym(h, "stale_first") : NULL;
  void *second = h ? dlsym(h, "stale_second") : NULL;
  CHECK(first && second, "dlopen %s: %s", lib, dlerror());
  symbolizer_t *s = symbolizer_new(DEMANGLE_NONE);
  CHECK(s && symbolizer_refresh(s) == 1, "first refresh");
  if (!first || !second || !s)
    _exit(1);
  flat_frame_t f;
  lookup(s, (uintptr_t)first + 1, &f);
  CHECK(f.function && strcmp(f.function, "stale_first") == 0,
        "round 1: stale_first+1 is %s", str(f.function));
  /* The line proves that the debug file was read, and its image kept. */
  CHECK(ends_with(f.file, "/stale_a.c") && f.line > 0,
        "round 1: no line from the debug file (%s:%lld)", str(f.file),
        (long long)f.line);

  change_file(how);

  /* Nothing was mapped or unmapped (the images the first round loaded
   * are the symbolizer's own, and change no code in the map). */
  int rc = symbolizer_refresh(s);
  CHECK(rc == 0, "second refresh gave %d, want 0", rc);
  lookup(s, (uintptr_t)second + 1, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  /* A library whose file now holds another build names nothing new. */
  CHECK(f.function ? strcmp(f.function, "stale_second") == 0
                   : how == LIBRARY_OVERWRITTEN,
        "round 2 (%s): stale_second+1 is %s", change_names[how],
        str(f.function));
  CHECK(m && strcmp(m->path, lib) == 0, "round 2: mapping %s",
        m ? m->path : "none");
  if (how == REPLACE_BY_RENAME || how == DELETE) /* the image's old inode */
    CHECK(ends_with(f.file, "/stale_b.c") && f.line > 0,
          "round 2 (%s): line lost (%s:%lld)", change_names[how], str(f.file),
          (long long)f.line);
  lookup(s, (uintptr_t)first + 1, &f);
  CHECK(f.function && strcmp(f.function, "stale_first") == 0,
        "round 2: stale_first+1 is %s", str(f.function));
  symbolizer_free(s);
  fflush(stderr);
  _exit(failures ? 1 : 0);
}

static void check_file_changed(enum change how) {
  CHECK(overwrite_file(debug_orig, lib_debug) && overwrite_file(lib_orig, lib),
        "restore %s and %s", lib_debug, lib);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0)
    changed_file_child(how);
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait: %s",
        strerror(errno));
  if (pid <= 0)
    return;
  CHECK(!WIFSIGNALED(status), "%s: the child died of signal %d (%s)",
        change_names[how], WTERMSIG(status), strsignal(WTERMSIG(status)));
  CHECK(!WIFEXITED(status) || WEXITSTATUS(status) == 0,
        "%s: the child failed (above)", change_names[how]);
}

/* ---- (b) code mapped and unmapped by hand ----------------------------- */

/* Where `name`'s code lies in the file (its .symtab value turned into a
 * file offset through the program headers); 0 if not found. */
static uint64_t code_offset(const unsigned char *img, size_t bytes,
                            const char *name) {
  const Elf64_Ehdr *eh = (const void *)img;
  if (bytes < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > bytes ||
      eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > bytes)
    return 0;
  const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff);
  const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff);
  uint64_t value = 0;
  for (size_t i = 0; i < eh->e_shnum && value == 0; i++) {
    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
      continue;
    const Elf64_Sym *sym = (const void *)(img + sh[i].sh_offset);
    const char *names = (const char *)img + sh[sh[i].sh_link].sh_offset;
    for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++)
      if (strcmp(names + sym[k].st_name, name) == 0)
        value = sym[k].st_value;
  }
  for (size_t i = 0; value && i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && value >= ph[i].p_vaddr &&
        value < ph[i].p_vaddr + ph[i].p_filesz)
      return value - ph[i].p_vaddr + ph[i].p_offset;
  return 0;
}

struct hand_file {
  char path[PATH_MAX];
  size_t bytes;
  uint64_t fn_offset; /* of its function, which is fn */
  const char *fn;
};

/* A copy of `from` at `name`, and where `fn` lies in it. Mapped whole at
 * offset 0, the symbolizer places the object by its first segment (file
 * offset 0 at address 0), so the test needs code whose address in the
 * file equals its file offset, as ld lays out text. */
static bool hand_file(struct hand_file *h, const char *from, const char *name,
                      const char *fn) {
  in_tmp(h->path, name);
  h->fn = fn;
  unsigned char *img =
      overwrite_file(from, h->path) ? read_file(h->path, &h->bytes) : NULL;
  h->fn_offset = img ? code_offset(img, h->bytes, fn) : 0;
  free(img);
  return h->fn_offset != 0;
}

/* Maps `bytes` of `h` (past its end too: those pages are never touched)
 * at `at`, or anywhere for NULL. */
static void *map_by_hand(const struct hand_file *h, void *at, size_t bytes) {
  int fd = open(h->path, O_RDONLY | O_CLOEXEC);
  void *p = fd < 0 ? MAP_FAILED
                   : mmap(at, bytes, PROT_READ | PROT_EXEC,
                          MAP_PRIVATE | (at ? MAP_FIXED_NOREPLACE : 0), fd, 0);
  if (fd >= 0)
    close(fd);
  CHECK(p != MAP_FAILED && (at == NULL || p == at), "mmap %s at %p: %s",
        h->path, at, strerror(errno));
  return p == MAP_FAILED ? NULL : p;
}

/* The next refresh must see the new mapping of `h` at `base` and name its
 * function. */
static void expect_mapped(symbolizer_t *s, const struct hand_file *h,
                          char *base, const char *when) {
  int rc = symbolizer_refresh(s);
  CHECK(rc == 1, "%s: refresh gave %d, want 1", when, rc);
  flat_frame_t f;
  lookup(s, (uintptr_t)base + h->fn_offset + 1, &f);
  const prof_mapping_t *m = mapping_of(s, &f);
  CHECK(f.function && strcmp(f.function, h->fn) == 0, "%s: %s+1 is %s", when,
        h->fn, str(f.function));
  CHECK(m && strcmp(m->path, h->path) == 0 && m->start == (uintptr_t)base &&
            m->offset == 0,
        "%s: mapping %s at 0x%llx, want %s at %p", when, m ? m->path : "none",
        m ? (unsigned long long)m->start : 0ull, h->path, (void *)base);
}

static void expect_unmapped(symbolizer_t *s, const struct hand_file *h,
                            char *base, const char *when) {
  int rc = symbolizer_refresh(s);
  CHECK(rc == 1, "%s: refresh gave %d, want 1", when, rc);
  CHECK(mapping_named(s, h->path) == NULL, "%s: %s still listed", when,
        h->path);
  flat_frame_t f;
  lookup(s, (uintptr_t)base + h->fn_offset + 1, &f);
  CHECK(f.mapping == -1 && f.function == NULL,
        "%s: the unmapped address is still %s in %s", when, str(f.function),
        mapping_of(s, &f) ? mapping_of(s, &f)->path : "no mapping");
}

static void check_mapped_by_hand(void) {
  struct hand_file one, two;
  bool ready = hand_file(&one, lib_full, "hand1.so", "stale_first") &&
               hand_file(&two, small_full, "hand2.so", "stale_small") &&
               two.bytes <= one.bytes;
  CHECK(ready, "no stale_first / stale_small code in the test libraries");
  if (!ready)
    return;
  symbolizer_t *s = symbolizer_new(DEMANGLE_NONE);
  CHECK(s && symbolizer_refresh(s) == 1, "first refresh");
  if (!s)
    return;
  char *base = map_by_hand(&one, NULL, one.bytes);
  if (base == NULL)
    return;
  expect_mapped(s, &one, base, "mapped by hand");
  CHECK(munmap(base, one.bytes) == 0, "munmap");
  expect_unmapped(s, &one, base, "after munmap");

  /* Unmapped and another file mapped over the same range (same start,
   * length and offset: only the file differs), with no refresh in
   * between: the old view must not answer. */
  if (map_by_hand(&one, base, one.bytes) == NULL)
    return;
  expect_mapped(s, &one, base, "mapped again");
  CHECK(munmap(base, one.bytes) == 0, "munmap");
  if (map_by_hand(&two, base, one.bytes) == NULL)
    return;
  expect_mapped(s, &two, base, "another file over the same range");
  int rc = symbolizer_refresh(s);
  CHECK(rc == 0, "refresh with nothing changed gave %d, want 0", rc);
  CHECK(munmap(base, one.bytes) == 0, "munmap");
  expect_unmapped(s, &two, base, "after the second munmap");
  symbolizer_free(s);
}

/* ---- main ------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CC OBJCOPY STRIP\n", argv[0]);
    return 2;
  }
  cc = argv[1], objcopy = argv[2], strip_tool = argv[3];
  setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1", 1);
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/test_symbols_stale.XXXXXX",
           base && base[0] ? base : "/tmp");
  if (base && base[0])
    mkdir(base, 0700);
  if (mkdtemp(tmpdir) == NULL) {
    fprintf(stderr, "test_symbols_stale: mkdtemp %s: %s\n", tmpdir,
            strerror(errno));
    return 1;
  }
  bool built = build_libraries();
  CHECK(built, "cannot build the test libraries with %s, %s and %s (above)", cc,
        objcopy, strip_tool);
  /* The overwrite must cut the old debug file well past its first pages. */
  CHECK(!built || (file_size(small_debug) > 0 &&
                   file_size(lib_debug) > 4 * file_size(small_debug)),
        "debug files of %lld and %lld bytes", (long long)file_size(lib_debug),
        (long long)file_size(small_debug));
  if (failures == 0) {
    check_file_changed(OVERWRITE_IN_PLACE);
    check_file_changed(REPLACE_BY_RENAME);
    check_file_changed(DELETE);
    check_file_changed(LIBRARY_OVERWRITTEN);
    check_mapped_by_hand();
  }
  if (nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "test_symbols_stale: could not remove %s\n", tmpdir);
  if (failures == 0)
    printf("test_symbols_stale: all checks passed\n");
  return failures ? 1 : 0;
}
