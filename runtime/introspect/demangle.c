/*
 * demangle — C++ and Rust names made readable (see demangle.h).
 *
 * libiberty prints the demangled name in pieces through a callback; a
 * sink turns those pieces into the chosen style on the fly, one byte at a
 * time, so what must fit the caller's buffer is the final form only
 * (template arguments can be most of a name: std::map's _Rb_tree methods
 * print ~560 bytes with them, ~40 without).
 * The sink's invariant: out[0..len) holds the bytes kept so far whenever
 * len < cap; len keeps counting past cap, and the result is used only if
 * its final length leaves room for the NUL. It never writes at or past
 * out[cap - 1] before the NUL, and keeps no state outside itself.
 *
 * C++ names go through a tracker of template argument lists (pprof keeps
 * Rust's generics, so Rust names are kept as printed):
 *   - A list runs from a `<` to its matching `>`. The `<` and `>` of an
 *     operator's name (operator<, operator<<=, operator->, operator<=>,
 *     ...) are not brackets: they follow the word "operator". Inside a
 *     list, parentheses are tracked and their `<` `>` ignored: libiberty
 *     wraps an expression using the `>` operator in parentheses for that
 *     reason. It does not wrap `<`, `>>` or `>=` ("S<(8)>>(1)>"): such a
 *     list does not balance, and SIMPLE then gives up on the name (0: it
 *     stays mangled and pprof shows it as it always did). Only template
 *     arguments that are unevaluated expressions print so, which real
 *     names almost never have (none of 43,355 tried).
 *   - SIMPLE drops every list. Before a list that follows an operator
 *     ending in `<`, libiberty writes a space ("operator< <int>"); it goes
 *     with the list, as in pprof.
 *   - TEMPLATES and FULL keep them, spelling two closing `>` in a row as
 *     "> >" as pprof does (libiberty writes ">>" after an empty pack),
 *     unless the first one follows a `)`: that may be the `>>` operator.
 *   - FULL drops each " [clone .suffix]" libiberty appends for GCC's
 *     .constprop/.isra/.cold/... copies of a function.
 *
 * On a demangle_stack_t, libiberty runs on a context made on that stack
 * for each call (getcontext, makecontext, swapcontext), with every signal
 * but faults held from before the switch until after the switch back, so
 * that no handler of the program's ever runs on it (one that scans its
 * thread's stack, a GC's, would find a stack pointer outside it); then the
 * caller's own mask is installed again, on the caller's stack. The sink gives up
 * by switching back to the caller from inside the callback, and the
 * frames left on the stack are never resumed: libiberty's callback path
 * keeps everything on the stack (its component and substitution arrays
 * and its print state are VLAs and locals, its output goes through a
 * 256-byte buffer in that state to the callback) and takes no lock
 * (cp-demangle.o and rust-demangle.o call no pthread function and no
 * stdio function on a stream: only sprintf into a local buffer, never
 * with the callback under it); test_demangle gives up 10,000 times in a
 * row and checks that no allocator function was called and that neither
 * the heap, the mappings nor the memory resident grew.
 *
 * A name that is not mangled (no _Z, _R or _GLOBAL_ prefix, or one both
 * demanglers reject) gets pprof's heuristic instead, in tidy().
 */
#define _GNU_SOURCE
#include "demangle.h"

#include <errno.h>
#include <libiberty/demangle.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

/* Sanitizer builds tell their runtime about each switch of stacks (ASan:
 * the stack bounds and fake stacks; TSan: one fiber per call, so that
 * the shadow call stack of an abandoned call goes with it). */
#if defined(__SANITIZE_ADDRESS__)
#define DM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define DM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DM_TSAN 1
#endif
#endif
#ifdef DM_ASAN
#include <sanitizer/common_interface_defs.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif
#ifdef DM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* What FULL drops, up to its closing ']'. */
static const char clone_mark[] = " [clone ";
#define CLONE_MARK_LEN (sizeof clone_mark - 1)

/* The longest run of bytes the operator rule looks back over:
 * "?operator<=" before a '>'. */
#define RECENT_LEN 16

typedef struct sink {
  char *out;
  size_t cap, len;
  int cplus;          /* track template argument lists */
  int strip_templates, strip_clones;
  int depth;          /* template argument lists open */
  int parens;         /* parentheses open inside them */
  int unbalanced;     /* a '>' that closed nothing */
  int closed;         /* the last byte closed a list, after no ')' */
  size_t held;        /* bytes of clone_mark matched, not yet kept */
  int in_clone;       /* inside " [clone ...]" */
  char recent[RECENT_LEN]; /* the last bytes libiberty printed, oldest first */
  size_t printed;          /* bytes libiberty printed */
  demangle_stack_t *stop;  /* where to give up to, when switched */
} sink_t;

/* What came of a call: a result; no mangled name (pprof's heuristic
 * then applies); or a name demangle gave up on (too long, too much
 * output, does not fit), which pprof shows as it always did. */
enum { REJECTED, GAVE_UP, DONE };

/* One call of demangle, and what came of it. */
typedef struct job {
  const char *name;
  demangle_style_t style;
  char *out;
  size_t cap;
  int cplus;   /* the C++ demangler may read the name (within its cap) */
  int outcome;
  size_t len;  /* the result when DONE */
} job_t;

struct demangle_stack {
  ucontext_t caller;   /* where demangle() waits */
  ucontext_t callee;   /* libiberty's side, made anew for each call */
  job_t *job;          /* the call under way */
  char *map;           /* the mapping: guard, stack, this */
  size_t map_bytes;
  char *lo;            /* the stack: [lo, lo + DEMANGLE_STACK_BYTES) */
#ifdef DM_ASAN
  void *fake;          /* the caller's fake stack while switched */
  const void *caller_lo;
  size_t caller_bytes;
#endif
#ifdef DM_TSAN
  void *tsan_caller, *tsan_fiber;
#endif
};

static void give_up(demangle_stack_t *st) __attribute__((noreturn));

static void keep(sink_t *s, char c) {
  if (s->len + 1 < s->cap)
    s->out[s->len] = c;
  s->len++;
}

static int ends_with(const sink_t *s, const char *suffix) {
  size_t n = strlen(suffix);
  return memcmp(s->recent + RECENT_LEN - n, suffix, n) == 0;
}

static int ident_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '$';
}

/* Whether `c`, a '<' or '>', continues the name of an operator: the
 * recent bytes are the word "operator" followed by a prefix of one of
 * < << <<= <= <=> > >> >>= >= -> ->* that `c` extends. */
static int in_operator_name(const sink_t *s, char c) {
  static const struct {
    const char *before; /* "operator" then these bytes */
    char next;
  } ops[] = {{"", '<'},  {"", '>'},  {"<", '<'}, {">", '>'},
             {"-", '>'}, {"<=", '>'}};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    size_t n = strlen(ops[i].before);
    const char *word = s->recent + RECENT_LEN - n - 8;
    if (c == ops[i].next && memcmp(word, "operator", 8) == 0 &&
        memcmp(word + 8, ops[i].before, n) == 0 && !ident_byte(word[-1]))
      return 1;
  }
  return 0;
}

/* FULL's filter: keeps `c` unless it belongs to a clone suffix. */
static void clone_filter(sink_t *s, char c) {
  if (s->in_clone) {
    s->in_clone = c != ']';
    return;
  }
  if (c == clone_mark[s->held]) {
    if (++s->held == CLONE_MARK_LEN) {
      s->held = 0;
      s->in_clone = 1;
    }
    return;
  }
  for (size_t i = 0; i < s->held; i++)
    keep(s, clone_mark[i]);
  s->held = c == clone_mark[0]; /* the mark has no other space */
  if (!s->held)
    keep(s, c);
}

static void emit(sink_t *s, char c) {
  if (s->strip_clones)
    clone_filter(s, c);
  else
    keep(s, c);
}

/* One byte of a C++ name, through the template list tracker. */
static void take_cplus(sink_t *s, char c) {
  int inside = s->depth > 0, opens = 0, closes = 0;
  if ((c == '<' || c == '>') && (!inside || s->parens == 0) &&
      !in_operator_name(s, c)) {
    opens = c == '<';
    closes = c == '>';
  } else if (inside && c == '(') {
    s->parens++;
  } else if (inside && c == ')' && s->parens > 0) {
    s->parens--;
  }
  if (opens && !inside) {
    s->parens = 0;
    if (s->strip_templates && ends_with(s, "< ") && s->len > 0)
      s->len--; /* "operator< <int>": the space goes with the list */
  }
  s->depth += opens;
  if (closes && !inside)
    s->unbalanced = 1;
  else
    s->depth -= closes;
  if (!s->strip_templates) {
    if (closes && s->closed)
      emit(s, ' ');
    emit(s, c);
  } else if (!inside && !opens && !closes) {
    emit(s, c);
  }
  s->closed = closes && s->recent[RECENT_LEN - 1] != ')';
}

static void take(sink_t *s, char c) {
  if (s->cplus)
    take_cplus(s, c);
  else
    keep(s, c);
  memmove(s->recent, s->recent + 1, RECENT_LEN - 1);
  s->recent[RECENT_LEN - 1] = c;
}

/* libiberty's callback: one printed piece (at most 255 bytes of C++).
 * Once the form kept is longer than cap it cannot fit any more: the
 * space of "operator< <int>" is the only byte ever taken back, and only
 * right after it was kept. */
static void take_piece(const char *piece, size_t n, void *opaque) {
  sink_t *s = opaque;
  s->printed += n;
  if (s->stop != NULL && s->printed > DEMANGLE_MAX_PRINTED)
    give_up(s->stop);
  if (s->len > s->cap)
    return;
  for (size_t i = 0; i < n; i++)
    take(s, piece[i]);
  if (s->stop != NULL && s->len > s->cap)
    give_up(s->stop);
}

static void sink_init(sink_t *s, char *out, size_t cap,
                      demangle_stack_t *stop) {
  memset(s, 0, sizeof *s);
  s->out = out;
  s->cap = cap;
  s->stop = stop;
}

/* The sink's result: the length, NUL written, or 0 if it does not fit or
 * SIMPLE's brackets did not balance. */
static size_t sink_finish(sink_t *s) {
  for (size_t i = 0; i < s->held; i++)
    keep(s, clone_mark[i]);
  if ((s->strip_templates && (s->depth != 0 || s->unbalanced)) ||
      s->in_clone || s->len == 0 || s->len >= s->cap)
    return 0;
  s->out[s->len] = '\0';
  return s->len;
}


/* ---- libiberty's work, on whichever stack ---------------------------- */

static void finish(job_t *j, sink_t *s) {
  j->len = sink_finish(s);
  j->outcome = j->len > 0 ? DONE : GAVE_UP;
}

static void work(job_t *j, demangle_stack_t *stop) {
  sink_t s;
  sink_init(&s, j->out, j->cap, stop);
  if (rust_demangle_callback(j->name, 0, take_piece, &s)) {
    finish(j, &s);
    return;
  }
  if (!j->cplus) {
    j->outcome = GAVE_UP;
    return;
  }
  sink_init(&s, j->out, j->cap, stop);
  s.cplus = 1;
  s.strip_templates = j->style == DEMANGLE_SIMPLE;
  s.strip_clones = j->style == DEMANGLE_FULL;
  int options = j->style == DEMANGLE_FULL ? DMGL_PARAMS | DMGL_ANSI : 0;
  if (cplus_demangle_v3_callback(j->name, options, take_piece, &s))
    finish(j, &s);
  else
    j->outcome = REJECTED;
}

/* Whether the "Dp" at `p` expands a template parameter, possibly
 * qualified (DpOT_, DpRKT0_): the search for its pack then looks at one
 * component. Not when the parameter takes template arguments (T_I...E):
 * those are searched too. */
static int expands_parameter(const char *p) {
  for (p += 2; *p != '\0' && strchr("rVKROP", *p) != NULL; p++)
    ;
  if (*p++ != 'T')
    return 0;
  while ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z'))
    p++;
  return *p == '_' && p[1] != 'I';
}

/* Whether a C++ name may make libiberty walk its pack expansions without
 * printing (see DEMANGLE_MAX_NAME_PACKS): it has an empty pack (JE) or a
 * sizeof... of a captured pack (sP), and an expansion other than of a
 * template parameter (sp, sZ, or a Dp of anything else). Read as plain
 * substrings: identifiers may hold them too, which only lowers the cap. */
static int packs_walk(const char *name) {
  if (strstr(name, "JE") == NULL && strstr(name, "sP") == NULL)
    return 0;
  if (strstr(name, "sp") != NULL || strstr(name, "sZ") != NULL)
    return 1;
  for (const char *p = strstr(name, "Dp"); p != NULL; p = strstr(p + 2, "Dp"))
    if (!expands_parameter(p))
      return 1;
  return 0;
}

/* Whether `j->name` goes to libiberty, and which demanglers may read it;
 * if not, j->outcome says why. */
static int admit(job_t *j, int switched) {
  const char *name = j->name;
  if (name[0] != '_' ||
      (name[1] != 'Z' && name[1] != 'R' && strncmp(name, "_GLOBAL_", 8) != 0)) {
    j->outcome = REJECTED;
    return 0;
  }
  size_t len = strnlen(name, DEMANGLE_MAX_RUST_LEGACY + 1);
  size_t cap = switched ? DEMANGLE_MAX_NAME_SWITCHED : DEMANGLE_MAX_NAME;
  if (switched && len > DEMANGLE_MAX_NAME_PACKS && name[1] != 'R' &&
      packs_walk(name))
    cap = DEMANGLE_MAX_NAME_PACKS;
  j->cplus = len <= cap;
  /* A long name reaches only the legacy Rust demangler: _ZN never goes
   * down rust_demangle_callback's v0 path. */
  if (len > DEMANGLE_MAX_RUST_LEGACY ||
      (!j->cplus && strncmp(name, "_ZN", 3) != 0)) {
    j->outcome = GAVE_UP;
    return 0;
  }
  return 1;
}

/* ---- names that are not mangled: pprof's heuristic ------------------- */

/* symbolizer.go's looksLikeDemangledCPlusPlus. */
static int looks_demangled(const char *name) {
  if (strstr(name, ".<") != NULL || strstr(name, "]).") != NULL)
    return 0;
  return strpbrk(name, "<>[]") != NULL || strstr(name, "::") != NULL;
}

/* The bytes symbolizer.go's removeMatching(name, '(', ')') keeps, one at
 * a time: each balanced (...) at nesting 0 goes; a ')' that closes nothing
 * keeps itself and the rest (pprof stops there), and so does a '(' never
 * closed. Linear: the scan for a group's end resumes after it. */
typedef struct kept {
  const char *s;
  size_t n, i;
  int rest; /* keep everything from i on */
} kept_t;

static int kept_next(kept_t *k, char *c) {
  while (k->i < k->n) {
    char x = k->s[k->i];
    if (!k->rest && x == '(') {
      size_t j = k->i + 1;
      long nesting = 1;
      for (; j < k->n && nesting > 0; j++)
        nesting += (k->s[j] == '(') - (k->s[j] == ')');
      if (nesting == 0) {
        k->i = j;
        continue;
      }
      k->rest = 1;
    } else if (!k->rest && x == ')') {
      k->rest = 1;
    }
    *c = x;
    k->i++;
    return 1;
  }
  return 0;
}

/* What pprof shows for `name`, which it cannot demangle, in `style`: 0
 * when that is the name itself (or nothing at all). SIMPLE then removes
 * matching <...> from those bytes as they come, the same way: a group is
 * written and, once it closes, taken back; bytes past `cap` are counted,
 * not written, and the result fits if the count ends within it. */
static size_t tidy(const char *name, demangle_style_t style, char *out,
                   size_t cap) {
  if ((style != DEMANGLE_SIMPLE && style != DEMANGLE_TEMPLATES) ||
      !looks_demangled(name))
    return 0;
  kept_t k = {name, strlen(name), 0, 0};
  size_t o = 0, first = 0, nesting = 0;
  int angles = style == DEMANGLE_SIMPLE, rest = 0;
  char c;
  while (kept_next(&k, &c)) {
    if (angles && !rest && c == '<') {
      if (nesting++ == 0)
        first = o;
    } else if (angles && !rest && c == '>') {
      if (nesting == 0) {
        rest = 1;
      } else if (--nesting == 0) {
        o = first;
        continue;
      }
    }
    if (o + 1 < cap)
      out[o] = c;
    o++;
  }
  if (o == 0 || o == k.n || o + 1 > cap)
    return 0;
  out[o] = '\0';
  return o;
}

/* ---- the stack ------------------------------------------------------- */

static size_t page_bytes(void) {
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? (size_t)page : 4096;
}

static size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

demangle_stack_t *demangle_stack_new(void) {
  size_t page = page_bytes();
  size_t guard = round_up(DEMANGLE_GUARD_BYTES, page);
  size_t stack = round_up(DEMANGLE_STACK_BYTES, page);
  size_t bytes = guard + stack + round_up(sizeof(demangle_stack_t), page);
  char *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (map == MAP_FAILED)
    return NULL;
  if (mprotect(map, guard, PROT_NONE) != 0) {
    int saved = errno;
    munmap(map, bytes);
    errno = saved;
    return NULL;
  }
  demangle_stack_t *st = (demangle_stack_t *)(map + guard + stack);
  st->map = map;
  st->map_bytes = bytes;
  st->lo = map + guard;
  return st;
}

void demangle_stack_free(demangle_stack_t *st) {
  if (st == NULL)
    return;
  int saved = errno;
  munmap(st->map, st->map_bytes);
  errno = saved;
}

/* Reads bytes that abandoned (ASan-instrumented) frames may have left
 * poisoned. */
NO_ASAN size_t demangle_stack_used(const demangle_stack_t *st) {
  const char *hi = (const char *)st, *p = st->lo;
  while (p < hi && *(const volatile char *)p == 0)
    p++;
  return (size_t)(hi - p);
}

/* Back to the caller, for good: the frames on this stack are never
 * resumed (the next call makes a new context over them). */
static void leave(demangle_stack_t *st) __attribute__((noreturn));
static void leave(demangle_stack_t *st) {
#ifdef DM_ASAN
  __sanitizer_start_switch_fiber(NULL, st->caller_lo, st->caller_bytes);
#endif
#ifdef DM_TSAN
  __tsan_switch_to_fiber(st->tsan_caller, 0);
#endif
  setcontext(&st->caller);
  __builtin_trap(); /* setcontext returns only for a context it cannot use */
}

static void give_up(demangle_stack_t *st) {
  st->job->outcome = GAVE_UP;
  leave(st);
}

/* The first function on the stack; makecontext passes ints, so the
 * stack's address comes in two halves. */
static void entry(unsigned hi, unsigned lo) {
  uint64_t at = (uint64_t)hi << 32 | lo;
  demangle_stack_t *st = (demangle_stack_t *)(uintptr_t)at;
#ifdef DM_ASAN
  __sanitizer_finish_switch_fiber(NULL, &st->caller_lo, &st->caller_bytes);
#endif
  work(st->job, st);
  leave(st);
}

/* Runs `j` on `st`. No handler of the program's may run on that stack:
 * every signal that can wait is held from before the switch there until
 * after the switch back (a signal that arrives meanwhile is delivered on
 * the caller's stack when its mask comes back: setcontext installs a mask
 * before it leaves the stack it runs on, so the way back itself must not
 * unblock anything). Faults stay as the caller has them: one here is a
 * crash either way. What the program blocked stays blocked. */
static void run_on(demangle_stack_t *st, job_t *j) {
  static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
  sigset_t hold, callers;
  sigfillset(&hold);
  for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
    sigdelset(&hold, faults[i]);
  pthread_sigmask(SIG_BLOCK, &hold, &callers);
  st->job = j;
  j->outcome = GAVE_UP;
  if (getcontext(&st->callee) == 0) { /* it holds the mask now in force */
    st->callee.uc_stack.ss_sp = st->lo;
    st->callee.uc_stack.ss_size = (size_t)((char *)st - st->lo);
    st->callee.uc_link = &st->caller;
    uint64_t at = (uintptr_t)st;
    makecontext(&st->callee, (void (*)(void))entry, 2, (unsigned)(at >> 32),
                (unsigned)at);
#ifdef DM_TSAN
    st->tsan_caller = __tsan_get_current_fiber();
    st->tsan_fiber = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(st->tsan_fiber, 0);
#endif
#ifdef DM_ASAN
    __sanitizer_start_switch_fiber(&st->fake, st->lo,
                                   st->callee.uc_stack.ss_size);
#endif
    swapcontext(&st->caller, &st->callee);
#ifdef DM_ASAN
    __sanitizer_finish_switch_fiber(st->fake, NULL, NULL);
#endif
#ifdef DM_TSAN
    __tsan_destroy_fiber(st->tsan_fiber);
#endif
  }
  st->job = NULL;
  pthread_sigmask(SIG_SETMASK, &callers, NULL);
}

/* ---- the entry point ------------------------------------------------- */

size_t demangle(const char *name, demangle_style_t style, char *out,
                size_t cap, demangle_stack_t *st) {
  if (name == NULL || out == NULL || cap == 0 ||
      (unsigned)style > DEMANGLE_FULL)
    return 0;
  job_t j = {.name = name, .style = style, .out = out, .cap = cap};
  if (admit(&j, st != NULL)) {
    if (st != NULL)
      run_on(st, &j);
    else
      work(&j, NULL);
  }
  if (j.outcome == DONE)
    return j.len;
  return j.outcome == REJECTED ? tidy(name, style, out, cap) : 0;
}
