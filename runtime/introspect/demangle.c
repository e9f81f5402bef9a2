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
 */
#include "demangle.h"

#include <libiberty/demangle.h>
#include <string.h>

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
} sink_t;

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

/* libiberty's callback: one printed piece. */
static void take_piece(const char *piece, size_t n, void *opaque) {
  sink_t *s = opaque;
  for (size_t i = 0; i < n; i++)
    take(s, piece[i]);
}

static void sink_init(sink_t *s, char *out, size_t cap) {
  memset(s, 0, sizeof *s);
  s->out = out;
  s->cap = cap;
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

static size_t cplus(const char *name, demangle_style_t style, char *out,
                    size_t cap) {
  sink_t s;
  sink_init(&s, out, cap);
  s.cplus = 1;
  s.strip_templates = style == DEMANGLE_SIMPLE;
  s.strip_clones = style == DEMANGLE_FULL;
  int options = style == DEMANGLE_FULL ? DMGL_PARAMS | DMGL_ANSI : 0;
  if (!cplus_demangle_v3_callback(name, options, take_piece, &s))
    return 0;
  return sink_finish(&s);
}

size_t demangle(const char *name, demangle_style_t style, char *out,
                size_t cap) {
  if (name == NULL || out == NULL || cap == 0 || name[0] != '_' ||
      (unsigned)style > DEMANGLE_FULL)
    return 0;
  size_t len = strnlen(name, DEMANGLE_MAX_RUST_LEGACY + 1);
  int short_enough = len <= DEMANGLE_MAX_NAME;
  /* A long name reaches only the legacy Rust demangler: _ZN never goes
   * down rust_demangle_callback's v0 path. */
  if (len > DEMANGLE_MAX_RUST_LEGACY ||
      (!short_enough && strncmp(name, "_ZN", 3) != 0))
    return 0;
  sink_t s;
  sink_init(&s, out, cap);
  if (rust_demangle_callback(name, 0, take_piece, &s))
    return sink_finish(&s);
  return short_enough ? cplus(name, style, out, cap) : 0;
}
