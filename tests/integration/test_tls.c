/*
 * test_tls — heapprof in a process whose first allocation happens in
 * another library's constructor (libtls_ctor, linked in), and whose threads
 * dlopen a library with general-dynamic TLS (libtls_dyn) and touch it, so
 * __tls_get_addr allocates their TLS blocks through heapprof's malloc. At
 * rate 1 every one of those allocations takes the slow path. No deadlock,
 * no crash, and a complete profile at the end.
 *
 * usage: test_tls LIBTLS_DYN
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "testlib.h"

int tls_lib_touch(int i);
static const char *plugin;

static void *worker(void *arg) {
  (void)arg;
  for (int r = 0; r < 20; r++) {
    void *h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen %s: %s", plugin, dlerror());
    int (*touch)(int) = (int (*)(int))dlsym(h, "tls_lib_touch");
    CHECK(touch != NULL, "dlsym");
    touch(r);
    dlclose(h);
  }
  return NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: test_tls LIBTLS_DYN");
  plugin = argv[1];
  tls_lib_touch(1); /* the linked copy, initialised before main */
  pthread_t t[16];
  for (int i = 0; i < 16; i++)
    CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0, "pthread_create");
  for (int i = 0; i < 16; i++)
    pthread_join(t[i], NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/tls.pb.gz", tl_tmpdir());
  CHECK(tl_write_profile(path, 0) == 0, "write");
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site_any(&p, "worker", v) > 0,
        "no sample from the threads' dlopen/TLS work:\n%s", p.raw);
  tl_free_profile(&p);
  printf("ok: 16 threads x 20 dlopen/TLS touches at rate 1\n");
  return 0;
}
