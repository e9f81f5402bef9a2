/*
 * config — parsing and checking the HEAPPROF_* environment.
 *
 * The defaults live here and nowhere else, and so does every parser: one
 * table (`settings`) names each variable, the function that parses it and
 * the words that describe what it accepts. config_read walks that table;
 * config_check lets the heapprof command judge an option's value with the
 * same entry, so the command and the library can never disagree.
 * Diagnostics are written with a single write(2) of a stack buffer: this
 * runs inside the allocator's start-up, where stdio (which locks and
 * allocates) is best avoided.
 */
#define _GNU_SOURCE
#include "config.h"
#include "fdtable.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buckets.h"
#include "httpreq.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define DEFAULT_RATE 524288
#define DEFAULT_OUT "heapprof.%p.%n.pb.gz"
#define DEFAULT_SIGNAL SIGUSR2
#define DEFAULT_DEPTH 64
#define DEFAULT_MAX_MEM ((uint64_t)1 << 30)
#define MIN_MAX_MEM ((uint64_t)16 << 20)
#define DEFAULT_DEMANGLE CONFIG_DEMANGLE_SIMPLE

/* The longest name heapprof gives a profile's temporary file, beside it in
 * the same directory (writer.c): ".heapprof-<pid>-<n>.tmp" with a
 * 10-digit pid and a 20-digit n. */
#define TMP_NAME_MAX (sizeof ".heapprof--.tmp" - 1 + 10 + 20)
/* What a peak profile adds to its name ("….peak.pb.gz", control.c). */
#define PEAK_SUFFIX_LEN (sizeof ".peak" - 1)

static char *_Atomic capture_buf;
static size_t capture_cap;
static _Atomic size_t capture_len;

void config_capture(char *buf, size_t cap) {
  if (buf != NULL) {
    memset(buf, 0, cap);
    capture_cap = cap;
    atomic_store(&capture_len, 0);
  }
  atomic_store(&capture_buf, buf);
}

void config_warn(const char *fmt, ...) {
  int saved = errno;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof line - 2)
    n = sizeof line - 2;
  line[n] = '\n';
  char *buf = atomic_load(&capture_buf);
  if (buf != NULL) { /* a place of its own for each line; the last byte stays 0 */
    size_t at = atomic_fetch_add(&capture_len, (size_t)n + 1);
    if (at + (size_t)n + 1 < capture_cap)
      memcpy(buf + at, line, (size_t)n + 1);
  } else {
    fdtable_stderr(line, (size_t)n + 1); /* the program's stderr, from any thread */
  }
  errno = saved;
}

/* `v`, at most 64 bytes of it, with every control byte shown as '?': a
 * value quoted in a warning never breaks its line. */
static void printable(const char *v, char out[65]) {
  size_t i = 0;
  for (; v[i] != '\0' && i < 64; i++)
    out[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
  out[i] = '\0';
}

typedef struct unit {
  char suffix;
  uint64_t scale;
} unit_t;

/* "<digits>[suffix]", the suffix one of `units` (ended by a zero suffix):
 * the number and its suffix's scale (1 without one). -1 for anything else,
 * a sign, space or overflow included. */
static int parse_scaled(const char *s, const unit_t *units, uint64_t *v,
                        uint64_t *scale) {
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  char *end;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno != 0)
    return -1;
  *scale = 1;
  for (; units->suffix != 0; units++)
    if (*end == units->suffix) {
      *scale = units->scale;
      end++;
      break;
    }
  if (*end != '\0')
    return -1;
  *v = x;
  return 0;
}

int config_parse_bytes(const char *s, uint64_t *out) {
  static const unit_t units[] = {{'k', 1 << 10}, {'K', 1 << 10}, {'m', 1 << 20},
                                 {'M', 1 << 20}, {'g', 1 << 30}, {'G', 1 << 30},
                                 {0, 0}};
  uint64_t v, scale;
  if (parse_scaled(s, units, &v, &scale) != 0 || v > UINT64_MAX / scale ||
      v * scale > INT64_MAX)
    return -1;
  *out = v * scale;
  return 0;
}

int config_parse_seconds(const char *s, int64_t *out) {
  static const unit_t units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {0, 0}};
  uint64_t v, scale;
  if (parse_scaled(s, units, &v, &scale) != 0 || v == 0 ||
      v > ((uint64_t)1 << 40) / scale)
    return -1;
  *out = (int64_t)(v * scale);
  return 0;
}

static const struct {
  const char *name;
  int sig;
} signal_names[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

static int catchable(int sig) {
  return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
         sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL &&
         sig != SIGTRAP && sig != SIGABRT;
}

int config_parse_signal(const char *s, int *out) {
  if (s == NULL || *s == '\0')
    return -1;
  if (strcmp(s, "0") == 0 || strcasecmp(s, "none") == 0) {
    *out = 0;
    return 0;
  }
  if (*s >= '0' && *s <= '9') {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || !catchable((int)v) || v >= NSIG)
      return -1;
    *out = (int)v;
    return 0;
  }
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++) {
    if (strcasecmp(s, signal_names[i].name) == 0) {
      *out = signal_names[i].sig;
      return 0;
    }
  }
  return -1;
}

/* "<digits>" from `lo` to `hi`. 0 or -1. */
static int parse_range(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  static const unit_t none[] = {{0, 0}};
  uint64_t v, scale;
  if (parse_scaled(s, none, &v, &scale) != 0 || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int config_parse_seed(const char *s, uint64_t *out) {
  static const char hexdigits[] = "0123456789abcdefABCDEF";
  if (s == NULL)
    return -1;
  int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const char *digits = hex ? s + 2 : s;
  size_t n = strspn(digits, hex ? hexdigits : "0123456789");
  if (n == 0 || digits[n] != '\0')
    return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = v;
  return 0;
}

/* The widest expansion of one % sequence: %p a pid (2147483647), %n a
 * 64-bit count (18446744073709551615), %t signed 64-bit seconds
 * (-9223372036854775808), %% one '%'. -1 for any other. */
static long piece_width(char conv) {
  switch (conv) {
  case 'p': return 10;
  case 'n': return 20;
  case 't': return 20;
  case '%': return 1;
  default: return -1;
  }
}

/* The longest expansion of tmpl[0..n), -1 if it holds an unknown %
 * sequence. A '%' is never the last byte of a prefix that ends in '/'. */
static long longest_expansion(const char *tmpl, size_t n) {
  long len = 0;
  for (size_t i = 0; i < n; i++) {
    long w = 1;
    if (tmpl[i] == '%' && (w = piece_width(tmpl[++i])) < 0)
      return -1;
    len += w;
  }
  return len;
}

/* Worked number: "/var/tmp/app.%p.%n.pb.gz" expands to at most
 * 13 + 10 + 1 + 20 + 6 = 50 bytes, 55 with ".peak"; its temporary file to
 * 9 + TMP_NAME_MAX = 54. Both must stay below CONFIG_PATH_MAX for the NUL. */
int config_parse_out(const char *tmpl) {
  if (tmpl == NULL || *tmpl == '\0' || strlen(tmpl) >= CONFIG_PATH_MAX)
    return -1;
  size_t len = strlen(tmpl);
  const char *slash = strrchr(tmpl, '/');
  size_t dir = slash != NULL ? (size_t)(slash - tmpl) + 1 : 0;
  long file = longest_expansion(tmpl, len);
  long tmp = longest_expansion(tmpl, dir);
  return dir < len && file >= 0 && tmp >= 0 &&
                 (size_t)file + PEAK_SUFFIX_LEN < CONFIG_PATH_MAX &&
                 (size_t)tmp + TMP_NAME_MAX < CONFIG_PATH_MAX
             ? 0
             : -1;
}

/* ---- one parser per variable: 0, or -1 leaving `c` as it was ---- */

static int parse_rate(const char *v, hp_config_t *c) {
  uint64_t rate;
  if (config_parse_bytes(v, &rate) != 0)
    return -1;
  c->rate = (int64_t)rate;
  return 0;
}

static int parse_out(const char *v, hp_config_t *c) {
  if (config_parse_out(v) != 0)
    return -1;
  strcpy(c->out, v);
  c->out_set = 1;
  return 0;
}

static int parse_signal(const char *v, hp_config_t *c) {
  return config_parse_signal(v, &c->signal);
}

static int parse_seed(const char *v, hp_config_t *c) {
  if (config_parse_seed(v, &c->seed) != 0)
    return -1;
  c->seed_set = 1;
  return 0;
}

static int parse_depth(const char *v, hp_config_t *c) {
  uint64_t d;
  if (parse_range(v, 1, BUCKET_MAX_FRAMES, &d) != 0)
    return -1;
  c->depth = (int)d;
  return 0;
}

/* A 0/1 switch. */
static int parse_flag(const char *v, int *field) {
  if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
    return -1;
  *field = *v == '1';
  return 0;
}

static int parse_verbose(const char *v, hp_config_t *c) {
  return parse_flag(v, &c->verbose);
}

static int parse_peak(const char *v, hp_config_t *c) {
  return parse_flag(v, &c->peak);
}

static int parse_remote(const char *v, hp_config_t *c) {
  return parse_flag(v, &c->http_remote);
}

static int parse_max_mem(const char *v, hp_config_t *c) {
  uint64_t bytes;
  if (config_parse_bytes(v, &bytes) != 0 || bytes < MIN_MAX_MEM)
    return -1;
  c->max_mem = bytes;
  return 0;
}

static int parse_interval(const char *v, hp_config_t *c) {
  return config_parse_seconds(v, &c->interval);
}

static int parse_growth(const char *v, hp_config_t *c) {
  uint64_t bytes;
  if (config_parse_bytes(v, &bytes) != 0 || bytes == 0)
    return -1;
  c->growth = (int64_t)bytes;
  return 0;
}

/* SECONDS[:LOOKS[:LIVE]] */
static int parse_leakwatch(const char *v, hp_config_t *c) {
  char buf[96];
  if (strlen(v) >= sizeof buf)
    return -1;
  strcpy(buf, v);
  char *looks = strchr(buf, ':');
  char *live = looks != NULL ? strchr(looks + 1, ':') : NULL;
  if (looks != NULL)
    *looks++ = '\0';
  if (live != NULL)
    *live++ = '\0';
  int64_t period;
  uint64_t rises = 5, level = 0;
  if (config_parse_seconds(buf, &period) != 0 ||
      (looks != NULL && parse_range(looks, 2, 1000, &rises) != 0) ||
      (live != NULL && (config_parse_bytes(live, &level) != 0 || level == 0)))
    return -1;
  c->leak_period = period;
  c->leak_rises = (int)rises;
  c->leak_live = level;
  return 0;
}

/* A style's word, in any case. */
static int parse_demangle(const char *v, hp_config_t *c) {
  static const char *const styles[] = {
      [CONFIG_DEMANGLE_SIMPLE] = "simple",
      [CONFIG_DEMANGLE_TEMPLATES] = "templates",
      [CONFIG_DEMANGLE_FULL] = "full",
      [CONFIG_DEMANGLE_NONE] = "none",
  };
  for (size_t i = 0; i < sizeof styles / sizeof *styles; i++)
    if (strcasecmp(v, styles[i]) == 0) {
      c->demangle = (int)i;
      return 0;
    }
  return -1;
}

/* "" is no server; otherwise an address the server can bind, loopback
 * unless HEAPPROF_HTTP_REMOTE (read before it) says otherwise. */
static int parse_http(const char *v, hp_config_t *c) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (strlen(v) >= sizeof c->http ||
      (*v != '\0' && (httpreq_parse_addr(v, &ss, &len) != 0 ||
                      (!c->http_remote && !httpreq_addr_loopback(&ss)))))
    return -1;
  strcpy(c->http, v);
  return 0;
}

typedef struct setting {
  const char *name;
  int (*parse)(const char *v, hp_config_t *c);
  const char *accepts;   /* the accepted form, for warnings and the command */
  const char *otherwise; /* what stays in force after a bad value */
} setting_t;

/* In reading order: a setting another one depends on comes first. */
static const setting_t settings[] = {
    {"HEAPPROF_RATE", parse_rate,
     "mean bytes between samples (a whole number >= 0, K/M/G allowed; 1 = "
     "every allocation, 0 = off)", "using " STR(DEFAULT_RATE)},
    {"HEAPPROF_OUT", parse_out,
     "a path template naming a file (%p pid, %n sequence, %t unix seconds, "
     "%% a percent sign) whose longest expansion fits " STR(CONFIG_PATH_MAX)
     " bytes", "using " DEFAULT_OUT},
    {"HEAPPROF_SIGNAL", parse_signal,
     "a catchable signal name or number (USR2, SIGUSR2, 12) or 0/none",
     "using USR2"},
    {"HEAPPROF_SEED", parse_seed,
     "an unsigned 64-bit number, decimal or 0x hex", "using a random seed"},
    {"HEAPPROF_DEPTH", parse_depth,
     "a stack depth from 1 to " STR(BUCKET_MAX_FRAMES),
     "using " STR(DEFAULT_DEPTH)},
    {"HEAPPROF_VERBOSE", parse_verbose, "0 or 1", "using 0"},
    {"HEAPPROF_MAX_MEM", parse_max_mem,
     "bytes of profiler memory, at least 16M (K/M/G allowed)", "using 1G"},
    {"HEAPPROF_INTERVAL", parse_interval,
     "seconds between profiles, at least 1 (s/m/h suffixes allowed: 30, 5m, "
     "1h)", "no periodic profiles"},
    {"HEAPPROF_GROWTH", parse_growth,
     "bytes of in-use growth between profiles, above 0 (K/M/G allowed: 64M, "
     "1G)", "no growth profiles"},
    {"HEAPPROF_PEAK", parse_peak, "0 or 1", "peak tracking off"},
    {"HEAPPROF_HTTP_REMOTE", parse_remote, "0 or 1",
     "using 0 (loopback only)"},
    {"HEAPPROF_HTTP", parse_http,
     "HOST:PORT with a numeric loopback address or localhost (127.0.0.1:6060, "
     ":0, [::1]:6060); another address needs HEAPPROF_HTTP_REMOTE=1",
     "no HTTP server"},
    {"HEAPPROF_LEAKWATCH", parse_leakwatch,
     "SECONDS[:LOOKS[:LIVE]] (look every SECONDS; warn after LOOKS looks in "
     "a row, 2-1000, default 5, of rising in-use bytes, or of mallocs - "
     "frees above LIVE: 60, 30s:10, 60:5:1M)", "leak watch off"},
    {"HEAPPROF_DEMANGLE", parse_demangle,
     "simple, templates, full or none (C++ and Rust names as go tool pprof "
     "shows them, with template arguments, with whole signatures, or as the "
     "linker wrote them)", "using simple"},
};

static const setting_t *setting_find(const char *name) {
  for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
    if (strcmp(settings[i].name, name) == 0)
      return &settings[i];
  return NULL;
}

static void defaults(hp_config_t *c) {
  memset(c, 0, sizeof *c);
  c->rate = DEFAULT_RATE;
  strcpy(c->out, DEFAULT_OUT);
  c->signal = DEFAULT_SIGNAL;
  c->depth = DEFAULT_DEPTH;
  c->max_mem = DEFAULT_MAX_MEM;
  c->demangle = DEFAULT_DEMANGLE;
}

/* Fills `c` from `get`; each value that does not parse is left at its
 * default and, with `warn`, said on stderr. Returns how many did not. */
static int read_settings(hp_config_t *c, config_get_t get, void *ctx, int warn) {
  int saved = errno, bad = 0;
  defaults(c);
  for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
    const setting_t *s = &settings[i];
    const char *v = get(s->name, ctx);
    char shown[65];
    if (v == NULL || s->parse(v, c) == 0)
      continue;
    bad++;
    if (!warn)
      continue;
    printable(v, shown);
    config_warn("heapprof: %s=\"%s\" is not valid: expected %s; %s", s->name,
                shown, s->accepts, s->otherwise);
  }
  errno = saved;
  return bad;
}

static const char *from_environment(const char *name, void *ctx) {
  (void)ctx;
  return secure_getenv(name);
}

void config_read(hp_config_t *c) { read_settings(c, from_environment, NULL, 1); }

int config_read_with(hp_config_t *c, config_get_t get, void *ctx) {
  return read_settings(c, get, ctx, 0);
}

int config_check(const char *name, const char *value, const char **accepts) {
  const setting_t *s = setting_find(name);
  if (accepts != NULL)
    *accepts = s != NULL ? s->accepts : "a variable heapprof reads";
  if (s == NULL || value == NULL)
    return -1;
  hp_config_t c;
  defaults(&c);
  const char *remote = secure_getenv("HEAPPROF_HTTP_REMOTE");
  if (remote != NULL)
    parse_remote(remote, &c); /* HEAPPROF_HTTP is judged with it */
  return s->parse(value, &c);
}
