/*
 * symbolizer — the process's mappings and the names, files and lines of
 * its addresses, kept between dumps (see symbolizer.h).
 *
 * Invariant: every answer describes the current view, built from one
 * reading of the map: its mapping table, its modules and the address
 * cache all come from that reading, so the same address gets the same
 * answer until a refresh finds the map's code changed (or the loader's
 * load or unload counts moved) and builds a new view. Every string handed
 * out is interned in the view's strtab — one copy per distinct string, so
 * equal strings are equal pointers — and lives until the view is
 * replaced.
 *
 * Every refresh reads the map and compares its objects and executable
 * ranges with those the view was built from (view_matches): code mapped
 * or unmapped by hand, which the loader's counts do not see, is seen too.
 * Only a difference, or a move of the loader's counts, rebuilds the view.
 * A rebuild makes a complete new view first and only then replaces the
 * old one, so a failure leaves the old view whole. Modules that are the
 * same object at the same place (same path, range, file and build id,
 * module_same) carry their loaded image (ELF handles, symbol index,
 * DWARF) into the new view; every other image is dropped. The address
 * cache and the strings are rebuilt: answers are cheap once the indexes
 * exist, and mapping indexes may have moved.
 *
 * Every refresh also checks the files the kept images map (one stat per
 * file, module_image_stale) and frees the image of any file written in
 * place since it was opened, so that no page of it is read again; its
 * module loads a new image at its next lookup, from the file as it is now
 * (used only if its build id still matches). Answers already given stay
 * in the cache: they were read while the file was the right one.
 *
 * Nothing here reaches the network, writes to stdout or stderr, keeps a
 * descriptor past the call that opened it (elfopen.h), or uses stdio.
 */
#define _GNU_SOURCE
#include "symbolizer.h"

#include <errno.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "addrcache.h"
#include "buildid.h"
#include "demangle.h"
#include "elfopen.h"
#include "maps.h"
#include "module.h"
#include "srclines.h"
#include "strtab.h"

/* No mapping starts below the kernel's mmap_min_addr (4096 at the very
 * least), so such addresses are answered at once. */
#define LOWEST_MAPPED_ADDR 4096

/* The longest demangled name kept (on the stack while it is made): a
 * longer one is left as the linker spells it, which pprof demangles. */
#define READABLE_MAX 4096

/* One reading of the map. */
struct view {
  module_t *modules; /* sorted by low, non-overlapping */
  size_t nmodules;
  prof_mapping_t *mappings; /* sorted by start, non-overlapping */
  size_t *mapping_module;   /* mappings[i] is a range of modules[this[i]] */
  size_t nmappings;
  strtab_t strings;
};

/* Demangled names already made, by interned system name (view strings). */
typedef struct name_memo {
  const char **keys, **vals; /* open addressing; NULL key = empty */
  size_t nslots, count;
} name_memo_t;

/* What a module unloaded since answered, kept when it went away: its
 * executable ranges and the frames of the sampled addresses in it. */
typedef struct retired {
  uint64_t low, high; /* its code, as it was mapped */
  uint64_t serial;    /* stacks of buckets numbered below were recorded
                         while it was mapped */
  char *path;         /* owned, for merging (see symbolizer_retire) */
  buildid_t id;
  prof_mapping_t *mappings; /* strings in `strings` */
  size_t nmappings;
  size_t first_mapping; /* where they start in all_mappings */
  addrcache_t answers;  /* mapping fields: index into `mappings` */
  strtab_t strings;     /* of the mappings and the answers' lines */
} retired_t;

struct symbolizer {
  struct view view;
  addrcache_t cache; /* answers given from this view */
  name_memo_t names; /* readable names made in this view */
  demangle_style_t style;
  demangle_stack_t *demangle_stack; /* made for the first name demangled */
  bool demangle_stack_failed;       /* it could not be: demangle on ours */
  retired_t *retired;               /* in the order the modules went away */
  size_t nretired;
  uint64_t retired_low, retired_high; /* the range all of them span */
  prof_mapping_t *all_mappings;       /* the view's, then every retired one's;
                                         NULL when none is retired */
  size_t nall_mappings;
  bool read;         /* view holds a reading of the map */
  bool counts_known; /* adds/subs hold the loader's counts at that reading */
  uint64_t adds, subs;
  symbolizer_counts_t counts;
};

static void join_mappings(symbolizer_t *s);
static void memo_free(name_memo_t *m);

/* ---- views ------------------------------------------------------------ */

static void view_free(struct view *v) {
  for (size_t i = 0; i < v->nmodules; i++) {
    module_image_free(v->modules[i].image);
    free(v->modules[i].path);
  }
  free(v->modules);
  free(v->mappings);
  free(v->mapping_module);
  strtab_free(&v->strings);
  *v = (struct view){0};
}

/* The module whose range holds `addr`; NULL if none. */
static module_t *module_at(const struct view *v, uint64_t addr) {
  size_t lo = 0, hi = v->nmodules;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (addr < v->modules[mid].low)
      hi = mid;
    else if (addr >= v->modules[mid].high)
      lo = mid + 1;
    else
      return &v->modules[mid];
  }
  return NULL;
}

/* buildid_each_loaded callback, under the loader lock: allocates nothing. */
static void note_loaded(void *ctx, const loaded_object_t *o) {
  module_t *m = module_at(ctx, o->code_addr);
  if (m == NULL)
    return;
  m->loader_known = true;
  m->bias = o->bias;
  if (o->id.len > 0)
    m->id = o->id;
}

/* For files mapped by hand (the loader does not list them) the build id
 * is read from the file itself; not for deleted files, whose path may now
 * name something else. */
static void ids_from_files(struct view *v) {
  for (size_t i = 0; i < v->nmodules; i++) {
    module_t *m = &v->modules[i];
    if (m->id.len > 0 || m->vdso || m->deleted)
      continue;
    Elf *elf = elfopen_file(m->path, NULL);
    if (elf != NULL) {
      buildid_of_elf(elf, &m->id);
      elf_end(elf);
    }
  }
}

static char *copy_string(const char *s) {
  size_t bytes = strlen(s) + 1;
  char *copy = malloc(bytes);
  return copy ? memcpy(copy, s, bytes) : NULL;
}

/* 0 or ENOMEM. */
static int take_objects(struct view *v, const maps_view_t *mv) {
  if (mv->nobjects > 0 &&
      (v->modules = calloc(mv->nobjects, sizeof *v->modules)) == NULL)
    return ENOMEM;
  for (; v->nmodules < mv->nobjects; v->nmodules++) {
    const maps_object_t *o = &mv->objects[v->nmodules];
    module_t *m = &v->modules[v->nmodules];
    *m = (module_t){.low = o->low,
                    .high = o->high,
                    .offset = o->offset,
                    .dev = o->dev,
                    .inode = o->inode,
                    .vdso = o->vdso,
                    .deleted = o->deleted};
    if ((m->path = copy_string(o->path)) == NULL)
      return ENOMEM;
  }
  return 0;
}

/* 0 or ENOMEM. */
static int take_ranges(struct view *v, const maps_view_t *mv) {
  size_t n = mv->nranges ? mv->nranges : 1;
  v->mappings = calloc(n, sizeof *v->mappings);
  v->mapping_module = calloc(n, sizeof *v->mapping_module);
  if (v->mappings == NULL || v->mapping_module == NULL)
    return ENOMEM;
  for (; v->nmappings < mv->nranges; v->nmappings++) {
    const maps_range_t *r = &mv->ranges[v->nmappings];
    const module_t *m = &v->modules[r->object];
    char hex[BUILDID_HEX_BYTES];
    buildid_hex(&m->id, hex);
    prof_mapping_t *out = &v->mappings[v->nmappings];
    *out = (prof_mapping_t){r->start, r->limit, r->offset,
                            strtab_intern(&v->strings, m->path),
                            strtab_intern(&v->strings, hex)};
    v->mapping_module[v->nmappings] = r->object;
    if (out->path == NULL || out->build_id == NULL)
      return ENOMEM;
  }
  return 0;
}

/* Builds `v` from the reading `mv`, with each module's build id and bias.
 * 0 or ENOMEM (v then empty). */
static int view_build(struct view *v, const maps_view_t *mv) {
  *v = (struct view){0};
  int err = take_objects(v, mv);
  if (err == 0) {
    buildid_each_loaded(note_loaded, v);
    ids_from_files(v);
    err = take_ranges(v, mv);
  }
  if (err != 0)
    view_free(v);
  return err;
}

static bool same_object(const module_t *m, const maps_object_t *o) {
  return m->low == o->low && m->high == o->high && m->offset == o->offset &&
         m->dev == o->dev && m->inode == o->inode && m->vdso == o->vdso &&
         m->deleted == o->deleted && strcmp(m->path, o->path) == 0;
}

/* Whether `mv`, a new reading of the map, lists the very objects and
 * executable ranges `v` was built from: then `v` still describes the
 * process's code. */
static bool view_matches(const struct view *v, const maps_view_t *mv) {
  if (v->nmodules != mv->nobjects || v->nmappings != mv->nranges)
    return false;
  for (size_t i = 0; i < v->nmodules; i++)
    if (!same_object(&v->modules[i], &mv->objects[i]))
      return false;
  for (size_t i = 0; i < v->nmappings; i++) {
    const maps_range_t *r = &mv->ranges[i];
    const prof_mapping_t *m = &v->mappings[i];
    if (m->start != r->start || m->limit != r->limit ||
        m->offset != r->offset || v->mapping_module[i] != r->object)
      return false;
  }
  return true;
}

/* Moves the images of `old`'s modules that `now` still has into `now`;
 * returns how many. Both lists are sorted by low. */
static uint64_t carry_images(struct view *old, struct view *now) {
  uint64_t kept = 0;
  for (size_t i = 0, j = 0; i < old->nmodules && j < now->nmodules;) {
    module_t *a = &old->modules[i], *b = &now->modules[j];
    if (a->low < b->low) {
      i++;
    } else if (b->low < a->low) {
      j++;
    } else {
      if (a->image != NULL && module_same(a, b)) {
        b->image = a->image;
        a->image = NULL;
        kept++;
      }
      i++, j++;
    }
  }
  return kept;
}

/* ---- refresh ---------------------------------------------------------- */

symbolizer_t *symbolizer_new(demangle_style_t style) {
  symbolizer_t *s = calloc(1, sizeof *s);
  if (s != NULL) {
    s->style = style;
    elf_version(EV_CURRENT);
  }
  return s;
}

/* Frees every image whose files were written in place since they were
 * opened, before anything reads them again. */
static void drop_stale_images(symbolizer_t *s) {
  for (size_t i = 0; i < s->view.nmodules; i++) {
    module_t *m = &s->view.modules[i];
    if (m->image != NULL &&
        module_image_stale(m->image, &s->counts.files_checked)) {
      module_image_free(m->image);
      m->image = NULL;
      s->counts.images_dropped++;
    }
  }
}

/* Replaces the view with one built from `mv`; 0 or ENOMEM (the old view
 * then kept). */
static int rebuild(symbolizer_t *s, const maps_view_t *mv, bool known,
                   uint64_t adds, uint64_t subs) {
  struct view now;
  int err = view_build(&now, mv);
  if (err != 0)
    return err;
  s->counts.modules_kept += carry_images(&s->view, &now);
  addrcache_free(&s->cache);
  memo_free(&s->names);
  view_free(&s->view);
  s->view = now;
  join_mappings(s);
  s->read = true;
  s->counts_known = known;
  s->adds = adds;
  s->subs = subs;
  s->counts.views_built++;
  return 0;
}

int symbolizer_refresh(symbolizer_t *s) {
  int saved = errno;
  uint64_t adds, subs;
  s->counts.refreshes++;
  drop_stale_images(s); /* first: even when the map cannot be read */
  bool known = buildid_loader_counts(&adds, &subs);
  maps_view_t mv;
  int err = maps_read(&mv);
  if (err != 0) {
    errno = err;
    return -1;
  }
  s->counts.maps_reads++;
  /* Without the loader's counts (not glibc) the map alone decides. */
  bool loader_moved =
      known && (!s->counts_known || adds != s->adds || subs != s->subs);
  int rc = 0;
  if (!s->read || loader_moved || !view_matches(&s->view, &mv)) {
    err = rebuild(s, &mv, known, adds, subs);
    rc = err == 0 ? 1 : -1;
  }
  maps_view_free(&mv);
  errno = rc < 0 ? err : saved;
  return rc;
}

/* ---- lookup ----------------------------------------------------------- */

static int mapping_index(const struct view *v, uint64_t addr) {
  size_t lo = 0, hi = v->nmappings;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (addr < v->mappings[mid].start)
      hi = mid;
    else if (addr >= v->mappings[mid].limit)
      lo = mid + 1;
    else
      return (int)mid;
  }
  return -1;
}

/* A symbol name without its ELF symbol version ("__libc_start_main@@
 * GLIBC_2.34" → "__libc_start_main"): the version is linker detail that
 * only clutters a profile. */
static const char *intern_unversioned(strtab_t *t, const char *name) {
  const char *at = name ? strchr(name, '@') : NULL;
  if (at == NULL || at == name)
    return strtab_intern(t, name);
  return strtab_intern_n(t, name, (size_t)(at - name));
}

/* DWARF names files relative to the compilation directory when the
 * compiler was given a relative path; pprof and people want the absolute
 * one. A path too long to build is kept as DWARF spells it. */
static const char *intern_path(strtab_t *t, const char *comp_dir,
                               const char *file) {
  char path[PATH_MAX];
  size_t dir_len = comp_dir ? strlen(comp_dir) : 0, file_len = strlen(file);
  if (file[0] == '/' || comp_dir == NULL || comp_dir[0] != '/' ||
      dir_len + 1 + file_len >= sizeof path)
    return strtab_intern(t, file);
  memcpy(path, comp_dir, dir_len);
  path[dir_len] = '/';
  memcpy(path + dir_len + 1, file, file_len + 1);
  return strtab_intern(t, path);
}

/* ---- readable names ---------------------------------------------------- */

static const char **memo_slot(const char **keys, size_t nslots,
                              const char *key) {
  size_t i = ((uintptr_t)key * 0x9e3779b97f4a7c15u) >> 24 & (nslots - 1);
  while (keys[i] != NULL && keys[i] != key)
    i = (i + 1) & (nslots - 1);
  return &keys[i];
}

static bool memo_grow(name_memo_t *m) {
  size_t nslots = m->nslots ? 2 * m->nslots : 256;
  const char **keys = calloc(nslots, sizeof *keys);
  const char **vals = calloc(nslots, sizeof *vals);
  if (keys == NULL || vals == NULL) {
    free(keys);
    free(vals);
    return false;
  }
  for (size_t i = 0; i < m->nslots; i++)
    if (m->keys[i] != NULL) {
      const char **k = memo_slot(keys, nslots, m->keys[i]);
      *k = m->keys[i];
      vals[k - keys] = m->vals[i];
    }
  free(m->keys);
  free(m->vals);
  *m = (name_memo_t){keys, vals, nslots, m->count};
  return true;
}

static void memo_free(name_memo_t *m) {
  free(m->keys);
  free(m->vals);
  *m = (name_memo_t){0};
}

/* The readable name of `system_name`, a string of the view: itself when
 * demangle leaves it as it is (or the style is none), else its demangled
 * or tidied form, interned in the view and remembered by system_name.
 * Demangling happens on the symbolizer's own stack, mapped the first time
 * a name is made (or on ours if it cannot be). */
static const char *readable(symbolizer_t *s, const char *system_name) {
  if (system_name == NULL || s->style == DEMANGLE_NONE)
    return system_name;
  name_memo_t *memo = &s->names;
  const char **slot = NULL;
  if (4 * (memo->count + 1) <= 3 * memo->nslots || memo_grow(memo)) {
    slot = memo_slot(memo->keys, memo->nslots, system_name);
    if (*slot != NULL)
      return memo->vals[slot - memo->keys];
  }
  if (s->demangle_stack == NULL && !s->demangle_stack_failed) {
    int saved = errno;
    s->demangle_stack = demangle_stack_new();
    s->demangle_stack_failed = s->demangle_stack == NULL;
    errno = saved;
  }
  char buf[READABLE_MAX];
  size_t len =
      demangle(system_name, s->style, buf, sizeof buf, s->demangle_stack);
  const char *name =
      len > 0 ? strtab_intern_n(&s->view.strings, buf, len) : system_name;
  if (name == NULL)
    name = system_name;
  if (slot != NULL) {
    *slot = system_name;
    memo->vals[slot - memo->keys] = name;
    memo->count++;
  }
  return name;
}

/* ---- lookup ----------------------------------------------------------- */

/* A line for `f`, one function of an inline chain, with strings in the
 * view. */
static prof_line_t chain_line(symbolizer_t *s, const srcline_frame_t *f) {
  strtab_t *t = &s->view.strings;
  prof_line_t l = {0};
  l.system_name = intern_unversioned(t, f->function);
  l.name = readable(s, l.system_name);
  if (f->file != NULL) {
    l.file = intern_path(t, f->comp_dir, f->file);
    l.line = l.file && f->line > 0 ? f->line : 0;
  }
  l.start_line = f->start_line > 0 ? f->start_line : 0;
  return l;
}

/*
 * The lines of `addr`: the inline chain DWARF gives (innermost first), its
 * last entry the function holding the code, named after its ELF symbol
 * when there is one (the name the profile has always used, and the one a
 * stripped object still has); without DWARF, that symbol alone.
 */
static void resolve(symbolizer_t *s, uint64_t addr, prof_frame_t *out) {
  /* Code outside every file-backed executable range (JIT, anonymous pages
   * in a hole inside a module's address range) is nobody's. */
  out->mapping = mapping_index(&s->view, addr);
  if (out->mapping < 0)
    return;
  module_t *m = &s->view.modules[s->view.mapping_module[out->mapping]];
  if (m->image == NULL)
    s->counts.modules_loaded++;
  module_image_t *im = module_image(m);
  if (im == NULL)
    return;
  strtab_t *t = &s->view.strings;
  const char *symbol = intern_unversioned(t, module_image_function(im, addr));
  srcline_frame_t chain[SRCLINES_MAX_FRAMES];
  size_t n = module_image_chain(im, addr, chain, SRCLINES_MAX_FRAMES);
  size_t nlines = n > 0 ? n : symbol != NULL;
  prof_line_t *lines =
      nlines > 0 ? strtab_alloc(t, nlines * sizeof *lines) : NULL;
  if (lines == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    lines[i] = chain_line(s, &chain[i]);
  prof_line_t *fn = &lines[nlines - 1];
  if (n == 0)
    *fn = (prof_line_t){0};
  if (symbol != NULL) {
    fn->system_name = symbol;
    fn->name = readable(s, symbol);
  }
  if (fn->name == NULL) /* DWARF knew the code but no name for it */
    return;
  out->lines = lines;
  out->nlines = (uint32_t)nlines;
  out->inline_known = n > 0;
}

static void lookup_in_view(symbolizer_t *s, uint64_t addr, prof_frame_t *out) {
  s->counts.lookups++;
  if (addr >= LOWEST_MAPPED_ADDR && !addrcache_get(&s->cache, addr, out)) {
    s->counts.resolved++;
    resolve(s, addr, out);
    addrcache_put(&s->cache, addr, out);
  }
}

static void lookup(void *ctx, uint64_t addr, uint32_t space,
                   prof_frame_t *out) {
  symbolizer_t *s = ctx;
  int saved = errno;
  *out = (prof_frame_t){NULL, 0, -1, false};
  if (space == 0) {
    lookup_in_view(s, addr, out);
  } else if (space <= s->nretired &&
             addrcache_get(&s->retired[space - 1].answers, addr, out)) {
    const retired_t *r = &s->retired[space - 1];
    out->mapping = out->mapping >= 0 && s->all_mappings != NULL
                       ? (int)(r->first_mapping + (size_t)out->mapping)
                       : -1;
  }
  errno = saved;
}

/* The first module that went away after stacks of bucket `serial` were
 * recorded and held `addr` then: 1-based; 0 for the code mapped now. */
static uint32_t space(void *ctx, uint64_t addr, uint64_t serial) {
  const symbolizer_t *s = ctx;
  if (addr < s->retired_low || addr >= s->retired_high)
    return 0;
  for (size_t i = 0; i < s->nretired; i++) {
    const retired_t *r = &s->retired[i];
    if (serial < r->serial && addr >= r->low && addr < r->high)
      return (uint32_t)i + 1;
  }
  return 0;
}

static const prof_mapping_t *mappings(void *ctx, size_t *n) {
  symbolizer_t *s = ctx;
  if (s->all_mappings == NULL) { /* nothing retired, or out of memory */
    *n = s->view.nmappings;
    return s->view.mappings;
  }
  *n = s->nall_mappings;
  return s->all_mappings;
}

static int maps_text(void *ctx, const pprof_sink_t *out) {
  (void)ctx;
  int saved = errno;
  int rc = maps_stream(out);
  if (rc == 0)
    errno = saved;
  return rc;
}

prof_symtab_t symbolizer_symtab(symbolizer_t *s) {
  return (prof_symtab_t){mappings, s->nretired ? space : NULL, lookup,
                         maps_text, s};
}

/* ---- modules that go away --------------------------------------------- */

/* More unloaded modules than this are not kept (their frames then come
 * out as bare addresses, as before): a bound on memory and on the
 * per-address search of space(). */
#define RETIRED_MAX 256

static void retired_free(retired_t *r) {
  free(r->path);
  free(r->mappings);
  addrcache_free(&r->answers);
  strtab_free(&r->strings);
}

/* Rebuilds all_mappings: the view's, then each retired module's (each
 * noting where its own start). On failure only the view's are listed, and
 * retired frames name no mapping. */
static void join_mappings(symbolizer_t *s) {
  size_t n = s->view.nmappings;
  for (size_t i = 0; i < s->nretired; i++)
    n += s->retired[i].nmappings;
  free(s->all_mappings);
  s->all_mappings = s->nretired ? malloc(n * sizeof *s->all_mappings) : NULL;
  if (s->all_mappings == NULL)
    return;
  s->nall_mappings = n;
  memcpy(s->all_mappings, s->view.mappings,
         s->view.nmappings * sizeof *s->all_mappings);
  n = s->view.nmappings;
  for (size_t i = 0; i < s->nretired; i++) {
    retired_t *r = &s->retired[i];
    memcpy(s->all_mappings + n, r->mappings,
           r->nmappings * sizeof *r->mappings);
    r->first_mapping = n;
    n += r->nmappings;
  }
}

int symbolizer_module_at_bias(const symbolizer_t *s, uint64_t bias,
                              uint64_t *low, uint64_t *high) {
  for (size_t i = 0; i < s->view.nmodules; i++) {
    const module_t *m = &s->view.modules[i];
    if (m->loader_known && m->bias == bias && !m->vdso) {
      *low = m->low;
      *high = m->high;
      return 0;
    }
  }
  return -1;
}

/* A copy of `f` (answered from the view) in r's strings, its mapping an
 * index into r's mappings. false when memory runs out. */
static bool keep_frame(retired_t *r, uint64_t addr, prof_frame_t *f) {
  strtab_t *t = &r->strings;
  prof_line_t *lines =
      f->nlines ? strtab_alloc(t, f->nlines * sizeof *lines) : NULL;
  if (f->nlines > 0 && lines == NULL)
    return false;
  for (uint32_t i = 0; i < f->nlines; i++) {
    const prof_line_t *l = &f->lines[i];
    lines[i] = (prof_line_t){strtab_intern(t, l->name),
                             strtab_intern(t, l->system_name),
                             strtab_intern(t, l->file), l->line, l->start_line};
  }
  f->lines = lines;
  f->mapping = -1;
  for (size_t i = 0; i < r->nmappings; i++)
    if (addr >= r->mappings[i].start && addr < r->mappings[i].limit)
      f->mapping = (int)i;
  return true;
}

/* The record for the module at [low, high) in the view: the newest one if
 * it is the same object (a library loaded and unloaded again and again at
 * the same place keeps one), else a new one. NULL with errno. */
static retired_t *retired_for(symbolizer_t *s, uint64_t low, uint64_t high) {
  const module_t *m = module_at(&s->view, low);
  if (m == NULL || m->high != high) {
    errno = ENOENT;
    return NULL;
  }
  retired_t *last = s->nretired ? &s->retired[s->nretired - 1] : NULL;
  if (last != NULL && last->low == low && last->high == high &&
      buildid_equal(&last->id, &m->id) && strcmp(last->path, m->path) == 0)
    return last;
  if (s->nretired == RETIRED_MAX) {
    errno = ENOSPC;
    return NULL;
  }
  retired_t *grown = realloc(s->retired, (s->nretired + 1) * sizeof *grown);
  if (grown == NULL)
    return NULL;
  s->retired = grown;
  retired_t *r = &grown[s->nretired];
  *r = (retired_t){.low = low, .high = high, .id = m->id};
  size_t n = 0;
  for (size_t i = 0; i < s->view.nmappings; i++)
    n += s->view.mappings[i].start >= low && s->view.mappings[i].limit <= high;
  if ((r->path = copy_string(m->path)) == NULL ||
      (r->mappings = calloc(n ? n : 1, sizeof *r->mappings)) == NULL) {
    retired_free(r);
    errno = ENOMEM;
    return NULL;
  }
  for (size_t i = 0; i < s->view.nmappings; i++) {
    const prof_mapping_t *mp = &s->view.mappings[i];
    if (mp->start < low || mp->limit > high)
      continue;
    prof_mapping_t *out = &r->mappings[r->nmappings++];
    *out = *mp;
    out->path = strtab_intern(&r->strings, mp->path);
    out->build_id = strtab_intern(&r->strings, mp->build_id);
    if (out->path == NULL || out->build_id == NULL) {
      retired_free(r);
      errno = ENOMEM;
      return NULL;
    }
  }
  s->nretired++;
  return r;
}

void symbolizer_release(symbolizer_t *s, uint64_t low, uint64_t high) {
  for (module_t *m = module_at(&s->view, low); m != NULL && m->low < high;
       m = m + 1 < s->view.modules + s->view.nmodules ? m + 1 : NULL)
    if (m->image != NULL) {
      module_image_free(m->image);
      m->image = NULL;
    }
}

int symbolizer_retire(symbolizer_t *s, uint64_t low, uint64_t high,
                      const uint64_t *addrs, size_t n, uint64_t serial) {
  int saved = errno;
  retired_t *r = retired_for(s, low, high);
  if (r == NULL)
    return -1;
  r->serial = serial;
  if (s->nretired == 1 || low < s->retired_low)
    s->retired_low = low;
  if (s->nretired == 1 || high > s->retired_high)
    s->retired_high = high;
  for (size_t i = 0; i < n; i++) {
    prof_frame_t f;
    if (addrs[i] < low || addrs[i] >= high ||
        addrcache_get(&r->answers, addrs[i], &f))
      continue;
    f = (prof_frame_t){NULL, 0, -1, false};
    lookup_in_view(s, addrs[i], &f);
    if (keep_frame(r, addrs[i], &f))
      addrcache_put(&r->answers, addrs[i], &f);
  }
  join_mappings(s);
  errno = saved;
  return 0;
}

/* ---- memory, counts, end ---------------------------------------------- */

size_t symbolizer_memory_bytes(const symbolizer_t *s) {
  const struct view *v = &s->view;
  size_t bytes = sizeof *s + addrcache_bytes(&s->cache) +
                 strtab_bytes(&v->strings) + v->nmodules * sizeof *v->modules +
                 v->nmappings * (sizeof *v->mappings + sizeof(size_t));
  for (size_t i = 0; i < v->nmodules; i++)
    bytes +=
        strlen(v->modules[i].path) + 1 +
        (v->modules[i].image ? module_image_bytes(v->modules[i].image) : 0);
  bytes += s->names.nslots * 2 * sizeof *s->names.keys +
           (s->all_mappings ? s->nall_mappings : 0) * sizeof *s->all_mappings;
  for (size_t i = 0; i < s->nretired; i++) {
    const retired_t *r = &s->retired[i];
    bytes += sizeof *r + strlen(r->path) + 1 +
             r->nmappings * sizeof *r->mappings + addrcache_bytes(&r->answers) +
             strtab_bytes(&r->strings);
  }
  return bytes;
}

void symbolizer_counts(const symbolizer_t *s, symbolizer_counts_t *out) {
  *out = s->counts;
}

void symbolizer_free(symbolizer_t *s) {
  if (s == NULL)
    return;
  int saved = errno;
  addrcache_free(&s->cache);
  memo_free(&s->names);
  demangle_stack_free(s->demangle_stack);
  view_free(&s->view);
  for (size_t i = 0; i < s->nretired; i++)
    retired_free(&s->retired[i]);
  free(s->retired);
  free(s->all_mappings);
  free(s);
  errno = saved;
}
