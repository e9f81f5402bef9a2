/*
 * srclines — DWARF lines and inline call sites (see srclines.h).
 *
 * Invariants: `runs` is sorted by start and, once built, never changes; a
 * CU's function index, once built, never changes; Dwarf_Die values kept
 * here point into dw or alt, which live until srclines_free().
 *
 * An inline chain is found from the concrete function holding pc (the
 * CU's function index) by descending its DIE tree: at each level, the one
 * child scope (inlined subroutine, lexical block) whose ranges hold pc.
 * Only the siblings on that path are read, each skipped by its
 * DW_AT_sibling, never the whole CU as dwarf_getscopes does.
 */
#include "srclines.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "debuginfo.h"
#include "elfopen.h"

/* How far back a lookup looks for an enclosing function range when the
 * nearest one ends below pc (a function nested in a bigger one). */
#define NESTED_LOOKBACK 8

/*
 * What libdw allocates per CU it decodes, for srclines_bytes(): a cost
 * per line-table row and one per CU (abbreviations, file table, unit
 * headers). An estimate, fitted with glibc's mallinfo2() over 300..10k
 * libc addresses (197..1271 CUs, 166k..284k rows): 58 bytes per row and
 * ~1.9 KiB per CU. bench/symbolize_cost prints it beside the measured heap.
 */
#define LINE_ROW_BYTES 60
#define CU_BYTES 2048

/* A run of consecutive address ranges belonging to one CU. As libdwfl
 * does, the gap before the next run counts as this CU's. */
struct cu_run {
  Dwarf_Addr start;
  Dwarf_Off cu; /* offset of the CU's DIE */
};

/* One contiguous range of a concrete function DIE, in DWARF addresses. */
struct fn_range {
  Dwarf_Addr low, high;
  uint64_t die; /* DIE offset << 1, | 1 when it lives in the alt file */
};

/* The function extents of one CU, sorted by low; built on first use. */
struct cu_index {
  Dwarf_Off cu; /* key: offset of the CU's DIE; 0 = empty slot */
  size_t nlines;
  struct fn_range *ranges;
  size_t nranges, cap;
};

struct srclines {
  Elf *elf; /* not owned */
  Dwarf *dw;
  Dwarf *alt;     /* the dwz file's DWARF, or NULL */
  Elf *alt_elf;   /* owned */
  char *alt_path; /* owned: where alt_elf was opened, as alt_stamp */
  elfopen_stamp_t alt_stamp;
  bool runs_built;
  struct cu_run *runs;
  size_t nruns;
  Dwarf_Addr last_end; /* end of the last address range */
  struct cu_index *cus;
  size_t ncus_slots, ncus;
  /* srclines_chain's scratch: the inlined calls at one pc, outermost
   * first. Grows to the deepest chain seen, then is reused. */
  Dwarf_Die *chain;
  size_t chain_cap;
};

/* ---- opening ---------------------------------------------------------- */

/* Installs the dwz file `dw` names, if it names one. false when it names
 * one that is not found with its build id. */
static bool set_alt(srclines_t *d, const char *path) {
  const char *altname;
  const void *alt_id;
  char found[PATH_MAX];
  ssize_t len = dwelf_dwarf_gnu_debugaltlink(d->dw, &altname, &alt_id);
  if (len == 0)
    return true;
  if (len > 0)
    d->alt_elf = debuginfo_find_alt(path, altname, alt_id, (size_t)len, found,
                                    &d->alt_stamp);
  if (d->alt_elf != NULL && (d->alt_path = strdup(found)) != NULL)
    d->alt = dwarf_begin_elf(d->alt_elf, DWARF_C_READ, NULL);
  if (d->alt == NULL)
    return false;
  dwarf_setalt(d->dw, d->alt);
  return true;
}

srclines_t *srclines_open(Elf *elf, const char *path) {
  srclines_t *d = calloc(1, sizeof *d);
  if (d == NULL)
    return NULL;
  d->elf = elf;
  d->dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
  if (d->dw == NULL || !set_alt(d, path)) {
    srclines_free(d);
    return NULL;
  }
  return d;
}

void srclines_free(srclines_t *d) {
  if (d == NULL)
    return;
  for (size_t i = 0; i < d->ncus_slots; i++)
    free(d->cus[i].ranges);
  free(d->cus);
  free(d->runs);
  free(d->chain);
  dwarf_end(d->dw);
  dwarf_end(d->alt);
  if (d->alt_elf != NULL)
    elf_end(d->alt_elf);
  free(d->alt_path);
  free(d);
}

const char *srclines_alt_file(const srclines_t *d,
                              const elfopen_stamp_t **stamp) {
  *stamp = &d->alt_stamp;
  return d->alt_elf != NULL ? d->alt_path : NULL;
}

/* ---- which CU holds an address ---------------------------------------- */

static void build_runs(srclines_t *d) {
  Dwarf_Aranges *aranges;
  size_t n;
  d->runs_built = true;
  if (dwarf_getaranges(d->dw, &aranges, &n) != 0 || n == 0 ||
      (d->runs = malloc(n * sizeof *d->runs)) == NULL)
    return;
  for (size_t i = 0; i < n; i++) {
    Dwarf_Addr addr;
    Dwarf_Word length;
    Dwarf_Off cu;
    if (dwarf_getarangeinfo(dwarf_onearange(aranges, i), &addr, &length, &cu) !=
        0)
      continue;
    if (d->nruns == 0 || d->runs[d->nruns - 1].cu != cu)
      d->runs[d->nruns++] = (struct cu_run){addr, cu};
    d->last_end = addr + length;
  }
  struct cu_run *fit =
      realloc(d->runs, (d->nruns ? d->nruns : 1) * sizeof *fit);
  d->runs = fit ? fit : d->runs;
}

/* The CU whose run holds `pc`: the last run starting at or below it, up
 * to the next run (or, for the last, the end of its last range). */
static bool cu_at(srclines_t *d, Dwarf_Addr pc, Dwarf_Die *cu) {
  if (!d->runs_built)
    build_runs(d);
  size_t lo = 0, hi = d->nruns;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->runs[mid].start <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || (lo == d->nruns && pc > d->last_end))
    return false;
  return dwarf_offdie(d->dw, d->runs[lo - 1].cu, cu) != NULL;
}

/* ---- function extents per CU ------------------------------------------ */

static struct cu_index *cu_slot(struct cu_index *slots, size_t nslots,
                                Dwarf_Off key) {
  size_t i = (key * 0x9e3779b97f4a7c15u) >> 24 & (nslots - 1);
  while (slots[i].cu != 0 && slots[i].cu != key)
    i = (i + 1) & (nslots - 1);
  return &slots[i];
}

static bool cus_grow(srclines_t *d) {
  size_t nslots = d->ncus_slots ? 2 * d->ncus_slots : 64;
  struct cu_index *slots = calloc(nslots, sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < d->ncus_slots; i++)
    if (d->cus[i].cu != 0)
      *cu_slot(slots, nslots, d->cus[i].cu) = d->cus[i];
  free(d->cus);
  d->cus = slots;
  d->ncus_slots = nslots;
  return true;
}

struct ranges_ctx {
  srclines_t *d;
  struct cu_index *ci;
};

static bool reserve_range(struct cu_index *ci) {
  if (ci->nranges < ci->cap)
    return true;
  size_t cap = ci->cap ? 2 * ci->cap : 16;
  struct fn_range *grown = realloc(ci->ranges, cap * sizeof *grown);
  if (grown == NULL)
    return false;
  ci->ranges = grown;
  ci->cap = cap;
  return true;
}

/* dwarf_getfuncs callback: records each range of a function with code. */
static int add_function_ranges(Dwarf_Die *fn, void *arg) {
  struct ranges_ctx *c = arg;
  Dwarf_Addr base, low, high;
  uint64_t in_alt = c->d->alt && dwarf_cu_getdwarf(fn->cu) == c->d->alt;
  uint64_t die = (uint64_t)dwarf_dieoffset(fn) << 1 | in_alt;
  for (ptrdiff_t at = 0; (at = dwarf_ranges(fn, at, &base, &low, &high)) > 0;) {
    if (!reserve_range(c->ci))
      return DWARF_CB_ABORT;
    c->ci->ranges[c->ci->nranges++] = (struct fn_range){low, high, die};
  }
  return DWARF_CB_OK;
}

static int by_low(const void *a, const void *b) {
  const struct fn_range *x = a, *y = b;
  return x->low < y->low ? -1 : x->low > y->low;
}

/* The function index of `cu`, built on first use; NULL on OOM. */
static const struct cu_index *cu_index_of(srclines_t *d, Dwarf_Die *cu) {
  Dwarf_Off key = dwarf_dieoffset(cu);
  if (key == 0 || key == (Dwarf_Off)-1 ||
      (4 * (d->ncus + 1) > 3 * d->ncus_slots && !cus_grow(d)))
    return NULL;
  struct cu_index *ci = cu_slot(d->cus, d->ncus_slots, key);
  if (ci->cu != 0)
    return ci;
  Dwarf_Lines *lines;
  *ci = (struct cu_index){.cu = key};
  d->ncus++;
  if (dwarf_getsrclines(cu, &lines, &ci->nlines) != 0)
    ci->nlines = 0;
  struct ranges_ctx c = {d, ci};
  dwarf_getfuncs(cu, add_function_ranges, &c, 0);
  qsort(ci->ranges, ci->nranges, sizeof *ci->ranges, by_low);
  return ci;
}

/* The concrete function DIE whose code holds `pc`. */
static bool function_die(const srclines_t *d, const struct cu_index *ci,
                         Dwarf_Addr pc, Dwarf_Die *out) {
  size_t lo = 0, hi = ci->nranges;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ci->ranges[mid].low <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (size_t i = lo; i > 0 && lo - i < NESTED_LOOKBACK; i--) {
    const struct fn_range *r = &ci->ranges[i - 1];
    if (pc < r->high)
      return dwarf_offdie((r->die & 1) ? d->alt : d->dw, r->die >> 1, out) !=
             NULL;
  }
  return false;
}

/* ---- inline call sites ------------------------------------------------ */

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

/* The source files of the unit holding `die` (its call_file numbers one
 * of them); NULL if it has none. */
static Dwarf_Files *unit_files(Dwarf_Die *die, size_t *nfiles) {
  Dwarf_Die unit;
  Dwarf_Files *files;
  if (dwarf_diecu(die, &unit, NULL, NULL) == NULL ||
      dwarf_getsrcfiles(&unit, &files, nfiles) != 0)
    return NULL;
  return files;
}

/* Where the inlined subroutine `inl` was called from, in the unit whose
 * source files are `files`: *file NULL and *line 0 where DWARF does not
 * say. */
static void call_position(Dwarf_Die *inl, Dwarf_Files *files, size_t nfiles,
                          const char **file, int *line) {
  Dwarf_Attribute attr;
  Dwarf_Word file_index, call_line;
  *file = NULL;
  *line = 0;
  if (files != NULL &&
      dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &file_index) ==
          0 &&
      file_index < nfiles)
    *file = dwarf_filesrc(files, file_index, NULL, NULL);
  if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &call_line) ==
          0 &&
      call_line <= INT_MAX)
    *line = (int)call_line;
}

/* Where the inlined subroutine `inl` was called from, as file:line; left
 * as they are unless DWARF gives both. */
static void call_site(Dwarf_Die *inl, const char **file, int *line) {
  size_t nfiles;
  Dwarf_Files *files = unit_files(inl, &nfiles);
  const char *call_file;
  int call_line;
  call_position(inl, files, nfiles, &call_file, &call_line);
  if (call_file != NULL && call_line != 0) {
    *file = call_file;
    *line = call_line;
  }
}

/*
 * The line table describes the innermost inlined body at `pc`, but the
 * frame is named after the symbol that physically holds it, the outermost
 * function. To keep name and line consistent, an address inside inlined
 * code is placed at the call site of its outermost inlined call, which is a
 * line of that function. (dwarf_getscopes() is no help: it stops at the
 * innermost inlined call and rescans the CU on every call.)
 */
static void outer_call_site(srclines_t *d, Dwarf_Die *cu, Dwarf_Addr pc,
                            const char **file, int *line) {
  const struct cu_index *ci = cu_index_of(d, cu);
  Dwarf_Die fn, inl;
  if (ci != NULL && function_die(d, ci, pc, &fn) &&
      outermost_inlined(&fn, pc, &inl))
    call_site(&inl, file, line);
}

/* ---- inline chains ---------------------------------------------------- */

/* The DIEs whose code an inlined call or a nested function can sit in. */
static bool holds_code(int tag) {
  return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block ||
         tag == DW_TAG_subprogram || tag == DW_TAG_try_block ||
         tag == DW_TAG_catch_block;
}

/* Moves *die along its siblings (itself first) to the one whose code
 * holds pc; false if none does. */
static bool sibling_at(Dwarf_Die *die, Dwarf_Addr pc) {
  do {
    if (holds_code(dwarf_tag(die)) && dwarf_haspc(die, pc) == 1)
      return true;
  } while (dwarf_siblingof(die, die) == 0);
  return false;
}

static bool chain_reserve(srclines_t *d, size_t n) {
  if (n < d->chain_cap)
    return true;
  size_t cap = d->chain_cap ? 2 * d->chain_cap : SRCLINES_MAX_FRAMES;
  Dwarf_Die *grown = realloc(d->chain, cap * sizeof *grown);
  if (grown == NULL)
    return false;
  d->chain = grown;
  d->chain_cap = cap;
  return true;
}

/* The inlined calls holding pc inside the concrete function *fn, into
 * d->chain, outermost first; their number, or SIZE_MAX when memory runs
 * out. A function nested in *fn whose code holds pc replaces it (the
 * function index already names the innermost one; this is for DWARF
 * where a nested function's range lies inside its parent's). */
static size_t inlined_calls(srclines_t *d, Dwarf_Die *fn, Dwarf_Addr pc) {
  size_t n = 0;
  Dwarf_Die scope = *fn, child;
  while (dwarf_child(&scope, &child) == 0 && sibling_at(&child, pc)) {
    int tag = dwarf_tag(&child);
    if (tag == DW_TAG_subprogram) {
      *fn = child;
      n = 0;
    } else if (tag == DW_TAG_inlined_subroutine) {
      if (!chain_reserve(d, n))
        return SIZE_MAX;
      d->chain[n++] = child;
    }
    scope = child;
  }
  return n;
}

/* The name of the function `die` is, or is an inlined call or concrete
 * instance of: its linkage name if it has one. */
static const char *function_name(Dwarf_Die *die) {
  static const unsigned names[] = {DW_AT_linkage_name, DW_AT_MIPS_linkage_name,
                                   DW_AT_name};
  Dwarf_Attribute attr;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    const char *name =
        dwarf_formstring(dwarf_attr_integrate(die, names[i], &attr));
    if (name != NULL)
      return name;
  }
  return NULL;
}

/* Fills `f`'s function and start line from `die`, keeping its position. */
static void name_frame(srcline_frame_t *f, Dwarf_Die *die) {
  int line;
  f->function = function_name(die);
  f->start_line = dwarf_decl_line(die, &line) == 0 && line > 0 ? line : 0;
}

/* Frames of the chain at pc inside `fn`, whose innermost position is
 * `at` (the line table's); see srclines_chain. */
static size_t chain_frames(srclines_t *d, Dwarf_Die *fn, Dwarf_Addr pc,
                           srcline_frame_t at, srcline_frame_t *out,
                           size_t max) {
  size_t n = inlined_calls(d, fn, pc), nfiles = 0;
  if (n == SIZE_MAX)
    return 0;
  Dwarf_Files *files = n > 0 ? unit_files(fn, &nfiles) : NULL;
  size_t keep = n < max - 1 ? n : max - 1;
  for (size_t k = 0; k < keep; k++) {
    Dwarf_Die *inl = &d->chain[n - 1 - k];
    out[k] = at;
    name_frame(&out[k], inl);
    call_position(inl, files, nfiles, &at.file, &at.line);
  }
  if (keep < n)
    call_position(&d->chain[0], files, nfiles, &at.file, &at.line);
  out[keep] = at;
  name_frame(&out[keep], fn);
  return keep + 1;
}

size_t srclines_chain(srclines_t *d, uint64_t pc, srcline_frame_t *out,
                      size_t max) {
  Dwarf_Die cu, fn;
  Dwarf_Attribute attr;
  if (max == 0 || !cu_at(d, pc, &cu))
    return 0;
  const struct cu_index *ci = cu_index_of(d, &cu);
  bool in_function = ci != NULL && function_die(d, ci, pc, &fn);
  Dwarf_Line *row = dwarf_getsrc_die(&cu, pc);
  if (row == NULL && !in_function)
    return 0;
  srcline_frame_t at = {
      .comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr))};
  if (row != NULL) {
    at.file = dwarf_linesrc(row, NULL, NULL);
    if (dwarf_lineno(row, &at.line) != 0 || at.line < 0)
      at.line = 0;
  }
  if (!in_function) {
    out[0] = at;
    return 1;
  }
  return chain_frames(d, &fn, pc, at, out, max);
}

/* ---- lookup ----------------------------------------------------------- */

bool srclines_find(srclines_t *d, uint64_t pc, const char **file,
                   const char **comp_dir, int *line) {
  Dwarf_Die cu;
  Dwarf_Attribute attr;
  Dwarf_Line *row = cu_at(d, pc, &cu) ? dwarf_getsrc_die(&cu, pc) : NULL;
  const char *name = row ? dwarf_linesrc(row, NULL, NULL) : NULL;
  if (name == NULL || dwarf_lineno(row, line) != 0)
    return false;
  *file = name;
  outer_call_site(d, &cu, pc, file, line);
  *comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr));
  return true;
}

/* ---- memory ----------------------------------------------------------- */

size_t srclines_bytes(const srclines_t *d) {
  size_t bytes = sizeof *d + d->nruns * sizeof *d->runs +
                 d->ncus_slots * sizeof *d->cus +
                 d->chain_cap * sizeof *d->chain +
                 (d->alt_path ? strlen(d->alt_path) + 1 : 0);
  for (size_t i = 0; i < d->ncus_slots; i++)
    if (d->cus[i].cu != 0)
      bytes += d->cus[i].cap * sizeof *d->cus[i].ranges + CU_BYTES +
               d->cus[i].nlines * LINE_ROW_BYTES;
  return bytes + elfopen_heap_bytes(d->elf) + elfopen_heap_bytes(d->alt_elf);
}
