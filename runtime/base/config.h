/*
 * config — the HEAPPROF_* environment, read once at start-up.
 *
 * Every variable is read with secure_getenv, so setuid/setgid and
 * file-capability programs see none of them. A value that does not parse
 * produces one line on stderr naming the variable and what it accepts, and
 * the default is used; nothing here can stop the host program.
 */
#ifndef HEAPPROF_CONFIG_H
#define HEAPPROF_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Every path heapprof makes from HEAPPROF_OUT fits a buffer this size. */
#define CONFIG_PATH_MAX PATH_MAX

/* HEAPPROF_DEMANGLE's values: the numbers of demangle_style_t
 * (runtime/introspect/demangle.h, which runtime/base does not include;
 * test_demangle checks that the two agree). */
enum {
  CONFIG_DEMANGLE_SIMPLE = 0,    /* "simple": as go tool pprof shows names */
  CONFIG_DEMANGLE_TEMPLATES = 1, /* "templates": template arguments kept */
  CONFIG_DEMANGLE_FULL = 2,      /* "full": whole signatures */
  CONFIG_DEMANGLE_NONE = 3,      /* "none": the linker's names */
};

typedef struct hp_config {
  int64_t rate;                /* HEAPPROF_RATE, bytes (0 = off) */
  char out[CONFIG_PATH_MAX];   /* HEAPPROF_OUT, a path template */
  int out_set;                 /* HEAPPROF_OUT was given: dump at exit */
  int signal;                  /* HEAPPROF_SIGNAL, 0 = none */
  uint64_t seed;               /* HEAPPROF_SEED */
  int seed_set;
  int depth;                   /* HEAPPROF_DEPTH, frames */
  int verbose;                 /* HEAPPROF_VERBOSE */
  uint64_t max_mem;            /* HEAPPROF_MAX_MEM, bytes of profiler memory */
  int64_t interval;            /* HEAPPROF_INTERVAL, seconds (0 = off) */
  int64_t growth;              /* HEAPPROF_GROWTH, bytes (0 = off) */
  int peak;                    /* HEAPPROF_PEAK */
  int64_t leak_period;         /* HEAPPROF_LEAKWATCH seconds (0 = off) */
  int leak_rises;              /* …and consecutive looks before warning */
  uint64_t leak_live;          /* …and the mallocs − frees level (0 = off) */
  char http[256];              /* HEAPPROF_HTTP, "" = no server */
  int http_remote;             /* HEAPPROF_HTTP_REMOTE */
  int demangle;                /* HEAPPROF_DEMANGLE, a CONFIG_DEMANGLE_* */
} hp_config_t;

/* Fills `c` from the environment, defaults where unset or invalid. */
void config_read(hp_config_t *c);

/* The value of variable `name` ("HEAPPROF_RATE", …) from a source other
 * than the environment, or NULL if it has none. */
typedef const char *(*config_get_t)(const char *name, void *ctx);

/* config_read from `get` (an attach's settings), silently: returns how
 * many values did not parse (each left at its default). */
int config_read_with(hp_config_t *c, config_get_t get, void *ctx);

/* Whether config_read would take `value` for the variable `name`
 * ("HEAPPROF_DEPTH", ...), judged by the very parser config_read uses: 0,
 * or -1 with `*accepts` (when not NULL) set to the words config_read's
 * warning uses for the accepted form; -1 for a name it does not read.
 * HEAPPROF_HTTP is judged with the environment's HEAPPROF_HTTP_REMOTE. */
int config_check(const char *name, const char *value, const char **accepts);

/* Parses a byte count: digits with an optional K, M or G suffix (powers of
 * 1024). 0 or -1. */
int config_parse_bytes(const char *s, uint64_t *out);

/* Parses a duration in whole seconds: digits with an optional s, m or h
 * suffix; at least 1 second. 0 or -1. */
int config_parse_seconds(const char *s, int64_t *out);

/* Parses a seed: decimal digits, or 0x and hex digits; 64 bits. 0 or -1. */
int config_parse_seed(const char *s, uint64_t *out);

/* Checks a HEAPPROF_OUT path template: not empty, no % sequence but %p %n
 * %t %%, and its longest expansion (a 10-digit pid, 20-digit %n and %t,
 * the ".peak" heapprof may add) fits CONFIG_PATH_MAX bytes with its NUL,
 * as does the temporary name beside it. 0 or -1. */
int config_parse_out(const char *tmpl);

/* Parses a signal: "USR2", "SIGUSR2", a number, or "0"/"none" (→ 0).
 * Uncatchable and fault signals are refused. 0 or -1. */
int config_parse_signal(const char *s, int *out);

/* Writes `fmt` formatted (the caller starts it with "heapprof: "), plus a
 * newline, as one line of at most 511 bytes to the program's current
 * stderr with one write(2) (fdtable_stderr), without stdio or malloc;
 * errno is kept. */
void config_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* While `buf` is set, config_warn's lines go into it instead (zeroed
 * here; whole lines while they fit, NUL-terminated because what is not
 * written stays zero), from any thread: what heapprof_attach_start says
 * belongs to the attaching command, not to the program's stderr. NULL
 * stops. One caller at a time (the attach lock). */
void config_capture(char *buf, size_t cap);

#endif /* HEAPPROF_CONFIG_H */
