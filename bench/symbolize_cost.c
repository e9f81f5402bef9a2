/*
 * symbolize_cost — what symbolizing a dump's addresses costs with the
 * long-lived symbolizer (runtime/introspect/symbolizer.h): the first pass
 * of a process (refresh + lookup of every address: reads the map, opens
 * and indexes each module, decodes DWARF line tables) against the steady
 * state of later dumps (refresh + lookup of the same addresses again,
 * answered from the cache), and the same after a dlopen (the map is
 * re-read; modules still mapped keep their indexes, the cache is rebuilt).
 * "fresh" is a new symbolizer per dump, which is what every dump cost
 * before the symbolizer was kept. Last, a refresh alone with nothing
 * changed, which every dump pays before its lookups: one dl_iterate_phdr,
 * one read of /proc/thread-self/maps compared with the view, and one stat
 * per file the kept images map (symbolizer.h).
 *
 * The addresses are 10,000 distinct return addresses (minus one, as the
 * profile encoders ask) taken evenly from the call instructions (e8 rel32
 * with a target inside the same module's code) of the main program,
 * libc and libstdc++ (dlopen'ed), as a C++ service's stacks would hold.
 *
 * Columns: wall time (clock_gettime, CLOCK_MONOTONIC), the symbolizer's
 * own account of its memory (symbolizer_memory_bytes, partly estimated),
 * the heap it really took (glibc mallinfo2: in-use plus mmapped chunks),
 * and how far the peak RSS rose during the phase (VmHWM, reset before
 * each phase through /proc/self/clear_refs; "n/a" where refused).
 * Whether libc's lines come from libc6-dbg shows in "with lines".
 *
 * Then inline chains (srclines_chain, the DWARF layer under the
 * symbolizer), for a C object (libc, through libc6-dbg's debug file: 4.1k
 * CUs, 183k line-table rows) and a C++ one (symbolize_cxx.cpp: one CU of
 * 51k DIEs, most of them the libstdc++ headers', built -O2 -g): ~10,000
 * distinct addresses taken evenly from each one's line-table rows
 * (instruction starts inside code), in a shuffled order, as a dump's
 * buckets would come. The first pass times every lookup, sorted by what
 * it had to build: the first address in a CU (the CU's line table and
 * function index, then the function's inline tree), the first in a
 * function of a CU already indexed (its inline tree; functions told apart
 * by the ELF symbol holding the address), the rest (the facts of frames
 * not returned before, or nothing). Later passes are the steady state of
 * a srclines kept between dumps, without the symbolizer's per-address
 * cache in front. Memory: srclines_bytes (its own account, partly
 * estimated) and the heap growth over all passes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <elfutils/libdw.h>

#include "buildid.h"
#include "debuginfo.h"
#include "elfopen.h"
#include "elfsym.h"
#include "srclines.h"
#include "symbolizer.h"

size_t symbolize_cxx_run(int n); /* symbolize_cxx.cpp, never called */

#define NADDRS 10000
#define STEADY_ROUNDS 5
#define REFRESH_ROUNDS 2000
#define NCHAIN 10000
#define CHAIN_ROUNDS 5

struct range {
  uint64_t start, end;
};

struct module {
  const char *label;
  const char *needle; /* substring of its path in /proc/self/maps */
  struct range code[8];
  int ncode;
  size_t want;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  long kb = -1;
  size_t n = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, n) == 0 && line[n] == ':')
      kb = strtol(line + n + 1, NULL, 10);
  if (f)
    fclose(f);
  return kb;
}

/* Resets VmHWM to the current RSS; false where the kernel refuses. */
static bool reset_peak(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && write(fd, "5", 1) == 1;
  if (fd >= 0)
    close(fd);
  return ok;
}

static size_t heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* The executable ranges of the module whose path contains m->needle (the
 * main program: the first executable line). */
static void find_code(struct module *m, const char *exe) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[4096], perms[8], path[4096];
  uint64_t start, end;
  while (f && fgets(line, sizeof line, f) && m->ncode < 8) {
    path[0] = '\0';
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %4095[^\n]",
               &start, &end, perms, path) < 3 ||
        perms[2] != 'x')
      continue;
    const char *want = m->needle ? m->needle : exe;
    if (strstr(path, want) != NULL)
      m->code[m->ncode++] = (struct range){start, end};
  }
  if (f)
    fclose(f);
}

static bool in_code(const struct module *m, uint64_t a) {
  for (int i = 0; i < m->ncode; i++)
    if (a >= m->code[i].start && a < m->code[i].end)
      return true;
  return false;
}

/* Addresses inside the call instructions of `m`, at most `cap`. */
static size_t find_calls(const struct module *m, uint64_t *out, size_t cap) {
  size_t n = 0;
  for (int r = 0; r < m->ncode; r++)
    for (uint64_t p = m->code[r].start; p + 5 <= m->code[r].end && n < cap;
         p++) {
      const unsigned char *b = (const void *)(uintptr_t)p;
      int32_t rel;
      if (b[0] != 0xe8)
        continue;
      memcpy(&rel, b + 1, 4);
      if (in_code(m, p + 5 + (int64_t)rel))
        out[n++] = p + 5 - 1;
    }
  return n;
}

struct pass {
  double seconds;
  int refreshed;
  size_t named, lined;
};

static struct pass run_pass(symbolizer_t *s, const uint64_t *addrs, size_t n) {
  struct pass p = {0};
  double t0 = now_s();
  p.refreshed = symbolizer_refresh(s);
  prof_symtab_t t = symbolizer_symtab(s);
  for (size_t i = 0; i < n; i++) {
    prof_frame_t f;
    t.lookup(t.ctx, addrs[i], 0, &f);
    p.named += f.nlines > 0;
    p.lined += f.nlines > 0 && f.lines[f.nlines - 1].line != 0;
  }
  p.seconds = now_s() - t0;
  return p;
}

struct row {
  const char *name;
  struct pass pass;
  size_t own_bytes;
  long heap_delta;
  long peak_kb;
};

static void print_row(const struct row *r) {
  char peak[32] = "n/a";
  if (r->peak_kb >= 0)
    snprintf(peak, sizeof peak, "%.1f", r->peak_kb / 1024.0);
  printf("%-34s %9.2f %8d %8zu %8zu %12.1f %10.1f %12s\n", r->name,
         r->pass.seconds * 1e3, r->pass.refreshed, r->pass.named, r->pass.lined,
         r->own_bytes / 1048576.0, r->heap_delta / 1048576.0, peak);
}

/* `rounds` passes as one phase: mean wall time, and the heap and peak RSS
 * growth over the phase. */
static struct row measure(const char *name, symbolizer_t *s,
                          const uint64_t *addrs, size_t n, int rounds) {
  struct row r = {.name = name, .peak_kb = -1};
  bool peak_ok = reset_peak();
  long rss0 = status_kb("VmRSS");
  size_t heap0 = heap_bytes();
  for (int i = 0; i < rounds; i++) {
    struct pass p = run_pass(s, addrs, n);
    r.pass.seconds += p.seconds / rounds;
    r.pass.refreshed = p.refreshed;
    r.pass.named = p.named;
    r.pass.lined = p.lined;
  }
  r.heap_delta = (long)(heap_bytes() - heap0);
  r.own_bytes = symbolizer_memory_bytes(s);
  if (peak_ok)
    r.peak_kb = status_kb("VmHWM") - rss0;
  return r;
}

static int map_lines(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  int n = 0;
  for (int c; f && (c = getc(f)) != EOF;)
    n += c == '\n';
  if (f)
    fclose(f);
  return n;
}

struct refresh_cost {
  double us;     /* mean wall time of one refresh */
  int rebuilt;   /* refreshes that rebuilt the view (should be none) */
  double files;  /* files stat'ed per refresh */
  int map_lines; /* lines in /proc/self/maps */
};

/* REFRESH_ROUNDS refreshes with nothing changed. */
static struct refresh_cost refresh_alone(symbolizer_t *s) {
  struct refresh_cost r = {0};
  symbolizer_counts_t c0, c1;
  symbolizer_refresh(s);
  symbolizer_counts(s, &c0);
  double t0 = now_s();
  for (int i = 0; i < REFRESH_ROUNDS; i++)
    r.rebuilt += symbolizer_refresh(s) != 0;
  r.us = (now_s() - t0) / REFRESH_ROUNDS * 1e6;
  symbolizer_counts(s, &c1);
  r.files = (double)(c1.files_checked - c0.files_checked) / REFRESH_ROUNDS;
  r.map_lines = map_lines();
  return r;
}

/* ---- inline chains --------------------------------------------------- */

/* A set of nonzero keys, for sorting lookups into first-in-CU and
 * first-in-function. Returns whether `key` was in it; adds it. */
struct key_set {
  uint64_t *keys;
  size_t cap; /* a power of two, at least twice the keys put in */
};

static bool seen(struct key_set *s, uint64_t key) {
  size_t i = (key * 0x9e3779b97f4a7c15u) >> 20 & (s->cap - 1);
  while (s->keys[i] != 0 && s->keys[i] != key)
    i = (i + 1) & (s->cap - 1);
  bool was = s->keys[i] == key;
  s->keys[i] = key;
  return was;
}

enum { FIRST_IN_CU, FIRST_IN_FUNCTION, WARM };

struct chain_cost {
  size_t npcs, nrows, frames, deepest;
  size_t count[3];
  double seconds[3]; /* first pass, per class */
  double steady_s;   /* later passes: mean per pass */
  size_t own_bytes;  /* srclines_bytes after */
  long heap_delta;   /* heap growth over all passes */
};

/* A line-table address and the CU whose table lists it. */
struct row_pc {
  uint64_t pc, cu;
};

static int by_pc(const void *a, const void *b) {
  const struct row_pc *x = a, *y = b;
  return x->pc < y->pc ? -1 : x->pc > y->pc;
}

/* Distinct line-table addresses of `dw` whose rows are not empty, at most
 * NCHAIN taken evenly, shuffled (fixed seed); their number. */
static size_t chain_pcs(Dwarf *dw, struct row_pc *pcs, size_t *nrows) {
  size_t n = 0, cap = 0;
  struct row_pc *all = NULL;
  Dwarf_Off off = 0, next;
  size_t header;
  while (dwarf_nextcu(dw, off, &next, &header, NULL, NULL, NULL) == 0) {
    Dwarf_Die cu;
    Dwarf_Lines *lines;
    size_t nlines;
    if (dwarf_offdie(dw, off + header, &cu) != NULL &&
        dwarf_getsrclines(&cu, &lines, &nlines) == 0)
      for (size_t i = 0; i + 1 < nlines; i++) {
        Dwarf_Addr a, b;
        bool end;
        if (dwarf_lineendsequence(dwarf_onesrcline(lines, i), &end) != 0 ||
            end || dwarf_lineaddr(dwarf_onesrcline(lines, i), &a) != 0 ||
            dwarf_lineaddr(dwarf_onesrcline(lines, i + 1), &b) != 0 || b <= a)
          continue;
        if (n == cap && (all = realloc(all, (cap = cap ? 2 * cap : 4096) *
                                                sizeof *all)) == NULL)
          return 0;
        all[n++] = (struct row_pc){a, off + header};
      }
    off = next;
  }
  qsort(all, n, sizeof *all, by_pc);
  size_t distinct = 0;
  for (size_t i = 0; i < n; i++)
    if (distinct == 0 || all[distinct - 1].pc != all[i].pc)
      all[distinct++] = all[i];
  size_t take = distinct < NCHAIN ? distinct : NCHAIN;
  for (size_t i = 0; i < take; i++)
    pcs[i] = all[i * distinct / take];
  uint64_t seed = 12345;
  for (size_t i = take; i > 1; i--) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    size_t j = (seed >> 33) % i;
    struct row_pc t = pcs[i - 1];
    pcs[i - 1] = pcs[j];
    pcs[j] = t;
  }
  free(all);
  *nrows = distinct;
  return take;
}

/* What each lookup will have to build, in the order given: its CU's
 * index, its function's inline tree (the function named by the ELF
 * symbol holding it, in its CU), or nothing. */
static void classify(Elf *elf, const struct row_pc *pcs, size_t n,
                     unsigned char *cls) {
  elfsym_t syms;
  size_t cap = 2;
  while (cap < 2 * n)
    cap *= 2;
  struct key_set cus = {calloc(cap, sizeof(uint64_t)), cap};
  struct key_set fns = {calloc(cap, sizeof(uint64_t)), cap};
  elfsym_build(&syms, elf, NULL, 0);
  for (size_t i = 0; i < n; i++) {
    const char *fn = elfsym_function_at(&syms, pcs[i].pc);
    uint64_t fn_key = (pcs[i].cu << 32) ^ (uint64_t)(uintptr_t)fn ^ 1;
    bool cu_seen = seen(&cus, pcs[i].cu), fn_seen = seen(&fns, fn_key);
    cls[i] = !cu_seen ? FIRST_IN_CU : !fn_seen ? FIRST_IN_FUNCTION : WARM;
  }
  elfsym_free(&syms);
  free(cus.keys);
  free(fns.keys);
}

static struct chain_cost chain_cost(Elf *elf, const char *path) {
  struct chain_cost c = {0};
  static struct row_pc pcs[NCHAIN];
  static unsigned char cls[NCHAIN];
  Dwarf *dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
  if (dw == NULL)
    return c;
  c.npcs = chain_pcs(dw, pcs, &c.nrows);
  classify(elf, pcs, c.npcs, cls);
  dwarf_end(dw);

  size_t heap0 = heap_bytes();
  srclines_t *d = srclines_open(elf, path);
  if (d == NULL)
    return c;
  srcline_frame_t f[SRCLINES_MAX_FRAMES];
  for (size_t i = 0; i < c.npcs; i++) {
    double t0 = now_s();
    size_t n = srclines_chain(d, pcs[i].pc, f, SRCLINES_MAX_FRAMES);
    c.seconds[cls[i]] += now_s() - t0;
    c.count[cls[i]]++;
    c.frames += n;
    c.deepest = n > c.deepest ? n : c.deepest;
  }
  double t0 = now_s();
  for (int r = 0; r < CHAIN_ROUNDS; r++)
    for (size_t i = 0; i < c.npcs; i++)
      srclines_chain(d, pcs[i].pc, f, SRCLINES_MAX_FRAMES);
  c.steady_s = (now_s() - t0) / CHAIN_ROUNDS;
  c.own_bytes = srclines_bytes(d);
  c.heap_delta = (long)(heap_bytes() - heap0);
  srclines_free(d);
  return c;
}

static void print_chain_cost(const char *label, const struct chain_cost *c) {
  static const char *const names[] = {"first in a CU", "first in a function",
                                      "rest"};
  double first = c->seconds[0] + c->seconds[1] + c->seconds[2];
  printf("%s: %zu addresses (of %zu rows), %.2f frames each (deepest %zu)\n",
         label, c->npcs, c->nrows, c->npcs ? (double)c->frames / c->npcs : 0,
         c->deepest);
  for (int k = 0; k < 3; k++)
    printf("  first pass, %-20s %6zu lookups %9.1f us each %9.1f ms in all\n",
           names[k], c->count[k],
           c->count[k] ? c->seconds[k] / c->count[k] * 1e6 : 0,
           c->seconds[k] * 1e3);
  printf("  first pass %.1f ms (%.2f us per address); steady (mean of %d) "
         "%.1f ms (%.2f us per address)\n",
         first * 1e3, c->npcs ? first / c->npcs * 1e6 : 0, CHAIN_ROUNDS,
         c->steady_s * 1e3, c->npcs ? c->steady_s / c->npcs * 1e6 : 0);
  printf("  srclines_bytes %.1f MB, heap +%.1f MB\n", c->own_bytes / 1048576.0,
         c->heap_delta / 1048576.0);
}

/* The DWARF of the object holding `fn`: its own, or its debug file's;
 * NULL (a line on stderr) if it has none. The path is left in `path`. */
static Elf *dwarf_of(void *fn, char *path) {
  Dl_info info;
  buildid_t id;
  elfopen_stamp_t stamp;
  if (dladdr(fn, &info) == 0 || info.dli_fname == NULL)
    return NULL;
  Elf *elf = elfopen_file(info.dli_fname, NULL);
  snprintf(path, PATH_MAX, "%s", info.dli_fname);
  if (elf != NULL && elfopen_has_dwarf(elf))
    return elf;
  Elf *debug = NULL;
  if (elf != NULL) {
    buildid_of_elf(elf, &id);
    debug = debuginfo_find(info.dli_fname, elf, &id, path, &stamp);
    elf_end(elf);
  }
  if (debug == NULL)
    fprintf(stderr, "symbolize_cost: no DWARF for %s\n", info.dli_fname);
  return debug;
}

static void inline_chains(void) {
  struct {
    const char *label;
    void *fn;
  } objs[] = {{"C (libc, libc6-dbg)", (void *)printf},
              {"C++ (symbolize_cxx.cpp)", (void *)symbolize_cxx_run}};
  printf("\ninline chains (srclines_chain), ~%d addresses per object:\n",
         NCHAIN);
  elf_version(EV_CURRENT);
  for (size_t k = 0; k < sizeof objs / sizeof *objs; k++) {
    char path[PATH_MAX];
    Elf *elf = dwarf_of(objs[k].fn, path);
    if (elf == NULL)
      continue;
    struct chain_cost c = chain_cost(elf, path);
    print_chain_cost(objs[k].label, &c);
    elf_end(elf);
  }
}

int main(void) {
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = '\0';
  if (dlopen("libstdc++.so.6", RTLD_NOW) == NULL) {
    fprintf(stderr, "symbolize_cost: %s\n", dlerror());
    return 1;
  }
  struct module mods[] = {{"main program", NULL, {{0}}, 0, 0},
                          {"libc", "/libc.so.6", {{0}}, 0, 0},
                          {"libstdc++", "/libstdc++.so.6", {{0}}, 0, 0}};
  static uint64_t calls[3][400000], addrs[NADDRS];
  size_t ncalls[3], n = 0;
  for (int k = 0; k < 3; k++) {
    find_code(&mods[k], exe);
    ncalls[k] = find_calls(&mods[k], calls[k], 400000);
    if (ncalls[k] == 0) {
      fprintf(stderr, "symbolize_cost: no call sites in %s\n", mods[k].label);
      return 1;
    }
  }
  /* The main program takes what it has (it is small); the rest is split
   * 55:45 between libc and libstdc++. */
  mods[0].want = ncalls[0] < NADDRS / 10 ? ncalls[0] : NADDRS / 10;
  mods[1].want = (NADDRS - mods[0].want) * 55 / 100;
  mods[2].want = NADDRS - mods[0].want - mods[1].want;
  for (int k = 0; k < 3; k++) {
    size_t want = mods[k].want < ncalls[k] ? mods[k].want : ncalls[k];
    for (size_t i = 0; i < want; i++)
      addrs[n++] = calls[k][i * ncalls[k] / want];
    printf("%-13s %7zu call sites, %5zu taken\n", mods[k].label, ncalls[k],
           want);
  }

  printf("\n%-34s %9s %8s %8s %8s %12s %10s %12s\n", "phase", "ms", "rebuilt",
         "named", "lines", "own MB", "heap +MB", "peak RSS +MB");
  symbolizer_t *s = symbolizer_new(DEMANGLE_SIMPLE);
  struct row first = measure("first (refresh + lookups)", s, addrs, n, 1);
  print_row(&first);
  char name[64];
  snprintf(name, sizeof name, "steady (mean of %d)", STEADY_ROUNDS);
  struct row steady = measure(name, s, addrs, n, STEADY_ROUNDS);
  print_row(&steady);
  void *h = dlopen("libresolv.so.2", RTLD_NOW | RTLD_LOCAL);
  struct row change = measure("after a dlopen (modules kept)", s, addrs, n, 1);
  print_row(&change);
  struct row again = measure("steady after it", s, addrs, n, 1);
  print_row(&again);
  if (h)
    dlclose(h);
  struct refresh_cost alone = refresh_alone(s);
  symbolizer_counts_t c;
  symbolizer_counts(s, &c);
  symbolizer_free(s);

  symbolizer_t *f = symbolizer_new(DEMANGLE_SIMPLE);
  struct row fresh =
      measure("new symbolizer per dump (as before)", f, addrs, n, 1);
  symbolizer_free(f);
  print_row(&fresh);

  printf("\nrefreshes %" PRIu64 ", views built %" PRIu64 ", lookups %" PRIu64
         ", resolved %" PRIu64 ", modules loaded %" PRIu64 ", kept %" PRIu64
         ", files checked %" PRIu64 ", images dropped %" PRIu64 "\n",
         c.refreshes, c.views_built, c.lookups, c.resolved, c.modules_loaded,
         c.modules_kept, c.files_checked, c.images_dropped);
  printf("refresh alone, nothing changed: %.1f us (mean of %d; %d rebuilt "
         "the view; %.1f files stat'ed per refresh; %d lines in the map)\n",
         alone.us, REFRESH_ROUNDS, alone.rebuilt, alone.files, alone.map_lines);
  if (first.pass.lined == 0)
    printf("note: no address got a line: is libc6-dbg installed?\n");
  inline_chains();
  return 0;
}
