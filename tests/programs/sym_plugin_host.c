/*
 * sym_plugin_host — a plugin host that unloads a plugin it allocated
 * from, for tests/integration/symbols/sym_plugin.py.
 *
 *   sym_plugin_host MODE PLUGIN [PLUGIN2]
 *
 * dlopens PLUGIN (a path), calls its plugin_alloc 5 times from call_plugin
 * and keeps the blocks, then by MODE:
 *   loaded     nothing more: the plugin is still loaded at exit
 *   delete     dlclose, then unlink PLUGIN
 *   overwrite  dlclose, then overwrite PLUGIN in place (same inode) with
 *              the bytes of PLUGIN2, another valid library
 *   reuse      dlclose, then dlopen PLUGIN2 (another path) and call its
 *              plugin_again 3 times from the same call_plugin; it stays
 *              loaded
 *   reload     dlclose, overwrite PLUGIN in place with PLUGIN2's bytes,
 *              then dlopen PLUGIN again (same path, new content) and call
 *              plugin_again 3 times
 * After each dlclose it checks in /proc/self/maps that the library is
 * really gone (exit 3 if not). It prints one line per load,
 *   loaded PATH START END        (the lowest and highest address mapped)
 * and exits 0 from main, when heapprof writes HEAPPROF_OUT. Exit 2: usage
 * or a failed call (said on stderr).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void *(*alloc_fn)(void);

static void *kept[16];
static int nkept;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "sym_plugin_host: %s: %s\n", what, detail ? detail : "");
  exit(2);
}

/* The one call site of every plugin: its return address is the same for
 * both plugins. The result is used after the call (no sibling call). */
__attribute__((noinline)) static void call_plugin(alloc_fn fn, int times) {
  for (int i = 0; i < times; i++) {
    void *p = fn();
    if (!p)
      die("plugin allocation", "NULL");
    kept[nkept++ & 15] = p;
  }
}

/* The lowest and highest address /proc/self/maps shows for `path`; 0 if
 * it is not mapped. */
static int mapped_range(const char *path, uintptr_t *lo, uintptr_t *hi) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f)
    die("fopen /proc/self/maps", NULL);
  char line[4096];
  int found = 0;
  size_t plen = strlen(path);
  while (fgets(line, sizeof line, f)) {
    size_t n = strcspn(line, "\n");
    line[n] = 0;
    if (n < plen || strcmp(line + n - plen, path) != 0 ||
        (n > plen && line[n - plen - 1] != ' '))
      continue;
    uintptr_t a, b;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) != 2)
      continue;
    if (!found || a < *lo)
      *lo = a;
    if (!found || b > *hi)
      *hi = b;
    found = 1;
  }
  fclose(f);
  return found;
}

__attribute__((noinline)) static void *load(const char *path, const char *sym, int times) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    die("dlopen", dlerror());
  alloc_fn fn = (alloc_fn)dlsym(h, sym);
  if (!fn)
    die("dlsym", dlerror());
  uintptr_t lo = 0, hi = 0;
  if (!mapped_range(path, &lo, &hi))
    die("loaded but not in /proc/self/maps", path);
  printf("loaded %s %#" PRIxPTR " %#" PRIxPTR "\n", path, lo, hi);
  fflush(stdout);
  call_plugin(fn, times);
  return h;
}

static void unload(void *h, const char *path) {
  if (dlclose(h) != 0)
    die("dlclose", dlerror());
  uintptr_t lo, hi;
  if (mapped_range(path, &lo, &hi)) {
    fprintf(stderr, "sym_plugin_host: %s is still mapped after dlclose\n", path);
    exit(3);
  }
}

/* Rewrites `path` in place (same inode) with the bytes of `from`. */
static void overwrite(const char *path, const char *from) {
  int in = open(from, O_RDONLY | O_CLOEXEC);
  int out = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (in < 0 || out < 0)
    die("open for overwrite", path);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      die("write", path);
  if (n < 0 || close(out) != 0)
    die("copy", from);
  close(in);
}

int main(int argc, char **argv) {
  if (argc < 3)
    die("usage", "sym_plugin_host loaded|delete|overwrite|reuse|reload PLUGIN [PLUGIN2]");
  const char *mode = argv[1], *plugin = argv[2], *plugin2 = argc > 3 ? argv[3] : NULL;
  int needs2 = strcmp(mode, "overwrite") == 0 || strcmp(mode, "reuse") == 0 ||
               strcmp(mode, "reload") == 0;
  if (needs2 && !plugin2)
    die("usage", "this mode needs PLUGIN2");
  void *h = load(plugin, "plugin_alloc", 5);
  if (strcmp(mode, "loaded") == 0)
    return 0;
  unload(h, plugin);
  if (strcmp(mode, "delete") == 0) {
    if (unlink(plugin) != 0)
      die("unlink", plugin);
  } else if (strcmp(mode, "overwrite") == 0) {
    overwrite(plugin, plugin2);
  } else if (strcmp(mode, "reuse") == 0) {
    load(plugin2, "plugin_again", 3);
  } else if (strcmp(mode, "reload") == 0) {
    overwrite(plugin, plugin2);
    load(plugin, "plugin_again", 3);
  } else {
    die("unknown mode", mode);
  }
  return 0;
}
