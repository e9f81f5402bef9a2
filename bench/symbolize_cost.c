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
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "symbolizer.h"

#define NADDRS 10000
#define STEADY_ROUNDS 5
#define REFRESH_ROUNDS 2000

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
    t.lookup(t.ctx, addrs[i], &f);
    p.named += f.function != NULL;
    p.lined += f.line != 0;
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
  symbolizer_t *s = symbolizer_new();
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

  symbolizer_t *f = symbolizer_new();
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
  return 0;
}
