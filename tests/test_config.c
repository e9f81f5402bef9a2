/*
 * test_config — every HEAPPROF_* variable: good values are taken, bad ones
 * give one stderr line naming the variable and leave the default.
 */
#define _GNU_SOURCE
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
                        "HEAPPROF_HTTP_REMOTE"};
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

int main(void) {
  hp_config_t c;
  char err[2048];
  clear_env();
  CHECK(read_captured(&c, err, sizeof err) == 0, "defaults warned: %s", err);
  CHECK(c.rate == 524288 && c.signal == SIGUSR2 && c.depth == 64 &&
            !c.out_set && strcmp(c.out, "heapprof.%p.%n.pb.gz") == 0 &&
            !c.seed_set, "defaults");

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
  printf("ok\n");
  return 0;
}
