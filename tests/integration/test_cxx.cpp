/*
 * test_cxx — C++ new/delete reach the profiler through libstdc++'s
 * operator new → malloc, and operator new's own frame is trimmed so the
 * leaf is the function that said `new`. Run at HEAPPROF_RATE=1: exact.
 */
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "testlib.h"

#define NOINLINE __attribute__((noipa))

struct Widget {
  char data[200];
};

static void *volatile sink;

extern "C" NOINLINE Widget **make_widgets(int n) {
  Widget **w = new Widget *[n];
  for (int i = 0; i < n; i++)
    w[i] = new Widget();
  return w;
}

extern "C" NOINLINE void churn_widgets(int n) {
  for (int i = 0; i < n; i++) {
    Widget *w = new Widget();
    sink = w;
    delete w;
  }
}

extern "C" NOINLINE std::vector<int> *make_vector(void) {
  auto *v = new std::vector<int>();
  for (int i = 0; i < 1000; i++)
    v->push_back(i);
  return v;
}

namespace cache {
struct Store {
  std::map<int, std::string> entries;
  NOINLINE void fill(int n) {
    for (int i = 0; i < n; i++)
      entries[i] = std::string(100, 'x');
  }
};
} // namespace cache

static void expect(const tl_profile_t *p, const char *site, int any,
                   int64_t ao, int64_t as, int64_t io, int64_t is) {
  int64_t v[4];
  size_t n = any ? tl_site_any(p, site, v) : tl_site(p, site, v);
  CHECK(n > 0, "no sample %s %s:\n%s", any ? "through" : "with leaf", site,
        p->raw);
  CHECK(v[0] == ao && v[1] == as && v[2] == io && v[3] == is,
        "%s: alloc %lld/%lld inuse %lld/%lld, want %lld/%lld %lld/%lld", site,
        (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3],
        (long long)ao, (long long)as, (long long)io, (long long)is);
  std::printf("%-14s alloc %5lld/%7lld inuse %5lld/%7lld exact\n", site,
              (long long)v[0], (long long)v[1], (long long)v[2],
              (long long)v[3]);
}

struct alignas(256) Aligned {
  char data[512];
};

/* What C++ promises on failure and for over-aligned types holds through
 * heapprof's operator new, whichever allocator lies beneath. */
static void failure_and_alignment(void) {
  volatile size_t huge = SIZE_MAX / 4;
  bool threw = false;
  try {
    char *p = new char[huge];
    delete[] p;
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw, "new of %zu bytes did not throw std::bad_alloc", (size_t)huge);
  char *q = new (std::nothrow) char[huge];
  CHECK(q == nullptr, "nothrow new of %zu bytes returned non-null", (size_t)huge);
  Aligned *a = new Aligned();
  CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0, "aligned new: %p", (void *)a);
  delete a;
  Aligned *arr = new (std::nothrow) Aligned[3];
  CHECK(arr != nullptr && reinterpret_cast<uintptr_t>(arr) % 256 == 0,
        "aligned nothrow new[]");
  delete[] arr;
}

int main() {
  failure_and_alignment();
  Widget **w = make_widgets(100);
  churn_widgets(500);
  std::vector<int> *v = make_vector();
  cache::Store store;
  store.fill(50);

  char path[512];
  std::snprintf(path, sizeof path, "%s/cxx.pb.gz", tl_tmpdir());
  CHECK(tl_write_profile(path, 0) == 0, "write %s", path);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t wsz = sizeof(Widget);
  /* new Widget*[100] (800 B) and 100 × new Widget (200 B each). */
  expect(&p, "make_widgets", 0, 101, 800 + 100 * wsz, 101, 800 + 100 * wsz);
  expect(&p, "churn_widgets", 0, 500, 500 * wsz, 0, 0);
  /* The vector object (24 B) and its growth 1, 2, 4 … 1024 ints: 11 arrays
   * of 4 B × 2047 in all, the last (4096 B) alive. */
  expect(&p, "make_vector", 1, 12, 24 + 4 * 2047, 2, 24 + 4096);
  for (size_t i = 0; i < p.nsamples; i++)
    CHECK(std::strncmp(p.samples[i].funcs[0], "operator", 8) != 0 &&
              std::strncmp(p.samples[i].funcs[0], "_Znw", 4) != 0 &&
              std::strncmp(p.samples[i].funcs[0], "_Zna", 4) != 0,
          "operator new left as a leaf: %s", p.samples[i].funcs[0]);
  CHECK(std::strstr(p.raw, "cache::Store::fill") != NULL,
        "C++ method name not readable (want cache::Store::fill):\n%s", p.raw);
  tl_free_profile(&p);
  for (int i = 0; i < 100; i++)
    delete w[i];
  delete[] w;
  delete v;
  std::printf("ok\n");
  return 0;
}
