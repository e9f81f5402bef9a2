/*
 * srclines — DWARF lines and inline call sites (see srclines.h).
 *
 * Invariants: `runs` is sorted by start and, once built, never changes; a
 * CU's function extents, once built, never change, nor does a function's
 * inline tree (facts are only added); the DIE offsets and strings kept
 * here are dw's or alt's, which live until srclines_free().
 *
 * An inline chain is found in two steps: the CU's function index names
 * the concrete function holding pc, then that function's inline tree (its
 * inlined calls, their ranges and nesting, read from its DIEs once, on
 * the first lookup inside it) gives the calls holding pc, outermost
 * first. Only the frames kept are read from DWARF again (names, call
 * sites). dwarf_getscopes is not used: it rescans the whole CU on every
 * call, and past an inlined call it follows the abstract origin's
 * parents, losing the functions the call was inlined into.
 *
 * Memory, besides libdw's: per CU touched, 24 bytes per function range
 * and 24 per function; per function looked into, 24 bytes per inlined
 * call and 16 per range of one; 24 per DIE some chain returned (arrays
 * grown by doubling). Measured (bench/symbolize_cost, 10k addresses):
 * libc's 1380 CUs touched, 0.5 KiB each; symbolize_cxx.cpp's one C++ CU,
 * 95 functions, 6.6k inlined calls, 4.8k DIEs returned: 0.65 MB.
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

/* A run of adjoining address ranges belonging to one CU. As libdwfl
 * does, the gap before the next run counts as this CU's, unless the CU's
 * own ranges exclude the address (cu_at). */
struct cu_run {
  Dwarf_Addr start;
  Dwarf_Addr end; /* a gap (code of no CU's aranges) may follow, up to the
                     next run's start */
  Dwarf_Off cu;   /* offset of the CU's DIE */
};

/* One contiguous range of a concrete function, in DWARF addresses. */
struct fn_range {
  Dwarf_Addr low, high;
  uint32_t fn; /* its function, in cu_index.fns */
};

/* A concrete function (a DW_TAG_subprogram with code) and, once an
 * address inside it was looked up, the tree of the calls inlined into it:
 * nodes[first..end) of its CU's index. */
struct fn_info {
  uint64_t die; /* DIE offset << 1, | 1 when it lives in the alt file */
  uint32_t first, end;
  uint32_t facts; /* its facts' index in cu_index.facts + 1; 0: not read */
  bool built;
};

/* An inlined call (DW_TAG_inlined_subroutine) in a function's tree, in
 * preorder: the calls inlined into it are the nodes after it, up to
 * `end`. Its code is inl_ranges[range..range+nranges). Lexical blocks are
 * left out: their calls belong to the nearest enclosing call. */
struct inl_node {
  uint64_t die; /* as fn_info.die */
  uint32_t range, nranges;
  uint32_t end;
  uint32_t facts; /* as fn_info.facts */
};

/* What a frame needs of a function or inlined call's DIE, read from DWARF
 * the first time a chain holds it: its function's name and start line,
 * and for an inlined call, the call site. */
struct frame_facts {
  const char *function, *call_file;
  int start_line, call_line;
};

struct addr_range {
  Dwarf_Addr low, high;
};

/*
 * What is known of one CU: its functions' extents, sorted by low, built
 * on first use; and the inline trees of the functions looked into, each
 * built on the first lookup inside its function and kept. Each array
 * grows by doubling; `*_cap` is its allocated length.
 */
struct cu_index {
  Dwarf_Off cu; /* key: offset of the CU's DIE; 0 = empty slot */
  size_t nlines;
  struct fn_range *ranges;
  size_t nranges, ranges_cap;
  struct fn_info *fns;
  size_t nfns, fns_cap;
  struct inl_node *nodes;
  size_t nnodes, nodes_cap;
  struct addr_range *inl_ranges;
  size_t ninl_ranges, inl_ranges_cap;
  struct frame_facts *facts;
  size_t nfacts, facts_cap;
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
   * first, as indexes into the CU's nodes. Grows to the deepest chain
   * seen, then is reused. */
  uint32_t *chain;
  size_t chain_cap;
};

/* Makes room for `need` elements of `size` bytes in *array, which holds
 * *cap; doubles it (from 4: most C CUs have a few functions, with a few
 * inlined calls) when full. false when memory runs out. */
static bool reserve(void *array, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return true;
  size_t grown_cap = *cap ? *cap : 4;
  while (grown_cap < need)
    grown_cap *= 2;
  if (grown_cap > UINT32_MAX)
    return false; /* indexes are uint32_t */
  void *grown = realloc(*(void **)array, grown_cap * size);
  if (grown == NULL)
    return false;
  *(void **)array = grown;
  *cap = grown_cap;
  return true;
}

/* Shrinks *array, which holds *cap elements, to its `n` used ones. */
static void fit(void *array, size_t *cap, size_t n, size_t size) {
  void *fitted = n > 0 && n < *cap ? realloc(*(void **)array, n * size) : NULL;
  if (fitted != NULL) {
    *(void **)array = fitted;
    *cap = n;
  }
}

static uint64_t die_key(const srclines_t *d, Dwarf_Die *die) {
  uint64_t in_alt = d->alt && dwarf_cu_getdwarf(die->cu) == d->alt;
  return (uint64_t)dwarf_dieoffset(die) << 1 | in_alt;
}

static bool die_of(const srclines_t *d, uint64_t key, Dwarf_Die *out) {
  return dwarf_offdie((key & 1) ? d->alt : d->dw, key >> 1, out) != NULL;
}

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
  for (size_t i = 0; i < d->ncus_slots; i++) {
    free(d->cus[i].ranges);
    free(d->cus[i].fns);
    free(d->cus[i].nodes);
    free(d->cus[i].inl_ranges);
    free(d->cus[i].facts);
  }
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

/* One address range of a CU. */
struct cu_range {
  Dwarf_Addr low, high;
  Dwarf_Off cu; /* offset of the CU's DIE */
};

static int by_range_low(const void *a, const void *b) {
  const struct cu_range *x = a, *y = b;
  return x->low < y->low ? -1 : x->low > y->low;
}

/* The CUs' ranges as .debug_aranges lists them, in address order. Their
 * number (0 without the section, or out of memory); *out is malloc'd. */
static size_t aranges_of(Dwarf *dw, struct cu_range **out) {
  Dwarf_Aranges *aranges;
  size_t n, kept = 0;
  if (dwarf_getaranges(dw, &aranges, &n) != 0 || n == 0 ||
      (*out = malloc(n * sizeof **out)) == NULL)
    return 0;
  for (size_t i = 0; i < n; i++) {
    Dwarf_Addr addr;
    Dwarf_Word length;
    Dwarf_Off cu;
    if (dwarf_getarangeinfo(dwarf_onearange(aranges, i), &addr, &length, &cu) ==
        0)
      (*out)[kept++] = (struct cu_range){addr, addr + length, cu};
  }
  return kept;
}

/* The CUs' ranges as their DIEs give them (DW_AT_ranges, or low and high
 * pc), sorted: for objects without .debug_aranges, which clang does not
 * write unless asked (-gdwarf-aranges). One pass over the unit headers
 * and CU DIEs. Their number (0 when out of memory); *out is malloc'd. */
static size_t cu_die_ranges(Dwarf *dw, struct cu_range **out) {
  size_t n = 0, cap = 0, header;
  Dwarf_Off off = 0, next;
  *out = NULL;
  while (dwarf_nextcu(dw, off, &next, &header, NULL, NULL, NULL) == 0) {
    Dwarf_Die cu;
    Dwarf_Addr base, low, high;
    if (dwarf_offdie(dw, off + header, &cu) != NULL)
      for (ptrdiff_t at = 0;
           (at = dwarf_ranges(&cu, at, &base, &low, &high)) > 0;) {
        if (!reserve(out, &cap, n + 1, sizeof **out)) {
          free(*out);
          return 0;
        }
        (*out)[n++] = (struct cu_range){low, high, off + header};
      }
    off = next;
  }
  qsort(*out, n, sizeof **out, by_range_low);
  return n;
}

/* The runs, from .debug_aranges or else from the CU DIEs: adjoining
 * ranges of one CU make one run. */
static void build_runs(srclines_t *d) {
  struct cu_range *ranges = NULL;
  size_t n = aranges_of(d->dw, &ranges);
  d->runs_built = true;
  if (n == 0) {
    free(ranges);
    n = cu_die_ranges(d->dw, &ranges);
  }
  if (n == 0 || (d->runs = malloc(n * sizeof *d->runs)) == NULL) {
    free(ranges);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct cu_run *last = d->nruns ? &d->runs[d->nruns - 1] : NULL;
    if (last == NULL || last->cu != ranges[i].cu || ranges[i].low > last->end)
      d->runs[d->nruns++] =
          (struct cu_run){ranges[i].low, ranges[i].high, ranges[i].cu};
    else if (ranges[i].high > last->end)
      last->end = ranges[i].high;
    if (ranges[i].high > d->last_end)
      d->last_end = ranges[i].high;
  }
  free(ranges);
  struct cu_run *fit = realloc(d->runs, d->nruns * sizeof *fit);
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
  if (lo == 0 || (lo == d->nruns && pc >= d->last_end))
    return false;
  /* A gap after a run is the CU's only if its own ranges do not say
   * otherwise: code with no DWARF of its own (crt1's _start) placed after
   * a CU would otherwise get that CU's last line. (Asked only in a gap:
   * dwarf_haspc reads the CU's range list each time.) */
  const struct cu_run *run = &d->runs[lo - 1];
  return dwarf_offdie(d->dw, run->cu, cu) != NULL &&
         (pc < run->end || dwarf_haspc(cu, pc) != 0);
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

/* dwarf_getfuncs callback: records a function with code, and its ranges. */
static int add_function(Dwarf_Die *fn, void *arg) {
  struct ranges_ctx *c = arg;
  struct cu_index *ci = c->ci;
  Dwarf_Addr base, low, high;
  uint32_t index = (uint32_t)ci->nfns;
  for (ptrdiff_t at = 0; (at = dwarf_ranges(fn, at, &base, &low, &high)) > 0;) {
    if (!reserve(&ci->ranges, &ci->ranges_cap, ci->nranges + 1,
                 sizeof *ci->ranges))
      return DWARF_CB_ABORT;
    ci->ranges[ci->nranges++] = (struct fn_range){low, high, index};
  }
  if (ci->nranges > 0 && ci->ranges[ci->nranges - 1].fn == index) {
    if (!reserve(&ci->fns, &ci->fns_cap, ci->nfns + 1, sizeof *ci->fns))
      return DWARF_CB_ABORT;
    ci->fns[ci->nfns++] = (struct fn_info){.die = die_key(c->d, fn)};
  }
  return DWARF_CB_OK;
}

static int by_low(const void *a, const void *b) {
  const struct fn_range *x = a, *y = b;
  return x->low < y->low ? -1 : x->low > y->low;
}

/* The index of `cu`, its function extents built on first use; NULL on
 * OOM. */
static struct cu_index *cu_index_of(srclines_t *d, Dwarf_Die *cu) {
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
  if (dwarf_getfuncs(cu, add_function, &c, 0) > 0)
    ci->nranges = 0; /* out of memory: what was recorded may be partial */
  qsort(ci->ranges, ci->nranges, sizeof *ci->ranges, by_low);
  fit(&ci->ranges, &ci->ranges_cap, ci->nranges, sizeof *ci->ranges);
  fit(&ci->fns, &ci->fns_cap, ci->nfns, sizeof *ci->fns);
  return ci;
}

/* The concrete function whose code holds `pc`: the innermost, when one is
 * nested in another's range. NULL if none. */
static struct fn_info *function_at(struct cu_index *ci, Dwarf_Addr pc) {
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
      return &ci->fns[r->fn];
  }
  return NULL;
}

/* ---- inline trees ----------------------------------------------------- */

/* How deep the tree of one function may nest (inlined calls and lexical
 * blocks); deeper DIEs are left out. Real code stays far below it. */
#define MAX_NESTING 256

/* Appends the inlined calls under `scope` to ci's tree, in preorder,
 * looking through lexical blocks but not into nested functions (which
 * are concrete functions of their own). false when memory runs out. */
static bool add_inlined(const srclines_t *d, struct cu_index *ci,
                        Dwarf_Die *scope, unsigned depth) {
  Dwarf_Die child;
  if (depth == MAX_NESTING || dwarf_child(scope, &child) != 0)
    return true;
  do {
    int tag = dwarf_tag(&child);
    if (tag == DW_TAG_lexical_block || tag == DW_TAG_try_block ||
        tag == DW_TAG_catch_block) {
      if (!add_inlined(d, ci, &child, depth + 1))
        return false;
      continue;
    }
    if (tag != DW_TAG_inlined_subroutine)
      continue;
    size_t at = ci->nnodes;
    if (!reserve(&ci->nodes, &ci->nodes_cap, at + 1, sizeof *ci->nodes))
      return false;
    ci->nodes[at] = (struct inl_node){.die = die_key(d, &child),
                                      .range = (uint32_t)ci->ninl_ranges};
    ci->nnodes++;
    Dwarf_Addr base, low, high;
    for (ptrdiff_t r = 0; (r = dwarf_ranges(&child, r, &base, &low, &high)) > 0;
         ci->nodes[at].nranges++) {
      if (!reserve(&ci->inl_ranges, &ci->inl_ranges_cap, ci->ninl_ranges + 1,
                   sizeof *ci->inl_ranges))
        return false;
      ci->inl_ranges[ci->ninl_ranges++] = (struct addr_range){low, high};
    }
    if (!add_inlined(d, ci, &child, depth + 1))
      return false;
    ci->nodes[at].end = (uint32_t)ci->nnodes;
  } while (dwarf_siblingof(&child, &child) == 0);
  return true;
}

/* Builds fn's inline tree if it is not yet built; false when memory runs
 * out (then nothing of it is kept). */
static bool build_tree(const srclines_t *d, struct cu_index *ci,
                       struct fn_info *fn) {
  Dwarf_Die die;
  if (fn->built)
    return true;
  size_t nodes = ci->nnodes, ranges = ci->ninl_ranges;
  if (die_of(d, fn->die, &die) && !add_inlined(d, ci, &die, 0)) {
    ci->nnodes = nodes;
    ci->ninl_ranges = ranges;
    return false;
  }
  fn->first = (uint32_t)nodes;
  fn->end = (uint32_t)ci->nnodes;
  fn->built = true;
  return true;
}

static bool node_holds(const struct cu_index *ci, const struct inl_node *node,
                       Dwarf_Addr pc) {
  const struct addr_range *r = &ci->inl_ranges[node->range];
  for (uint32_t i = 0; i < node->nranges; i++)
    if (r[i].low <= pc && pc < r[i].high)
      return true;
  return false;
}

/* Of the calls at one level of a tree, nodes[first..end) stepping over
 * each one's subtree, the one holding pc; NULL if none. A function's
 * outermost call is inner_call(fn->first, fn->end), the call inlined
 * into call c is inner_call(c + 1, c->end). */
static struct inl_node *inner_call(struct cu_index *ci, uint32_t first,
                                   uint32_t end, Dwarf_Addr pc) {
  for (uint32_t i = first; i < end; i = ci->nodes[i].end)
    if (node_holds(ci, &ci->nodes[i], pc))
      return &ci->nodes[i];
  return NULL;
}

/* ---- frames ----------------------------------------------------------- */

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

/* The facts of the DIE `key` (a function's or an inlined call's), read
 * on first use into ci->facts, at *slot - 1. false when the DIE cannot be
 * read or memory runs out. */
static bool facts_of(const srclines_t *d, struct cu_index *ci, uint64_t key,
                     uint32_t *slot, struct frame_facts *out) {
  Dwarf_Die die;
  size_t nfiles;
  int line;
  if (*slot != 0) {
    *out = ci->facts[*slot - 1];
    return true;
  }
  if (!die_of(d, key, &die) ||
      !reserve(&ci->facts, &ci->facts_cap, ci->nfacts + 1, sizeof *ci->facts))
    return false;
  *out = (struct frame_facts){.function = function_name(&die)};
  out->start_line = dwarf_decl_line(&die, &line) == 0 && line > 0 ? line : 0;
  if (dwarf_tag(&die) == DW_TAG_inlined_subroutine) {
    Dwarf_Files *files = unit_files(&die, &nfiles);
    call_position(&die, files, nfiles, &out->call_file, &out->call_line);
  }
  ci->facts[ci->nfacts++] = *out;
  *slot = (uint32_t)ci->nfacts;
  return true;
}

/* ---- inline chains ---------------------------------------------------- */

/* The inlined calls holding pc in fn, into d->chain, outermost first;
 * their number, or SIZE_MAX when memory runs out. */
static size_t inlined_calls(srclines_t *d, struct cu_index *ci,
                            struct fn_info *fn, Dwarf_Addr pc) {
  size_t n = 0;
  if (!build_tree(d, ci, fn))
    return SIZE_MAX;
  for (struct inl_node *call = inner_call(ci, fn->first, fn->end, pc);
       call != NULL;
       call = inner_call(ci, (uint32_t)(call - ci->nodes) + 1, call->end, pc)) {
    if (!reserve(&d->chain, &d->chain_cap, n + 1, sizeof *d->chain))
      return SIZE_MAX;
    d->chain[n++] = (uint32_t)(call - ci->nodes);
  }
  return n;
}

/* Writes the frame of a DIE with facts `fx` at position `at`, and moves
 * `at` to its call site (the next frame's position). */
static void put_frame(srcline_frame_t *out, srcline_frame_t *at,
                      const struct frame_facts *fx) {
  *out = *at;
  out->function = fx->function;
  out->start_line = fx->start_line;
  at->file = fx->call_file;
  at->line = fx->call_line;
}

/* Frames of the chain at pc inside `fn`, whose innermost position is
 * `at` (the line table's); see srclines_chain. */
static size_t chain_frames(srclines_t *d, struct cu_index *ci,
                           struct fn_info *fn, Dwarf_Addr pc,
                           srcline_frame_t at, srcline_frame_t *out,
                           size_t max) {
  struct frame_facts fx;
  size_t n = inlined_calls(d, ci, fn, pc);
  if (n == SIZE_MAX)
    return 0;
  size_t keep = n < max - 1 ? n : max - 1;
  for (size_t k = 0; k < keep; k++) {
    struct inl_node *call = &ci->nodes[d->chain[n - 1 - k]];
    if (!facts_of(d, ci, call->die, &call->facts, &fx))
      return 0;
    put_frame(&out[k], &at, &fx);
  }
  if (keep < n) { /* cut: the concrete function is at its own line */
    struct inl_node *outer = &ci->nodes[d->chain[0]];
    if (!facts_of(d, ci, outer->die, &outer->facts, &fx))
      return 0;
    at.file = fx.call_file;
    at.line = fx.call_line;
  }
  if (!facts_of(d, ci, fn->die, &fn->facts, &fx))
    return 0;
  put_frame(&out[keep], &at, &fx);
  return keep + 1;
}

size_t srclines_chain(srclines_t *d, uint64_t pc, srcline_frame_t *out,
                      size_t max) {
  Dwarf_Die cu;
  Dwarf_Attribute attr;
  if (max == 0 || !cu_at(d, pc, &cu))
    return 0;
  struct cu_index *ci = cu_index_of(d, &cu);
  struct fn_info *fn = ci != NULL ? function_at(ci, pc) : NULL;
  Dwarf_Line *row = dwarf_getsrc_die(&cu, pc);
  if (row == NULL && fn == NULL)
    return 0;
  srcline_frame_t at = {
      .comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr))};
  if (row != NULL) {
    at.file = dwarf_linesrc(row, NULL, NULL);
    if (dwarf_lineno(row, &at.line) != 0 || at.line < 0)
      at.line = 0;
  }
  if (fn == NULL) {
    out[0] = at;
    return 1;
  }
  return chain_frames(d, ci, fn, pc, at, out, max);
}

/*
 * The line table describes the innermost inlined body at `pc`, but the
 * frame srclines_find describes is named after the symbol that physically
 * holds it, the outermost function. To keep name and line consistent, an
 * address inside inlined code is placed at the call site of its outermost
 * inlined call, which is a line of that function; left as it is when
 * DWARF does not give both its file and line.
 */
static void outer_call_site(srclines_t *d, Dwarf_Die *cu, Dwarf_Addr pc,
                            const char **file, int *line) {
  struct cu_index *ci = cu_index_of(d, cu);
  struct fn_info *fn = ci != NULL ? function_at(ci, pc) : NULL;
  struct frame_facts fx;
  if (fn == NULL || !build_tree(d, ci, fn))
    return;
  struct inl_node *call = inner_call(ci, fn->first, fn->end, pc);
  if (call != NULL && facts_of(d, ci, call->die, &call->facts, &fx) &&
      fx.call_file != NULL && fx.call_line != 0) {
    *file = fx.call_file;
    *line = fx.call_line;
  }
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
  for (size_t i = 0; i < d->ncus_slots; i++) {
    const struct cu_index *ci = &d->cus[i];
    if (ci->cu != 0)
      bytes += ci->ranges_cap * sizeof *ci->ranges +
               ci->fns_cap * sizeof *ci->fns +
               ci->nodes_cap * sizeof *ci->nodes +
               ci->inl_ranges_cap * sizeof *ci->inl_ranges +
               ci->facts_cap * sizeof *ci->facts + CU_BYTES +
               ci->nlines * LINE_ROW_BYTES;
  }
  return bytes + elfopen_heap_bytes(d->elf) + elfopen_heap_bytes(d->alt_elf);
}
