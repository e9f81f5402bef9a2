/*
 * test_att_cli — `heapprof attach` / `detach` / `dump` as commands that
 * may be interrupted, run twice at once, or find records of processes long
 * gone, with the real library.
 *
 * usage: test_att_cli MODE HEAPPROF_CLI ATT_CLI_TARGET ATT_MT
 * (att_cli_target: main blocked in read, a thread allocating now and then)
 *   killed     The attach command's process group gets SIGKILL, SIGTERM,
 *              SIGINT or SIGHUP (as from a terminal) while its gdb is
 *              about to run. To hit that moment every time, the command's
 *              PATH starts with a `gdb` of the test's own, a shell script
 *              that says it started and waits for a go, then runs the real
 *              gdb. Whatever the signal, the process must end up attached
 *              WITH its record (settled, not pending; `dump` finds the
 *              attach's --out, a second attach says "already attached"),
 *              not stopped and not traced; nothing of the command may be
 *              left on disk (no gdb script in TMPDIR, only PID.attach in
 *              the state directory). SIGTERM, SIGINT and SIGHUP act after
 *              the command's report: it says "attached to", then ends by
 *              the signal. The detach then removes the record. Then a
 *              pending record left behind (command and keeper both killed):
 *              dump uses it, and the next attach settles it — "already
 *              attached, by an earlier heapprof attach whose command was
 *              interrupted" if the library says so, else a new attach.
 *   stale      Records of processes that have exited (and leftover lock
 *              and temporary files of such pids), and a record of a live
 *              pid with another start time (a reused pid), are removed by
 *              attach, by dump and by detach — but not while another
 *              command holds that pid's lock (the test holds it: an attach
 *              of a new process with that pid would be under way). A
 *              process's own record is kept.
 *   concurrent An attach whose gdb has not run yet (held by the test's
 *              gdb) and a second attach, or a detach and an attach, or an
 *              attach and a detach: the second command says one line
 *              ("another heapprof attach or detach of PID is in progress"),
 *              exit status 1, and changes nothing (the library is not
 *              mapped yet; the record is the first one's). Then five times
 *              two attaches started together: exactly one attaches, the
 *              other says "in progress" or "already attached".
 *   reattach   att_mt: attach with --http on one port, --rate 4096 and an
 *              --out; detach; attach again with another port, --rate 1 and
 *              another --out. The second attach's settings are the ones in
 *              force (dump's file follows the new --out, its period is 1,
 *              the new port serves a profile of period 1) and the first
 *              port is closed at the detach; the sockets in the process's
 *              descriptor tables (every thread's) are back to what they
 *              were before the first attach after each detach.
 *   statedir   XDG_RUNTIME_DIR unusable four ways (its heapprof directory
 *              a symbolic link, or mode 0755; XDG_RUNTIME_DIR a file, or
 *              under a missing directory): attach and detach refuse before
 *              gdb runs (the test's gdb counts its starts), with one line
 *              that names the state and says the process is unchanged; and
 *              it is (maps, tracer; still attached for the detach).
 *   messages   What the library says while it starts (the port it serves
 *              for --http 127.0.0.1:0; that a taken port cannot be served)
 *              is printed by the command; the program's stderr stays
 *              empty through both attaches and detaches.
 *   idle_dump  /bin/sleep, which never allocates: `heapprof dump` after the
 *              attach is answered (the dump thread starts at the attach,
 *              not at a first sample that never comes).
 *
 * Hang detectors only (att_util.h): no assertion on time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "att_util.h"

static char *cli, *quiet, *mt;
static char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};
static char wrap_dir[PATH_MAX - 64], started_path[PATH_MAX], go_path[PATH_MAX];
static char state_dir[PATH_MAX - 64];

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* Polls `cond` every 10 ms; not true within ATT_DEADLINE_S is a hang. */
#define WAIT_UNTIL(cond, ...)                                         \
  do {                                                                \
    int waited_ = 0;                                                  \
    while (!(cond)) {                                                 \
      CHECK(waited_++ < ATT_DEADLINE_S * 100, __VA_ARGS__);           \
      pause_ms(10);                                                   \
    }                                                                 \
  } while (0)

static char *slurp_path(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 1 << 16, len = 0;
  char *s = malloc(cap);
  ssize_t n;
  while ((n = read(fd, s + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  s[len] = '\0';
  close(fd);
  return s;
}

static void write_path(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && close(fd) == 0,
        "write %s: %s", path, strerror(errno));
}

/* ---- the test's gdb ---- */

/* wrap_dir/gdb: appends its pid to `started`, waits for `go` to exist,
 * then runs the real gdb with the same arguments (and descriptors). */
static void make_wrapper(void) {
  snprintf(wrap_dir, sizeof wrap_dir, "%.3900s/wrap", tl_tmpdir());
  snprintf(started_path, sizeof started_path, "%s/gdb.started", tl_tmpdir());
  snprintf(go_path, sizeof go_path, "%s/gdb.go", tl_tmpdir());
  CHECK(mkdir(wrap_dir, 0700) == 0, "mkdir %s", wrap_dir);
  char script[4 * PATH_MAX], path[PATH_MAX + 8];
  snprintf(script, sizeof script,
           "#!/bin/sh\necho $$ >> '%s'\nwhile [ ! -e '%s' ]; do sleep 0.02; done\n"
           "exec /usr/bin/gdb \"$@\"\n", started_path, go_path);
  snprintf(path, sizeof path, "%s/gdb", wrap_dir);
  write_path(path, script, 0755);
}

static int gdb_starts(void) {
  char *s = slurp_path(started_path);
  int n = 0;
  for (char *c = s; c != NULL && *c; c++)
    n += *c == '\n';
  free(s);
  return n;
}

/* Whether a gdb the test's wrapper started (its pid is the wrapper's:
 * exec keeps it) still runs. */
static int gdb_running(void) {
  char *s = slurp_path(started_path);
  int running = 0;
  for (char *c = s; c != NULL && *c; c = strchr(c, '\n') + 1)
    running |= kill((pid_t)atoi(c), 0) == 0 || errno != ESRCH;
  free(s);
  return running;
}

static void gdb_hold(void) { unlink(go_path); }
static void gdb_go(void) { write_path(go_path, "", 0600); }

/* The command's environment with the test's gdb first on PATH. */
static char **wrapped_env(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s:/usr/bin:/bin", wrap_dir);
  return att_cli_env(path);
}

/* ---- commands in the background ---- */

typedef struct bg {
  pid_t pid; /* also its process group */
  int out, err;
} bg_t;


/* argv (NULL-ended) with env, in a process group of its own as a shell
 * runs a foreground job; stdin /dev/null. */
static bg_t bg_start(char *const argv[], char *const env[]) {
  bg_t b = {0, att_tmp_fd("bg.out"), att_tmp_fd("bg.err")};
  fflush(NULL);
  b.pid = fork();
  CHECK(b.pid >= 0, "fork");
  if (b.pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0), dup2(b.out, 1), dup2(b.err, 2);
    execve(argv[0], argv, env);
    _exit(127);
  }
  setpgid(b.pid, b.pid);
  return b;
}

static char *fd_text(int fd) {
  char *s = calloc(1, 65536);
  ssize_t n = pread(fd, s, 65535, 0);
  s[n > 0 ? n : 0] = '\0';
  return s;
}

/* Waits (hang-detected) for the command; its wait status, its stderr. */
static int bg_wait(bg_t *b, char **err) {
  int status = 0;
  WAIT_UNTIL(waitpid(b->pid, &status, WNOHANG) == b->pid, "heapprof %d hung", (int)b->pid);
  *err = fd_text(b->err);
  close(b->out), close(b->err);
  return status;
}

/* Whether a heapprof attach or detach of `pid` runs (the command, or the
 * keeper it leaves to finish gdb's work): its command line. */
static int cli_of(const char *cmd, size_t n, void *ctx) {
  const char *argv1 = cmd + strlen(cmd) + 1;
  const char *argv2 = argv1 < cmd + n ? argv1 + strlen(argv1) + 1 : cmd + n;
  const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
  return strcmp(base, "heapprof") == 0 && argv2 < cmd + n &&
         (strcmp(argv1, "attach") == 0 || strcmp(argv1, "detach") == 0) &&
         strcmp(argv2, (const char *)ctx) == 0;
}

static int cli_running(pid_t pid) {
  char want[16];
  snprintf(want, sizeof want, "%d", (int)pid);
  return att_find_process(cli_of, want) != 0;
}

/* ---- the target and its record ---- */

static void start_plain(att_proc_t *p) {
  char *argv[] = {quiet, NULL};
  att_start(p, argv, plain_env);
  const char *l = att_line(p);
  CHECK(l != NULL && strcmp(l, "ready") == 0, "att_cli_target said %s", l ? l : "EOF");
}

static void end_plain(att_proc_t *p) {
  close(p->in);
  p->in = -1;
  int status = att_wait(p);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "att_cli_target ended with status %#x",
        status);
}

static unsigned long long start_time(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  char *s = slurp_path(path);
  CHECK(s != NULL && strrchr(s, ')') != NULL, "read %s", path);
  char *p = strrchr(s, ')') + 2;
  for (int field = 3; field < 22; field++)
    p = strchr(p, ' ') + 1;
  unsigned long long v = strtoull(p, NULL, 10);
  free(s);
  return v;
}

static void record_path(char *out, size_t cap, pid_t pid, const char *suffix) {
  snprintf(out, cap, "%s/%d%s", state_dir, (int)pid, suffix);
}

static char *record_of(pid_t pid) {
  char path[PATH_MAX];
  record_path(path, sizeof path, pid, ".attach");
  return slurp_path(path);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* The state directory's entries, sorted, one a line (malloc'd). */
static char *state_entries(void) {
  struct dirent **list;
  int n = scandir(state_dir, &list, NULL, alphasort);
  CHECK(n >= 0, "scandir %s: %s", state_dir, strerror(errno));
  char *s = calloc(1, (size_t)n * 300 + 1);
  for (int i = 0; i < n; i++) {
    if (strcmp(list[i]->d_name, ".") != 0 && strcmp(list[i]->d_name, "..") != 0)
      strcat(strcat(s, list[i]->d_name), "\n");
    free(list[i]);
  }
  free(list);
  return s;
}

/* No gdb script (or anything else named heapprof-attach*) in TMPDIR. */
static void no_script_left(void) {
  DIR *d = opendir(tl_tmpdir());
  CHECK(d != NULL, "opendir");
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    CHECK(strncmp(e->d_name, "heapprof-attach", 15) != 0,
          "a file of the command is left in TMPDIR: %s", e->d_name);
  closedir(d);
}

static void not_held(pid_t pid, const char *when) {
  char st = att_state(pid);
  long tracer = att_tracer(pid);
  CHECK(st != 'T' && st != 't' && tracer == 0, "%s: %d is in state %c, traced by %ld", when,
        (int)pid, st, tracer);
}

static char *pid_str(pid_t pid) {
  static char bufs[4][16];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, 16, "%d", (int)pid);
  return b;
}

/* A result that is a refusal: status 1, one line with `want`. */
static void refused(const char *what, att_result_t r, const char *want) {
  size_t lines = 0;
  for (const char *c = r.err; *c; c++)
    lines += *c == '\n';
  CHECK(r.status == 1 && lines == 1 && strstr(r.err, want) != NULL,
        "%s: status %d, want 1 and one line with '%s':\n%s%s", what, r.status, want, r.err,
        r.out);
  printf("ok: %s: %s", what, r.err);
  free(r.out), free(r.err);
}

/* ---- killed ---- */

static void test_pending_left(void);

static void test_killed(void) {
  static const int sigs[] = {SIGKILL, SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    int sig = sigs[i];
    att_proc_t p;
    start_plain(&p);
    char out[PATH_MAX], want[PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/k%zu.%%n.pb.gz", tl_tmpdir(), i);
    char *argv[] = {cli, "attach", pid_str(p.pid), "--rate", "4096", "--out", out, NULL};
    gdb_hold();
    int before = gdb_starts();
    bg_t b = bg_start(argv, wrapped_env());
    WAIT_UNTIL(gdb_starts() > before, "attach %d never started gdb", (int)p.pid);
    kill(-b.pid, sig); /* the command's process group, as a terminal's ^C does */
    gdb_go();
    char *err;
    int status = bg_wait(&b, &err);
    if (sig == SIGKILL)
      CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
    else
      CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sig &&
                strstr(err, "heapprof: attached to") != NULL,
            "SIG%s: the command should report, then end by the signal: status %#x, "
            "stderr:\n%s", sigabbrev_np(sig), status, err);
    free(err);
    /* The command is gone; what it left to finish gdb's work finishes. */
    WAIT_UNTIL(!cli_running(p.pid) && !gdb_running() && att_gdb_for(p.pid) == 0,
               "something of the attach to %d is still running", (int)p.pid);
    not_held(p.pid, "after the command was killed");
    CHECK(att_has_heapprof(p.pid), "SIG%s: %d has no libheapprof: the attach did not finish",
          sigabbrev_np(sig), (int)p.pid);
    char *rec = record_of(p.pid);
    snprintf(want, sizeof want, "\nout %s\n", out);
    CHECK(rec != NULL && strstr(rec, want) != NULL && strstr(rec, "pending") == NULL,
          "SIG%s: %d is attached, but its record is %s%s", sigabbrev_np(sig), (int)p.pid,
          rec ? "\n" : "missing", rec ? rec : "");
    free(rec);
    char *entries = state_entries();
    char one[32];
    snprintf(one, sizeof one, "%d.attach\n", (int)p.pid);
    CHECK(strcmp(entries, one) == 0, "the state directory holds more than the record:\n%s",
          entries);
    free(entries);
    no_script_left();
    char *path = att_dump(p.pid);
    snprintf(want, sizeof want, "%s/k%zu.", tl_tmpdir(), i);
    CHECK(strncmp(path, want, strlen(want)) == 0, "dump wrote %s, not by the attach's --out %s",
          path, out);
    free(path);
    refused("attach again", att_cli("attach", pid_str(p.pid), NULL), "is already attached");
    att_detach(p.pid);
    entries = state_entries();
    CHECK(strcmp(entries, "") == 0, "after the detach the state directory holds:\n%s",
          entries);
    free(entries);
    printf("ok: SIG%s to the command while gdb was starting: attached, record settled, "
           "dump used its --out, no file left\n", sigabbrev_np(sig));
    end_plain(&p);
  }
  test_pending_left();
}

/* A pending record whose command and keeper were both killed (say, the
 * whole session with SIGKILL) before it was settled: attached or not, the
 * next attach asks the library and settles it; dump uses it meanwhile. */
static void test_pending_left(void) {
  att_proc_t p;
  start_plain(&p);
  char out[PATH_MAX], path[PATH_MAX], text[PATH_MAX + 16], want[PATH_MAX + 16];
  snprintf(out, sizeof out, "%s/pl.%%n.pb.gz", tl_tmpdir());
  record_path(path, sizeof path, p.pid, ".attach");
  /* Attached, with its record left pending. */
  att_attach(p.pid, "4096", out, NULL);
  char *rec = record_of(p.pid);
  snprintf(text, sizeof text, "%spending\n", rec);
  write_path(path, text, 0600);
  free(rec);
  char *dumped = att_dump(p.pid);
  snprintf(want, sizeof want, "%s/pl.", tl_tmpdir());
  CHECK(strncmp(dumped, want, strlen(want)) == 0, "dump with a pending record wrote %s",
        dumped);
  free(dumped);
  refused("attach over a pending record of a finished attach", att_cli("attach",
          pid_str(p.pid), "--rate", "1", NULL), "by an earlier heapprof attach whose command "
          "was interrupted");
  rec = record_of(p.pid);
  snprintf(want, sizeof want, "\nout %s\n", out);
  CHECK(rec != NULL && strstr(rec, want) && !strstr(rec, "pending"), "settled: %s", rec);
  free(rec);
  /* Not attached (detached since), with a pending record: attach goes on. */
  att_detach(p.pid);
  write_path(path, text, 0600);
  char out2[PATH_MAX];
  snprintf(out2, sizeof out2, "%s/pl2.%%n.pb.gz", tl_tmpdir());
  att_attach(p.pid, "4096", out2, NULL);
  rec = record_of(p.pid);
  snprintf(want, sizeof want, "\nout %s\n", out2);
  CHECK(rec != NULL && strstr(rec, want) && !strstr(rec, "pending"), "re-attached: %s", rec);
  free(rec);
  att_detach(p.pid);
  printf("ok: a pending record left by a killed attach: dump used it; the next attach settled "
         "it (already attached), or attached anew (detached)\n");
  end_plain(&p);
}

/* ---- stale ---- */

static pid_t dead_pid(void) {
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0)
    _exit(0);
  waitpid(pid, NULL, 0);
  return pid;
}

static void plant_record(pid_t pid, unsigned long long start) {
  char path[PATH_MAX], text[PATH_MAX + 128];
  record_path(path, sizeof path, pid, ".attach");
  snprintf(text, sizeof text, "pid %d\nstart %llu\nsignal 12\nout %s/stale.%%n\n", (int)pid,
           start, tl_tmpdir());
  write_path(path, text, 0600);
}

typedef struct planted {
  pid_t gone, gone2, reused;
} planted_t;

/* Leftovers: the record of a process that exited (attached, then ended
 * for real), a lock file and a temporary file of another exited pid, and a
 * record of the live `reused` under another start time. */
static planted_t plant(pid_t reused) {
  planted_t pl = {dead_pid(), dead_pid(), reused};
  plant_record(pl.gone, 12345);
  char path[PATH_MAX];
  record_path(path, sizeof path, pl.gone2, ".lock");
  write_path(path, "", 0600);
  snprintf(path, sizeof path, "%s/.%d.attach.tmp", state_dir, (int)pl.gone2);
  write_path(path, "pid", 0600);
  plant_record(reused, start_time(reused) + 1);
  return pl;
}

static void all_gone(const planted_t *pl, const char *by) {
  char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], d[PATH_MAX];
  record_path(a, sizeof a, pl->gone, ".attach");
  record_path(b, sizeof b, pl->gone2, ".lock");
  snprintf(c, sizeof c, "%s/.%d.attach.tmp", state_dir, (int)pl->gone2);
  record_path(d, sizeof d, pl->reused, ".attach");
  char *entries = state_entries();
  CHECK(!exists(a) && !exists(b) && !exists(c) && !exists(d),
        "%s left stale entries (exited %d, %d; reused %d):\n%s", by, (int)pl->gone,
        (int)pl->gone2, (int)pl->reused, entries);
  free(entries);
  printf("ok: %s removed the records of exited and reused pids, a leftover lock and "
         "temporary file\n", by);
}

static void test_stale(void) {
  att_proc_t a, b, other;
  start_plain(&a);
  start_plain(&b);
  start_plain(&other);
  char out[PATH_MAX];
  snprintf(out, sizeof out, "%s/st.%%n.pb.gz", tl_tmpdir());
  /* A record of a process that was attached and then exited. */
  att_attach(a.pid, "4096", out, NULL);
  pid_t a_pid = a.pid;
  end_plain(&a);
  char path[PATH_MAX];
  record_path(path, sizeof path, a_pid, ".attach");
  CHECK(exists(path), "the record of %d should still be there", (int)a_pid);

  planted_t pl = plant(other.pid);
  att_attach(b.pid, "4096", out, NULL);
  CHECK(!exists(path), "attach left the record of %d, which exited", (int)a_pid);
  all_gone(&pl, "attach");
  char *rec = record_of(b.pid);
  CHECK(rec != NULL && strstr(rec, "pending") == NULL, "b's own record: %s", rec);
  free(rec);

  pl = plant(other.pid);
  free(att_dump(b.pid));
  all_gone(&pl, "dump");

  /* Not while another command holds the pid's lock. */
  pid_t held = dead_pid();
  plant_record(held, 1);
  char lock[PATH_MAX];
  record_path(lock, sizeof lock, held, ".lock");
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0, "lock %s", lock);
  free(att_dump(b.pid));
  record_path(path, sizeof path, held, ".attach");
  CHECK(exists(path), "dump removed a record whose pid's lock another command holds");
  printf("ok: a stale record whose pid is locked by another command is left to it\n");
  close(fd);
  free(att_dump(b.pid));
  CHECK(!exists(path) && !exists(lock), "once the lock is let go, dump should remove %s",
        path);

  pl = plant(other.pid);
  att_detach(b.pid);
  all_gone(&pl, "detach");
  CHECK(record_of(b.pid) == NULL, "detach left b's own record");

  /* A process's own record under another start time: attach replaces it. */
  plant_record(other.pid, start_time(other.pid) + 1);
  att_attach(other.pid, "4096", out, NULL);
  rec = record_of(other.pid);
  char want[64];
  snprintf(want, sizeof want, "\nstart %llu\n", start_time(other.pid));
  CHECK(rec != NULL && strstr(rec, want) != NULL, "other's record: %s", rec ? rec : "none");
  free(rec);
  att_detach(other.pid);
  char *entries = state_entries();
  CHECK(strcmp(entries, "") == 0, "the state directory holds:\n%s", entries);
  free(entries);
  end_plain(&b);
  end_plain(&other);
}

/* ---- concurrent ---- */

/* `first` (attach or detach of p) held before its gdb; then `second`
 * (normal gdb) must be refused at once and change nothing. */
static void overlap(att_proc_t *p, const char *first, const char *second, const char *out) {
  char *argv1[] = {cli, (char *)first, pid_str(p->pid), NULL, NULL, NULL, NULL, NULL};
  if (strcmp(first, "attach") == 0)
    argv1[3] = "--rate", argv1[4] = "4096", argv1[5] = "--out", argv1[6] = (char *)out;
  int attached = att_has_heapprof(p->pid);
  char *rec0 = record_of(p->pid);
  gdb_hold();
  int before = gdb_starts();
  bg_t b = bg_start(argv1, wrapped_env());
  WAIT_UNTIL(gdb_starts() > before, "%s %d never started gdb", first, (int)p->pid);
  att_result_t r = strcmp(second, "attach") == 0
                       ? att_cli("attach", pid_str(p->pid), "--rate", "1", "--out", out, NULL)
                       : att_cli("detach", pid_str(p->pid), NULL);
  char what[64];
  snprintf(what, sizeof what, "%s during another %s", second, first);
  char *rec1 = record_of(p->pid);
  int attached1 = att_has_heapprof(p->pid);
  refused(what, r, "another heapprof attach or detach of");
  CHECK(attached1 == attached, "%s: the library was %s", what, attached ? "unmapped" : "mapped");
  CHECK((rec0 == NULL && rec1 != NULL && strstr(rec1, "pending")) ||
            (rec0 != NULL && rec1 != NULL && strcmp(rec0, rec1) == 0),
        "%s: the record changed:\n%s\n---\n%s", what, rec0 ? rec0 : "none",
        rec1 ? rec1 : "none");
  gdb_go();
  char *err;
  int status = bg_wait(&b, &err);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the first %s: status %#x\n%s", first,
        status, err);
  free(err), free(rec0), free(rec1);
}

static void test_concurrent(void) {
  att_proc_t p;
  start_plain(&p);
  char out[PATH_MAX];
  snprintf(out, sizeof out, "%s/cc.%%n.pb.gz", tl_tmpdir());
  overlap(&p, "attach", "attach", out);
  overlap(&p, "detach", "attach", out);
  overlap(&p, "attach", "detach", out);
  overlap(&p, "detach", "detach", out);
  CHECK(record_of(p.pid) == NULL, "a record after the last detach");
  /* Two at once, for real. */
  for (int round = 0; round < 5; round++) {
    char *argv[] = {cli, "attach", pid_str(p.pid), "--rate", "4096", "--out", out, NULL};
    bg_t one = bg_start(argv, att_cli_env(NULL)), two = bg_start(argv, att_cli_env(NULL));
    char *e1, *e2;
    int s1 = bg_wait(&one, &e1), s2 = bg_wait(&two, &e2);
    int ok1 = WIFEXITED(s1) && WEXITSTATUS(s1) == 0, ok2 = WIFEXITED(s2) && WEXITSTATUS(s2) == 0;
    const char *loser = ok1 ? e2 : e1;
    int lost = ok1 ? s2 : s1;
    CHECK(ok1 + ok2 == 1 && WIFEXITED(lost) && WEXITSTATUS(lost) == 1 &&
              strchr(loser, '\n') == loser + strlen(loser) - 1 &&
              (strstr(loser, "in progress") || strstr(loser, "is already attached")),
          "two attaches at once: statuses %#x %#x\n%s---\n%s", s1, s2, e1, e2);
    printf("ok: two attaches at once: one attached, the other: %s", loser);
    free(e1), free(e2);
    att_detach(p.pid);
  }
  end_plain(&p);
}

/* ---- reattach ---- */

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(s, (struct sockaddr *)&a, &len) == 0,
        "a free port");
  close(s);
  return ntohs(a.sin_port);
}

/* GET `path` from 127.0.0.1:port: the status code (-1 if the connection
 * is refused) and the body, written to `save` if given. */
static int http_get(int port, const char *path, const char *save) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK(s >= 0, "socket");
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    CHECK(errno == ECONNREFUSED, "connect to %d: %s", port, strerror(errno));
    close(s);
    return -1;
  }
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
  CHECK(write(s, req, (size_t)n) == n, "send");
  size_t cap = 1 << 22, len = 0;
  char *buf = malloc(cap);
  ssize_t k;
  while ((k = read(s, buf + len, cap - len)) > 0)
    len += (size_t)k;
  close(s);
  int code = 0;
  CHECK(len > 12 && sscanf(buf, "HTTP/1.%*d %d", &code) == 1, "no HTTP answer on %d", port);
  char *body = memmem(buf, len, "\r\n\r\n", 4);
  if (save != NULL && body != NULL) {
    int fd = open(save, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t blen = len - (size_t)(body + 4 - buf);
    CHECK(fd >= 0 && write(fd, body + 4, blen) == (ssize_t)blen && close(fd) == 0, "save");
  }
  free(buf);
  return code;
}

/* Sockets in every descriptor table of the process (each thread's: the
 * library's threads have tables of their own). */
static int sockets(pid_t pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
  DIR *d = opendir(dir);
  CHECK(d != NULL, "opendir %s", dir);
  struct dirent *t;
  int n = 0;
  while ((t = readdir(d)) != NULL) {
    if (t->d_name[0] == '.')
      continue;
    char fddir[128];
    snprintf(fddir, sizeof fddir, "%s/%.32s/fd", dir, t->d_name);
    DIR *f = opendir(fddir);
    if (f == NULL)
      continue; /* the thread ended meanwhile */
    struct dirent *e;
    while ((e = readdir(f)) != NULL) {
      char link[512], target[64];
      snprintf(link, sizeof link, "%s/%.32s", fddir, e->d_name);
      ssize_t k = readlink(link, target, sizeof target - 1);
      n += k > 7 && strncmp(target, "socket:", 7) == 0;
    }
    closedir(f);
  }
  closedir(d);
  return n;
}

static void period_is(const char *path, long want, const char *what) {
  tl_profile_t prof;
  tl_read_profile(path, &prof);
  CHECK(prof.period == want, "%s: period %lld, want %ld", what, (long long)prof.period, want);
  tl_free_profile(&prof);
}

static void test_reattach(void) {
  att_proc_t p;
  char *argv[] = {mt, "cycles", NULL};
  att_start(&p, argv, plain_env);
  const char *l = att_line(&p);
  CHECK(l != NULL && strcmp(l, "ready") == 0, "att_mt said %s", l ? l : "EOF");
  att_nice(p.pid);
  int socks0 = sockets(p.pid);
  int port1 = free_port(), port2 = free_port();
  CHECK(port1 != port2, "two free ports");
  char out1[PATH_MAX], out2[PATH_MAX], addr1[64], addr2[64], save[PATH_MAX];
  snprintf(out1, sizeof out1, "%s/one.%%n.pb.gz", tl_tmpdir());
  snprintf(out2, sizeof out2, "%s/two.%%n.pb.gz", tl_tmpdir());
  snprintf(addr1, sizeof addr1, "127.0.0.1:%d", port1);
  snprintf(addr2, sizeof addr2, "127.0.0.1:%d", port2);
  snprintf(save, sizeof save, "%s/http.pb.gz", tl_tmpdir());

  att_attach(p.pid, "4096", out1, "--http", addr1, NULL);
  CHECK(http_get(port1, "/debug/pprof/heap", save) == 200, "port %d does not serve", port1);
  int socks_attached = sockets(p.pid);
  CHECK(socks_attached > socks0, "attached and serving, yet no more sockets than before (%d): "
        "this test could not see a socket left open", socks0);
  period_is(save, 4096, "the first attach's HTTP profile");
  char *path = att_dump(p.pid);
  CHECK(strstr(path, "/one.") != NULL, "dump wrote %s", path);
  period_is(path, 4096, "the first attach's profile");
  free(path);
  att_detach(p.pid);
  int socks = sockets(p.pid);
  CHECK(http_get(port1, "/", NULL) == -1 && socks == socks0,
        "after the detach: port %d %s, %d sockets in the process (%d before the attach)",
        port1, http_get(port1, "/", NULL) == -1 ? "closed" : "still served", socks, socks0);
  printf("ok: the first attach served on %d (%d sockets while attached); the detach closed "
         "it (%d sockets, as before)\n", port1, socks_attached, socks);

  att_attach(p.pid, "1", out2, "--http", addr2, NULL);
  CHECK(http_get(port1, "/", NULL) == -1, "the old port %d is served again", port1);
  CHECK(http_get(port2, "/debug/pprof/heap", save) == 200, "port %d does not serve", port2);
  period_is(save, 1, "the second attach's HTTP profile");
  path = att_dump(p.pid);
  CHECK(strstr(path, "/two.") != NULL, "dump after the second attach wrote %s", path);
  period_is(path, 1, "the second attach's profile");
  free(path);
  att_detach(p.pid);
  socks = sockets(p.pid);
  CHECK(http_get(port2, "/", NULL) == -1 && socks == socks0,
        "after the second detach: %d sockets (%d before)", socks, socks0);
  printf("ok: attached again with other settings: port %d, rate 1 and the new --out in "
         "force, then closed\n", port2);
  close(p.in);
  p.in = -1;
  l = att_line(&p);
  CHECK(l != NULL && strcmp(l, "ok") == 0, "att_mt said %s", l ? l : "EOF");
  int status = att_wait(&p);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "att_mt status %#x", status);
}

/* ---- statedir ---- */

static char **env_with_xdg(const char *xdg) {
  static char pathv[PATH_MAX + 32], tmpv[PATH_MAX + 16], xdgv[PATH_MAX + 32];
  static char *env[4];
  snprintf(pathv, sizeof pathv, "PATH=%s:/usr/bin:/bin", wrap_dir);
  snprintf(tmpv, sizeof tmpv, "TMPDIR=%s", tl_tmpdir());
  snprintf(xdgv, sizeof xdgv, "XDG_RUNTIME_DIR=%.4000s", xdg);
  env[0] = pathv, env[1] = tmpv, env[2] = xdgv, env[3] = NULL;
  return env;
}

/* The file mappings of the process (its allocator's anonymous ones come
 * and go on their own). */
static char *maps_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  char *all = slurp_path(path), *files = calloc(1, strlen(all) + 1);
  for (char *line = all; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
    char *slash = memchr(line, '/', len);
    if (slash != NULL)
      strncat(files, line, len);
    line += len;
  }
  free(all);
  return files;
}

/* ---- messages ---- */

static void test_messages(void) {
  att_proc_t p;
  start_plain(&p);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", (int)p.pid);
  att_result_t r = att_cli("attach", pid, "--http", "127.0.0.1:0", NULL);
  CHECK(r.status == 0, "attach --http 127.0.0.1:0: status %d\n%s", r.status, r.err);
  const char *said = strstr(r.err, "heapprof: serving http://127.0.0.1:");
  int port = 0;
  CHECK(said != NULL &&
            sscanf(said, "heapprof: serving http://127.0.0.1:%d/debug/pprof/", &port) == 1,
        "attach --http 127.0.0.1:0 did not say which port it serves:\n%s", r.err);
  CHECK(http_get(port, "/debug/pprof/heap", NULL) == 200, "port %d does not serve", port);
  printf("ok: the command said the port (%d), which serves\n", port);
  att_detach(p.pid);

  /* A port that is taken: the attach is made, the command says why there
   * is no HTTP. */
  int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  CHECK(busy >= 0 && bind(busy, (struct sockaddr *)&a, sizeof a) == 0 && listen(busy, 1) == 0 &&
            getsockname(busy, (struct sockaddr *)&a, &len) == 0,
        "a listening socket");
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
  r = att_cli("attach", pid, "--http", addr, NULL);
  CHECK(r.status == 0 && strstr(r.err, "heapprof: cannot serve HTTP on ") != NULL &&
            strstr(r.err, addr) != NULL,
        "attach --http %s (taken): status %d\n%s", addr, r.status, r.err);
  printf("ok: a taken port is the command's message:\n%s", r.err);
  att_detach(p.pid);
  close(busy);

  end_plain(&p);
  char *err = att_stderr(&p);
  CHECK(err[0] == '\0', "the program's stderr got:\n%s", err);
  printf("ok: the program's stderr is empty\n");
  free(err);
}

/* ---- a process that never allocates ---- */

static void test_idle_dump(void) {
  att_proc_t p;
  char *argv[] = {"/bin/sleep", "600", NULL};
  att_start(&p, argv, plain_env);
  struct timespec settle = {0, 200000000};
  nanosleep(&settle, NULL);
  char out[PATH_MAX];
  snprintf(out, sizeof out, "%s/idle.%%n.pb.gz", tl_tmpdir());
  att_attach(p.pid, "4096", out, NULL);
  char *path = att_dump(p.pid);
  tl_profile_t prof;
  tl_read_profile(path, &prof);
  CHECK(prof.nsamples == 0, "sleep allocated nothing, yet %zu samples", prof.nsamples);
  tl_free_profile(&prof);
  printf("ok: dump answered for a process that allocates nothing: %s\n", path);
  free(path);
  att_detach(p.pid);
  CHECK(kill(p.pid, SIGKILL) == 0, "kill");
  att_wait(&p);
}

static void test_statedir(void) {
  char bad[4][PATH_MAX - 64], path[PATH_MAX + 32], real[PATH_MAX];
  const char *how[4] = {"its heapprof directory a symbolic link", "its heapprof directory "
                        "mode 0755", "a file", "under a missing directory"};
  for (int i = 0; i < 4; i++)
    snprintf(bad[i], sizeof bad[i], "%.3900s/xdg-bad%d", tl_tmpdir(), i);
  CHECK(mkdir(bad[0], 0700) == 0 && mkdir(bad[1], 0700) == 0, "mkdir");
  snprintf(real, sizeof real, "%s/elsewhere", tl_tmpdir());
  snprintf(path, sizeof path, "%s/heapprof", bad[0]);
  CHECK(mkdir(real, 0700) == 0 && symlink(real, path) == 0, "symlink");
  snprintf(path, sizeof path, "%s/heapprof", bad[1]);
  CHECK(mkdir(path, 0755) == 0 && chmod(path, 0755) == 0, "mkdir 0755");
  write_path(bad[2], "", 0600);
  snprintf(bad[3], sizeof bad[3], "%.3900s/missing/run", tl_tmpdir());

  att_proc_t p;
  start_plain(&p);
  gdb_go();
  for (int i = 0; i < 4; i++) {
    char *maps = maps_of(p.pid);
    int starts = gdb_starts();
    char *argv[] = {cli, "attach", pid_str(p.pid), "--rate", "1", NULL};
    att_result_t r = att_run(argv, env_with_xdg(bad[i]));
    char what[128], want[32];
    snprintf(what, sizeof what, "attach, XDG_RUNTIME_DIR %s", how[i]);
    snprintf(want, sizeof want, "; %d is unchanged\n", (int)p.pid);
    CHECK(strstr(r.err, "cannot keep the attach state") != NULL, "%s: %s", what, r.err);
    refused(what, r, want);
    char *now = maps_of(p.pid);
    CHECK(gdb_starts() == starts && strcmp(now, maps) == 0 && att_tracer(p.pid) == 0,
          "%s: gdb ran (%d times) or the process changed", what, gdb_starts() - starts);
    free(maps), free(now);
  }
  /* Attached (with a usable directory), then detach without one. */
  char out[PATH_MAX];
  snprintf(out, sizeof out, "%s/sd.%%n.pb.gz", tl_tmpdir());
  att_attach(p.pid, "4096", out, NULL);
  for (int i = 0; i < 4; i++) {
    int starts = gdb_starts();
    char *argv[] = {cli, "detach", pid_str(p.pid), NULL};
    att_result_t r = att_run(argv, env_with_xdg(bad[i]));
    char what[128], want[32];
    snprintf(what, sizeof what, "detach, XDG_RUNTIME_DIR %s", how[i]);
    snprintf(want, sizeof want, "; %d is unchanged\n", (int)p.pid);
    CHECK(strstr(r.err, "cannot keep the attach state") != NULL, "%s: %s", what, r.err);
    refused(what, r, want);
    CHECK(gdb_starts() == starts && (att_sigcgt(p.pid) & (1ull << (SIGUSR2 - 1))),
          "%s: gdb ran, or the process is no longer attached", what);
  }
  att_detach(p.pid);
  end_plain(&p);
}

int main(int argc, char **argv) {
  CHECK(argc == 5, "usage: test_att_cli killed|stale|concurrent|reattach|statedir|messages|idle_dump "
        "HEAPPROF_CLI ATT_CLI_TARGET ATT_MT");
  att_require("/usr/bin/gdb", "gdb, which heapprof attach runs");
  att_set_cli(argv[2]);
  cli = argv[2], quiet = argv[3], mt = argv[4];
  att_require(quiet, "the target program");
  att_require(mt, "the target program");
  setvbuf(stdout, NULL, _IOLBF, 0);
  make_wrapper();
  att_cli_env(NULL); /* makes TMPDIR/xdg */
  snprintf(state_dir, sizeof state_dir, "%.3900s/xdg/heapprof", tl_tmpdir());
  if (strcmp(argv[1], "killed") == 0)
    test_killed();
  else if (strcmp(argv[1], "stale") == 0)
    test_stale();
  else if (strcmp(argv[1], "concurrent") == 0)
    test_concurrent();
  else if (strcmp(argv[1], "reattach") == 0)
    test_reattach();
  else if (strcmp(argv[1], "statedir") == 0)
    test_statedir();
  else if (strcmp(argv[1], "messages") == 0)
    test_messages();
  else if (strcmp(argv[1], "idle_dump") == 0)
    test_idle_dump();
  else
    CHECK(0, "unknown mode %s", argv[1]);
  return 0;
}
