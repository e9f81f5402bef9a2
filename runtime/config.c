/*
 * config — parsing and checking the HEAPPROF_* environment.
 *
 * The defaults live here and nowhere else. Diagnostics are written with a
 * single write(2) of a stack buffer: this runs inside the allocator's
 * start-up, where stdio (which locks and allocates) is best avoided.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../profile/buckets.h"
#include "../profile/writer.h"

#define DEFAULT_RATE 524288
#define DEFAULT_OUT "heapprof.%p.%n.pb.gz"
#define DEFAULT_SIGNAL SIGUSR2
#define DEFAULT_DEPTH 64
#define DEFAULT_MAX_MEM ((uint64_t)1 << 30)

void config_warn(const char *fmt, ...) {
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
  ssize_t ignored = write(STDERR_FILENO, line, (size_t)n + 1);
  (void)ignored;
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

static void read_rate(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_RATE");
  uint64_t rate;
  if (v == NULL)
    return;
  if (config_parse_bytes(v, &rate) == 0) {
    c->rate = (int64_t)rate;
    return;
  }
  config_warn("heapprof: HEAPPROF_RATE=\"%.64s\" is not valid: expected mean "
              "bytes between samples (a whole number >= 0, K/M/G allowed; 1 = "
              "every allocation, 0 = off); using %d", v, DEFAULT_RATE);
}

static void read_out(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_OUT");
  char probe[CONFIG_PATH_MAX];
  if (v == NULL)
    return;
  if (*v != '\0' && strlen(v) < sizeof c->out &&
      writer_expand(v, 1, 1, 1, probe, sizeof probe) == 0) {
    strcpy(c->out, v);
    c->out_set = 1;
    return;
  }
  config_warn("heapprof: HEAPPROF_OUT=\"%.64s\" is not valid: expected a "
              "non-empty path template (%%p pid, %%n sequence, %%t unix "
              "seconds, %%%% a percent sign); using %s", v, DEFAULT_OUT);
}

static void read_signal(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_SIGNAL");
  if (v == NULL || config_parse_signal(v, &c->signal) == 0)
    return;
  config_warn("heapprof: HEAPPROF_SIGNAL=\"%.64s\" is not valid: expected a "
              "catchable signal name or number (USR2, SIGUSR2, 12) or 0/none; "
              "using USR2", v);
}

static void read_seed(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_SEED");
  char *end;
  if (v == NULL)
    return;
  errno = 0;
  unsigned long long s = strtoull(v, &end, 0);
  if (*v >= '0' && *v <= '9' && errno == 0 && *end == '\0') {
    c->seed = s;
    c->seed_set = 1;
    return;
  }
  config_warn("heapprof: HEAPPROF_SEED=\"%.64s\" is not valid: expected an "
              "unsigned 64-bit number; using a random seed", v);
}

static void read_depth(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_DEPTH");
  char *end;
  if (v == NULL)
    return;
  errno = 0;
  long d = strtol(v, &end, 10);
  if (*v >= '0' && *v <= '9' && errno == 0 && *end == '\0' && d >= 1 &&
      d <= BUCKET_MAX_FRAMES) {
    c->depth = (int)d;
    return;
  }
  config_warn("heapprof: HEAPPROF_DEPTH=\"%.64s\" is not valid: expected a "
              "stack depth from 1 to %d; using %d", v, BUCKET_MAX_FRAMES,
              DEFAULT_DEPTH);
}

/* A 0/1 switch: 1 or 0 sets `*field`; anything else warns, saying what
 * happens instead (`fallback`), and leaves the default. */
static void read_flag(const char *name, int *field, const char *fallback) {
  const char *v = secure_getenv(name);
  if (v == NULL)
    return;
  if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0) {
    *field = *v == '1';
    return;
  }
  config_warn("heapprof: %s=\"%.64s\" is not valid: expected 0 or 1; %s",
              name, v, fallback);
}

static void read_max_mem(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_MAX_MEM");
  uint64_t bytes;
  if (v == NULL)
    return;
  if (config_parse_bytes(v, &bytes) == 0 && bytes >= ((uint64_t)16 << 20)) {
    c->max_mem = bytes;
    return;
  }
  config_warn("heapprof: HEAPPROF_MAX_MEM=\"%.64s\" is not valid: expected "
              "bytes of profiler memory, at least 16M (K/M/G allowed); using "
              "1G", v);
}

static void read_interval(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_INTERVAL");
  if (v == NULL || config_parse_seconds(v, &c->interval) == 0)
    return;
  c->interval = 0;
  config_warn("heapprof: HEAPPROF_INTERVAL=\"%.64s\" is not valid: expected "
              "seconds between profiles, at least 1 (s/m/h suffixes allowed: "
              "30, 5m, 1h); no periodic profiles", v);
}

static void read_growth(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_GROWTH");
  uint64_t bytes;
  if (v == NULL)
    return;
  if (config_parse_bytes(v, &bytes) == 0 && bytes > 0) {
    c->growth = (int64_t)bytes;
    return;
  }
  config_warn("heapprof: HEAPPROF_GROWTH=\"%.64s\" is not valid: expected "
              "bytes of in-use growth between profiles, above 0 (K/M/G "
              "allowed: 64M, 1G); no growth profiles", v);
}


/* HEAPPROF_LEAKWATCH=SECONDS[:LOOKS[:LIVE]] */
static int parse_leakwatch(const char *v, hp_config_t *c) {
  char buf[96], *looks, *live;
  if (strlen(v) >= sizeof buf)
    return -1;
  strcpy(buf, v);
  looks = strchr(buf, ':');
  live = looks ? strchr(looks + 1, ':') : NULL;
  if (looks)
    *looks++ = '\0';
  if (live)
    *live++ = '\0';
  char *end;
  long n = looks ? strtol(looks, &end, 10) : 5;
  uint64_t level = 0;
  if ((looks && (*looks < '0' || *looks > '9' || *end != '\0')) || n < 2 ||
      n > 1000 || (live && (config_parse_bytes(live, &level) != 0 || level == 0)))
    return -1;
  if (config_parse_seconds(buf, &c->leak_period) != 0)
    return -1;
  c->leak_rises = (int)n;
  c->leak_live = level;
  return 0;
}

static void read_leakwatch(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_LEAKWATCH");
  if (v == NULL || parse_leakwatch(v, c) == 0)
    return;
  c->leak_period = 0;
  c->leak_live = 0;
  config_warn("heapprof: HEAPPROF_LEAKWATCH=\"%.64s\" is not valid: expected "
              "SECONDS[:LOOKS[:LIVE]] (look every SECONDS; warn after LOOKS "
              "looks in a row, 2-1000, default 5, of rising in-use bytes, or "
              "of mallocs - frees above LIVE: 60, 30s:10, 60:5:1M); leak "
              "watch off", v);
}

/* The address is checked where it is used (http.c), with the socket. */
static void read_http(hp_config_t *c) {
  const char *v = secure_getenv("HEAPPROF_HTTP");
  if (v != NULL && strlen(v) < sizeof c->http)
    strcpy(c->http, v);
  else if (v != NULL)
    config_warn("heapprof: HEAPPROF_HTTP is too long; no HTTP server");
  read_flag("HEAPPROF_HTTP_REMOTE", &c->http_remote,
            "using 0 (loopback only)");
}

void config_read(hp_config_t *c) {
  memset(c, 0, sizeof *c);
  c->rate = DEFAULT_RATE;
  strcpy(c->out, DEFAULT_OUT);
  c->signal = DEFAULT_SIGNAL;
  c->depth = DEFAULT_DEPTH;
  c->max_mem = DEFAULT_MAX_MEM;
  read_rate(c);
  read_out(c);
  read_signal(c);
  read_seed(c);
  read_depth(c);
  read_flag("HEAPPROF_VERBOSE", &c->verbose, "using 0");
  read_max_mem(c);
  read_interval(c);
  read_growth(c);
  read_flag("HEAPPROF_PEAK", &c->peak, "peak tracking off");
  read_http(c);
  read_leakwatch(c);
}
