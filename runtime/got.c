/*
 * got — hooking a running process by rewriting its modules' GOT slots
 * (attach mode, issue 15; x86-64 glibc).
 *
 * A preloaded heapprof is found by the loader before the allocator; a
 * heapprof dlopen'ed into a running program is found by nobody. So attach
 * rewrites the slots through which each module reaches the allocator: the
 * R_X86_64_JUMP_SLOT (a PLT call), R_X86_64_GLOB_DAT (a -fno-plt call or an
 * address taken) and R_X86_64_64 with addend 0 (a function table in data,
 * such as hiredis's allocator table) relocations naming a hooked symbol.
 *
 * Which slots. Modules come from dl_iterate_phdr. Never touched: ld.so
 * (AT_BASE, or a soname "ld-linux-…"), the vdso (AT_SYSINFO_EHDR), the
 * module holding `self` (heapprof: its calls to the next allocator must not
 * come back to it), and a slot whose symbol the module defines itself
 * (st_shndx != SHN_UNDEF): jemalloc's operator delete jumps to its own
 * free@plt, its aligned operator new to aligned_alloc@plt, so patching those
 * would send one program call through heapprof twice. The C library (soname
 * libc.so.6) is the exception: it defines malloc and free and still reaches
 * them through GLOB_DAT slots for strdup, fopen, getaddrinfo… — the
 * program's allocations, which must be seen. (Its allocator entries call
 * their siblings through internal names, except reallocarray, which
 * tail-calls realloc@plt.) A slot is patched only if it holds the hook's
 * `original` (the program's binding) or, for a JUMP_SLOT not yet bound
 * (lazy binding), its own PLT stub: code in the module's executable segment
 * that pushes this relocation's index (`push $i`, after an endbr64 in an IBT
 * PLT). A lazy slot whose reference carries a symbol version is patched only
 * if the module defining `original` defines the name in that version (or
 * without versions), as glibc's lookup would. Any other value (another
 * tool's hook, DEEPBIND, a table entry the program rewrote) is left and
 * counted.
 *
 * Modules being relocated. dlopen puts a module on the list before ld.so
 * relocates it, so a walk can meet one half done on another thread. Its
 * slots may still hold unrelocated values (0, or a PLT stub without the
 * load bias); and a RELRO page, which ld.so keeps writing until it makes
 * it read-only last of all, must not be made read-only under it (ld.so
 * would crash: test_got_stress). So a module with a matching slot still
 * unrelocated, or in a RELRO page that is still writable, is left alone
 * (not counted, not remembered) and looked at again by the next call. A
 * page's protection is read without a descriptor (/proc/self/maps would
 * take one on a program thread) and without a fault: page_writable.
 *
 * How. Each call walks the modules twice. The first walk (the loader's
 * lock held, so nothing may allocate but from the arena, and this code
 * allocates nothing inside it at all: a full table stops the walk, grows
 * outside it, and the walk starts again) records the list of modules and
 * collects candidate slots of modules not seen before. The second walk
 * checks, module by module, that the list is the same, and at its last
 * module — the loader's lock still held, so no module can be unmapped
 * meanwhile (glibc's dlclose unmaps and unlinks under that lock) — patches
 * the candidates, hook by hook in the order given, each slot by an 8-byte
 * compare-and-swap from the value seen (a lazy slot bound meanwhile is
 * retried from `original`). A RELRO slot's page, read-only, is made
 * writable for the swap and PROT_READ again, which is what ld.so set. A
 * call that finds the loader's load and unload counts (dlpi_adds,
 * dlpi_subs) where the last call left them, with no module left for later,
 * walks nothing. errno is kept.
 *
 * What is remembered (arena_map memory, given back never, reused after a
 * restore): every module examined, by load bias, program headers and a hash
 * of its name, so a later call (the dlopen hook's, after each dlopen)
 * patches only new modules; and every patched slot (module, slot,
 * original, replacement, hook index) for got_restore. When the unload
 * count has moved since the last call, records of modules gone are
 * dropped, and a module at the same place under the same name none of
 * whose recorded slots holds its replacement any more was unloaded and
 * loaded again: it is patched afresh. got_restore swaps only slots of
 * modules still loaded, under the same rules for RELRO pages.
 *
 * Known gaps. A module whose RELRO the program made writable again itself
 * looks like one being relocated and is never patched. In a module without
 * RELRO pages that is being relocated, ld.so may store its binding over a
 * hook already swapped in; so may ld.so's lazy resolver on another thread
 * already inside the PLT stub of a slot being patched. These lose counting
 * only (attach-mode blocks are the allocator's own).
 *
 * The lock. got_lock serializes got_patch and got_restore and protects
 * everything below. It is taken with no other heapprof lock held and held
 * across both walks, so inside it the loader's dl_load_write_lock is taken
 * (by dl_iterate_phdr) and nothing else of heapprof's (arena_map takes no
 * lock). In ARCHITECTURE.md's order it comes first, before peak_lock; held
 * for a whole walk, it is not one of the few-instruction locks (measured
 * here: 25 µs for a process of 4 modules, 1.5 ms after dlopen'ing ten large
 * libraries such as libpython and libcrypto; a call that finds nothing
 * new, under 1 µs). Fork: got_fork_prepare (for the atfork handlers)
 * takes it, so that no walk — and no loader lock taken by one — is in
 * progress when the process forks.
 */
#define _GNU_SOURCE
#include "got.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"

typedef ElfW(Phdr) phdr_t;
typedef ElfW(Dyn) dyn_t;
typedef ElfW(Sym) sym_t;
typedef ElfW(Rela) rela_t;
typedef ElfW(Verdef) verdef_t;
typedef ElfW(Verdaux) verdaux_t;
typedef ElfW(Verneed) verneed_t;
typedef ElfW(Vernaux) vernaux_t;

/* Walks tried before got_patch/got_restore give up with EAGAIN: each retry
 * means a dlopen or dlclose finished between two walks. */
#define MAX_ATTEMPTS 8

/* Rows a table starts with. Test-only override: test_got_tiny builds got.c
 * with 1, so that its tables are outgrown (and copied) again and again. */
#ifndef GOT_FIRST_ROWS
#define GOT_FIRST_ROWS 64
#endif

/* ---- growable tables in arena_map memory ---- */

typedef struct vec {
  void *p;
  size_t n, cap; /* in elements */
} vec_t;

/* Makes room for `more` elements of `elem` bytes; 0, or -1 (the arena
 * refused). Never called inside a dl_iterate_phdr callback. */
static int vec_reserve(vec_t *v, size_t elem, size_t more) {
  if (v->n + more <= v->cap)
    return 0;
  size_t cap = v->cap ? v->cap : GOT_FIRST_ROWS;
  while (cap < v->n + more)
    cap *= 2;
  void *p = arena_map(cap * elem);
  if (p == NULL)
    return -1;
  if (v->n)
    memcpy(p, v->p, v->n * elem);
  arena_unmap(v->p, v->cap * elem);
  v->p = p;
  v->cap = cap;
  return 0;
}

/* ---- a module's identity and dynamic section ---- */

typedef struct ident {
  uintptr_t base;
  const void *phdr;
  uint64_t name_hash;
} ident_t;

static uint64_t hash_name(const char *s) {
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
  for (; s != NULL && *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3u;
  return h;
}

static ident_t ident_of(const struct dl_phdr_info *info) {
  return (ident_t){info->dlpi_addr, info->dlpi_phdr, hash_name(info->dlpi_name)};
}

static int ident_eq(const ident_t *a, const ident_t *b) {
  return a->base == b->base && a->phdr == b->phdr && a->name_hash == b->name_hash;
}

/* What got.c reads of a module's PT_DYNAMIC; pointers are absolute. */
typedef struct dyninfo {
  const rela_t *rela, *jmprel;
  size_t nrela, njmprel;
  const sym_t *symtab;
  const char *strtab;
  size_t strsz;
  const ElfW(Half) *versym;
  const verdef_t *verdef;
  const verneed_t *verneed;
  size_t nverdef, nverneed;
  const uint32_t *gnu_hash, *sysv_hash;
  const char *soname;
  uintptr_t relro_start, relro_end; /* the pages ld.so made read-only */
} dyninfo_t;

/* Whether [p, p + len) lies inside one of the module's PT_LOAD segments
 * (with PF_X among `flags`' bits, if given). */
static int in_module(const struct dl_phdr_info *m, uintptr_t p, size_t len,
                     unsigned flags) {
  for (size_t i = 0; i < m->dlpi_phnum; i++) {
    const phdr_t *ph = &m->dlpi_phdr[i];
    uintptr_t lo = m->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && (ph->p_flags & flags) == flags && p >= lo &&
        p - lo <= ph->p_memsz && len <= ph->p_memsz - (p - lo))
      return 1;
  }
  return 0;
}

/* A d_ptr: ld.so adds the load bias in place to the tags it uses, except
 * in a read-only dynamic section (the vdso's). */
static uintptr_t dyn_ptr(const struct dl_phdr_info *m, uintptr_t v) {
  return v < m->dlpi_addr ? v + m->dlpi_addr : v;
}

static const char *str_at(const dyninfo_t *d, size_t off) {
  return d->strtab != NULL && off < d->strsz ? d->strtab + off : NULL;
}

/* Fills *d from the module's PT_DYNAMIC and PT_GNU_RELRO; 0, or -1 if it
 * has no dynamic section (or one this code does not trust). */
static int read_dynamic(const struct dl_phdr_info *m, dyninfo_t *d) {
  memset(d, 0, sizeof *d);
  const dyn_t *dyn = NULL;
  size_t ndyn = 0;
  for (size_t i = 0; i < m->dlpi_phnum; i++) {
    const phdr_t *ph = &m->dlpi_phdr[i];
    if (ph->p_type == PT_DYNAMIC) {
      dyn = (const dyn_t *)(m->dlpi_addr + ph->p_vaddr);
      ndyn = ph->p_memsz / sizeof *dyn;
    } else if (ph->p_type == PT_GNU_RELRO) {
      uintptr_t a = m->dlpi_addr + ph->p_vaddr, page = getauxval(AT_PAGESZ);
      d->relro_start = a & ~(page - 1);
      d->relro_end = (a + ph->p_memsz) & ~(page - 1);
    }
  }
  if (dyn == NULL || !in_module(m, (uintptr_t)dyn, ndyn * sizeof *dyn, 0))
    return -1;
  size_t relasz = 0, pltrelsz = 0, soname = SIZE_MAX;
  int pltrel = DT_RELA;
  for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
    uintptr_t v = dyn[i].d_un.d_val;
    switch (dyn[i].d_tag) {
    case DT_RELA: d->rela = (const rela_t *)dyn_ptr(m, v); break;
    case DT_RELASZ: relasz = v; break;
    case DT_JMPREL: d->jmprel = (const rela_t *)dyn_ptr(m, v); break;
    case DT_PLTRELSZ: pltrelsz = v; break;
    case DT_PLTREL: pltrel = (int)v; break;
    case DT_SYMTAB: d->symtab = (const sym_t *)dyn_ptr(m, v); break;
    case DT_STRTAB: d->strtab = (const char *)dyn_ptr(m, v); break;
    case DT_STRSZ: d->strsz = v; break;
    case DT_VERSYM: d->versym = (const ElfW(Half) *)dyn_ptr(m, v); break;
    case DT_VERDEF: d->verdef = (const verdef_t *)dyn_ptr(m, v); break;
    case DT_VERDEFNUM: d->nverdef = v; break;
    case DT_VERNEED: d->verneed = (const verneed_t *)dyn_ptr(m, v); break;
    case DT_VERNEEDNUM: d->nverneed = v; break;
    case DT_GNU_HASH: d->gnu_hash = (const uint32_t *)dyn_ptr(m, v); break;
    case DT_HASH: d->sysv_hash = (const uint32_t *)dyn_ptr(m, v); break;
    case DT_SONAME: soname = v; break;
    }
  }
  if (d->strtab == NULL || !in_module(m, (uintptr_t)d->strtab, d->strsz, 0))
    d->strtab = NULL, d->strsz = 0;
  d->soname = soname == SIZE_MAX ? NULL : str_at(d, soname);
  if (d->rela != NULL && in_module(m, (uintptr_t)d->rela, relasz, 0))
    d->nrela = relasz / sizeof(rela_t);
  /* x86-64 uses RELA only; a DT_REL PLT is not something to guess at. */
  if (d->jmprel != NULL && pltrel == DT_RELA &&
      in_module(m, (uintptr_t)d->jmprel, pltrelsz, 0))
    d->njmprel = pltrelsz / sizeof(rela_t);
  return 0;
}

/* The symbol at index `i`, or NULL if it is not inside the module. */
static const sym_t *sym_at(const struct dl_phdr_info *m, const dyninfo_t *d,
                           size_t i) {
  if (d->symtab == NULL || i == 0)
    return NULL;
  const sym_t *s = d->symtab + i;
  return in_module(m, (uintptr_t)s, sizeof *s, 0) ? s : NULL;
}

/* The name of version index `ndx` among the module's DT_VERNEED entries
 * (the versions its references ask for). */
static const char *needed_version(const struct dl_phdr_info *m,
                                  const dyninfo_t *d, unsigned ndx) {
  const char *vn = (const char *)d->verneed;
  for (size_t k = 0; vn != NULL && k < d->nverneed; k++) {
    const verneed_t *n = (const verneed_t *)vn;
    if (!in_module(m, (uintptr_t)n, sizeof *n, 0))
      return NULL;
    const char *va = vn + n->vn_aux;
    for (size_t j = 0; j < n->vn_cnt; j++) {
      const vernaux_t *a = (const vernaux_t *)va;
      if (!in_module(m, (uintptr_t)a, sizeof *a, 0))
        return NULL;
      if (a->vna_other == ndx)
        return str_at(d, a->vna_name);
      va += a->vna_next;
    }
    vn += n->vn_next;
  }
  return NULL;
}

/* The name of version index `ndx` among its DT_VERDEF entries (the
 * versions it defines symbols in). */
static const char *defined_version(const struct dl_phdr_info *m,
                                   const dyninfo_t *d, unsigned ndx) {
  const char *vd = (const char *)d->verdef;
  for (size_t k = 0; vd != NULL && k < d->nverdef; k++) {
    const verdef_t *v = (const verdef_t *)vd;
    if (!in_module(m, (uintptr_t)v, sizeof *v, 0))
      return NULL;
    if (v->vd_ndx == ndx) {
      const verdaux_t *a = (const verdaux_t *)(vd + v->vd_aux);
      return in_module(m, (uintptr_t)a, sizeof *a, 0) ? str_at(d, a->vda_name)
                                                       : NULL;
    }
    vd += v->vd_next;
  }
  return NULL;
}

/* The version name of symbol `i` (`s`): asked for by a reference, or given
 * to a definition; NULL if unversioned (index 0 or 1). */
static const char *version_of(const struct dl_phdr_info *m, const dyninfo_t *d,
                              size_t i, const sym_t *s) {
  if (d->versym == NULL ||
      !in_module(m, (uintptr_t)(d->versym + i), sizeof *d->versym, 0))
    return NULL;
  unsigned ndx = d->versym[i] & 0x7fff;
  if (ndx <= 1)
    return NULL;
  return s->st_shndx == SHN_UNDEF ? needed_version(m, d, ndx)
                                  : defined_version(m, d, ndx);
}

/* Whether symbol `i` is a definition of `name` that a reference of
 * version `ver` binds to, as glibc's check_match decides: one in version
 * `ver`, or one without a version (index 0 or 1) not hidden. */
static int def_matches(const struct dl_phdr_info *m, const dyninfo_t *d,
                       size_t i, const char *name, const char *ver) {
  const sym_t *s = sym_at(m, d, i);
  const char *sn = s ? str_at(d, s->st_name) : NULL;
  if (sn == NULL || s->st_shndx == SHN_UNDEF || strcmp(sn, name) != 0 ||
      !in_module(m, (uintptr_t)(d->versym + i), sizeof *d->versym, 0))
    return 0;
  const char *v = version_of(m, d, i, s);
  return v != NULL ? strcmp(v, ver) == 0 : !(d->versym[i] & 0x8000);
}

/* def_matches over the definitions of `name` found by DT_GNU_HASH. */
static int gnu_defines(const struct dl_phdr_info *m, const dyninfo_t *d,
                       const char *name, const char *ver) {
  const uint32_t *g = d->gnu_hash;
  if (!in_module(m, (uintptr_t)g, 4 * sizeof *g, 0))
    return 0;
  uint32_t nb = g[0], off = g[1], nbloom = g[2], h = 5381;
  const uint32_t *buckets = g + 4 + (size_t)nbloom * (sizeof(uintptr_t) / 4);
  const uint32_t *chain = buckets + nb;
  if (nb == 0 || !in_module(m, (uintptr_t)buckets, (size_t)nb * 4, 0))
    return 0;
  for (const char *c = name; *c; c++)
    h = h * 33 + (unsigned char)*c;
  for (uint32_t i = buckets[h % nb]; i != 0 && i >= off; i++) {
    const uint32_t *c = chain + (i - off);
    if (!in_module(m, (uintptr_t)c, sizeof *c, 0))
      return 0;
    if ((*c | 1) == (h | 1) && def_matches(m, d, i, name, ver))
      return 1;
    if (*c & 1) /* the chain's last */
      return 0;
  }
  return 0;
}

/* def_matches over the definitions of `name` found by DT_HASH. */
static int sysv_defines(const struct dl_phdr_info *m, const dyninfo_t *d,
                        const char *name, const char *ver) {
  const uint32_t *t = d->sysv_hash;
  if (!in_module(m, (uintptr_t)t, 2 * sizeof *t, 0))
    return 0;
  uint32_t nb = t[0], nchain = t[1], h = 0;
  if (nb == 0 ||
      !in_module(m, (uintptr_t)t, (2 + (size_t)nb + nchain) * sizeof *t, 0))
    return 0;
  for (const char *c = name; *c; c++) {
    h = (h << 4) + (unsigned char)*c;
    uint32_t g = h & 0xf0000000u;
    h = (h ^ (g >> 24)) & ~g;
  }
  for (uint32_t i = t[2 + h % nb], k = 0; i != 0 && i < nchain && k < nchain;
       i = t[2 + nb + i], k++)
    if (def_matches(m, d, i, name, ver))
      return 1;
  return 0;
}

/* Whether the module defines `name` so that a reference of version `ver`
 * binds to it; a module without versions takes any. */
static int defines_version(const struct dl_phdr_info *m, const dyninfo_t *d,
                           const char *name, const char *ver) {
  if (d->versym == NULL)
    return 1;
  if (d->gnu_hash != NULL)
    return gnu_defines(m, d, name, ver);
  return d->sysv_hash != NULL && sysv_defines(m, d, name, ver);
}

/* Whether `v` is the lazy-binding PLT stub of relocation `index` of the
 * module's DT_JMPREL: `push $index` (68 imm32), after an endbr64 (f3 0f 1e
 * fa) in an IBT PLT, inside an executable segment of the module. */
static int lazy_stub(const struct dl_phdr_info *m, uintptr_t v, size_t index) {
  if (!in_module(m, v, 9, PF_X))
    return 0;
  const unsigned char *c = (const unsigned char *)v;
  if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa)
    c += 4;
  uint32_t imm;
  memcpy(&imm, c + 1, sizeof imm);
  return c[0] == 0x68 && imm == index;
}

/* Whether the page holding `p` (4-aligned) is writable now: 1 yes, 0 no,
 * -1 unknown. No descriptor (/proc/self/maps) and no fault: FUTEX_WAKE_OP
 * ORs 0 into the word at `p` atomically (a concurrent store is neither
 * torn nor lost) and wakes nobody, and fails with EFAULT where the mapping
 * is not writable. */
static int page_writable(const void *p) {
  int unused = 0;
  long rc = syscall(SYS_futex, &unused, FUTEX_WAKE_OP_PRIVATE, 0, (void *)0, p,
                    FUTEX_OP(FUTEX_OP_OR, 0, FUTEX_OP_CMP_EQ, 0));
  return rc >= 0 ? 1 : errno == EFAULT ? 0 : -1;
}

/* ---- the state got_lock protects ---- */

/* A module of this walk, in the loader's order. */
typedef struct seen {
  ident_t id;
  dyninfo_t dyn;
  struct dl_phdr_info info; /* valid while the walks' list is unchanged */
  int has_dyn;
} seen_t;

/* A slot found by the first walk. */
typedef struct cand {
  void **slot;
  void *expected;  /* original, or the lazy stub seen */
  const char *ver; /* a lazy reference's version, or NULL */
  uint32_t hook;
  uint32_t pend;   /* its module in `pend` */
  uint8_t lazy, relro;
} cand_t;

/* A module examined by this call: new, or loaded again at the same place. */
typedef struct pending {
  ident_t id;
  int reloaded;
} pending_t;

/* A module examined by an earlier call. */
typedef struct mod {
  ident_t id;
  uint64_t seen_gen; /* the walk that last saw it */
} mod_t;

/* A patched slot. */
typedef struct rec {
  ident_t mod;
  void **slot;
  void *original, *replacement;
  uint32_t hook;
  uint8_t relro;
} rec_t;

static pthread_mutex_t got_lock = PTHREAD_MUTEX_INITIALIZER;
static vec_t seq;   /* seen_t: this walk's modules */
static vec_t cands; /* cand_t */
static vec_t pend;  /* pending_t */
static vec_t mods;  /* mod_t */
static vec_t recs;  /* rec_t, in patching order */
static vec_t prov;  /* int32_t per hook: its `original`'s module in seq, or -1 */
static uint64_t gen;          /* walks made */
static unsigned long long last_adds, last_subs; /* the loader's, at the last call */
static int walked;   /* mods, last_adds and last_subs describe an earlier call */
static int deferred; /* the last call left a module being relocated */

#define SEQ ((seen_t *)seq.p)
#define CANDS ((cand_t *)cands.p)
#define PEND ((pending_t *)pend.p)
#define MODS ((mod_t *)mods.p)
#define RECS ((rec_t *)recs.p)
#define PROV ((int32_t *)prov.p)

/* One call's walks. */
typedef struct walk {
  const got_hook_t *hooks;
  size_t n;
  uintptr_t self;
  int full;              /* a table was full: grow it and walk again */
  int changed;           /* the list differed in the second walk */
  int done;              /* the second walk reached its end */
  int subs_moved;
  int deferred;          /* a module was left: ld.so is relocating it */
  unsigned long long adds, subs;
  size_t k;              /* the second walk's position */
  size_t skipped, patched;
} walk_t;

static int is_ldso(const struct dl_phdr_info *m, const dyninfo_t *d) {
  unsigned long at_base = getauxval(AT_BASE);
  if (at_base != 0 && m->dlpi_addr == at_base)
    return 1;
  return d->soname != NULL && strncmp(d->soname, "ld-linux-", 9) == 0;
}

/* Whether the walk leaves this module alone altogether. */
static int module_skipped(const struct dl_phdr_info *m, const seen_t *s,
                          uintptr_t self) {
  uintptr_t vdso = getauxval(AT_SYSINFO_EHDR);
  return !s->has_dyn || (vdso != 0 && in_module(m, vdso, 1, 0)) ||
         is_ldso(m, &s->dyn) || (self != 0 && in_module(m, self, 1, 0));
}

static mod_t *find_mod(const ident_t *id) {
  for (size_t i = 0; i < mods.n; i++)
    if (ident_eq(&MODS[i].id, id))
      return &MODS[i];
  return NULL;
}

/* A module seen by an earlier call is the same load unless it has records
 * and none of them holds its replacement any more (the loader gave it a
 * fresh GOT). Reads the slots: the module is mapped (we are in a walk). */
static int was_reloaded(const ident_t *id) {
  int any = 0;
  for (size_t i = 0; i < recs.n; i++) {
    if (!ident_eq(&RECS[i].mod, id))
      continue;
    any = 1;
    if (__atomic_load_n(RECS[i].slot, __ATOMIC_ACQUIRE) == RECS[i].replacement)
      return 0;
  }
  return any;
}

/* The hook of that name; one without an original (a name the program
 * does not define, such as operator new in a C program) has no slot to
 * patch: a slot holding NULL is a weak reference left unresolved. */
static int hook_index(const walk_t *w, const char *name) {
  for (size_t h = 0; h < w->n; h++) {
    const char *hn = w->hooks[h].name;
    if (hn[0] == name[0] && strcmp(hn, name) == 0)
      return w->hooks[h].original != NULL ? (int)h : -1;
  }
  return -1;
}

/* What the first walk makes of one slot. */
enum verdict { LEAVE, TAKE, TAKE_LAZY, UNREADY };

/* Judges relocation `i` of a table of the module (`in_jmprel`: DT_JMPREL,
 * where a JUMP_SLOT's index is what its PLT stub pushes); for TAKE and
 * TAKE_LAZY, *hook and *seen are the hook and the value judged. */
static enum verdict judge(const walk_t *w, const struct dl_phdr_info *m,
                          const dyninfo_t *d, const rela_t *r, size_t i,
                          int in_jmprel, int *hook, void **seen,
                          size_t *skipped) {
  unsigned type = ELF64_R_TYPE(r->r_info);
  if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT &&
      !(type == R_X86_64_64 && r->r_addend == 0))
    return LEAVE;
  const sym_t *s = sym_at(m, d, ELF64_R_SYM(r->r_info));
  const char *name = s ? str_at(d, s->st_name) : NULL;
  int is_libc = d->soname != NULL && strcmp(d->soname, "libc.so.6") == 0;
  if (name == NULL || (*hook = hook_index(w, name)) < 0 ||
      (s->st_shndx != SHN_UNDEF && !is_libc))
    return LEAVE;
  uintptr_t slot = m->dlpi_addr + r->r_offset;
  if (slot % 8 != 0 || !in_module(m, slot, 8, PF_W)) { /* a TEXTREL */
    ++*skipped;
    return LEAVE;
  }
  const got_hook_t *hk = &w->hooks[*hook];
  void *v = *seen = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);
  int jump = type == R_X86_64_JUMP_SLOT && in_jmprel;
  enum verdict verdict =
      v == hk->original || (hk->alias != NULL && v == hk->alias) ? TAKE
                                                                 : TAKE_LAZY;
  if (v == hk->replacement)
    return LEAVE; /* a duplicate relocation, or patched already */
  if (verdict == TAKE_LAZY && !(jump && lazy_stub(m, (uintptr_t)v, i))) {
    if (v == NULL || (jump && (uintptr_t)v < m->dlpi_addr &&
                      lazy_stub(m, (uintptr_t)v + m->dlpi_addr, i)))
      return UNREADY; /* not relocated yet */
    ++*skipped;
    return LEAVE;
  }
  if (slot >= d->relro_start && slot < d->relro_end &&
      page_writable((void *)slot) != 0)
    return UNREADY; /* not protected yet: ld.so is still relocating it */
  return verdict;
}

/* Looks at one relocation table of a module; adds candidates. Returns -1
 * if the module is still being relocated (see the top comment), else 0. */
static int scan(walk_t *w, const struct dl_phdr_info *m, const dyninfo_t *d,
                const rela_t *t, size_t nt, int in_jmprel, size_t *skipped) {
  for (size_t i = 0; i < nt && !w->full; i++) {
    int h;
    void *seen;
    enum verdict v = judge(w, m, d, &t[i], i, in_jmprel, &h, &seen, skipped);
    if (v == UNREADY)
      return -1;
    if (v == LEAVE)
      continue;
    if (cands.n == cands.cap) {
      w->full = 1;
      break;
    }
    uintptr_t slot = m->dlpi_addr + t[i].r_offset;
    size_t si = ELF64_R_SYM(t[i].r_info);
    CANDS[cands.n++] = (cand_t){
        .slot = (void **)slot,
        .expected = seen,
        .hook = (uint32_t)h,
        .ver = v == TAKE_LAZY ? version_of(m, d, si, sym_at(m, d, si)) : NULL,
        .pend = (uint32_t)pend.n,
        .lazy = v == TAKE_LAZY,
        .relro = slot >= d->relro_start && slot < d->relro_end};
  }
  return 0;
}

/* The first walk's callback: records the module, and collects the
 * candidates of a module no earlier call examined. */
static int collect(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  walk_t *w = arg;
  if (seq.n == 0)
    w->adds = info->dlpi_adds, w->subs = info->dlpi_subs,
    w->subs_moved = walked && w->subs != last_subs;
  if (seq.n == seq.cap || pend.n == pend.cap) {
    w->full = 1;
    return 1;
  }
  seen_t *s = &SEQ[seq.n++];
  s->id = ident_of(info);
  s->info = *info;
  s->has_dyn = read_dynamic(info, &s->dyn) == 0;
  for (size_t h = 0; h < w->n; h++) { /* who defines it: behind a stub, the alias */
    const got_hook_t *hk = &w->hooks[h];
    void *def = hk->alias != NULL ? hk->alias : hk->original;
    if (PROV[h] < 0 && in_module(info, (uintptr_t)def, 1, 0))
      PROV[h] = (int32_t)(seq.n - 1);
  }
  if (module_skipped(info, s, w->self))
    return 0;
  mod_t *old = find_mod(&s->id);
  int reloaded = 0;
  if (old != NULL) {
    old->seen_gen = gen;
    if (!w->subs_moved || !(reloaded = was_reloaded(&s->id)))
      return 0;
  }
  size_t mark = cands.n, skipped = 0;
  if (scan(w, info, &s->dyn, s->dyn.rela, s->dyn.nrela, 0, &skipped) < 0 ||
      scan(w, info, &s->dyn, s->dyn.jmprel, s->dyn.njmprel, 1, &skipped) < 0) {
    cands.n = mark; /* still being relocated: the next call looks again */
    w->deferred = 1;
    if (old != NULL)
      old->seen_gen = 0;
    return w->full;
  }
  if (w->full)
    return 1;
  w->skipped += skipped;
  PEND[pend.n++] = (pending_t){s->id, reloaded};
  return 0;
}

/* Stores `to` in a slot that held `from`: 1 if stored, 0 if not (*now is
 * what the slot holds). relro: the slot is in a PT_GNU_RELRO page; it is
 * written only if ld.so has made that page read-only (it writes no RELRO
 * page after that, so it is safe to make it writable for the swap and
 * read-only again), never while the page is still writable: the module is
 * then being relocated (a reload since the first walk), and a page made
 * read-only under ld.so would crash it. */
static int swap_slot(void **slot, void *from, void *to, int relro,
                     void **now) {
  size_t pagesz = getauxval(AT_PAGESZ);
  void *page = (void *)((uintptr_t)slot & ~(pagesz - 1));
  *now = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (*now != from)
    return 0;
  if (relro && (page_writable(slot) != 0 ||
                mprotect(page, pagesz, PROT_READ | PROT_WRITE) != 0)) {
    *now = NULL;
    return 0;
  }
  int ok = __atomic_compare_exchange_n(slot, &from, to, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
  *now = from;
  if (relro)
    mprotect(page, pagesz, PROT_READ);
  return ok;
}

static int in_seq(const ident_t *id) {
  for (size_t i = 0; i < seq.n; i++)
    if (ident_eq(&SEQ[i].id, id))
      return 1;
  return 0;
}

static int pending_reloaded(const ident_t *id) {
  for (size_t i = 0; i < pend.n; i++)
    if (PEND[i].reloaded && ident_eq(&PEND[i].id, id))
      return 1;
  return 0;
}

/* Drops the modules no longer loaded, with their records, and the old
 * records of modules loaded again. Order is kept. */
static void forget_gone(void) {
  size_t j = 0;
  for (size_t i = 0; i < recs.n; i++)
    if (in_seq(&RECS[i].mod) && !pending_reloaded(&RECS[i].mod))
      RECS[j++] = RECS[i];
  recs.n = j;
  j = 0;
  for (size_t i = 0; i < mods.n; i++)
    if (MODS[i].seen_gen == gen)
      MODS[j++] = MODS[i];
  mods.n = j;
}

static int version_ok(const walk_t *w, const cand_t *c) {
  if (c->ver == NULL)
    return 1;
  int32_t p = PROV[c->hook];
  if (p < 0 || !SEQ[p].has_dyn)
    return 0;
  return defines_version(&SEQ[p].info, &SEQ[p].dyn, w->hooks[c->hook].name,
                         c->ver);
}

/* Patches every candidate, hook by hook; records each patched slot. Runs
 * inside the second walk, the list checked equal to the first's. */
static void apply(walk_t *w) {
  if (w->subs_moved)
    forget_gone();
  for (size_t h = 0; h < w->n; h++) {
    const got_hook_t *hk = &w->hooks[h];
    for (size_t i = 0; i < cands.n; i++) {
      const cand_t *c = &CANDS[i];
      if (c->hook != h)
        continue;
      if (!version_ok(w, c)) {
        w->skipped++;
        continue;
      }
      void *now;
      int ok = swap_slot(c->slot, c->expected, hk->replacement, c->relro, &now);
      if (!ok && c->lazy && now == hk->original) /* bound meanwhile */
        ok = swap_slot(c->slot, hk->original, hk->replacement, c->relro, &now);
      if (!ok) {
        if (now != hk->replacement) /* a duplicate relocation is no skip */
          w->skipped++;
        continue;
      }
      /* What the slot held is what it gets back (an alias stays one);
       * a lazy slot gets the binding its stub would have made. */
      void *was = c->lazy ? hk->original : c->expected;
      RECS[recs.n++] = (rec_t){PEND[c->pend].id, c->slot, was,
                               hk->replacement, (uint32_t)h, c->relro};
      w->patched++;
    }
  }
  for (size_t i = 0; i < pend.n; i++)
    if (!PEND[i].reloaded)
      MODS[mods.n++] = (mod_t){PEND[i].id, gen};
  last_adds = w->adds, last_subs = w->subs;
  deferred = w->deferred;
  walked = 1;
}

/* The second walk's callback: checks the list is the first walk's; at its
 * last module runs `w`'s work (apply or restore). */
static void restore_all(void);
static int verify(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  walk_t *w = arg;
  size_t k = w->k++;
  ident_t id = ident_of(info);
  if (k >= seq.n || !ident_eq(&SEQ[k].id, &id)) {
    w->changed = 1;
    return 1;
  }
  if (k + 1 < seq.n)
    return 0;
  if (w->hooks != NULL)
    apply(w);
  else
    restore_all();
  w->done = 1;
  return 1;
}

/* Empties the walk's tables and makes them hold at least `nseq` modules
 * and `ncands` candidates (the arena may refuse: -1). */
static int reset_tables(size_t nseq, size_t ncands, size_t nhooks) {
  seq.n = cands.n = pend.n = prov.n = 0;
  return vec_reserve(&seq, sizeof(seen_t), nseq) != 0 ||
                 vec_reserve(&pend, sizeof(pending_t), seq.cap) != 0 ||
                 vec_reserve(&cands, sizeof(cand_t), ncands) != 0 ||
                 vec_reserve(&prov, sizeof(int32_t), nhooks) != 0
             ? -1
             : 0;
}

/* The loader's load and unload counts (one callback, stopped at once). */
static int counts(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  unsigned long long *c = arg;
  c[0] = info->dlpi_adds, c[1] = info->dlpi_subs;
  return 1;
}

static int patch_locked(const got_hook_t *hooks, size_t n, const void *self,
                        size_t *skipped) {
  /* Nothing loaded or unloaded since the last call, which left nothing
   * for later: nothing to walk (the dlopen hook and every dump ask). */
  unsigned long long c[2] = {0, 0};
  dl_iterate_phdr(counts, c);
  if (walked && !deferred && c[0] == last_adds && c[1] == last_subs)
    return 0;
  walk_t w = {.hooks = hooks, .n = n, .self = (uintptr_t)self};
  size_t nseq = GOT_FIRST_ROWS, ncands = GOT_FIRST_ROWS;
  for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (reset_tables(nseq, ncands, n) != 0) {
      errno = ENOMEM;
      return -1;
    }
    for (size_t h = 0; h < n; h++)
      PROV[h] = -1;
    w.full = w.changed = w.done = w.deferred = 0;
    w.skipped = w.patched = w.k = 0;
    gen++;
    dl_iterate_phdr(collect, &w);
    if (w.full) { /* not the list changing: walk again with more room */
      nseq = seq.cap * 2, ncands = cands.cap * 2;
      attempt--;
      continue;
    }
    if (vec_reserve(&recs, sizeof(rec_t), cands.n) != 0 ||
        vec_reserve(&mods, sizeof(mod_t), pend.n) != 0) {
      errno = ENOMEM;
      return -1;
    }
    dl_iterate_phdr(verify, &w);
    if (w.done) {
      if (skipped != NULL)
        *skipped = w.skipped;
      return (int)w.patched;
    }
  }
  errno = EAGAIN;
  return -1;
}

int got_patch(const got_hook_t *hooks, size_t n, const void *self,
              size_t *skipped) {
  int saved = errno;
  if (skipped != NULL)
    *skipped = 0;
  if ((hooks == NULL && n > 0) || n > INT32_MAX) {
    errno = EINVAL;
    return -1;
  }
  for (size_t h = 0; h < n; h++)
    if (hooks[h].name == NULL || hooks[h].name[0] == '\0' ||
        hooks[h].replacement == NULL) {
      errno = EINVAL;
      return -1;
    }
  if (n == 0)
    return 0;
  pthread_mutex_lock(&got_lock);
  int rc = patch_locked(hooks, n, self, skipped);
  pthread_mutex_unlock(&got_lock);
  if (rc >= 0)
    errno = saved;
  return rc;
}

/* ---- restore ---- */

/* got_restore's first walk: the list of modules alone. */
static int list_modules(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  walk_t *w = arg;
  if (seq.n == seq.cap) {
    w->full = 1;
    return 1;
  }
  SEQ[seq.n++].id = ident_of(info);
  return 0;
}

/* Puts every record of a loaded module back, highest hook index first,
 * later records first. Runs inside the second walk. */
static void restore_all(void) {
  uint32_t top = 0;
  for (size_t i = 0; i < recs.n; i++)
    if (RECS[i].hook > top)
      top = RECS[i].hook;
  for (uint32_t h = top + 1; h-- > 0;)
    for (size_t i = recs.n; i-- > 0;) {
      const rec_t *r = &RECS[i];
      void *now;
      if (r->hook == h && in_seq(&r->mod))
        swap_slot(r->slot, r->replacement, r->original, r->relro, &now);
    }
  recs.n = mods.n = 0;
  walked = 0;
}

static int restore_locked(void) {
  walk_t w = {0};
  size_t nseq = GOT_FIRST_ROWS;
  for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (reset_tables(nseq, 0, 0) != 0) {
      errno = ENOMEM;
      return -1;
    }
    w.full = w.changed = w.done = 0;
    w.k = 0;
    dl_iterate_phdr(list_modules, &w);
    if (w.full) {
      nseq = seq.cap * 2;
      attempt--;
      continue;
    }
    dl_iterate_phdr(verify, &w);
    if (w.done)
      return 0;
  }
  errno = EAGAIN;
  return -1;
}

int got_restore(void) {
  int saved = errno;
  pthread_mutex_lock(&got_lock);
  int rc = recs.n == 0 && mods.n == 0 ? (walked = 0, 0) : restore_locked();
  pthread_mutex_unlock(&got_lock);
  if (rc == 0)
    errno = saved;
  return rc;
}

void got_fork_prepare(void) { pthread_mutex_lock(&got_lock); }
void got_fork_parent(void) { pthread_mutex_unlock(&got_lock); }
void got_fork_child(void) { pthread_mutex_init(&got_lock, NULL); }
