/*
 * test_att_redis — `heapprof attach` into Debian's redis-server (linked
 * with jemalloc: the next allocator is not glibc's) while redis-benchmark
 * loads it: attach --rate 4096, dump, detach, attach again, dump, detach.
 *
 * Checks: every redis-benchmark run (they follow each other without a gap
 * from before the first attach until two whole runs after the last
 * detach) exits 0 without an error line; PING, DBSIZE and INFO memory
 * answer; keys (strings and a hash, in db 1) written before the first
 * attach and after the last detach read back equal; each profile has
 * samples in redis-server's own code, under its event loop (aeMain); the
 * server's log has no crash report, and SHUTDOWN NOSAVE ends it with
 * status 0.
 *
 * usage: test_att_redis HEAPPROF_CLI
 * Needs /usr/bin/redis-server, redis-benchmark, redis-cli and gdb; a
 * missing one fails the test. Hang detectors only (att_util.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "att_util.h"

#define REDIS "/usr/bin/redis-server"
#define BENCH "/usr/bin/redis-benchmark"
#define RCLI "/usr/bin/redis-cli"
#define KEYS 2000

static char sock[PATH_MAX + 16], dir[PATH_MAX];
static char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};

static char *slurp_path(const char *path) {
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "open %s", path);
  size_t cap = 1 << 16, len = 0, n;
  char *s = malloc(cap);
  while ((n = fread(s + len, 1, cap - len - 1, f)) > 0)
    if ((len += n) + 1 >= cap)
      s = realloc(s, cap *= 2);
  s[len] = '\0';
  fclose(f);
  return s;
}

/* redis-cli -s SOCK -n DB with the commands of `cmds` (one a line) on its
 * stdin: its replies, one a line. */
static char *redis(int db, const char *cmds) {
  char in[PATH_MAX + 16], dbs[16];
  static int seq;
  snprintf(in, sizeof in, "%s/cmds.%d", dir, seq++);
  FILE *f = fopen(in, "w");
  CHECK(f != NULL && fputs(cmds, f) >= 0 && fclose(f) == 0, "write %s", in);
  snprintf(dbs, sizeof dbs, "%d", db);
  char *argv[] = {RCLI, "-s", sock, "-n", dbs, NULL};
  att_result_t r = att_run_stdin(argv, plain_env, in);
  CHECK(r.status == 0, "redis-cli: status %d\n%s%s", r.status, r.err, r.out);
  free(r.err);
  return r.out;
}

static char *value(const char *tag, int i) {
  static char v[4096];
  int n = snprintf(v, sizeof v, "%s-%d-", tag, i);
  int len = 8 + (i * 37) % 3000;
  for (int j = n; j < len; j++)
    v[j] = (char)('a' + (i + j) % 26);
  v[len > n ? len : n] = '\0';
  return v;
}

/* Writes KEYS strings tag:i and a hash h:tag of KEYS/4 fields into db 1. */
static void write_keys(const char *tag) {
  size_t cap = (size_t)KEYS * 3200, len = 0;
  char *cmds = malloc(cap);
  for (int i = 0; i < KEYS; i++)
    len += (size_t)snprintf(cmds + len, cap - len, "SET %s:%d %s\n", tag, i, value(tag, i));
  for (int i = 0; i < KEYS / 4; i++)
    len += (size_t)snprintf(cmds + len, cap - len, "HSET h:%s f%d %s\n", tag, i,
                            value("field", i));
  char *out = redis(1, cmds);
  /* SET answers OK, HSET 1: nothing else. */
  size_t oks = 0, ones = 0;
  for (char *l = out; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
    oks += strncmp(l, "OK\n", 3) == 0;
    ones += strncmp(l, "1\n", 2) == 0;
  }
  CHECK(oks == KEYS && ones == KEYS / 4, "writing the %s keys: %zu OK, %zu 1:\n%.2000s", tag,
        oks, ones, out);
  free(out), free(cmds);
}

/* Reads them back: every value as written. */
static void read_keys(const char *tag) {
  size_t cap = (size_t)KEYS * 64, len = 0;
  char *cmds = malloc(cap);
  for (int i = 0; i < KEYS; i++)
    len += (size_t)snprintf(cmds + len, cap - len, "GET %s:%d\n", tag, i);
  for (int i = 0; i < KEYS / 4; i++)
    len += (size_t)snprintf(cmds + len, cap - len, "HGET h:%s f%d\n", tag, i);
  char *out = redis(1, cmds);
  char *line = out;
  for (int i = 0; i < KEYS + KEYS / 4; i++) {
    size_t n = strcspn(line, "\n");
    const char *want = i < KEYS ? value(tag, i) : value("field", i - KEYS);
    CHECK(n == strlen(want) && strncmp(line, want, n) == 0,
          "%s key %d reads back '%.*s', want '%s'", tag, i, (int)(n > 200 ? 200 : n), line,
          want);
    line += n + (line[n] != '\0');
  }
  free(out), free(cmds);
  printf("ok: the %d %s keys and %d hash fields read back equal\n", KEYS, tag, KEYS / 4);
}

/* ---- the load ---- */

typedef struct loader {
  pid_t pid;
  int runs;   /* read end: one byte per finished run */
  int done;   /* runs finished so far */
} loader_t;

/* One redis-benchmark after another until `stop` exists; exits 1 (with
 * the run's output on stderr) at the first run that fails. */
static void loader_main(int report, const char *stop) {
  char outp[PATH_MAX + 16], *argv[] = {BENCH, "-s", sock, "-q", "-n", "20000", "-c", "20",
      "-r", "100000", "-d", "200", "-t", "set,get,incr,lpush,lpop,sadd,hset,mset,lrange_100",
      NULL};
  snprintf(outp, sizeof outp, "%s/bench.out", dir);
  for (int run = 0; access(stop, F_OK) != 0; run++) {
    int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t b = fork();
    if (b == 0) {
      dup2(fd, 1), dup2(fd, 2);
      execve(argv[0], argv, plain_env);
      _exit(127);
    }
    close(fd);
    int status;
    waitpid(b, &status, 0);
    char *out = slurp_path(outp);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strstr(out, "rror") ||
        strstr(out, "ERR") || strstr(out, "requests per second") == NULL) {
      fprintf(stderr, "redis-benchmark run %d: status %#x\n%s\n", run, status, out);
      _exit(1);
    }
    free(out);
    if (write(report, "r", 1) != 1)
      _exit(2);
  }
  _exit(0);
}

/* Waits (hang-detected) until n runs have finished. */
static void loader_wait_runs(loader_t *l, int n) {
  struct timespec t = {0, 20000000};
  for (int i = 0; l->done < n; i++) {
    char c;
    ssize_t k = read(l->runs, &c, 1);
    CHECK(k != 0, "the load ended early (a redis-benchmark run failed: see above)");
    if (k == 1) {
      l->done++;
      i = 0;
      continue;
    }
    CHECK(i < ATT_DEADLINE_S * 50, "no redis-benchmark run finished in %d s (a hang)",
          ATT_DEADLINE_S);
    nanosleep(&t, NULL);
  }
}

static void profile_has_redis(const char *path, const char *module) {
  tl_profile_t p;
  int64_t v[4];
  tl_read_profile(path, &p);
  size_t in_redis = att_samples_in_module(&p, module);
  size_t under_loop = tl_site_any(&p, "aeMain", v);
  CHECK(p.nsamples > 0 && in_redis > 0 && under_loop > 0,
        "%s: %zu samples, %zu in %s, %zu under aeMain", path, p.nsamples, in_redis, module,
        under_loop);
  printf("ok: %s: %zu samples, %zu in %s's code, %zu under aeMain\n", path, p.nsamples,
         in_redis, module, under_loop);
  tl_free_profile(&p);
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: test_att_redis HEAPPROF_CLI");
  att_require("/usr/bin/gdb", "gdb, which heapprof attach runs");
  att_require(REDIS, "redis-server (apt-get install redis-server)");
  att_require(BENCH, "redis-benchmark (apt-get install redis-tools)");
  att_require(RCLI, "redis-cli (apt-get install redis-tools)");
  att_set_cli(argv[1]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(dir, sizeof dir, "%s", tl_tmpdir());
  snprintf(sock, sizeof sock, "%s/redis.sock", dir);
  char logf[PATH_MAX + 16], stop[PATH_MAX + 16], out[PATH_MAX + 32], module[PATH_MAX];
  snprintf(logf, sizeof logf, "%s/redis.log", dir);
  snprintf(stop, sizeof stop, "%s/stop-load", dir);
  snprintf(out, sizeof out, "%s/redis.%%n.pb.gz", dir);
  /* redis-server is a link to redis-check-rdb: the mapping's name. */
  char real[PATH_MAX];
  CHECK(realpath(REDIS, real) != NULL, "realpath %s", REDIS);
  snprintf(module, sizeof module, "/%s", strrchr(real, '/') + 1);

  att_proc_t srv;
  char *srv_argv[] = {REDIS, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
                      "--save", "", "--appendonly", "no", "--logfile", logf, "--dir", dir,
                      "--daemonize", "no", NULL};
  att_start(&srv, srv_argv, plain_env);
  for (int i = 0; access(sock, F_OK) != 0; i++) {
    struct timespec t = {0, 20000000};
    nanosleep(&t, NULL);
    CHECK(i < ATT_DEADLINE_S * 50, "redis-server made no socket in %d s", ATT_DEADLINE_S);
  }
  char *pong = redis(0, "PING\n");
  CHECK(strcmp(pong, "PONG\n") == 0, "PING: %s", pong);
  free(pong);
  write_keys("before");

  loader_t load;
  int runs[2];
  CHECK(pipe2(runs, O_CLOEXEC) == 0, "pipe");
  fflush(NULL);
  load.pid = fork();
  if (load.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(runs[0]);
    loader_main(runs[1], stop);
  }
  close(runs[1]);
  load.runs = runs[0], load.done = 0;
  fcntl(load.runs, F_SETFL, O_NONBLOCK);
  loader_wait_runs(&load, 1); /* under load from here on */

  char *profiles[2];
  for (int round = 0; round < 2; round++) {
    att_attach(srv.pid, "4096", out, NULL);
    profiles[round] = att_dump(srv.pid);
    att_detach(srv.pid);
    printf("ok: round %d: attached, dumped %s, detached\n", round + 1, profiles[round]);
  }
  /* Two whole runs after the last detach: blocks sampled while attached
   * are now freed by jemalloc directly. */
  int after = load.done;
  loader_wait_runs(&load, after + 2);
  FILE *f = fopen(stop, "w");
  CHECK(f != NULL && fclose(f) == 0, "create %s", stop);
  int status;
  waitpid(load.pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "a redis-benchmark run failed (status %#x; its output is above)", status);
  char c;
  while (read(load.runs, &c, 1) == 1)
    load.done++;
  printf("ok: %d redis-benchmark runs, none with an error\n", load.done);

  write_keys("after");
  read_keys("before");
  read_keys("after");
  char *answers = redis(1, "PING\nDBSIZE\n");
  char want[64];
  snprintf(want, sizeof want, "PONG\n%d\n", 2 * KEYS + 2);
  CHECK(strcmp(answers, want) == 0, "PING, DBSIZE in db 1: '%s', want '%s'", answers, want);
  free(answers);
  char *info = redis(0, "INFO memory\n");
  CHECK(strstr(info, "used_memory:") && strstr(info, "mem_allocator:jemalloc") &&
            strstr(info, "allocator_allocated:"),
        "INFO memory:\n%s", info);
  free(info);
  printf("ok: PING, DBSIZE, INFO memory (mem_allocator:jemalloc)\n");

  profile_has_redis(profiles[0], module);
  profile_has_redis(profiles[1], module);

  char *bye = redis(0, "SHUTDOWN NOSAVE\n");
  free(bye);
  status = att_wait(&srv);
  char *log = slurp_path(logf);
  const char *crash[] = {"crashed by signal", "BUG REPORT", "Guru Meditation",
                         "ASSERTION FAILED", "Segmentation fault", "STACK TRACE"};
  for (size_t i = 0; i < sizeof crash / sizeof *crash; i++)
    CHECK(strstr(log, crash[i]) == NULL, "redis's log has '%s':\n%s", crash[i], log);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "redis-server ended with status %#x:\n%s",
        status, log);
  printf("ok: no crash report in redis's log; SHUTDOWN NOSAVE: status 0\n");
  free(log);
  return 0;
}
