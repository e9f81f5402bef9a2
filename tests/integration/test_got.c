/*
 * test_got — runtime/got.c (attach mode's GOT patching) in a process of its
 * own: got_patch hooks malloc, free and calloc (and glibc's private
 * _dl_catch_exception, which only ld.so's GOT names) to got_wrap's counting
 * hooks, with the program's own bindings (dlsym(RTLD_DEFAULT)) as the
 * originals, then got_restore puts everything back.
 *
 * What got.c should do is modelled here independently of it: every
 * relocation of a hooked name in every loaded module is read with readelf
 * (-r, --dyn-syms), and the rules of got.h decide, slot by slot, whether
 * it is patched, left alone, or skipped and counted. Each call's return
 * value and skip count must equal the model's, and every slot's value
 * after it the model's; RELRO pages must be read-only again (read in
 * /proc/self/maps); the calls of the test library (libgot_lib: every kind
 * of slot, lazily bound), of this executable and of libc (strdup) must be
 * counted while patched and not after. Then: a second call patches
 * nothing; a library dlopen'ed later (libgot_lib2, whose lazy stubs are
 * IBT ones, endbr64 first) is patched by the next call, and patched afresh
 * after it is unloaded and loaded again at the same place; a lazy slot of a malloc of another symbol version
 * (libgot_verref) is patched exactly when glibc would bind it to the
 * hooked malloc; restore skips the slots of a library unloaded since; a
 * patch after a restore patches everything again.
 *
 * With "jemalloc", the executable is linked with libjemalloc, whose own
 * JUMP_SLOTs for free and malloc (its operator delete and
 * malloc_usable_size call them) must be left alone. With "stress", another
 * thread loads and unloads libgot_churn while this one patches and
 * restores (modules caught while ld.so relocates them, the second walk
 * finding a changed list, records of modules gone). "tiny" is test_got
 * linked with a got.c whose tables start at one row.
 *
 * usage: test_got READELF LIBGOT_LIB2 LIBGOT_VERREF
 *                 [jemalloc | tiny | stress LIBGOT_CHURN]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "got.h"
#include "testlib.h"

/* got_wrap */
extern _Atomic long got_wrap_calls[4];
void *got_wrap_malloc(size_t n);
void got_wrap_free(void *p);
void *got_wrap_calloc(size_t n, size_t size);
extern int (*got_wrap_catch_next)(void *, void (*)(void *), void *);
int got_wrap_catch(void *exception, void (*operate)(void *), void *args);

/* got_lib */
void gotlib_tamper(void);
int gotlib_fake_calls(void);
void *gotlib_calloc(size_t n);
void gotlib_release(void *p);
void *gotlib_via_got(size_t n);
void *gotlib_tab_alloc(size_t n);
void gotlib_tab_free(void *p);
void *gotlib_tab2_alloc(size_t n);
void *gotlib_ro_alloc(size_t n);

/* The free family first, as got.h asks. */
enum { H_FREE, H_MALLOC, H_CALLOC, H_CATCH, NHOOKS };
static got_hook_t hooks[NHOOKS];
static const int calls_index[NHOOKS] = {1, 0, 2, 3}; /* in got_wrap_calls */

/* Calls of hook h that `stmt` made. */
#define CALLS(h, stmt)                                                         \
  ({                                                                           \
    long before_ = got_wrap_calls[calls_index[h]];                             \
    stmt;                                                                      \
    got_wrap_calls[calls_index[h]] - before_;                                  \
  })

static const char *readelf;
static int jemalloc_mode;

/* ---- the model ---- */

typedef struct tmod {
  char path[512];
  const char *base_name;
  uintptr_t base, lo, hi, relro_lo, relro_hi;
  const void *phdr;
  int eligible; /* not ld.so, the vdso or got_wrap (`self`) */
  int libc;
  int fresh;    /* not examined by a got_patch since the last restore */
  int ldso;
} tmod_t;

enum action { LEAVE, PATCH, SKIP };

typedef struct tslot {
  int mod;
  uintptr_t addr;
  int hook;
  char type[32];
  char ver[64];
  unsigned long sym;
  int defined;
  long addend;
  void *before;
  enum action act;
} tslot_t;

#define MAXMODS 64
#define MAXSLOTS 4096
static tmod_t mods[MAXMODS];
static size_t nmods;
static tslot_t slots[MAXSLOTS];
static size_t nslots;

/* Modules examined by a got_patch since the last restore: base and path. */
static struct {
  uintptr_t base;
  char path[512];
} examined[MAXMODS];
static size_t nexamined;

static int was_examined(const tmod_t *m) {
  for (size_t i = 0; i < nexamined; i++)
    if (examined[i].base == m->base && strcmp(examined[i].path, m->path) == 0)
      return 1;
  return 0;
}

static void mark_examined(void) {
  for (size_t i = 0; i < nmods; i++)
    if (mods[i].eligible && !was_examined(&mods[i])) {
      CHECK(nexamined < MAXMODS, "too many modules");
      examined[nexamined].base = mods[i].base;
      strcpy(examined[nexamined++].path, mods[i].path);
    }
}

static void forget_examined(const char *path) {
  size_t j = 0;
  for (size_t i = 0; i < nexamined; i++)
    if (strcmp(examined[i].path, path) != 0)
      examined[j++] = examined[i];
  nexamined = j;
}

static int list_module(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  CHECK(nmods < MAXMODS, "too many modules");
  tmod_t *m = &mods[nmods++];
  memset(m, 0, sizeof *m);
  if (info->dlpi_name[0] == '\0' && nmods == 1) {
    ssize_t len = readlink("/proc/self/exe", m->path, sizeof m->path - 1);
    CHECK(len > 0, "readlink /proc/self/exe");
    m->path[len] = '\0';
  } else if (strstr(info->dlpi_name, "linux-vdso") == NULL)
    snprintf(m->path, sizeof m->path, "%s", info->dlpi_name);
  const char *slash = strrchr(m->path, '/');
  m->base_name = slash ? slash + 1 : m->path;
  m->base = info->dlpi_addr;
  m->phdr = info->dlpi_phdr;
  m->lo = UINTPTR_MAX;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD) {
      if (a < m->lo)
        m->lo = a;
      if (a + ph->p_memsz > m->hi)
        m->hi = a + ph->p_memsz;
    } else if (ph->p_type == PT_GNU_RELRO) { /* as ld.so protects it */
      m->relro_lo = a & ~(uintptr_t)4095;
      m->relro_hi = (a + ph->p_memsz) & ~(uintptr_t)4095;
    }
  }
  m->ldso = getauxval(AT_BASE) == m->base;
  uintptr_t self = (uintptr_t)got_wrap_malloc;
  m->eligible = m->path[0] != '\0' && !m->ldso && !(self >= m->lo && self < m->hi);
  m->libc = strcmp(m->base_name, "libc.so.6") == 0;
  m->fresh = m->eligible && !was_examined(m);
  return 0;
}

static int hook_of(const char *name) {
  for (int h = 0; h < NHOOKS; h++)
    if (strcmp(hooks[h].name, name) == 0)
      return h;
  return -1;
}

/* Whether the module defining hook h's original defines the name in
 * version `ver`, or without a version (readelf --dyn-syms of it): glibc
 * binds a reference of that version there then. (dlvsym cannot tell: it
 * asks for exactly that version, and so refuses jemalloc's unversioned
 * malloc, which glibc gives to a reference to malloc@GLIBC_2.2.5.) */
static int provider_accepts(int h, const char *ver) {
  Dl_info di;
  CHECK(dladdr(hooks[h].original, &di) != 0 && di.dli_fname[0] == '/',
        "dladdr(%s)", hooks[h].name);
  char cmd[1200], line[1024];
  snprintf(cmd, sizeof cmd, "'%s' -W --dyn-syms '%s'", readelf, di.dli_fname);
  FILE *f = popen(cmd, "r");
  CHECK(f != NULL, "popen %s", cmd);
  int ok = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned num;
    unsigned long val, size;
    char t[16], bind[16], vis[16], ndx[16], name[256];
    if (sscanf(line, " %u: %lx %lu %15s %15s %15s %15s %255s", &num, &val, &size,
               t, bind, vis, ndx, name) != 8 || strcmp(ndx, "UND") == 0)
      continue;
    char *at = strchr(name, '@');
    if (at != NULL)
      *at = '\0';
    if (strcmp(name, hooks[h].name) == 0 &&
        (at == NULL || strcmp(at[1] == '@' ? at + 2 : at + 1, ver) == 0))
      ok = 1;
  }
  CHECK(pclose(f) == 0, "%s failed", cmd);
  return ok;
}

/* What got.h's rules do with slot s. */
static enum action decide(const tslot_t *s) {
  const tmod_t *m = &mods[s->mod];
  const got_hook_t *hk = &hooks[s->hook];
  if (!m->eligible || !m->fresh || (s->defined && !m->libc) ||
      (strcmp(s->type, "R_X86_64_64") == 0 && s->addend != 0))
    return LEAVE;
  if (s->before == hk->original)
    return PATCH;
  uintptr_t v = (uintptr_t)s->before;
  if (strcmp(s->type, "R_X86_64_JUMP_SLOT") == 0 && v >= m->lo && v < m->hi &&
      (s->ver[0] == '\0' || provider_accepts(s->hook, s->ver)))
    return PATCH; /* lazy, and bound to the hooked function once resolved */
  return SKIP;
}

static void model_module(int mi) {
  tmod_t *m = &mods[mi];
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "'%s' -W -r --dyn-syms '%s'", readelf, m->path);
  FILE *f = popen(cmd, "r");
  CHECK(f != NULL, "popen %s", cmd);
  static char undef[1 << 16];
  memset(undef, 0, sizeof undef);
  size_t first = nslots;
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long off, info, val, size;
    char type[32], name[256], sign, t2[16], bind[16], vis[16], ndx[16];
    long addend;
    unsigned num;
    if (sscanf(line, "%lx %lx %31s %lx %255s %c %ld", &off, &info, type, &val,
               name, &sign, &addend) == 7) {
      if (strcmp(type, "R_X86_64_JUMP_SLOT") != 0 &&
          strcmp(type, "R_X86_64_GLOB_DAT") != 0 && strcmp(type, "R_X86_64_64") != 0)
        continue;
      char *at = strchr(name, '@');
      const char *ver = "";
      if (at != NULL) {
        *at = '\0';
        ver = at[1] == '@' ? at + 2 : at + 1;
      }
      int h = hook_of(name);
      if (h < 0)
        continue;
      CHECK(nslots < MAXSLOTS, "too many slots");
      tslot_t *s = &slots[nslots++];
      memset(s, 0, sizeof *s);
      s->mod = mi;
      s->addr = m->base + off;
      s->hook = h;
      snprintf(s->type, sizeof s->type, "%s", type);
      snprintf(s->ver, sizeof s->ver, "%s", ver);
      s->sym = info >> 32;
      s->addend = sign == '-' ? -addend : addend;
      s->before = *(void *volatile *)s->addr;
    } else if (sscanf(line, " %u: %lx %lu %15s %15s %15s %15s", &num, &val, &size,
                      t2, bind, vis, ndx) == 7 && num < sizeof undef) {
      undef[num] = strcmp(ndx, "UND") == 0 ? 1 : 2;
    }
  }
  CHECK(pclose(f) == 0, "%s failed", cmd);
  for (size_t i = first; i < nslots; i++) {
    CHECK(slots[i].sym < sizeof undef && undef[slots[i].sym] != 0,
          "%s: symbol %lu of a relocation not in --dyn-syms", m->path, slots[i].sym);
    slots[i].defined = undef[slots[i].sym] == 2;
    slots[i].act = decide(&slots[i]);
  }
}

/* Models every module loaded now; returns how many slots the model patches
 * and (in *skipped) skips. */
static size_t model_all(size_t *skipped) {
  nmods = nslots = 0;
  dl_iterate_phdr(list_module, NULL);
  for (size_t i = 0; i < nmods; i++)
    if (mods[i].path[0] != '\0')
      model_module((int)i);
  size_t n = 0;
  *skipped = 0;
  for (size_t i = 0; i < nslots; i++) {
    n += slots[i].act == PATCH;
    *skipped += slots[i].act == SKIP;
  }
  return n;
}

static const char *act_name(enum action a) {
  return a == PATCH ? "patch" : a == SKIP ? "skip" : "leave";
}

static void dump_model(void) {
  for (size_t i = 0; i < nslots; i++) {
    const tslot_t *s = &slots[i];
    fprintf(stderr, "  %-24s +%#lx %-20s %s%s%s %s+%ld %s before=%p now=%p\n",
            mods[s->mod].base_name, (unsigned long)(s->addr - mods[s->mod].base),
            s->type, hooks[s->hook].name, s->ver[0] ? "@" : "", s->ver,
            s->defined ? "defined " : "", s->addend, act_name(s->act), s->before,
            *(void *volatile *)s->addr);
  }
}

static void *slot_now(const tslot_t *s) { return *(void *volatile *)s->addr; }

/* Whether a slot left alone holds what it should: its value before, or,
 * if that was its lazy PLT stub, the binding ld.so has given it since. */
static int left_alone(const tslot_t *s) {
  const tmod_t *m = &mods[s->mod];
  uintptr_t v = (uintptr_t)s->before;
  return slot_now(s) == s->before ||
         (strcmp(s->type, "R_X86_64_JUMP_SLOT") == 0 && v >= m->lo && v < m->hi &&
          slot_now(s) == hooks[s->hook].original);
}

/* Whether the page holding `addr` is writable, from /proc/self/maps. */
static int page_writable(uintptr_t addr) {
  FILE *f = fopen("/proc/self/maps", "r");
  CHECK(f != NULL, "open /proc/self/maps");
  char line[1024];
  int w = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && addr >= lo && addr < hi) {
      w = perms[1] == 'w';
      break;
    }
  }
  fclose(f);
  CHECK(w >= 0, "%#lx is in no mapping", (unsigned long)addr);
  return w;
}

static int in_relro(const tslot_t *s) {
  const tmod_t *m = &mods[s->mod];
  return s->addr >= m->relro_lo && s->addr < m->relro_hi;
}

/* After a got_patch: every slot as the model says; RELRO read-only. */
static void check_patched(const char *when) {
  size_t relro = 0;
  for (size_t i = 0; i < nslots; i++) {
    const tslot_t *s = &slots[i];
    void *want = s->act == PATCH ? hooks[s->hook].replacement : s->before;
    if (s->act == PATCH ? slot_now(s) != want : !left_alone(s)) {
      dump_model();
      CHECK(0, "%s: %s slot %#lx (%s %s) holds %p, not %p", when,
            mods[s->mod].base_name, (unsigned long)(s->addr - mods[s->mod].base),
            s->type, hooks[s->hook].name, slot_now(s), want);
    }
    if (s->act == PATCH && in_relro(s)) {
      relro++;
      CHECK(!page_writable(s->addr), "%s: %s's RELRO page of slot %#lx left writable",
            when, mods[s->mod].base_name,
            (unsigned long)(s->addr - mods[s->mod].base));
    }
  }
  printf("%s: slots as modelled; %zu patched in RELRO, read-only again\n", when,
         relro);
}

/* One got_patch against the model; returns how many it patched. */
static int patch_and_check(const char *when) {
  size_t want_skipped, want = model_all(&want_skipped);
  for (size_t i = 0; i < nslots; i++)
    if (slots[i].act == PATCH && in_relro(&slots[i]))
      CHECK(!page_writable(slots[i].addr), "%s: a RELRO page is writable before", when);
  size_t skipped = 12345;
  errno = 4242;
  int n = got_patch(hooks, NHOOKS, (const void *)got_wrap_malloc, &skipped);
  int e = errno;
  if (n < 0 || (size_t)n != want || skipped != want_skipped)
    dump_model();
  CHECK(n >= 0, "%s: got_patch: %s", when, strerror(e));
  CHECK((size_t)n == want, "%s: got_patch patched %d slots, the model %zu", when, n,
        want);
  CHECK(skipped == want_skipped, "%s: got_patch skipped %zu slots, the model %zu",
        when, skipped, want_skipped);
  CHECK(e == 4242, "%s: errno %d after got_patch", when, e);
  check_patched(when);
  if (getenv("TEST_GOT_VERBOSE") != NULL) /* the model, for a reader */
    dump_model();
  mark_examined();
  printf("%s: %d patched, %zu skipped\n", when, n, skipped);
  return n;
}

/* got_restore against the model taken just before it. */
static void restore_and_check(const char *when) {
  size_t skipped;
  nexamined = 0; /* after the restore, no module counts as examined */
  model_all(&skipped);
  for (size_t i = 0; i < nslots; i++)
    slots[i].act = LEAVE; /* only `before` is wanted of this model */
  errno = 4343;
  CHECK(got_restore() == 0, "%s: got_restore: %s", when, strerror(errno));
  CHECK(errno == 4343, "%s: errno %d after got_restore", when, errno);
  size_t back = 0;
  for (size_t i = 0; i < nslots; i++) {
    const tslot_t *s = &slots[i];
    const got_hook_t *hk = &hooks[s->hook];
    int was_ours = mods[s->mod].eligible && s->before == hk->replacement;
    void *want = was_ours ? hk->original : s->before;
    back += was_ours;
    if (was_ours ? slot_now(s) != want : !left_alone(s)) {
      dump_model();
      CHECK(0, "%s: %s slot %#lx (%s %s) holds %p, not %p", when,
            mods[s->mod].base_name, (unsigned long)(s->addr - mods[s->mod].base),
            s->type, hk->name, slot_now(s), want);
    }
    if (was_ours && in_relro(s))
      CHECK(!page_writable(s->addr), "%s: RELRO page writable after restore", when);
  }
  CHECK(back > 0, "%s: no slot was patched before the restore", when);
  printf("%s: %zu slots back to the originals\n", when, back);
}

/* ---- what the model must contain for the checks to mean anything ---- */

static const tslot_t *find_slot(const char *mod, int hook, const char *type,
                                long addend, int relro) {
  for (size_t i = 0; i < nslots; i++) {
    const tslot_t *s = &slots[i];
    if (strstr(mods[s->mod].base_name, mod) == mods[s->mod].base_name &&
        s->hook == hook && strcmp(s->type, type) == 0 && s->addend == addend &&
        (relro < 0 || in_relro(s) == relro))
      return s;
  }
  return NULL;
}

static void check_claims(void) {
  static const struct {
    int hook;
    const char *type;
    long addend;
    int relro;
    const char *what;
  } claims[] = {
      {H_FREE, "R_X86_64_JUMP_SLOT", 0, -1, "JUMP_SLOT free"},
      {H_CALLOC, "R_X86_64_JUMP_SLOT", 0, -1, "JUMP_SLOT calloc"},
      {H_MALLOC, "R_X86_64_GLOB_DAT", 0, 1, "GLOB_DAT malloc in RELRO"},
      {H_MALLOC, "R_X86_64_64", 0, 0, "R_X86_64_64 malloc in .data"},
      {H_MALLOC, "R_X86_64_64", 0, 1, "R_X86_64_64 malloc in RELRO"},
      {H_MALLOC, "R_X86_64_64", 1, -1, "R_X86_64_64 malloc + 1"},
      {H_FREE, "R_X86_64_64", 0, 0, "R_X86_64_64 free in .data"},
  };
  for (size_t i = 0; i < sizeof claims / sizeof *claims; i++)
    CHECK(find_slot("libgot_lib.so", claims[i].hook, claims[i].type,
                    claims[i].addend, claims[i].relro) != NULL,
          "readelf finds no %s in libgot_lib.so", claims[i].what);
  /* Lazy binding: calloc's slot still holds its PLT stub. */
  const tslot_t *s = find_slot("libgot_lib.so", H_CALLOC, "R_X86_64_JUMP_SLOT", 0, -1);
  const tmod_t *m = &mods[s->mod];
  CHECK(s->before != hooks[H_CALLOC].original && (uintptr_t)s->before >= m->lo &&
            (uintptr_t)s->before < m->hi && s->act == PATCH,
        "libgot_lib's calloc slot is already bound (%p): the lazy case is not tested",
        s->before);
  size_t skips = 0;
  for (size_t i = 0; i < nslots; i++)
    skips += slots[i].act == SKIP;
  if (skips != 1)
    dump_model();
  CHECK(skips == 1, "the model skips %zu slots, not the one rewritten by "
                    "gotlib_tamper", skips);
  /* libc reaches its own malloc through a GLOB_DAT slot (strdup). */
  s = find_slot("libc.so.6", H_MALLOC, "R_X86_64_GLOB_DAT", 0, -1);
  CHECK(s != NULL && s->defined && s->act == PATCH, "libc's GLOB_DAT malloc");
  /* ld.so's slot for _dl_catch_exception holds the hook's original: only
   * leaving ld.so (and its own definitions) alone keeps it. */
  int ldso = 0;
  for (size_t i = 0; i < nslots; i++)
    ldso += mods[slots[i].mod].ldso && slots[i].hook == H_CATCH &&
            slots[i].before == hooks[H_CATCH].original;
  CHECK(ldso > 0, "ld.so has no slot holding _dl_catch_exception's binding");
  /* got_wrap (`self`) calls the originals through slots of its own. */
  int self = 0;
  for (size_t i = 0; i < nslots; i++)
    self += strncmp(mods[slots[i].mod].base_name, "libgot_wrap", 11) == 0 &&
            slots[i].hook != H_CATCH;
  CHECK(self >= 3, "libgot_wrap has %d slots of malloc, free, calloc", self);
  if (jemalloc_mode) {
    /* Slots of its own malloc and free, bound or lazily unbound: without
     * the rule on definitions they would be patched. */
    int own = 0;
    for (size_t i = 0; i < nslots; i++) {
      const tslot_t *s = &slots[i];
      const tmod_t *m = &mods[s->mod];
      own += strstr(m->base_name, "libjemalloc") != NULL && s->defined &&
             (s->before == hooks[s->hook].original ||
              ((uintptr_t)s->before >= m->lo && (uintptr_t)s->before < m->hi));
    }
    CHECK(own > 0, "libjemalloc has no slot of its own malloc or free");
    printf("libjemalloc: %d slots of its own definitions, left alone\n", own);
  }
}

/* libgot_lib2's JUMP_SLOTs, unbound, point at IBT PLT stubs (endbr64). */
static void check_ibt_lazy(void) {
  size_t skipped;
  model_all(&skipped);
  int ibt = 0;
  for (size_t i = 0; i < nslots; i++) {
    const tslot_t *s = &slots[i];
    const tmod_t *m = &mods[s->mod];
    uintptr_t v = (uintptr_t)s->before;
    if (strcmp(m->base_name, "libgot_lib2.so") == 0 &&
        strcmp(s->type, "R_X86_64_JUMP_SLOT") == 0 && v >= m->lo && v < m->hi &&
        memcmp((const void *)v, "\xf3\x0f\x1e\xfa", 4) == 0)
      ibt++;
  }
  CHECK(ibt == 2, "libgot_lib2 has %d unbound JUMP_SLOTs at an endbr64 stub, not 2",
        ibt);
}

/* ---- calls counted, or not ---- */

__attribute__((noinline)) static void *exe_malloc(size_t n) {
  void *volatile p = malloc(n);
  return p;
}

__attribute__((noinline)) static void *exe_calloc(size_t n) {
  void *volatile p = calloc(1, n);
  return p;
}

__attribute__((noinline)) static void exe_free(void *p) { free(p); }

/* Every call path of got_lib, this executable and libc: each counted once
 * if `on`, not at all otherwise. */
static void check_calls(int on, const char *when) {
  void *p;
  long want = on ? 1 : 0;
  CHECK(CALLS(H_CALLOC, p = gotlib_calloc(8)) == want, "%s: lib calloc (JUMP_SLOT)", when);
  CHECK(CALLS(H_FREE, gotlib_release(p)) == want, "%s: lib free (JUMP_SLOT)", when);
  CHECK(CALLS(H_MALLOC, p = gotlib_via_got(8)) == want, "%s: lib malloc (GLOB_DAT)", when);
  exe_free(p);
  CHECK(CALLS(H_MALLOC, p = gotlib_tab_alloc(8)) == want, "%s: lib malloc (.data)", when);
  CHECK(CALLS(H_FREE, gotlib_tab_free(p)) == want, "%s: lib free (.data)", when);
  CHECK(CALLS(H_MALLOC, p = gotlib_ro_alloc(8)) == want, "%s: lib malloc (RELRO)", when);
  exe_free(p);
  int fake = gotlib_fake_calls();
  CHECK(CALLS(H_MALLOC, gotlib_tab2_alloc(8)) == 0, "%s: a rewritten entry", when);
  CHECK(gotlib_fake_calls() == fake + 1, "%s: the rewritten entry was not called", when);
  CHECK(CALLS(H_MALLOC, p = exe_malloc(8)) == want, "%s: the executable's malloc", when);
  CHECK(CALLS(H_FREE, exe_free(p)) == want, "%s: the executable's free", when);
  CHECK(CALLS(H_CALLOC, p = exe_calloc(8)) == want, "%s: the executable's calloc", when);
  exe_free(p);
  CHECK(CALLS(H_MALLOC, p = strdup("got")) == want, "%s: libc's strdup", when);
  exe_free(p);
  printf("%s: every call path %s\n", when, on ? "counted" : "not counted");
}

static uintptr_t base_of(const char *path) {
  size_t skipped;
  model_all(&skipped);
  for (size_t i = 0; i < nmods; i++)
    if (strcmp(mods[i].path, path) == 0)
      return mods[i].base;
  return 0;
}

/* libgot_lib2's calls, through dlsym. */
static void check_lib2(void *h, const char *when) {
  void *(*calloc2)(size_t) = (void *(*)(size_t))dlsym(h, "gotlib2_calloc");
  void (*release2)(void *) = (void (*)(void *))dlsym(h, "gotlib2_release");
  void *(*via2)(size_t) = (void *(*)(size_t))dlsym(h, "gotlib2_via_got");
  void *(*ro2)(size_t) = (void *(*)(size_t))dlsym(h, "gotlib2_ro_alloc");
  CHECK(calloc2 && release2 && via2 && ro2, "dlsym in libgot_lib2");
  void *p;
  CHECK(CALLS(H_CALLOC, p = calloc2(8)) == 1, "%s: lib2 calloc", when);
  CHECK(CALLS(H_FREE, release2(p)) == 1, "%s: lib2 free", when);
  CHECK(CALLS(H_MALLOC, p = via2(8)) == 1, "%s: lib2 malloc (GLOB_DAT)", when);
  exe_free(p);
  CHECK(CALLS(H_MALLOC, p = ro2(8)) == 1, "%s: lib2 malloc (RELRO)", when);
  exe_free(p);
}

/* ---- stress: the module list changing under the walks ---- */

static const char *churn_lib;
static _Atomic int churn_stop;
static _Atomic long churn_rounds;

/* dlopen, call, dlclose libgot_churn until told to stop. */
static void *churn(void *arg) {
  (void)arg;
  while (!churn_stop) {
    void *h = dlopen(churn_lib, RTLD_LAZY | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen %s: %s", churn_lib, dlerror());
    void *(*alloc)(size_t) = (void *(*)(size_t))dlsym(h, "gotchurn_alloc");
    CHECK(alloc != NULL, "dlsym in libgot_churn");
    free(alloc(8));
    CHECK(dlclose(h) == 0, "dlclose: %s", dlerror());
    churn_rounds++;
  }
  return NULL;
}

/* libgot_churn's malloc slot must be relocated first in its RELRO page,
 * with many relocations after it there (got_churn.c says why). */
static void check_churn_layout(const char *lib) {
  char cmd[1200], line[1024];
  snprintf(cmd, sizeof cmd, "'%s' -W -r -l '%s'", readelf, lib);
  FILE *f = popen(cmd, "r");
  CHECK(f != NULL, "popen %s", cmd);
  unsigned long relro = 0, relro_size = 0, malloc_at = 0, first = 0, after = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long off, info, val, a, b, c, d;
    char type[32], name[256], sign;
    long addend;
    if (sscanf(line, " GNU_RELRO %lx %lx %lx %lx %lx", &a, &b, &c, &d, &relro_size) == 5)
      relro = b;
    else if (sscanf(line, "%lx %lx %31s %lx %255s %c %ld", &off, &info, type, &val,
                    name, &sign, &addend) == 7 && strcmp(type, "R_X86_64_64") == 0) {
      if (first == 0)
        first = off;
      if (strncmp(name, "malloc@", 7) == 0)
        malloc_at = off;
      else if (malloc_at != 0 && off / 4096 == malloc_at / 4096)
        after++;
    }
  }
  CHECK(pclose(f) == 0, "%s failed", cmd);
  CHECK(malloc_at != 0 && malloc_at == first, "libgot_churn: malloc's slot %#lx is not "
        "its first symbol relocation (%#lx)", malloc_at, first);
  CHECK(malloc_at >= relro && malloc_at < ((relro + relro_size) & ~4095ul),
        "libgot_churn: malloc's slot %#lx is not in a page RELRO protects", malloc_at);
  CHECK(after >= 50, "libgot_churn: only %lu relocations after malloc's in its page", after);
}

/* Patches, a restore after every 4th, while another thread loads and
 * unloads libgot_churn (at least 400 patches and 2000 loads; the hang
 * detector bounds it): no crash, no error but EAGAIN, patched calls
 * counted after each patch that succeeded, nothing left patched at the
 * end. */
static void stress(const char *lib) {
  check_churn_layout(lib);
  churn_lib = lib;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, churn, NULL) == 0, "pthread_create");
  int ok = 0, again = 0, restores = 0;
  for (int i = 0; i < 400 || churn_rounds < 2000; i++) {
    size_t skipped;
    int n = got_patch(hooks, NHOOKS, (const void *)got_wrap_malloc, &skipped);
    if (n < 0) {
      CHECK(errno == EAGAIN, "got_patch: %s", strerror(errno));
      again++;
    } else {
      ok++;
      void *p;
      CHECK(CALLS(H_CALLOC, p = gotlib_calloc(8)) >= 1, "patch %d: not counted", i);
      free(p);
    }
    if (i % 4 == 3) {
      if (got_restore() == 0)
        restores++;
      else {
        CHECK(errno == EAGAIN, "got_restore: %s", strerror(errno));
        again++;
      }
    }
  }
  churn_stop = 1;
  pthread_join(t, NULL);
  CHECK(got_restore() == 0, "last got_restore: %s", strerror(errno));
  size_t skipped;
  model_all(&skipped);
  for (size_t i = 0; i < nslots; i++)
    CHECK(slot_now(&slots[i]) != hooks[slots[i].hook].replacement,
          "%s slot %#lx still patched", mods[slots[i].mod].base_name,
          (unsigned long)(slots[i].addr - mods[slots[i].mod].base));
  check_calls(0, "after the stress");
  printf("stress: %d patches and %d restores done, %d EAGAIN, %ld loads meanwhile\n",
         ok, restores, again, (long)churn_rounds);
}

int main(int argc, char **argv) {
  CHECK(argc >= 4 && argc <= 6, "usage: test_got READELF LIBGOT_LIB2 LIBGOT_VERREF "
                                "[jemalloc | tiny | stress LIBGOT_CHURN]");
  alarm(120); /* a hang detector, not a timing */
  readelf = argv[1];
  const char *lib2 = argv[2], *verref = argv[3];
  const char *mode = argc >= 5 ? argv[4] : "";
  jemalloc_mode = strcmp(mode, "jemalloc") == 0;
  CHECK(getenv("LD_BIND_NOW") == NULL, "LD_BIND_NOW is set: the lazy case needs it unset");

  const char *names[NHOOKS] = {"free", "malloc", "calloc", "_dl_catch_exception"};
  void *repl[NHOOKS] = {(void *)got_wrap_free, (void *)got_wrap_malloc,
                        (void *)got_wrap_calloc, (void *)got_wrap_catch};
  for (int h = 0; h < NHOOKS; h++) {
    hooks[h] = (got_hook_t){names[h], repl[h], dlsym(RTLD_DEFAULT, names[h]), NULL};
    CHECK(hooks[h].original != NULL, "dlsym(RTLD_DEFAULT, %s)", names[h]);
  }
  got_wrap_catch_next = (int (*)(void *, void (*)(void *), void *))hooks[H_CATCH].original;
  Dl_info di;
  CHECK(dladdr(hooks[H_MALLOC].original, &di) != 0, "dladdr(malloc)");
  CHECK((strstr(di.dli_fname, "jemalloc") != NULL) == jemalloc_mode,
        "malloc comes from %s", di.dli_fname);
  printf("malloc is %s's\n", di.dli_fname);

  gotlib_tamper(); /* one R_X86_64_64 entry no longer holds malloc */
  if (strcmp(mode, "stress") == 0) {
    CHECK(argc == 6, "stress needs LIBGOT_CHURN");
    stress(argv[5]);
    printf("ok\n");
    return 0;
  }
  size_t skipped;
  model_all(&skipped);
  check_claims(); /* nothing has called into libgot_lib yet: still lazy */

  /* 1. Everything loaded now. */
  patch_and_check("first patch");
  check_calls(1, "patched");

  /* 2. Nothing new: nothing patched. */
  CHECK(patch_and_check("second patch") == 0, "a second got_patch patched something");

  /* 3. Libraries dlopen'ed since. */
  void *h2 = dlopen(lib2, RTLD_LAZY | RTLD_LOCAL);
  CHECK(h2 != NULL, "dlopen %s: %s", lib2, dlerror());
  void *hv = dlopen(verref, RTLD_LAZY | RTLD_LOCAL);
  CHECK(hv != NULL, "dlopen %s: %s", verref, dlerror());
  check_ibt_lazy();
  int n = patch_and_check("after dlopen");
  CHECK(n > 0, "nothing of libgot_lib2 patched");
  check_lib2(h2, "after dlopen");
  const tslot_t *vs = find_slot("libgot_verref.so", H_MALLOC, "R_X86_64_JUMP_SLOT", 0, -1);
  CHECK(vs != NULL && strcmp(vs->ver, "GOT_FAKE_1") == 0,
        "libgot_verref.so has no JUMP_SLOT for malloc@GOT_FAKE_1");
  /* glibc binds malloc@GOT_FAKE_1 to libgot_verdef's (libc's malloc has
   * another version); jemalloc's malloc has none, so it takes any. */
  CHECK(vs->act == (jemalloc_mode ? PATCH : SKIP), "the model %ss malloc@GOT_FAKE_1",
        act_name(vs->act));
  void *(*valloc_)(size_t) = (void *(*)(size_t))dlsym(hv, "gotver_alloc");
  int *fake = (int *)dlsym(hv, "got_fake_calls");
  CHECK(valloc_ != NULL && fake != NULL, "dlsym in libgot_verref");
  int fake0 = *fake;
  long counted = CALLS(H_MALLOC, valloc_(8));
  CHECK(counted == (vs->act == PATCH) && *fake - fake0 == (vs->act != PATCH),
        "malloc@GOT_FAKE_1: %ld hook calls, %d calls of got_verdef's", counted,
        *fake - fake0);

  /* 4. Unloaded and loaded again at the same place: patched afresh. */
  uintptr_t b1 = base_of(lib2);
  CHECK(dlclose(h2) == 0, "dlclose");
  CHECK(dlopen(lib2, RTLD_LAZY | RTLD_NOLOAD) == NULL, "libgot_lib2 still loaded");
  h2 = dlopen(lib2, RTLD_LAZY | RTLD_LOCAL);
  CHECK(h2 != NULL, "dlopen again: %s", dlerror());
  /* With got.c's tables starting at one row, the maps given back while
   * they grew leave holes above: the library may come back higher. The
   * default tables do not, and there this must not be vacuous. */
  if (strcmp(mode, "tiny") != 0)
    CHECK(base_of(lib2) == b1, "libgot_lib2 came back elsewhere: the reload is not tested");
  else if (base_of(lib2) != b1)
    printf("libgot_lib2 came back elsewhere: a new module, not a reload\n");
  forget_examined(lib2);
  CHECK(patch_and_check("after reload") > 0, "the reloaded libgot_lib2 not patched");
  check_lib2(h2, "after reload");

  /* 5. Unloaded for good: restore must leave its slots alone. */
  CHECK(dlclose(h2) == 0, "dlclose");
  CHECK(dlopen(lib2, RTLD_LAZY | RTLD_NOLOAD) == NULL, "libgot_lib2 still loaded");
  restore_and_check("restore");
  check_calls(0, "restored");
  CHECK(CALLS(H_MALLOC, valloc_(8)) == 0, "malloc@GOT_FAKE_1 counted after restore");

  /* 6. After a restore, everything again. */
  patch_and_check("patch after restore");
  check_calls(1, "patched again");
  restore_and_check("second restore");
  check_calls(0, "restored again");

  printf("ok\n");
  return 0;
}
