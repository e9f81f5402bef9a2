/*
 * symbols_cost — what writing a profile costs when its stacks are C++
 * with deep inlining: issue 13's "dump-time cost of demangling and inline
 * expansion at 10k buckets, steady state, with the symbolizer kept between
 * dumps". The same target runs under each configuration, the
 * configurations interleaved round by round (a shared 2-core machine: the
 * neighbours move single runs), and each figure is the median over rounds.
 *
 * The target (this program again, `--target`, preloaded with the library
 * under test; it is not linked with heapprof and finds heapprof_set_rate,
 * heapprof_write_profile_fd and the rest with dlsym) is built -O2 -g. At
 * rate 1 it runs 32 instantiations of app::Outer<I>::run (noinline), each
 * calling the 32 instantiations of app::Inner<J>::run (noinline) from its
 * own call site, inlined through two always_inline helpers: 1,024 paths.
 * Each Inner<J>::run makes 10 buckets, every block freed again at once
 * (where each is allocated, as the previous library's profile names it):
 *
 *   - std::vector<Widget<J>>::push_back, 16 times: 5 sizes (1, 2, 4, 8
 *     and 16 elements), in _M_realloc_insert, with _Vector_base's
 *     _M_allocate, allocator_traits::allocate and __new_allocator::allocate
 *     inlined at the operator-new call;
 *   - std::map<long, Widget<J>>::emplace: one node size, in
 *     _Rb_tree::_M_emplace_hint_unique (_M_create_node, _M_get_node, …
 *     inlined);
 *   - a std::string of 17 characters (its constructor inlined into
 *     Inner<J>::run) and one append of 16 (in libstdc++'s own _M_append
 *     and _M_mutate: symbol-table frames, as libstdc++ has no DWARF here
 *     unless its debug package is installed): 2 sizes;
 *   - a std::function holding a lambda with a 32–56-byte capture, stored
 *     on the heap (_M_init_functor inlined into Inner<J>::run);
 *   - calling it: the lambda builds a std::vector<char>, the whole chain
 *     (vector's constructor … __new_allocator::allocate, the lambda,
 *     std::__invoke_r) inlined into _Function_handler<…>::_M_invoke.
 *
 * 10,240 buckets (the start-up, at the default rate, made none in every
 * run so far) with 8-frame stacks through 1,314 distinct addresses; the
 * 1,310 of them in this program expand (addr2line -i) into 4,292 frames:
 * 1,147 addresses with 3 (Outer<I>::run's call sites, through the two
 * always_inline helpers), 32 with 10 (the lambda's vector), the rest 1–9.
 * The target then writes the profile (HEAPPROF_HEAP) `--writes` times
 * into a memfd (truncated before each write: the full encode and gzip
 * happen every time) with heapprof_write_profile_fd, which does its
 * work on the calling thread, timing each write by the wall clock and
 * by that thread's CPU clock (CLOCK_THREAD_CPUTIME_ID; the process's
 * CPU clock too, to show that no other thread did part of it). The
 * first write of the process is the cold one: it builds the symbolizer,
 * reads the modules' symbols and DWARF, expands inline chains and
 * demangles; the later ones reuse what the symbolizer kept ("steady":
 * the median of writes 2..N). Also recorded: the profile's gzipped size
 * (fstat of the memfd), VmRSS before the first write, after it and
 * after the last, and how far the peak RSS rose during the first write
 * (VmHWM after writing 5 to /proc/self/clear_refs; "n/a" where the
 * kernel refuses).
 *
 * The driver, a process heapprof never sees, reads the last profile back
 * from the memfd, gunzips it and counts what it holds straight from the
 * protobuf: samples, locations, Line entries (and the locations with more
 * than one: inline chains), functions, functions whose name differs from
 * their system_name (demangled), and functions with a start_line. These
 * say what each configuration really wrote, so a table cannot silently
 * compare a library that ignored the setting.
 *
 * usage: symbols_cost [--rounds N] [--writes N] [--base SO] [--lib SO]
 *                     [--styles LIST] [--callgrind 0|1] [--save DIR]
 *   --rounds  rounds over all configurations (9); round r starts at
 *             configuration r mod n and goes on in order
 *   --writes  profiles written per run (10); the first is the cold one
 *   --base    a library to compare with, run without HEAPPROF_DEMANGLE
 *             (the previous version: no demangling, no inline frames)
 *   --lib     the library under test (default: the one built here)
 *   --styles  HEAPPROF_DEMANGLE values to run --lib with, comma-separated
 *             ("none,simple,full"); "-" leaves the variable unset
 *   --callgrind  1: then run each configuration once more under callgrind
 *             (valgrind --tool=callgrind, counting only inside
 *             heapprof_write_profile_fd, a dump after each call): the
 *             instructions of each write, which the neighbours cannot move
 *   --save    a directory to keep each configuration's last profile in
 *             (LABEL.pb.gz), for go tool pprof
 *
 * No timed assertion: it prints numbers and exits 0 unless a run failed
 * (the library did not load, a write returned an error, a profile did
 * not decode).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "heapprof.h"
#include "procstat.h"

#define MAX_WRITES 64
#define NOUTER 32
#define NINNER 32

/* ==================== the target's C++ ==================== */

namespace app {

/* Keeps every result alive, so that no allocation can be optimised out. */
struct Sink {
  long sum;
};

static inline void escape(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* 16–64 bytes, depending on J: each Inner<J> allocates its own sizes. */
template <int J> struct Widget {
  long v[1 + J % 7];
  int tag;
};

template <int J> struct Inner {
  static __attribute__((noinline)) long run(int outer, Sink &sink);
};

template <int J> long Inner<J>::run(int outer, Sink &sink) {
  std::vector<Widget<J>> widgets; /* 1, 2, 4, 8, 16 elements: 5 sizes */
  for (int k = 0; k < 16; k++)
    widgets.push_back(Widget<J>{{outer + k}, J});
  escape(widgets.data());

  std::map<long, Widget<J>> index; /* one node size */
  for (int k = 0; k < 3; k++)
    index.emplace(outer * 64 + k, widgets[k]);
  escape(&index);

  std::string name("inner/path/012345"); /* 17 characters: 18 bytes */
  name += "0123456789abcdef";            /* 33: 35 bytes */
  escape(name.data());

  std::array<long, 4 + J % 4> capture{}; /* too big for std::function's buffer */
  capture[0] = outer;
  std::function<long(int)> make = [capture](int n) {
    std::vector<char> buf(static_cast<size_t>(n) + 24 + J); /* one size */
    escape(buf.data());
    return static_cast<long>(buf.size()) + capture[0];
  };
  long r = make(J % 3) + static_cast<long>(widgets.size() + index.size() + name.size());
  sink.sum += r;
  return r;
}

template <int I> struct Outer {
  template <int J> static inline __attribute__((always_inline)) long step(Sink &sink) {
    return Inner<J>::run(I, sink) ^ J;
  }
  template <int... J>
  static inline __attribute__((always_inline)) long all(Sink &sink,
                                                        std::integer_sequence<int, J...>) {
    long r = 0;
    ((r += step<J>(sink)), ...);
    return r;
  }
  static __attribute__((noinline)) long run(Sink &sink) {
    return all(sink, std::make_integer_sequence<int, NINNER>{});
  }
};

using outer_fn = long (*)(Sink &);

template <int... I> static constexpr std::array<outer_fn, sizeof...(I)>
outers(std::integer_sequence<int, I...>) {
  return {Outer<I>::run...};
}

static __attribute__((noinline)) long build(void) {
  static constexpr auto table = outers(std::make_integer_sequence<int, NOUTER>{});
  Sink sink{0};
  for (outer_fn f : table)
    f(sink);
  escape(&sink);
  return sink.sum;
}

} // namespace app

/* ==================== the target ==================== */

/* What the target reports; it lives in a memfd both processes map. */
struct result {
  int ok; /* 1 done, -1 failed (why says what) */
  char why[160];
  long buckets, rate;
  int writes;
  long rss_before_kb, rss_first_kb, rss_after_kb; /* VmRSS */
  long peak_first_kb;                              /* VmHWM rise; -1 n/a */
  long profile_bytes;                              /* the last write's */
  int64_t wall_ns[MAX_WRITES], cpu_ns[MAX_WRITES], process_ns[MAX_WRITES];
};

static int64_t clock_ns(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

struct api {
  decltype(&heapprof_set_rate) set_rate;
  decltype(&heapprof_get_rate) get_rate;
  decltype(&heapprof_write_profile_fd) write_fd;
  decltype(&heapprof_read_stats) read_stats;
};

static int fail(result *r, const char *why) {
  snprintf(r->why, sizeof r->why, "%s", why);
  r->ok = -1;
  return 1;
}

/* One write into the memfd, emptied first; its times into slot w. */
static int write_once(const api &a, result *r, int prof_fd, int w) {
  if (ftruncate(prof_fd, 0) != 0 || lseek(prof_fd, 0, SEEK_SET) != 0)
    return fail(r, "cannot empty the profile's memfd");
  int64_t wall = clock_ns(CLOCK_MONOTONIC), cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID),
          proc = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  int rc = a.write_fd(prof_fd, HEAPPROF_HEAP);
  r->wall_ns[w] = clock_ns(CLOCK_MONOTONIC) - wall;
  r->cpu_ns[w] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu;
  r->process_ns[w] = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - proc;
  if (rc != 0) {
    char why[64];
    snprintf(why, sizeof why, "heapprof_write_profile_fd returned %d", rc);
    return fail(r, why);
  }
  return 0;
}

static int target(int res_fd, int prof_fd, int writes) {
  void *map = mmap(NULL, sizeof(result), PROT_READ | PROT_WRITE, MAP_SHARED, res_fd, 0);
  if (map == MAP_FAILED)
    return 1;
  close(res_fd);
  result *r = static_cast<result *>(map);
  api a = {reinterpret_cast<decltype(a.set_rate)>(dlsym(RTLD_DEFAULT, "heapprof_set_rate")),
           reinterpret_cast<decltype(a.get_rate)>(dlsym(RTLD_DEFAULT, "heapprof_get_rate")),
           reinterpret_cast<decltype(a.write_fd)>(
               dlsym(RTLD_DEFAULT, "heapprof_write_profile_fd")),
           reinterpret_cast<decltype(a.read_stats)>(dlsym(RTLD_DEFAULT, "heapprof_read_stats"))};
  if (!a.set_rate || !a.get_rate || !a.write_fd || !a.read_stats)
    return fail(r, "heapprof is not loaded (LD_PRELOAD?)");
  long rate = a.get_rate();
  if (rate <= 0 || a.set_rate(1) != 0)
    return fail(r, "profiling is off (HEAPPROF_RATE=0?)");
  app::build(); /* the buckets; every block is freed again */
  a.set_rate(rate);
  heapprof_stats_t stats = {};
  a.read_stats(&stats);
  r->buckets = (long)stats.buckets;
  r->rate = rate;
  r->writes = writes;
  r->rss_before_kb = status_kb("VmRSS:");
  bool peak = reset_peak();
  for (int w = 0; w < writes; w++) {
    if (write_once(a, r, prof_fd, w) != 0)
      return 1;
    if (w == 0) {
      long hwm = status_kb("VmHWM:");
      r->rss_first_kb = status_kb("VmRSS:");
      r->peak_first_kb = peak && hwm >= 0 ? hwm - r->rss_before_kb : -1;
    }
  }
  r->rss_after_kb = status_kb("VmRSS:");
  struct stat st;
  r->profile_bytes = fstat(prof_fd, &st) == 0 ? (long)st.st_size : -1;
  r->ok = 1;
  return 0;
}

/* ==================== the driver: reading the profile ==================== */

/* What the last profile of a run holds, counted from its protobuf. */
struct census {
  long raw_bytes, samples, locations, lines, inlined_locations, max_lines;
  long functions, demangled, with_start_line, mappings_inline;
};

static std::vector<uint8_t> gunzip(const std::vector<uint8_t> &in) {
  std::vector<uint8_t> out;
  z_stream z = {};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return out;
  z.next_in = const_cast<uint8_t *>(in.data());
  z.avail_in = (uInt)in.size();
  int rc = Z_OK;
  while (rc == Z_OK) {
    size_t have = out.size();
    out.resize(have + (1 << 20));
    z.next_out = out.data() + have;
    z.avail_out = 1 << 20;
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(have + (1 << 20) - z.avail_out);
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END)
    out.clear();
  return out;
}

/* A protobuf field: its number, wire type, and value or bytes. */
struct field {
  uint32_t number, type;
  uint64_t value;
  const uint8_t *data;
  size_t len;
};

static bool varint(const uint8_t *&p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    uint8_t b = *p++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      return true;
  }
  return false;
}

/* The next field of [p, end); false at the end or on a malformed one. */
static bool next_field(const uint8_t *&p, const uint8_t *end, field *f) {
  uint64_t key;
  if (p >= end || !varint(p, end, &key))
    return false;
  f->number = (uint32_t)(key >> 3), f->type = key & 7;
  f->data = NULL, f->len = 0, f->value = 0;
  switch (f->type) {
  case 0:
    return varint(p, end, &f->value);
  case 1:
    if (end - p < 8)
      return false;
    p += 8;
    return true;
  case 2:
    if (!varint(p, end, &f->value) || f->value > (uint64_t)(end - p))
      return false;
    f->data = p, f->len = f->value;
    p += f->len;
    return true;
  case 5:
    if (end - p < 4)
      return false;
    p += 4;
    return true;
  default:
    return false;
  }
}

/* Location (field 4 of Profile): its Line entries are field 4. */
static void count_location(census *c, const uint8_t *p, const uint8_t *end) {
  long lines = 0;
  for (field f; next_field(p, end, &f);)
    lines += f.number == 4 && f.type == 2;
  c->locations++;
  c->lines += lines;
  c->inlined_locations += lines > 1;
  c->max_lines = std::max(c->max_lines, lines);
}

/* Function (field 5): name 2, system_name 3, start_line 5. */
static void count_function(census *c, const uint8_t *p, const uint8_t *end,
                           std::vector<std::pair<uint64_t, uint64_t>> *names) {
  uint64_t name = 0, system_name = 0;
  for (field f; next_field(p, end, &f);) {
    if (f.number == 2 && f.type == 0)
      name = f.value;
    else if (f.number == 3 && f.type == 0)
      system_name = f.value;
    else if (f.number == 5 && f.type == 0)
      c->with_start_line += f.value != 0;
  }
  c->functions++;
  names->emplace_back(name, system_name);
}

/* Mapping (field 3): has_inline_frames is field 10. */
static void count_mapping(census *c, const uint8_t *p, const uint8_t *end) {
  for (field f; next_field(p, end, &f);)
    c->mappings_inline += f.number == 10 && f.type == 0 && f.value != 0;
}

static bool take_census(const std::vector<uint8_t> &gz, census *c) {
  *c = census{};
  std::vector<uint8_t> pb = gunzip(gz);
  if (pb.empty())
    return false;
  c->raw_bytes = (long)pb.size();
  std::vector<std::pair<uint64_t, uint64_t>> names;
  std::vector<std::string> strings;
  const uint8_t *p = pb.data(), *end = p + pb.size();
  field f;
  while (next_field(p, end, &f)) {
    if (f.type != 2)
      continue;
    const uint8_t *q = f.data, *qend = f.data + f.len;
    if (f.number == 2)
      c->samples++;
    else if (f.number == 3)
      count_mapping(c, q, qend);
    else if (f.number == 4)
      count_location(c, q, qend);
    else if (f.number == 5)
      count_function(c, q, qend, &names);
    else if (f.number == 6)
      strings.emplace_back(reinterpret_cast<const char *>(q), f.len);
  }
  if (p != end)
    return false;
  for (auto &n : names)
    c->demangled += n.first < strings.size() && n.second < strings.size() &&
                    strings[n.first] != strings[n.second];
  return true;
}

/* ==================== the driver ==================== */

struct config {
  std::string label, lib, style; /* style "" leaves HEAPPROF_DEMANGLE unset */
  std::string file;              /* what --save names its profile */
};

struct run {
  int round;
  size_t config;
  result r;
  census c;
  bool decoded;
  std::vector<uint8_t> profile; /* the last write, gzipped */
  uint64_t ir[MAX_WRITES];       /* instructions per write (--callgrind) */
};

static std::vector<uint8_t> read_all(int fd) {
  std::vector<uint8_t> v;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0)
    return v;
  v.resize((size_t)st.st_size);
  if (pread(fd, v.data(), v.size(), 0) != (ssize_t)v.size())
    v.clear();
  return v;
}

/* The instructions of each write from callgrind's dumps in `dir` (one
 * file per call of heapprof_write_profile_fd: cg.out.1 … cg.out.N, and
 * cg.out at exit), which it then removes with the directory. */
static bool read_callgrind(const std::string &dir, int writes, run *out) {
  bool ok = true;
  for (int w = 0; w <= writes; w++) {
    std::string path = dir + "/cg.out" + (w ? "." + std::to_string(w) : "");
    FILE *f = fopen(path.c_str(), "r");
    char line[256];
    bool found = false;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
      if (strncmp(line, "totals:", 7) == 0 && w > 0)
        out->ir[w - 1] = strtoull(line + 7, NULL, 10), found = true;
    if (f != NULL)
      fclose(f);
    ok &= w == 0 || found;
    unlink(path.c_str());
  }
  rmdir(dir.c_str());
  return ok;
}

/* The target's command line: itself with --target, or under callgrind
 * counting only heapprof_write_profile_fd and dumping after each call. */
static void exec_target(const char *self, int res_fd, int prof_fd, int writes,
                        const char *cg_dir) {
  char a1[16], a2[16], a3[16], out[PATH_MAX + 32];
  snprintf(a1, sizeof a1, "%d", res_fd);
  snprintf(a2, sizeof a2, "%d", prof_fd);
  snprintf(a3, sizeof a3, "%d", writes);
  if (cg_dir == NULL)
    execl(self, "symbols_cost", "--target", a1, a2, a3, (char *)NULL);
  snprintf(out, sizeof out, "--callgrind-out-file=%s/cg.out", cg_dir);
  execlp("valgrind", "valgrind", "-q", "--tool=callgrind", "--collect-atstart=no",
         "--toggle-collect=heapprof_write_profile_fd",
         "--dump-after=heapprof_write_profile_fd", out, self, "--target", a1, a2, a3,
         (char *)NULL);
}

/* Runs the target once under `cfg` (under callgrind with `callgrind`);
 * false (and a line on stderr) if the run failed. */
static bool run_target(const config &cfg, int writes, bool callgrind, run *out) {
  char self[PATH_MAX], cg_dir[] = "/tmp/symbols_cost.XXXXXX";
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || (callgrind && mkdtemp(cg_dir) == NULL))
    return false;
  self[n] = '\0';
  int res_fd = memfd_create("symbols_cost.result", 0);
  int prof_fd = memfd_create("symbols_cost.profile", 0);
  if (res_fd < 0 || prof_fd < 0 || ftruncate(res_fd, sizeof(result)) != 0)
    return false;
  void *map = mmap(NULL, sizeof(result), PROT_READ | PROT_WRITE, MAP_SHARED, res_fd, 0);
  result *r = static_cast<result *>(map);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setenv("LD_PRELOAD", cfg.lib.c_str(), 1);
    if (cfg.style.empty())
      unsetenv("HEAPPROF_DEMANGLE");
    else
      setenv("HEAPPROF_DEMANGLE", cfg.style.c_str(), 1);
    exec_target(self, res_fd, prof_fd, writes, callgrind ? cg_dir : NULL);
    _exit(127);
  }
  int status = 0;
  if (pid > 0)
    waitpid(pid, &status, 0);
  out->r = *r;
  bool ok = pid > 0 && r->ok == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok)
    fprintf(stderr, "symbols_cost: %s failed: %s (status 0x%x)\n", cfg.label.c_str(),
            r->ok < 0 ? r->why : "the target did not finish", status);
  if (ok)
    out->profile = read_all(prof_fd);
  out->decoded = ok && take_census(out->profile, &out->c);
  if (ok && !out->decoded)
    fprintf(stderr, "symbols_cost: %s: the last profile does not decode\n", cfg.label.c_str());
  if (callgrind && !read_callgrind(cg_dir, writes, out) && ok) {
    fprintf(stderr, "symbols_cost: %s: callgrind wrote no count for a write\n",
            cfg.label.c_str());
    ok = false;
  }
  munmap(map, sizeof(result));
  close(res_fd);
  close(prof_fd);
  return ok && out->decoded;
}

static double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The steady figures of one run: the median of writes 2..N. */
static double steady_ms(const int64_t *ns, int writes) {
  std::vector<double> v;
  for (int w = 1; w < writes; w++)
    v.push_back((double)ns[w] / 1e6);
  return median(v);
}

/* One shell command's first line of output ("?" if none). */
static std::string shell_line(const std::string &cmd) {
  FILE *f = popen(("{ " + cmd + "; } 2>/dev/null").c_str(), "r");
  char buf[512] = "";
  if (f == NULL)
    return "?";
  if (fgets(buf, sizeof buf, f) == NULL)
    buf[0] = '\0';
  pclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  return buf[0] ? buf : "?";
}

/* The library's real path, size and time, and the HEAD of the tree two
 * levels up (BUILD/lib/libheapprof.so), where there is one. */
static void describe_lib(const std::string &lib) {
  char real[PATH_MAX];
  struct stat st;
  if (realpath(lib.c_str(), real) == NULL || stat(real, &st) != 0) {
    printf("  %s: missing\n", lib.c_str());
    return;
  }
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&st.st_mtime));
  std::string tree = std::string(real).substr(0, std::string(real).rfind('/')) + "/../..";
  std::string head = shell_line("git -C '" + tree + "' rev-parse --short HEAD");
  std::string dirty =
      shell_line("git -C '" + tree + "' status --porcelain --untracked-files=no | head -1");
  printf("  %s -> %s, %lld bytes, built %s; tree %s HEAD %s%s\n", lib.c_str(), real,
         (long long)st.st_size, when, tree.c_str(), head.c_str(),
         dirty != "?" ? " (with uncommitted changes)" : "");
}

static void print_header(const std::vector<config> &configs, int rounds, int writes) {
  time_t now = time(NULL);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("== symbols_cost %s, %d rounds x %zu configurations, %d writes a run\n", when,
         rounds, configs.size(), writes);
#ifdef HEAPPROF_SOURCE_DIR
  printf("benchmark source: %s HEAD %s\n", HEAPPROF_SOURCE_DIR,
         shell_line("git -C '" HEAPPROF_SOURCE_DIR "' rev-parse --short HEAD").c_str());
#endif
  printf("libc6-dbg: %s\n",
         shell_line("dpkg-query -W -f '${Status} ${Version}' libc6-dbg").c_str());
  std::string cxx_dbg = shell_line("dpkg-query -W -f '${Package} ${Status}\\n' "
                                   "'libstdc++6-*-dbg' | grep ' installed$' | head -1");
  printf("libstdc++ debug package: %s\n", cxx_dbg == "?" ? "none installed" : cxx_dbg.c_str());
  printf("cpu: %ld x %s\n", sysconf(_SC_NPROCESSORS_ONLN),
         shell_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'").c_str());
  printf("load average before: %s\n", shell_line("cut -d' ' -f1-3 /proc/loadavg").c_str());
  printf("libraries:\n");
  std::vector<std::string> seen;
  for (const config &c : configs)
    if (std::find(seen.begin(), seen.end(), c.lib) == seen.end()) {
      seen.push_back(c.lib);
      describe_lib(c.lib);
    }
  for (char **e = environ; *e != NULL; e++)
    if (strncmp(*e, "HEAPPROF_", 9) == 0 && strncmp(*e, "HEAPPROF_DEMANGLE=", 18) != 0)
      printf("inherited by every run: %s\n", *e);
  printf("\n");
}

static void print_run(const config &cfg, const run &x) {
  const result &r = x.r;
  printf("round %d %-14s buckets %ld  first %7.1f ms (cpu %7.1f, process %7.1f)  steady "
         "%6.2f ms (cpu %6.2f, process %6.2f)  %ld bytes  RSS %.1f -> %.1f -> %.1f MB\n",
         x.round, cfg.label.c_str(), r.buckets, r.wall_ns[0] / 1e6, r.cpu_ns[0] / 1e6,
         r.process_ns[0] / 1e6, steady_ms(r.wall_ns, r.writes), steady_ms(r.cpu_ns, r.writes),
         steady_ms(r.process_ns, r.writes), r.profile_bytes, r.rss_before_kb / 1024.0,
         r.rss_first_kb / 1024.0, r.rss_after_kb / 1024.0);
  fflush(stdout);
}

/* "median (min–max)" of one figure over a configuration's runs; only the
 * median with `range` false. */
template <typename F>
static std::string spread(const std::vector<run> &runs, size_t cfg, F figure,
                          const char *fmt = "%.1f", bool range = true) {
  std::vector<double> v;
  for (const run &x : runs)
    if (x.config == cfg)
      v.push_back(figure(x));
  if (v.empty())
    return "";
  char m[32], lo[32], hi[32], out[112];
  snprintf(m, sizeof m, fmt, median(v));
  snprintf(lo, sizeof lo, fmt, *std::min_element(v.begin(), v.end()));
  snprintf(hi, sizeof hi, fmt, *std::max_element(v.begin(), v.end()));
  if (v.size() == 1 || !range)
    return m;
  snprintf(out, sizeof out, "%s (%s–%s)", m, lo, hi);
  return out;
}

static void print_tables(const std::vector<config> &configs, const std::vector<run> &runs) {
  printf("\nMedian over rounds (min–max; sizes and RSS: medians); steady = each run's "
         "median of writes 2..N; CPU = the writing thread's; +RSS = VmRSS after the first "
         "write − before it (VmHWM − before it)\n\n");
  printf("| configuration | first write, wall | first write, CPU | steady write, wall "
         "| steady write, CPU | profile (gzip) | +RSS first write (peak) | RSS after |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < configs.size(); i++) {
    auto ms = [](const int64_t *ns) { return (double)ns[0] / 1e6; };
    bool refused = std::any_of(runs.begin(), runs.end(), [&](const run &x) {
      return x.config == i && x.r.peak_first_kb < 0;
    });
    std::string peak = refused ? "n/a" : spread(runs, i, [](const run &x) {
      return x.r.peak_first_kb / 1024.0;
    }, "%.1f", false);
    printf("| %s | %s ms | %s ms | %s ms | %s ms | %s KB | %s MB (%s MB) | %s MB |\n",
           configs[i].label.c_str(),
           spread(runs, i, [&](const run &x) { return ms(x.r.wall_ns); }).c_str(),
           spread(runs, i, [&](const run &x) { return ms(x.r.cpu_ns); }).c_str(),
           spread(runs, i, [](const run &x) { return steady_ms(x.r.wall_ns, x.r.writes); },
                  "%.2f").c_str(),
           spread(runs, i, [](const run &x) { return steady_ms(x.r.cpu_ns, x.r.writes); },
                  "%.2f").c_str(),
           spread(runs, i, [](const run &x) { return x.r.profile_bytes / 1000.0; }, "%.1f",
                  false).c_str(),
           spread(runs, i, [](const run &x) {
             return (x.r.rss_first_kb - x.r.rss_before_kb) / 1024.0;
           }, "%.1f", false).c_str(),
           peak.c_str(),
           spread(runs, i, [](const run &x) { return x.r.rss_after_kb / 1024.0; }, "%.1f",
                  false).c_str());
  }
  printf("\nWhat the last profile of each configuration's last run holds (decoded here)\n\n");
  printf("| configuration | buckets | samples | locations | lines | locations with inline "
         "frames | most lines in one | functions | name != system_name | with start_line "
         "| mappings with has_inline_frames | bytes before gzip |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < configs.size(); i++) {
    const run *last = NULL;
    for (const run &x : runs)
      if (x.config == i && x.decoded)
        last = &x;
    if (last == NULL)
      continue;
    const census &c = last->c;
    printf("| %s | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld |\n",
           configs[i].label.c_str(), last->r.buckets, c.samples, c.locations, c.lines,
           c.inlined_locations, c.max_lines, c.functions, c.demangled, c.with_start_line,
           c.mappings_inline, c.raw_bytes);
  }
}

/* One run of each configuration under callgrind: the instructions of each
 * write, which the neighbours cannot move. Returns the failures. */
static int count_instructions(const std::vector<config> &configs, int writes) {
  int failed = 0;
  if (shell_line("command -v valgrind") == "?") {
    fprintf(stderr, "symbols_cost: --callgrind needs valgrind (apt-get install valgrind)\n");
    return 1;
  }
  printf("\nInstructions per write (callgrind, one run of each configuration; "
         "steady = median of writes 2..%d, min–max)\n\n", writes);
  printf("| configuration | first write | steady write | first − steady |\n");
  printf("|---|---|---|---|\n");
  for (size_t i = 0; i < configs.size(); i++) {
    run x{};
    if (!run_target(configs[i], writes, true, &x)) {
      failed++;
      continue;
    }
    std::vector<double> steady(x.ir + 1, x.ir + writes);
    double mid = median(steady);
    printf("| %s | %.1f M | %.2f M (%.2f–%.2f) | %.1f M |\n", configs[i].label.c_str(),
           x.ir[0] / 1e6, mid / 1e6, *std::min_element(steady.begin(), steady.end()) / 1e6,
           *std::max_element(steady.begin(), steady.end()) / 1e6, (x.ir[0] - mid) / 1e6);
    fflush(stdout);
  }
  return failed;
}

/* Each configuration's last profile into DIR/FILE.pb.gz; the failures. */
static int save_profiles(const std::string &dir, const std::vector<config> &configs,
                         const std::vector<run> &runs) {
  int failed = 0;
  printf("\n");
  for (size_t i = 0; i < configs.size(); i++) {
    const run *last = NULL;
    for (const run &x : runs)
      if (x.config == i)
        last = &x;
    if (last == NULL)
      continue;
    std::string path = dir + "/" + configs[i].file + ".pb.gz";
    FILE *f = fopen(path.c_str(), "wb");
    bool ok = f != NULL && fwrite(last->profile.data(), 1, last->profile.size(), f) ==
                               last->profile.size();
    ok = f != NULL && fclose(f) == 0 && ok;
    printf("%s %s\n", ok ? "saved" : "could not save", path.c_str());
    failed += !ok;
  }
  return failed;
}

static const char *default_lib(void) {
#ifdef HEAPPROF_LIB
  return HEAPPROF_LIB;
#else
  return "libheapprof.so";
#endif
}

struct options {
  int rounds = 9, writes = 10;
  bool callgrind = false;
  std::string base, lib = default_lib(), styles = "none,simple,full", save;
};

static int parse(int argc, char **argv, options *o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--rounds")
      o->rounds = atoi(v.c_str());
    else if (k == "--writes")
      o->writes = atoi(v.c_str());
    else if (k == "--base")
      o->base = v;
    else if (k == "--lib")
      o->lib = v;
    else if (k == "--styles")
      o->styles = v;
    else if (k == "--save")
      o->save = v;
    else if (k == "--callgrind")
      o->callgrind = v == "1";
    else
      return -1;
  }
  bool bad = argc % 2 == 0 || o->rounds < 1 || o->writes < 2 || o->writes > MAX_WRITES;
  return bad ? -1 : 0;
}

static std::vector<config> make_configs(const options &o) {
  std::vector<config> configs;
  if (!o.base.empty())
    configs.push_back({"previous", o.base, "", "previous"});
  size_t at = 0;
  while (at <= o.styles.size()) {
    size_t comma = o.styles.find(',', at);
    std::string s = o.styles.substr(at, comma == std::string::npos ? std::string::npos
                                                                     : comma - at);
    if (!s.empty())
      configs.push_back({s == "-" ? "new, unset" : "new, " + s, o.lib, s == "-" ? "" : s,
                         s == "-" ? "new-unset" : "new-" + s});
    if (comma == std::string::npos)
      break;
    at = comma + 1;
  }
  return configs;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--target") == 0)
    return target(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
  options o;
  if (parse(argc, argv, &o) != 0) {
    fprintf(stderr, "usage: symbols_cost [--rounds N] [--writes N (2-%d)] [--base SO] "
                    "[--lib SO] [--styles none,simple,full|-] [--callgrind 0|1] "
                    "[--save DIR]\n", MAX_WRITES);
    return 2;
  }
  std::vector<config> configs = make_configs(o);
  for (const config &c : configs)
    if (access(c.lib.c_str(), R_OK) != 0) {
      fprintf(stderr, "symbols_cost: no library %s (%s)\n", c.lib.c_str(), strerror(errno));
      return 1;
    }
  print_header(configs, o.rounds, o.writes);
  std::vector<run> runs;
  int failed = 0;
  for (int round = 0; round < o.rounds; round++)
    for (size_t k = 0; k < configs.size(); k++) {
      size_t i = (round + k) % configs.size();
      run x{};
      x.round = round + 1, x.config = i;
      if (!run_target(configs[i], o.writes, false, &x)) {
        failed++;
        continue;
      }
      print_run(configs[i], x);
      runs.push_back(x);
    }
  printf("load average after: %s\n", shell_line("cut -d' ' -f1-3 /proc/loadavg").c_str());
  print_tables(configs, runs);
  if (o.callgrind)
    failed += count_instructions(configs, o.writes);
  if (!o.save.empty())
    failed += save_profiles(o.save, configs, runs);
  return failed != 0;
}
