/*
 * test_inline — the inline chain of an address (module_image_chain, over
 * srclines_chain), read from this test's own executable, built at -O2 -g:
 *
 * 1. A C chain: static inline grow_buffer, inlined into static inline
 *    make_node, inlined into build; grow_buffer calls record_alloc, which
 *    records its return address. Three frames, innermost first, each with
 *    its function, file, line (the lines marked in this file) and start
 *    line (its declaration's line). And grow_buffer inlined inside the
 *    lexical blocks of a GNU C nested function: two frames, ending at the
 *    nested function.
 * 2. A C++ chain (inline_widgets.cpp): the operator new that
 *    std::vector<Widget>::push_back makes inside a lambda held by a
 *    std::function: __new_allocator<Widget>::allocate, then
 *    allocator_traits::allocate, _Vector_base::_M_allocate and
 *    _M_realloc_insert, in that order, as `addr2line -i -f` prints them.
 * 3. An address without inlining gives 1 frame; one outside the DWARF
 *    gives 0 (addr2line agrees); a chain cut by max keeps the innermost
 *    max-1 frames and the concrete function at its own line.
 * 4. Agreement with binutils `addr2line -i -f` over a few hundred
 *    instruction starts from the line table: the same functions, files
 *    and lines, frame by frame. addr2line reads a copy of the executable
 *    with no symbol table (objcopy --only-keep-debug, then --strip-all),
 *    so that both name functions from DWARF alone: given ELF symbols,
 *    binutils 2.40 names a DWARF function that has no linkage name after
 *    the nearest symbol at or below the address, whichever function that
 *    is, the first time it meets the function (the dynamic symbols of
 *    inline_widgets.cpp's operator new and delete, for instance).
 *    One class of difference is counted apart, not failed: binutils 2.40
 *    gives the CU's primary file (file 0) for rows that use DWARF 5 file
 *    1 as the line program's initial file, where libdw, readelf and
 *    objdump --dwarf=decodedline all give file 1.
 * 5. The same chains from a copy without .debug_aranges, as clang writes
 *    objects unless asked (-gdwarf-aranges): its CUs are found from their
 *    DIEs.
 *
 * Usage: test_inline ADDR2LINE OBJCOPY (the build's binutils).
 * Exit 0 = pass; otherwise each failure is one line on stderr.
 */
#define _GNU_SOURCE
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfopen.h"
#include "module.h"
#include "testlib.h"
#undef CHECK /* symbols_check.h's CHECK counts a failure and goes on */
#define SYMBOLS_TEST_NAME "test_inline"
#include "symbols_check.h"

/* How many line-table addresses the addr2line comparison takes. */
#define AGREEMENT_ADDRS 400

static const char *addr2line_tool, *objcopy_tool;

/* ---- the C chain (lines found by their markers, see marked_line) ------ */

static volatile uintptr_t alloc_return;

/* Kept out of line and unspecialised (no clone), so that the ELF symbol
 * and the DWARF function are the ones named here. */
#ifdef __clang__
#define OUT_OF_LINE __attribute__((noinline))
#else
#define OUT_OF_LINE __attribute__((noipa))
#endif

OUT_OF_LINE static void *record_alloc(size_t bytes) {    /* @alloc */
  alloc_return = (uintptr_t)__builtin_return_address(0); /* @alloc_body */
  return malloc(bytes);
}

/* Each uses the result after the call, so that no call becomes a jump. */
static inline char *grow_buffer(size_t bytes) { /* @grow */
  char *p = record_alloc(bytes * 2);            /* @grow_call */
  p[0] = 1;
  return p;
}

static inline char *make_node(size_t bytes) { /* @node */
  char *p = grow_buffer(bytes + 16);          /* @node_call */
  p[1] = 2;
  return p;
}

OUT_OF_LINE char *build(size_t bytes) { /* @build */
  char *p = make_node(bytes);           /* @build_call */
  p[2] = 3;
  return p;
}

#ifndef __clang__
/* A GNU C nested function whose inlined call sits in lexical blocks: its
 * chain ends at the nested function, a concrete function of its own (its
 * code lies outside its parent's), as addr2line has it. */
OUT_OF_LINE char *build_nested(size_t bytes) {
  OUT_OF_LINE char *nested(size_t n) { /* @nested */
    char *p = NULL;
    for (size_t i = 0; i < n % 3 + 1; i++) {
      size_t extra = n + i;
      free(p);
      p = grow_buffer(extra); /* @nested_call */
      p[3] = (char)extra;
    }
    return p;
  }
  char *p = nested(bytes);
  p[4] = 5;
  return p;
}
#endif

uintptr_t inline_widgets_push(void); /* inline_widgets.cpp */

/* The line of this file whose comment is `marker` (an "@" name), 0 if
 * none. */
static int marked_line(const char *marker) {
  FILE *f = fopen(__FILE__, "re");
  char text[512], want[64];
  int line = 0, found = 0;
  snprintf(want, sizeof want, "/* %s */", marker);
  while (f != NULL && found == 0 && fgets(text, sizeof text, f) != NULL) {
    line++;
    if (strstr(text, want) != NULL)
      found = line;
  }
  if (f != NULL)
    fclose(f);
  CHECK(found > 0, "marker %s not found in %s", marker, __FILE__);
  return found;
}

static const char *base_name(const char *path) {
  const char *slash = path ? strrchr(path, '/') : NULL;
  return slash ? slash + 1 : path;
}

/* ---- the executable as a module --------------------------------------- */

static int find_main(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  module_t *m = arg;
  m->bias = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      m->low = info->dlpi_addr + ph->p_vaddr;
      m->high = m->low + ph->p_memsz;
    }
  }
  return 1; /* the first object is the main program */
}

static char exe[PATH_MAX];

static module_t main_module(void) {
  module_t m = {.loader_known = true};
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = '\0';
  dl_iterate_phdr(find_main, &m);
  m.path = strdup(exe);
  return m;
}

/* ---- frames ----------------------------------------------------------- */

static void print_chain(const char *what, const srcline_frame_t *f, size_t n) {
  fprintf(stderr, "  %s: %zu frames\n", what, n);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, "    #%zu %s %s:%d start_line=%d\n", i, str(f[i].function),
            str(f[i].file), f[i].line, f[i].start_line);
}

static bool same_frame(const srcline_frame_t *a, const srcline_frame_t *b) {
  return a->function == b->function && a->file == b->file &&
         a->line == b->line && a->start_line == b->start_line &&
         a->comp_dir == b->comp_dir;
}

static void check_frame(const srcline_frame_t *f, const char *function,
                        const char *marker, const char *decl_marker) {
  CHECK(f->function && strcmp(f->function, function) == 0,
        "function %s, want %s", str(f->function), function);
  CHECK(f->file && strcmp(base_name(f->file), "test_inline.c") == 0,
        "%s: file %s, want test_inline.c", function, str(f->file));
  CHECK(f->line == marked_line(marker), "%s: line %d, want %d (%s)", function,
        f->line, marked_line(marker), marker);
  CHECK(f->start_line == marked_line(decl_marker),
        "%s: start_line %d, want %d (%s)", function, f->start_line,
        marked_line(decl_marker), decl_marker);
  CHECK(f->comp_dir != NULL, "%s: no comp_dir", function);
}

/* A chain cut at every max below its length: the innermost max-1 frames,
 * then the concrete function as in the whole chain. */
static void check_cut(module_image_t *im, uint64_t pc,
                      const srcline_frame_t *whole, size_t n) {
  CHECK(module_image_chain(im, pc, NULL, 0) == 0, "max 0 gave frames");
  for (size_t max = 1; max < n; max++) {
    srcline_frame_t cut[SRCLINES_MAX_FRAMES];
    size_t got = module_image_chain(im, pc, cut, max);
    CHECK(got == max, "max %zu: %zu frames", max, got);
    for (size_t i = 0; i + 1 < got; i++)
      CHECK(same_frame(&cut[i], &whole[i]), "max %zu: frame %zu differs", max,
            i);
    if (got == max)
      CHECK(same_frame(&cut[max - 1], &whole[n - 1]),
            "max %zu: last frame is %s %s:%d, want the concrete %s %s:%d", max,
            str(cut[max - 1].function), str(cut[max - 1].file),
            cut[max - 1].line, str(whole[n - 1].function),
            str(whole[n - 1].file), whole[n - 1].line);
  }
}

static void check_nested(module_image_t *im) {
#ifdef __clang__
  (void)im;
  printf("test_inline: nested functions not checked: clang has none\n");
#else
  free(build_nested(8));
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  size_t n = module_image_chain(im, alloc_return - 1, f, SRCLINES_MAX_FRAMES);
  CHECK(n == 2, "nested function: %zu frames, want 2", n);
  if (n != 2) {
    print_chain("nested function", f, n);
    return;
  }
  check_frame(&f[0], "grow_buffer", "@grow_call", "@grow");
  check_frame(&f[1], "nested", "@nested_call", "@nested");
#endif
}

static void check_c_chain(module_image_t *im) {
  free(build(8));
  uint64_t pc = alloc_return - 1;
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  size_t n = module_image_chain(im, pc, f, SRCLINES_MAX_FRAMES);
  const char *holder = module_image_function(im, pc);
  CHECK(holder && strcmp(holder, "build") == 0,
        "record_alloc returned into %s, not build (a sibling call?)",
        str(holder));
  CHECK(n == 3, "C chain: %zu frames, want 3", n);
  if (n != 3) {
    print_chain("C chain", f, n);
    return;
  }
  check_frame(&f[0], "grow_buffer", "@grow_call", "@grow");
  check_frame(&f[1], "make_node", "@node_call", "@node");
  check_frame(&f[2], "build", "@build_call", "@build");
  check_cut(im, pc, f, n);

  /* module_image_line, as before: the concrete function's line. */
  const char *file, *comp_dir;
  int line;
  CHECK(module_image_line(im, pc, &file, &comp_dir, &line) &&
            file == f[2].file && line == f[2].line,
        "module_image_line disagrees with the chain's last frame");
}

/* record_alloc's first instruction: its row is the function's opening
 * line or its first statement's, as the compiler places it. */
static void check_no_inlining(module_image_t *im) {
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  uint64_t pc = (uintptr_t)record_alloc;
  size_t n = module_image_chain(im, pc, f, SRCLINES_MAX_FRAMES);
  CHECK(n == 1, "record_alloc's entry: %zu frames, want 1", n);
  if (n != 1) {
    print_chain("record_alloc", f, n);
    return;
  }
  bool opening = f[0].line == marked_line("@alloc");
  check_frame(&f[0], "record_alloc", opening ? "@alloc" : "@alloc_body",
              "@alloc");
}

/* ---- addr2line -------------------------------------------------------- */

struct a2l_frame {
  char function[512], file[PATH_MAX];
  int line;
};

/* Runs `addr2line -a -i -f -e file` on `n` file addresses; its output,
 * malloc'd. */
static char *run_addr2line(const char *file, const uint64_t *addrs, size_t n) {
  char **argv = calloc(n + 8, sizeof *argv);
  char(*hex)[24] = calloc(n, sizeof *hex);
  size_t k = 0;
  argv[k++] = (char *)addr2line_tool;
  argv[k++] = "-a";
  argv[k++] = "-i";
  argv[k++] = "-f";
  argv[k++] = "-e";
  argv[k++] = (char *)file;
  for (size_t i = 0; i < n; i++) {
    snprintf(hex[i], sizeof hex[i], "0x%" PRIx64, addrs[i]);
    argv[k++] = hex[i];
  }
  char *out = NULL;
  int status = tl_run(argv, &out);
  CHECK(status == 0 && out != NULL, "%s exited with %d", addr2line_tool,
        status);
  free(argv);
  free(hex);
  return out;
}

/* The frames addr2line printed for the address at *text ("0x..." then
 * function and file:line pairs); moves *text past them. */
static size_t parse_frames(char **text, uint64_t *addr, struct a2l_frame *f,
                           size_t max) {
  size_t n = 0;
  char *line = strsep(text, "\n");
  *addr = line ? strtoull(line, NULL, 16) : 0;
  while (*text && **text && strncmp(*text, "0x", 2) != 0) {
    char *name = strsep(text, "\n"), *where = strsep(text, "\n");
    if (where == NULL || n == max)
      break;
    char *disc = strstr(where, " (discriminator");
    if (disc)
      *disc = '\0';
    char *colon = strrchr(where, ':');
    if (colon)
      *colon = '\0';
    snprintf(f[n].function, sizeof f[n].function, "%s", name);
    snprintf(f[n].file, sizeof f[n].file, "%s", where);
    f[n].line = colon ? atoi(colon + 1) : 0;
    n++;
  }
  return n;
}

/* Our frame as addr2line spells it: ?? for what is unknown, a relative
 * file joined to the compilation directory. */
static void spell(const srcline_frame_t *f, struct a2l_frame *out) {
  snprintf(out->function, sizeof out->function, "%s",
           f->function ? f->function : "??");
  if (f->file == NULL)
    snprintf(out->file, sizeof out->file, "??");
  else if (f->file[0] != '/' && f->comp_dir != NULL)
    snprintf(out->file, sizeof out->file, "%s/%s", f->comp_dir, f->file);
  else
    snprintf(out->file, sizeof out->file, "%s", f->file);
  out->line = f->line;
}

/* What a row of the line table says of binutils' default-file slip: the
 * row uses file 1, and file 0 names `file0`. */
struct row_files {
  uint64_t addr;             /* file address */
  const char *file0, *file1; /* the CU's files 0 and 1 when the row uses 1 */
};

static bool frames_equal(const struct a2l_frame *a, const struct a2l_frame *b) {
  return strcmp(a->function, b->function) == 0 &&
         strcmp(a->file, b->file) == 0 && a->line == b->line;
}

/* Compares our chain at file address r->addr with addr2line's. Returns 0
 * (agree), 1 (differ only by binutils' file 0 for file 1), 2 (differ). */
static int compare(module_image_t *im, uint64_t bias, const struct row_files *r,
                   const struct a2l_frame *theirs, size_t ntheirs) {
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  struct a2l_frame ours[SRCLINES_MAX_FRAMES];
  size_t n = module_image_chain(im, r->addr + bias, f, SRCLINES_MAX_FRAMES);
  for (size_t i = 0; i < n; i++)
    spell(&f[i], &ours[i]);
  bool same = n == ntheirs && n > 0;
  for (size_t i = 0; same && i < n; i++)
    same = frames_equal(&ours[i], &theirs[i]);
  if (same)
    return 0;
  if (n == ntheirs && n > 0 && r->file1 != NULL &&
      strcmp(ours[0].file, r->file1) == 0 &&
      strcmp(theirs[0].file, r->file0) == 0 && ours[0].line == theirs[0].line &&
      strcmp(ours[0].function, theirs[0].function) == 0) {
    bool rest = true;
    for (size_t i = 1; rest && i < n; i++)
      rest = frames_equal(&ours[i], &theirs[i]);
    if (rest)
      return 1;
  }
  fprintf(stderr, "  0x%" PRIx64 ": ours\n", r->addr);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, "    %s %s:%d\n", ours[i].function, ours[i].file,
            ours[i].line);
  fprintf(stderr, "  addr2line\n");
  for (size_t i = 0; i < ntheirs; i++)
    fprintf(stderr, "    %s %s:%d\n", theirs[i].function, theirs[i].file,
            theirs[i].line);
  return 2;
}

/* ---- the C++ chain ---------------------------------------------------- */

static const char *const cxx_chain[] = {
    "_ZNSt15__new_allocatorI6WidgetE8allocate",
    "_ZNSt16allocator_traitsISaI6WidgetEE8allocate",
    "_ZNSt12_Vector_baseI6WidgetSaIS0_EE11_M_allocate",
    "_ZNSt6vectorI6WidgetSaIS0_EE17_M_realloc_insert",
};

static void check_cxx_chain(module_image_t *im, uint64_t bias) {
  uintptr_t ret = inline_widgets_push();
  CHECK(ret != 0, "operator new was not called by push_back");
  if (ret == 0)
    return;
  uint64_t pc = ret - 1;
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  size_t n = module_image_chain(im, pc, f, SRCLINES_MAX_FRAMES);
  size_t next = 0;
  for (size_t i = 0; i < n && next < 4; i++)
    if (f[i].function &&
        strncmp(f[i].function, cxx_chain[next], strlen(cxx_chain[next])) == 0)
      next++;
  CHECK(next == 4 && strncmp(str(f[0].function), cxx_chain[0],
                             strlen(cxx_chain[0])) == 0,
        "the C++ chain lacks %s (or it is out of order, or not innermost)",
        next < 4 ? cxx_chain[next] : cxx_chain[0]);
  for (size_t i = 0; i < n; i++)
    CHECK(f[i].start_line > 0 && f[i].file && f[i].line > 0,
          "C++ frame %zu (%s): start_line %d, %s:%d", i, str(f[i].function),
          f[i].start_line, str(f[i].file), f[i].line);
  CHECK(n > 0 && ends_with(f[0].file, "/new_allocator.h"),
        "innermost file %s, want new_allocator.h", n ? str(f[0].file) : "-");

  /* The same chain as addr2line gives, on the executable itself. */
  uint64_t file_pc = pc - bias;
  char *out = run_addr2line(exe, &file_pc, 1), *text = out;
  struct a2l_frame theirs[SRCLINES_MAX_FRAMES];
  uint64_t addr;
  size_t ntheirs = text ? parse_frames(&text, &addr, theirs, 32) : 0;
  struct row_files none = {.addr = file_pc};
  CHECK(compare(im, bias, &none, theirs, ntheirs) == 0,
        "the C++ chain differs from addr2line's");
  free(out);
  if (next != 4)
    print_chain("C++ chain", f, n);
  check_cut(im, pc, f, n);
}

/* ---- outside the DWARF ------------------------------------------------ */

extern char _init[]; /* crti.o's .init: code with no DWARF */

static void check_outside(module_image_t *im, uint64_t bias) {
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  uint64_t pc = (uintptr_t)_init, file_pc = pc - bias;
  size_t n = module_image_chain(im, pc, f, SRCLINES_MAX_FRAMES);
  CHECK(n == 0, "_init: %zu frames, want 0", n);
  if (n != 0)
    print_chain("_init", f, n);
  char *out = run_addr2line(exe, &file_pc, 1);
  CHECK(out && strstr(out, "\n??:") != NULL, "addr2line knows _init's line: %s",
        str(out));
  free(out);
  CHECK(module_image_chain(im, 16, f, SRCLINES_MAX_FRAMES) == 0,
        "address 16 gave frames");
}

/* ---- agreement over the line table ------------------------------------ */

static int by_addr(const void *a, const void *b) {
  const struct row_files *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Instruction starts from the line table of `dw`: rows that are not an
 * end of sequence, whose code is not empty, inside a function symbol;
 * distinct and sorted. Their number. */
static size_t line_rows(Dwarf *dw, module_image_t *im, uint64_t bias,
                        struct row_files **out) {
  size_t n = 0, cap = 0;
  struct row_files *rows = NULL;
  Dwarf_Off off = 0, next;
  size_t header;
  while (dwarf_nextcu(dw, off, &next, &header, NULL, NULL, NULL) == 0) {
    Dwarf_Die cu;
    Dwarf_Lines *lines;
    Dwarf_Files *files;
    size_t nlines, nfiles;
    if (dwarf_offdie(dw, off + header, &cu) == NULL ||
        dwarf_getsrclines(&cu, &lines, &nlines) != 0 ||
        dwarf_getsrcfiles(&cu, &files, &nfiles) != 0 || nfiles < 2) {
      off = next;
      continue;
    }
    for (size_t i = 0; i + 1 < nlines; i++) {
      Dwarf_Line *row = dwarf_onesrcline(lines, i);
      Dwarf_Addr a, b;
      bool end;
      size_t index;
      if (dwarf_lineendsequence(row, &end) != 0 || end ||
          dwarf_lineaddr(row, &a) != 0 ||
          dwarf_lineaddr(dwarf_onesrcline(lines, i + 1), &b) != 0 || b <= a ||
          module_image_function(im, a + bias) == NULL)
        continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 1024;
        rows = realloc(rows, cap * sizeof *rows);
      }
      rows[n] = (struct row_files){.addr = a};
      if (dwarf_line_file(row, &files, &index) == 0 && index == 1) {
        rows[n].file0 = dwarf_filesrc(files, 0, NULL, NULL);
        rows[n].file1 = dwarf_filesrc(files, 1, NULL, NULL);
      }
      n++;
    }
    off = next;
  }
  qsort(rows, n, sizeof *rows, by_addr);
  size_t distinct = 0;
  for (size_t i = 0; i < n; i++)
    if (distinct == 0 || rows[distinct - 1].addr != rows[i].addr)
      rows[distinct++] = rows[i];
  *out = rows;
  return distinct;
}

/* The executable's DWARF without any symbol table, for addr2line: its
 * debug file (whose .dynsym is left empty), stripped of .symtab. NULL if
 * objcopy fails. */
static char *copy_without_symbols(void) {
  static char debug[PATH_MAX], copy[PATH_MAX];
  snprintf(debug, sizeof debug, "%s/test_inline.debug", tl_tmpdir());
  snprintf(copy, sizeof copy, "%s/test_inline.nosym", tl_tmpdir());
  char *keep_debug[] = {(char *)objcopy_tool, "--only-keep-debug", exe, debug,
                        NULL};
  char *strip[] = {(char *)objcopy_tool,
                   "--strip-all",
                   "--keep-section=.debug_*",
                   debug,
                   copy,
                   NULL};
  int status = tl_run(keep_debug, NULL);
  if (status == 0)
    status = tl_run(strip, NULL);
  CHECK(status == 0, "%s exited with %d", objcopy_tool, status);
  unlink(debug);
  return status == 0 ? copy : NULL;
}

static bool has_section(Elf *elf, const char *name) {
  size_t strndx;
  GElf_Shdr sh;
  if (elf_getshdrstrndx(elf, &strndx) != 0)
    return false;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
    const char *s =
        gelf_getshdr(scn, &sh) ? elf_strptr(elf, strndx, sh.sh_name) : NULL;
    if (s != NULL && strcmp(s, name) == 0)
      return true;
  }
  return false;
}

/* The chains srclines gives for `n` file addresses of a copy of the
 * executable without .debug_aranges equal those of the executable. */
static void check_without_aranges(module_image_t *im, uint64_t bias,
                                  const uint64_t *addrs, size_t n) {
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s/test_inline.noaranges", tl_tmpdir());
  char *argv[] = {(char *)objcopy_tool, "--remove-section=.debug_aranges", exe,
                  copy, NULL};
  int status = tl_run(argv, NULL);
  Elf *elf = status == 0 ? elfopen_file(copy, NULL) : NULL;
  srclines_t *d = elf ? srclines_open(elf, copy) : NULL;
  CHECK(d != NULL, "no DWARF in %s (objcopy exited with %d)", copy, status);
  CHECK(elf && !has_section(elf, ".debug_aranges") &&
            has_section(elf, ".debug_info"),
        "%s is not the executable without .debug_aranges", copy);
  size_t differ = 0, frames = 0;
  for (size_t i = 0; d != NULL && i < n; i++) {
    srcline_frame_t a[SRCLINES_MAX_FRAMES], b[SRCLINES_MAX_FRAMES];
    size_t na = module_image_chain(im, addrs[i] + bias, a, SRCLINES_MAX_FRAMES);
    size_t nb = srclines_chain(d, addrs[i], b, SRCLINES_MAX_FRAMES);
    bool same = na == nb;
    for (size_t k = 0; same && k < na; k++) {
      struct a2l_frame x, y;
      spell(&a[k], &x);
      spell(&b[k], &y);
      same = frames_equal(&x, &y) && a[k].start_line == b[k].start_line;
    }
    differ += !same;
    frames += nb;
  }
  printf("without .debug_aranges: %zu addresses, %zu frames, %zu differ\n", n,
         frames, differ);
  CHECK(differ == 0 && frames >= n,
        "%zu of %zu chains differ without .debug_aranges (%zu frames)", differ,
        n, frames);
  srclines_free(d);
  if (elf)
    elf_end(elf);
  unlink(copy);
}

static void check_agreement(module_image_t *im, uint64_t bias) {
  int fd = open(exe, O_RDONLY | O_CLOEXEC);
  Dwarf *dw = fd >= 0 ? dwarf_begin(fd, DWARF_C_READ) : NULL;
  CHECK(dw != NULL, "libdw cannot read %s", exe);
  char *copy = copy_without_symbols();
  if (dw == NULL || copy == NULL)
    return;
  struct row_files *rows;
  size_t nrows = line_rows(dw, im, bias, &rows);
  size_t step = nrows / AGREEMENT_ADDRS ? nrows / AGREEMENT_ADDRS : 1, n = 0;
  for (size_t i = 0; i < nrows; i += step)
    rows[n++] = rows[i];
  uint64_t *addrs = calloc(n ? n : 1, sizeof *addrs);
  for (size_t i = 0; i < n; i++)
    addrs[i] = rows[i].addr;
  char *out = run_addr2line(copy, addrs, n), *text = out;
  size_t counts[3] = {0}, frames = 0, answered = 0;
  for (size_t i = 0; text && *text && i < n; i++) {
    struct a2l_frame theirs[SRCLINES_MAX_FRAMES];
    uint64_t addr;
    size_t ntheirs = parse_frames(&text, &addr, theirs, SRCLINES_MAX_FRAMES);
    CHECK(addr == rows[i].addr,
          "addr2line answered 0x%" PRIx64 " for 0x%" PRIx64, addr,
          rows[i].addr);
    counts[compare(im, bias, &rows[i], theirs, ntheirs)]++;
    frames += ntheirs;
    answered++;
  }
  printf("addr2line agreement: %zu addresses (every %zu of %zu rows), %zu "
         "frames: %zu agree, %zu differ only by binutils' file 0 for file 1, "
         "%zu differ\n",
         answered, step, nrows, frames, counts[0], counts[1], counts[2]);
  CHECK(answered == n && n >= AGREEMENT_ADDRS / 2,
        "%zu addresses answered of %zu", answered, n);
  CHECK(counts[2] == 0, "%zu addresses differ from addr2line", counts[2]);
  CHECK(frames > answered, "no inlined frame among the addresses compared");
  check_without_aranges(im, bias, addrs, n);
  free(out);
  free(addrs);
  free(rows);
  unlink(copy);
  dwarf_end(dw);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_inline ADDR2LINE OBJCOPY\n");
    return 2;
  }
  addr2line_tool = argv[1];
  objcopy_tool = argv[2];
  alarm(120); /* a hang detector, far above the few seconds this takes */
  elf_version(EV_CURRENT);
  module_t m = main_module();
  module_image_t *im = module_image(&m);
  CHECK(im != NULL, "no image of %s", exe);
  if (im == NULL)
    return 1;
  check_c_chain(im);
  check_nested(im);
  check_no_inlining(im);
  check_cxx_chain(im, m.bias);
  check_outside(im, m.bias);
  check_agreement(im, m.bias);
  module_image_free(im);
  free(m.path);
  rmdir(tl_tmpdir());
  if (failures)
    fprintf(stderr, "test_inline: %d failures\n", failures);
  return failures != 0;
}
