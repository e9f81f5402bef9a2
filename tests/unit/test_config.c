/*
 * test_config — every HEAPPROF_* variable: good values are taken, bad ones
 * give one stderr line naming the variable and leave the default; a
 * HEAPPROF_OUT template whose longest expansion cannot fit PATH_MAX is bad;
 * config_check (what the heapprof command asks) agrees with config_read on
 * every value tried; each HEAPPROF_DEMANGLE word gives its style; errno is
 * left as it was.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testlib.h"

/* Reads the config with stderr captured; returns the lines written. */
static int read_captured(hp_config_t *c, char *err, size_t cap) {
  char path[512];
  snprintf(path, sizeof path, "%s/stderr", tl_tmpdir());
  fflush(stderr);
  int saved = dup(2);
  FILE *f = fopen(path, "w+");
  dup2(fileno(f), 2);
  config_read(c);
  dup2(saved, 2);
  close(saved);
  rewind(f);
  size_t n = fread(err, 1, cap - 1, f);
  err[n] = '\0';
  fclose(f);
  int lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += err[i] == '\n';
  return lines;
}

static void clear_env(void) {
  const char *vars[] = {"HEAPPROF_RATE",     "HEAPPROF_OUT",
                        "HEAPPROF_SIGNAL",   "HEAPPROF_SEED",
                        "HEAPPROF_DEPTH",    "HEAPPROF_VERBOSE",
                        "HEAPPROF_MAX_MEM",  "HEAPPROF_INTERVAL",
                        "HEAPPROF_GROWTH",   "HEAPPROF_PEAK",
                        "HEAPPROF_LEAKWATCH", "HEAPPROF_HTTP",
                        "HEAPPROF_HTTP_REMOTE", "HEAPPROF_DEMANGLE"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    unsetenv(vars[i]);
}

static void bad(const char *var, const char *value) {
  hp_config_t c, d;
  char err[2048];
  clear_env();
  CHECK(read_captured(&d, err, sizeof err) == 0, "defaults warned: %s", err);
  setenv(var, value, 1);
  int lines = read_captured(&c, err, sizeof err);
  CHECK(lines == 1 && strstr(err, var) != NULL,
        "%s=\"%s\": want one line naming it, got %d:\n%s", var, value, lines,
        err);
  c.out_set = d.out_set; /* compare everything else with the defaults */
  CHECK(memcmp(&c, &d, sizeof c) == 0, "%s=\"%s\" changed the config", var,
        value);
}

/* Whether config_read takes `value` for `var` silently. */
static int read_takes(const char *var, const char *value) {
  hp_config_t c;
  char err[2048];
  clear_env();
  setenv(var, value, 1);
  return read_captured(&c, err, sizeof err) == 0;
}

/* config_check judges each value exactly as config_read does. */
static void check_agrees(void) {
  static const char *const cases[][2] = {
      {"HEAPPROF_RATE", "1"},        {"HEAPPROF_RATE", "4K"},
      {"HEAPPROF_RATE", "lots"},     {"HEAPPROF_RATE", "-1"},
      {"HEAPPROF_OUT", "/tmp/a.%p"}, {"HEAPPROF_OUT", "/tmp/%z"},
      {"HEAPPROF_OUT", ""},          {"HEAPPROF_OUT", "/tmp/"},
      {"HEAPPROF_SIGNAL", "USR1"},   {"HEAPPROF_SIGNAL", "KILL"},
      {"HEAPPROF_SEED", "0x2a"},     {"HEAPPROF_SEED", "12abc"},
      {"HEAPPROF_DEPTH", "5"},       {"HEAPPROF_DEPTH", "5x"},
      {"HEAPPROF_DEPTH", "0"},       {"HEAPPROF_VERBOSE", "1"},
      {"HEAPPROF_VERBOSE", "2"},     {"HEAPPROF_MAX_MEM", "16M"},
      {"HEAPPROF_MAX_MEM", "1M"},    {"HEAPPROF_INTERVAL", "5m"},
      {"HEAPPROF_INTERVAL", "0"},    {"HEAPPROF_GROWTH", "1G"},
      {"HEAPPROF_GROWTH", "0"},      {"HEAPPROF_PEAK", "1"},
      {"HEAPPROF_PEAK", "yes"},      {"HEAPPROF_LEAKWATCH", "30s:10:1M"},
      {"HEAPPROF_LEAKWATCH", "60:1"}, {"HEAPPROF_HTTP", "127.0.0.1:0"},
      {"HEAPPROF_HTTP", "[::1]:6060"}, {"HEAPPROF_HTTP", "foo:bar"},
      {"HEAPPROF_HTTP", "127.0.0.1:80x"}, {"HEAPPROF_HTTP", "10.0.0.1:6060"},
      {"HEAPPROF_HTTP_REMOTE", "1"}, {"HEAPPROF_HTTP_REMOTE", "on"},
      {"HEAPPROF_DEMANGLE", "templates"}, {"HEAPPROF_DEMANGLE", "NONE"},
      {"HEAPPROF_DEMANGLE", "default"}, {"HEAPPROF_DEMANGLE", "1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *var = cases[i][0], *value = cases[i][1], *accepts = NULL;
    int takes = read_takes(var, value);
    int checked = config_check(var, value, &accepts) == 0;
    CHECK(takes == checked && accepts != NULL && *accepts != '\0',
          "%s=\"%s\": config_read %s it, config_check %s it", var, value,
          takes ? "takes" : "refuses", checked ? "takes" : "refuses");
  }
  const char *accepts;
  CHECK(config_check("HEAPPROF_NOPE", "1", &accepts) == -1, "unknown name");
  clear_env();
  setenv("HEAPPROF_HTTP_REMOTE", "1", 1);
  CHECK(config_check("HEAPPROF_HTTP", "10.0.0.1:6060", NULL) == 0,
        "HEAPPROF_HTTP_REMOTE=1 not taken into account");
  clear_env();
  printf("ok: config_check agrees with config_read on %zu values\n",
         sizeof cases / sizeof *cases);
}

/* "/" + `fill` bytes of 'a' + `tail`. */
static char *template_of(size_t fill, const char *tail) {
  char *t = malloc(fill + strlen(tail) + 2);
  t[0] = '/';
  memset(t + 1, 'a', fill);
  strcpy(t + 1 + fill, tail);
  return t;
}

/* The widest expansion of "/" + n×'a' + ".%p.%n.%t" is n + 54 bytes
 * (10-digit pid, 20-digit %n and %t), n + 59 with ".peak": it fits a
 * PATH_MAX buffer with its NUL up to n = PATH_MAX - 60. The temporary name
 * ".heapprof-<pid>-<n>.tmp" (at most 45 bytes) sits in the directory, so
 * "/" + n×'a' + "/x" fits up to n = PATH_MAX - 48. */
static void templates(void) {
  char *t = template_of(PATH_MAX - 60, ".%p.%n.%t");
  CHECK(config_parse_out(t) == 0, "a template that fits was refused");
  free(t);
  t = template_of(PATH_MAX - 59, ".%p.%n.%t");
  CHECK(config_parse_out(t) == -1, "a template one byte too long was taken");
  bad("HEAPPROF_OUT", t);
  free(t);
  t = template_of(PATH_MAX - 48, "/x");
  CHECK(config_parse_out(t) == 0, "a directory that fits was refused");
  free(t);
  t = template_of(PATH_MAX - 47, "/x");
  CHECK(config_parse_out(t) == -1, "no room for the temporary name, taken");
  free(t);
  t = template_of(PATH_MAX, "");
  bad("HEAPPROF_OUT", t); /* longer than the buffer itself */
  free(t);
  CHECK(config_parse_out("100%%.%n") == 0 && config_parse_out("x") == 0,
        "plain templates refused");
  const char *unknown[] = {"/tmp/%z", "/tmp/x%", "/tmp/%P", "/tmp/%/x",
                           "/tmp/dir/", "%"};
  for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
    CHECK(config_parse_out(unknown[i]) == -1, "%s taken", unknown[i]);
    bad("HEAPPROF_OUT", unknown[i]);
  }
  printf("ok: templates judged by their longest expansion\n");
}

static void http_addresses(void) {
  hp_config_t c;
  char err[2048];
  const char *good[] = {"127.0.0.1:0", "[::1]:6060", "localhost:6060", ":0",
                        "127.0.0.2:65535", ""};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    clear_env();
    setenv("HEAPPROF_HTTP", good[i], 1);
    CHECK(read_captured(&c, err, sizeof err) == 0 &&
              strcmp(c.http, good[i]) == 0, "HEAPPROF_HTTP=%s: %s", good[i], err);
  }
  const char *bads[] = {"foo:bar", "127.0.0.1:80x", "127.0.0.1:", "127.0.0.1",
                        "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:65536",
                        "::1:6060", "[::1]6060", "[127.0.0.1]:80",
                        "10.0.0.1:6060", "[2001:db8::1]:80"};
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++)
    bad("HEAPPROF_HTTP", bads[i]);
  clear_env();
  setenv("HEAPPROF_HTTP_REMOTE", "1", 1);
  setenv("HEAPPROF_HTTP", "10.0.0.1:6060", 1);
  CHECK(read_captured(&c, err, sizeof err) == 0 &&
            strcmp(c.http, "10.0.0.1:6060") == 0 && c.http_remote,
        "a remote address with HEAPPROF_HTTP_REMOTE=1: %s", err);
  printf("ok: HTTP addresses\n");
}

/* Each word, in any case, gives its style; pprof's own "default" and
 * near misses are refused. */
static void demangle_styles(void) {
  static const struct {
    const char *word;
    int style;
  } good[] = {{"simple", CONFIG_DEMANGLE_SIMPLE},
              {"templates", CONFIG_DEMANGLE_TEMPLATES},
              {"full", CONFIG_DEMANGLE_FULL},
              {"none", CONFIG_DEMANGLE_NONE},
              {"Full", CONFIG_DEMANGLE_FULL},
              {"NONE", CONFIG_DEMANGLE_NONE}};
  hp_config_t c;
  char err[2048];
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    clear_env();
    setenv("HEAPPROF_DEMANGLE", good[i].word, 1);
    CHECK(read_captured(&c, err, sizeof err) == 0 &&
              c.demangle == good[i].style,
          "HEAPPROF_DEMANGLE=%s: style %d, want %d: %s", good[i].word,
          c.demangle, good[i].style, err);
  }
  const char *bads[] = {"", "default", "fancy", "simple ", " full", "ful",
                        "templates,full", "0", "2"};
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++)
    bad("HEAPPROF_DEMANGLE", bads[i]);
  printf("ok: HEAPPROF_DEMANGLE styles\n");
}

static void seeds(void) {
  uint64_t v;
  CHECK(config_parse_seed("010", &v) == 0 && v == 10, "010 is decimal");
  CHECK(config_parse_seed("0xFFFFFFFFFFFFFFFF", &v) == 0 && v == UINT64_MAX,
        "largest hex seed");
  CHECK(config_parse_seed("18446744073709551615", &v) == 0 && v == UINT64_MAX,
        "largest decimal seed");
  const char *bads[] = {"0x0x5", "0x", "12abc", "-1", "+1", " 1", "1 ",
                        "18446744073709551616", "0x10000000000000000", ""};
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++)
    CHECK(config_parse_seed(bads[i], &v) == -1, "seed \"%s\" taken", bads[i]);
  printf("ok: seeds\n");
}

int main(void) {
  hp_config_t c;
  char err[2048];
  clear_env();
  CHECK(read_captured(&c, err, sizeof err) == 0, "defaults warned: %s", err);
  CHECK(c.rate == 524288 && c.signal == SIGUSR2 && c.depth == 64 &&
            !c.out_set && strcmp(c.out, "heapprof.%p.%n.pb.gz") == 0 &&
            !c.seed_set && c.demangle == CONFIG_DEMANGLE_SIMPLE, "defaults");

  setenv("HEAPPROF_RATE", "4K", 1);
  setenv("HEAPPROF_OUT", "/tmp/x.%p.%n.pb.gz", 1);
  setenv("HEAPPROF_SIGNAL", "SIGUSR1", 1);
  setenv("HEAPPROF_SEED", "0x2a", 1);
  setenv("HEAPPROF_DEPTH", "128", 1);
  setenv("HEAPPROF_MAX_MEM", "64M", 1);
  setenv("HEAPPROF_INTERVAL", "5m", 1);
  setenv("HEAPPROF_GROWTH", "64M", 1);
  setenv("HEAPPROF_LEAKWATCH", "30s:10:1M", 1);
  CHECK(read_captured(&c, err, sizeof err) == 0, "good values warned: %s", err);
  CHECK(c.interval == 300 && c.growth == 64 << 20 && c.leak_period == 30 &&
            c.leak_rises == 10 && c.leak_live == 1 << 20,
        "control-plane values not taken");
  CHECK(c.rate == 4096 && c.out_set && c.signal == SIGUSR1 && c.seed == 42 &&
            c.seed_set && c.depth == 128 && c.max_mem == 64 << 20,
        "good values not taken");
  int sig;
  CHECK(config_parse_signal("none", &sig) == 0 && sig == 0, "none");
  CHECK(config_parse_signal("12", &sig) == 0 && sig == 12, "number");
  CHECK(config_parse_signal("usr2", &sig) == 0 && sig == SIGUSR2, "lower case");

  const char *rates[] = {"", "abc", "-1", "1.5", "99999999999999999999",
                         "9223372036854775808", "10X", " 5", "8G8"};
  for (size_t i = 0; i < sizeof rates / sizeof *rates; i++)
    bad("HEAPPROF_RATE", rates[i]);
  bad("HEAPPROF_OUT", "");
  bad("HEAPPROF_OUT", "/tmp/%z");
  bad("HEAPPROF_SIGNAL", "KILL");
  bad("HEAPPROF_SIGNAL", "SEGV");
  bad("HEAPPROF_SIGNAL", "999");
  bad("HEAPPROF_SIGNAL", "USR3");
  bad("HEAPPROF_SEED", "-4");
  bad("HEAPPROF_SEED", "seed");
  bad("HEAPPROF_DEPTH", "0");
  bad("HEAPPROF_DEPTH", "257");
  bad("HEAPPROF_DEPTH", "1e3");
  bad("HEAPPROF_VERBOSE", "yes");
  bad("HEAPPROF_MAX_MEM", "1K");
  bad("HEAPPROF_INTERVAL", "0");
  bad("HEAPPROF_INTERVAL", "5x");
  bad("HEAPPROF_GROWTH", "0");
  bad("HEAPPROF_GROWTH", "lots");
  bad("HEAPPROF_PEAK", "yes");
  bad("HEAPPROF_LEAKWATCH", "60:1");
  bad("HEAPPROF_LEAKWATCH", "60:5:0");
  bad("HEAPPROF_LEAKWATCH", "soon");
  bad("HEAPPROF_HTTP_REMOTE", "2");
  bad("HEAPPROF_RATE", "1\n2"); /* a quoted newline would break the line */
  bad("HEAPPROF_LEAKWATCH", "60:5x");
  bad("HEAPPROF_LEAKWATCH", "60:1001");
  templates();
  http_addresses();
  demangle_styles();
  seeds();
  check_agrees();
  clear_env();
  setenv("HEAPPROF_DEPTH", "5x", 1);
  errno = EDOM;
  config_read(&c);
  CHECK(errno == EDOM, "config_read changed errno to %d", errno);
  printf("ok\n");
  return 0;
}
