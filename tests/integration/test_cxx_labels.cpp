/*
 * test_cxx_labels — heapprof_labels.hpp's scopes: a label_scope pushes
 * and puts the labels back with C++'s scoping, a scope whose push failed
 * takes nothing away (the outer labels stay), a push left unpopped inside
 * a scope ends with it, and a label_attach carries a token to a
 * std::thread and gives the thread its own labels back at its end. The
 * profile (rate 1, read by go tool pprof) holds each site under exactly
 * the labels in force when it allocated.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <heapprof_labels.hpp>

#include "testlib.h"

#define NOINLINE __attribute__((noipa))

static void *volatile sink;

extern "C" NOINLINE void outer_alloc(void) { sink = malloc(1100); }
extern "C" NOINLINE void inner_alloc(void) { sink = malloc(1200); }
extern "C" NOINLINE void after_alloc(void) { sink = malloc(1300); }
extern "C" NOINLINE void worker_alloc(void) { sink = malloc(1400); }
extern "C" NOINLINE void worker_after(void) { sink = malloc(1500); }

static std::string label(const char *key) {
  const char *v = nullptr;
  return heapprof_label_get(key, &v) == 0 ? v : "-";
}

static void scopes(void) {
  heapprof::label_scope tenant(std::string("tenant"), std::string("acme"));
  CHECK(tenant && tenant.error() == 0, "push tenant: %d", tenant.error());
  outer_alloc();
  {
    heapprof::label_scope inner("tenant", "globex");
    heapprof::label_scope bad("no-dash", "x"); /* refused: EINVAL */
    CHECK(!bad && bad.error() == HEAPPROF_EINVAL, "bad key: %d", bad.error());
    CHECK(label("tenant") == "globex", "inner tenant %s", label("tenant").c_str());
    inner_alloc();
  } /* bad pops nothing; inner pops back to acme */
  CHECK(label("tenant") == "acme", "after the inner scope: %s",
        label("tenant").c_str());
  {
    heapprof::label_scope zone("zone", "eu");
    CHECK(heapprof_label_push("leftover", "x") == 0, "plain push");
  } /* the scope's end undoes the push it did not make, too */
  CHECK(label("leftover") == "-" && label("zone") == "-" &&
            label("tenant") == "acme",
        "after a scope with an unpopped push: leftover %s zone %s tenant %s",
        label("leftover").c_str(), label("zone").c_str(), label("tenant").c_str());
  heapprof_label_token_t token = heapprof_label_save();
  std::thread([token] {
    {
      heapprof::label_attach a(token);
      CHECK(a, "attach: %d", a.error());
      CHECK(label("tenant") == "acme", "worker tenant %s", label("tenant").c_str());
      worker_alloc();
    }
    CHECK(label("tenant") == "-", "worker kept %s", label("tenant").c_str());
    worker_after();
  }).join();
  heapprof::label_attach bogus(0xfffffff0u);
  CHECK(!bogus && bogus.error() == HEAPPROF_EINVAL, "bogus token: %d",
        bogus.error());
  CHECK(label("tenant") == "acme", "a bogus attach changed %s",
        label("tenant").c_str());
}

static void expect(const tl_profile_t *p, const char *site, const char *tenant) {
  int64_t v[4];
  size_t n = tl_site_label(p, site, "tenant", tenant, v);
  CHECK(n == 1 && v[0] == 1, "%s: %zu samples under tenant=%s, %lld objects",
        site, n, tenant ? tenant : "(none)", (long long)v[0]);
}

int main() {
  scopes();
  CHECK(label("tenant") == "-", "scopes left %s", label("tenant").c_str());
  CHECK(heapprof_label_pop() == HEAPPROF_ENOENT, "a scope was popped twice or not at all");
  after_alloc();
  char path[512];
  snprintf(path, sizeof path, "%s/cxx_labels.pb.gz", tl_tmpdir());
  CHECK(heapprof_write_profile(path, HEAPPROF_HEAP) == 0, "write %s", path);
  tl_profile_t p;
  tl_read_profile(path, &p);
  expect(&p, "outer_alloc", "acme");
  expect(&p, "inner_alloc", "globex");
  expect(&p, "worker_alloc", "acme");
  expect(&p, "worker_after", nullptr);
  expect(&p, "after_alloc", nullptr);
  tl_free_profile(&p);
  printf("test_cxx_labels: ok\n");
  return 0;
}
