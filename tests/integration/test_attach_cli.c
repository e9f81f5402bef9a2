/*
 * test_attach_cli — `heapprof attach` and `heapprof detach` as commands:
 * the refusals, the safe point, the results gdb reports, the attach record
 * `heapprof dump` reads. The library they load is the TEST-ONLY stub
 * (tests/programs/attach_stub.c, through HEAPPROF_ATTACH_LIB), so that
 * what is tested here is the command and its gdb script alone.
 *
 * usage: test_attach_cli MODE HEAPPROF STUB STUB_TLS VICTIM STATIC MUSL NOLIBC REAL_LIB
 *   usage      bad arguments: status 2 and one line; the permission rules
 *              (Yama included, which this kernel lacks) as a table
 *   refusals   each refusal before gdb: status 1, one line, and the target
 *              untouched (same memory map, thread count, signal handlers,
 *              not stopped, not traced)
 *   safepoint  10 attach/detach rounds into two threads hammering
 *              malloc(100000), where a naive gdb call deadlocks: none
 *              hangs, each enters at an allocator's entry, the stub gets
 *              each round's settings
 *   idle       a process blocked in read, epoll_wait and nanosleep: attach
 *              enters through a blocked thread and none of the three
 *              returns anything else than without the attach
 *   revisit    two attach/detach rounds into a process whose threads only
 *              sleep (nanosleep, a timed futex wait): every visit after
 *              the first finds them in restart_syscall
 *   loader     a thread holds the loader's lock (inside dl_iterate_phdr)
 *              while main is blocked in read: the attach waits for a stop
 *              with no thread in the loader, gives up in 10 s saying why,
 *              and the process is untouched
 *   results    what gdb reports mapped to one line each: EBUSY, ENOMEM,
 *              the process exiting during the attach, static TLS used up,
 *              no safe point in time (the target untouched after each)
 *   state      the attach record: its file and directory modes, dump
 *              finding the profiles through it, a record of another start
 *              time or behind a symbolic link ignored, detach removing it
 *
 * Every command runs under a hang detector (a deadline of 120 s, never a
 * timed assertion).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target.h"
#include "testlib.h"

#define DEADLINE_S 120

static char *cli, *stub, *stub_tls, *victim, *prog_static, *prog_musl, *prog_nolibc, *real_lib;
static char run_dir[PATH_MAX - 64], stub_env[PATH_MAX + 32], xdg_env[PATH_MAX + 32];

enum creds { AS_IS, NO_PTRACE_CAP, AS_NOBODY };

typedef struct result {
  int status; /* exit status, or -1 */
  char *out, *err;
} result_t;

static char *slurp(int fd) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = read(fd, buf + len, cap - len - 1)) > 0)
    if ((len += (size_t)n) + 1 >= cap)
      buf = realloc(buf, cap *= 2);
  buf[len] = '\0';
  close(fd);
  return buf;
}

/* Runs argv (the command) with `env`, in `dir` if given, with `creds`;
 * fails the test if it runs past the deadline (a hang). */
static result_t run_in(char **argv, char **env, enum creds creds, const char *dir) {
  char op[PATH_MAX], ep[PATH_MAX];
  snprintf(op, sizeof op, "%s/cli.out.XXXXXX", tl_tmpdir());
  snprintf(ep, sizeof ep, "%s/cli.err.XXXXXX", tl_tmpdir());
  int o = mkstemp(op), e = mkstemp(ep);
  CHECK(o >= 0 && e >= 0, "mkstemp");
  unlink(op), unlink(ep);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0), dup2(o, 1), dup2(e, 2);
    if (dir != NULL && chdir(dir) != 0)
      _exit(125);
    if (creds == NO_PTRACE_CAP && prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE_BIT, 0, 0, 0) != 0)
      _exit(124);
    if (creds == AS_NOBODY &&
        (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
         setresuid(65534, 65534, 65534) != 0))
      _exit(124);
    execve(argv[0], argv, env);
    _exit(127);
  }
  struct timespec begin, now, pause = {0, 20000000};
  clock_gettime(CLOCK_MONOTONIC, &begin);
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - begin.tv_sec > DEADLINE_S) {
      kill(pid, SIGKILL);
      CHECK(0, "%s %s hung (more than %d s)", argv[1], argv[2] ? argv[2] : "", DEADLINE_S);
    }
    nanosleep(&pause, NULL);
  }
  result_t r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(o), slurp(e)};
  return r;
}

static char *base_env[8];

static void set_env(const char *lib) {
  static char path_env[] = "PATH=/usr/bin:/bin", tmp_env[PATH_MAX + 8];
  snprintf(stub_env, sizeof stub_env, "HEAPPROF_ATTACH_LIB=%s", lib);
  snprintf(tmp_env, sizeof tmp_env, "TMPDIR=%s", tl_tmpdir());
  base_env[0] = path_env, base_env[1] = stub_env, base_env[2] = xdg_env;
  base_env[3] = tmp_env, base_env[4] = NULL;
}

/* The command with the arguments given, up to a NULL. */
static result_t cli_run(enum creds creds, ...) {
  char *argv[16] = {cli};
  va_list ap;
  va_start(ap, creds);
  for (int i = 1; i < 15 && (argv[i] = va_arg(ap, char *)) != NULL; i++) {
  }
  va_end(ap);
  return run_in(argv, base_env, creds, NULL);
}
#define CLI(...) cli_run(AS_IS, __VA_ARGS__, (char *)NULL)

static int one_line(const char *s) {
  return *s != '\0' && strchr(s, '\n') == s + strlen(s) - 1;
}

/* ---- the target ---- */

typedef struct victim_proc {
  pid_t pid;
  int in, out; /* its stdin (write end), its stdout (read end) */
} victim_t;

/* Starts argv with `env`, waits (hang-detected) for its "ready". */
static victim_t start(char **argv, char **env) {
  int in[2], out[2];
  CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pipe");
  victim_t v;
  v.pid = fork();
  CHECK(v.pid >= 0, "fork");
  if (v.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing test leaves no victim */
    dup2(in[0], 0), dup2(out[1], 1);
    execve(argv[0], argv, env);
    _exit(127);
  }
  close(in[0]), close(out[1]);
  v.in = in[1], v.out = out[0];
  char word[8] = {0};
  struct pollfd p = {.fd = v.out, .events = POLLIN};
  CHECK(poll(&p, 1, DEADLINE_S * 1000) == 1 && read(v.out, word, 6) == 6 &&
            strcmp(word, "ready\n") == 0,
        "%s %s did not get ready: '%s'", argv[0], argv[1] ? argv[1] : "", word);
  return v;
}

static char *victim_env[] = {"PATH=/usr/bin:/bin", "HEAPPROF_SIGNAL=none", NULL};

static victim_t start_victim(char *mode, char *how1, char *how2, char **env) {
  char *argv[] = {victim, mode, how1, how2, NULL};
  return start(argv, env != NULL ? env : victim_env);
}

/* Ends a victim that reads stdin: EOF, then its exit status. */
static int finish(victim_t *v) {
  close(v->in);
  int status = -1;
  for (int i = 0; i < DEADLINE_S * 50 && waitpid(v->pid, &status, WNOHANG) == 0; i++) {
    struct timespec t = {0, 20000000};
    nanosleep(&t, NULL);
  }
  if (waitpid(v->pid, &status, WNOHANG) == 0) {
    kill(v->pid, SIGKILL);
    CHECK(0, "victim %d did not end", (int)v->pid);
  }
  close(v->out);
  return status;
}

typedef struct snapshot {
  char *maps;
  target_status_t st;
} snapshot_t;

static snapshot_t snap(pid_t pid) {
  snapshot_t s;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0, "open %s", path);
  s.maps = slurp(fd);
  CHECK(target_status(pid, &s.st) == 0, "status of %d", (int)pid);
  return s;
}

/* The target as it was: no mapping added or removed, same threads and
 * handlers, not stopped, and its tracer (none, or the one the test set). */
static void untouched(const char *what, pid_t pid, const snapshot_t *before) {
  snapshot_t now = snap(pid);
  CHECK(strcmp(now.maps, before->maps) == 0, "%s: %d's memory map changed:\n%s\n---\n%s", what,
        (int)pid, before->maps, now.maps);
  CHECK(now.st.threads == before->st.threads, "%s: threads %ld -> %ld", what,
        before->st.threads, now.st.threads);
  CHECK(now.st.sig_cgt == before->st.sig_cgt, "%s: SigCgt %" PRIx64 " -> %" PRIx64, what,
        before->st.sig_cgt, now.st.sig_cgt);
  CHECK(now.st.state != 'T' && now.st.state != 't', "%s: %d is stopped (%c)", what, (int)pid,
        now.st.state);
  CHECK(now.st.tracer == before->st.tracer, "%s: tracer %ld -> %ld", what, before->st.tracer,
        now.st.tracer);
  free(now.maps);
}

/* `r` is a refusal: status 1, one line containing `want`, nothing on stdout. */
static void refused(const char *what, result_t r, const char *want) {
  CHECK(r.status == 1 && one_line(r.err) && strstr(r.err, want) != NULL && r.out[0] == '\0',
        "%s: status %d, want 1 and one line with '%s':\n%s%s", what, r.status, want, r.err,
        r.out);
  printf("ok: %s: %s", what, r.err);
  free(r.out), free(r.err);
}

/* attach (by `creds`, with the command's environment `env`) to a fresh
 * victim started with `how1`, `how2` and `venv`: refused with `want`,
 * victim untouched and exiting 0 afterwards. */
static void refusal(const char *what, char *how1, char *how2, char **venv, enum creds creds,
                    char **env, const char *want) {
  victim_t v = start_victim("plain", how1, how2, venv);
  snapshot_t before = snap(v.pid);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  char *argv[] = {cli, "attach", pid, "--rate", "1", NULL};
  refused(what, run_in(argv, env != NULL ? env : base_env, creds, NULL), want);
  untouched(what, v.pid, &before);
  int status = finish(&v);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: victim status %d", what, status);
  free(before.maps);
}

/* A program's refusal: `prog` prints ready and reads stdin. */
static void refusal_of(const char *what, char *prog, const char *want) {
  char *argv[] = {prog, NULL};
  victim_t v = start(argv, victim_env);
  snapshot_t before = snap(v.pid);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  refused(what, CLI("attach", pid), want);
  untouched(what, v.pid, &before);
  if (prog != victim) {
    int status = finish(&v);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d", what, status);
  }
  free(before.maps);
}

static void write_i386(const char *path) {
  /* An i386 ELF executable: ehdr, one PT_LOAD, code "write(1, ready);
   * loop: pause()". The kernel runs it through its 32-bit emulation. */
  static const unsigned char elf[] = {
      0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* ident */
      2, 0, 3, 0, 1, 0, 0, 0, 0x54, 0x80, 0x04, 0x08,          /* exec, 386, entry */
      0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                    /* phoff, shoff, flags */
      0x34, 0, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 0,                 /* sizes, 1 phdr */
      1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x04, 0x08, 0, 0x80, 0x04, 0x08, /* PT_LOAD */
      0x80, 0, 0, 0, 0x80, 0, 0, 0, 5, 0, 0, 0, 0, 0x10, 0, 0,
      /* 0x54: mov eax,4; mov ebx,1; mov ecx,0x08048078; mov edx,6; int 0x80 */
      0xb8, 4, 0, 0, 0, 0xbb, 1, 0, 0, 0, 0xb9, 0x78, 0x80, 0x04, 0x08, 0xba, 6, 0, 0, 0,
      0xcd, 0x80,
      /* 0x6a: mov eax,29 (pause); int 0x80; jmp back */
      0xb8, 29, 0, 0, 0, 0xcd, 0x80, 0xeb, 0xf7, 0x90, 0x90, 0x90, 0x90, 0x90,
      /* 0x78 */ 'r', 'e', 'a', 'd', 'y', '\n', 0, 0};
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  CHECK(fd >= 0 && write(fd, elf, sizeof elf) == (ssize_t)sizeof elf && close(fd) == 0,
        "write %s", path);
}

static void test_refusals(void) {
  char pid[16];
  /* No such process: a child already reaped. */
  pid_t gone = fork();
  if (gone == 0)
    _exit(0);
  waitpid(gone, NULL, 0);
  snprintf(pid, sizeof pid, "%d", (int)gone);
  refused("no such process", CLI("attach", pid), "no process");
  refused("no such process (detach)", CLI("detach", pid), "no process");

  /* A change of uid makes a process not dumpable: "dump" makes it so again. */
  refusal("another user's process", "nobody", "dump", NULL, NO_PTRACE_CAP, NULL,
          "(it runs as uid 65534, you as uid 0;");
  refusal("a process that is not dumpable", "nobody", "nodump", NULL, AS_NOBODY, NULL,
          "it is not dumpable");
  refusal("a process with capabilities the attacher lacks", NULL, NULL, NULL, NO_PTRACE_CAP,
          NULL, "capabilities you lack");
  refusal("a setuid process", "setuid", NULL, NULL, AS_IS, NULL, "runs setuid/setgid");

  /* Traced: a helper process PTRACE_SEIZEs the victim (it keeps running)
   * and is killed afterwards, which detaches it. */
  victim_t v = start_victim("plain", NULL, NULL, NULL);
  int ack[2];
  CHECK(pipe(ack) == 0, "pipe");
  pid_t tracer = fork();
  if (tracer == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = ptrace(PTRACE_SEIZE, v.pid, 0, 0) == 0 ? 'y' : 'n';
    (void)!write(ack[1], &ok, 1);
    pause();
    _exit(0);
  }
  char ok = 0;
  CHECK(read(ack[0], &ok, 1) == 1 && ok == 'y', "PTRACE_SEIZE");
  snapshot_t before = snap(v.pid);
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  char want[64];
  snprintf(want, sizeof want, "is being traced by %d", (int)tracer);
  refused("a traced process", CLI("attach", pid), want);
  untouched("a traced process", v.pid, &before);
  kill(tracer, SIGKILL), waitpid(tracer, NULL, 0);
  CHECK(finish(&v) == 0, "traced victim's status");

  refusal_of("a static program", prog_static, "is statically linked");
  refusal_of("a program without libc", prog_nolibc, "not linked with glibc (no libc.so.6");
  refusal_of("a program with another dynamic linker", prog_musl,
             "not linked with glibc (its dynamic linker is");
  char i386[PATH_MAX];
  snprintf(i386, sizeof i386, "%s/i386-program", tl_tmpdir());
  write_i386(i386);
  {
    char *argv[] = {i386, NULL};
    victim_t w = start(argv, victim_env);
    snapshot_t b = snap(w.pid);
    snprintf(pid, sizeof pid, "%d", (int)w.pid);
    refused("a 32-bit program", CLI("attach", pid), "is not an x86-64 program");
    untouched("a 32-bit program", w.pid, &b);
    kill(w.pid, SIGKILL), waitpid(w.pid, NULL, 0);
  }

  char preload[PATH_MAX + 16], opened[PATH_MAX + 16], hide[PATH_MAX + 16];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", real_lib);
  char *preload_env[] = {"PATH=/usr/bin:/bin", "HEAPPROF_SIGNAL=none", preload, NULL};
  refusal("heapprof preloaded", NULL, NULL, preload_env, AS_IS, NULL,
          "already has heapprof, preloaded");
  snprintf(opened, sizeof opened, "dlopen=%s", real_lib);
  refusal("another libheapprof loaded", opened, NULL, NULL, AS_IS, NULL,
          "already has heapprof, from");
  refusal("a process with its own SIGUSR2 handler", "usr2", NULL, NULL, AS_IS, NULL,
          "handles SIGUSR2 itself");

  char *no_gdb[] = {"PATH=/nonexistent", stub_env, xdg_env, NULL};
  refusal("gdb missing", NULL, NULL, NULL, AS_IS, no_gdb, "gdb not found (apt-get install gdb)");

  char stub_dir[PATH_MAX];
  snprintf(stub_dir, sizeof stub_dir, "%s", stub);
  *strrchr(stub_dir, '/') = '\0';
  snprintf(hide, sizeof hide, "hide=%s", stub_dir);
  refusal("the library not in the target's mount namespace", hide, NULL, NULL, AS_IS, NULL,
          "is not visible inside");

  /* The state directory a symbolic link: refused before anything. */
  char bad[PATH_MAX], real[PATH_MAX], link_to[PATH_MAX + 16], bad_env[PATH_MAX + 32];
  snprintf(bad, sizeof bad, "%s/badrun", tl_tmpdir());
  snprintf(real, sizeof real, "%s/badrun-real", tl_tmpdir());
  snprintf(link_to, sizeof link_to, "%s/heapprof", bad);
  CHECK(mkdir(bad, 0700) == 0 && mkdir(real, 0700) == 0 && symlink(real, link_to) == 0,
        "symlinked state dir");
  snprintf(bad_env, sizeof bad_env, "XDG_RUNTIME_DIR=%s", bad);
  char *bad_state[] = {"PATH=/usr/bin:/bin", stub_env, bad_env, NULL};
  refusal("a symbolic link for the state directory", NULL, NULL, NULL, AS_IS, bad_state,
          "cannot keep the attach state");
}

/* ---- gdb runs ---- */

static char *read_file(const char *path) {
  int fd = open(path, O_RDONLY);
  return fd < 0 ? NULL : slurp(fd);
}

/* Each round a fresh process, so that every attach really loads the
 * library (dlopen allocates: on a thread stopped inside malloc holding its
 * arena's lock, that call never returns). */
static void test_safepoint(void) {
  char out[PATH_MAX], pid[16], path[PATH_MAX];
  snprintf(out, sizeof out, "%s/p.%%p.%%n.pb.gz", tl_tmpdir());
  for (int round = 1; round <= 10; round++) {
    victim_t v = start_victim("busy", NULL, NULL, NULL);
    snprintf(pid, sizeof pid, "%d", (int)v.pid);
    snprintf(path, sizeof path, "%s/stub.%d.start", tl_tmpdir(), (int)v.pid);
    char rate[16], want[PATH_MAX + 128];
    snprintf(rate, sizeof rate, "%d", round);
    result_t r = CLI("attach", pid, "-v", "--rate", rate, "--out", out);
    CHECK(r.status == 0 && strstr(r.err, "at the entry of ") != NULL &&
              strstr(r.err, "heapprof: attached to ") != NULL,
          "round %d: attach status %d:\n%s", round, r.status, r.err);
    char *got = read_file(path);
    snprintf(want, sizeof want, "HEAPPROF_RATE=%d\nHEAPPROF_OUT=%s\nHEAPPROF_SIGNAL=12\n",
             round, out);
    CHECK(got != NULL && strcmp(got, want) == 0, "round %d: the stub's settings:\n%s\nwant:\n%s",
          round, got, want);
    free(got), free(r.out), free(r.err);
    r = CLI("detach", pid, "-v");
    CHECK(r.status == 0 && strstr(r.err, "at the entry of ") != NULL,
          "round %d: detach status %d:\n%s", round, r.status, r.err);
    free(r.out), free(r.err);
    target_status_t st;
    CHECK(target_status(v.pid, &st) == 0 && st.state != 'T' && st.tracer == 0,
          "round %d: the victim is stopped or traced", round);
    CHECK(waitpid(v.pid, NULL, WNOHANG) == 0, "round %d: the busy victim ended", round);
    kill(v.pid, SIGKILL);
    int status;
    waitpid(v.pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "busy victim status %d", status);
    close(v.in), close(v.out);
  }
  printf("ok: 10 processes with 2 threads in malloc(100000)/free attached and detached, "
         "each at an allocator's entry\n");
}

/* Four visits to a process that only sleeps in nanosleep and a timed
 * futex wait: after the first, the kernel resumes both as restart_syscall,
 * which must count as blocked too, or no later visit finds a safe point
 * (a detach would give up after 10 s). */
static void test_revisit(void) {
  char pid[16];
  char *argv[] = {victim, "sleeps", NULL};
  victim_t v = start(argv, victim_env);
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  for (int round = 0; round < 2; round++) {
    result_t r = CLI("attach", pid, "-v");
    CHECK(r.status == 0 && strstr(r.err, " blocked in ") != NULL,
          "round %d: attach to a sleeping process: status %d:\n%s", round, r.status, r.err);
    printf("ok: attach %d:\n%s", round, r.err);
    r = CLI("detach", pid, "-v");
    CHECK(r.status == 0 && strstr(r.err, " blocked in ") != NULL,
          "round %d: detach from a sleeping process: status %d:\n%s", round, r.status, r.err);
    printf("ok: detach %d:\n%s", round, r.err);
  }
  target_status_t st;
  CHECK(target_status(v.pid, &st) == 0 && st.state == 'S' && st.tracer == 0,
        "the victim is not left sleeping untraced (state %c, tracer %d)", st.state,
        (int)st.tracer);
  CHECK(kill(v.pid, SIGKILL) == 0, "kill");
  int status;
  waitpid(v.pid, &status, 0);
  close(v.in), close(v.out);
  printf("ok: two attach/detach rounds into a process in nanosleep and a timed futex wait\n");
}

/* Another thread holds the loader's lock: the dlopen called in would wait
 * for it (for ever, if it waited for the chosen thread), and a gdb killed
 * at its deadline mid-call crashes the process. The attach must wait for
 * a stop where no thread is in the loader, and give up unchanged. */
static void test_loader(void) {
  char pid[16];
  char *argv[] = {victim, "loader", NULL};
  victim_t v = start(argv, victim_env);
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  result_t r = CLI("attach", pid);
  CHECK(r.status == 1 && strstr(r.err, "another thread stayed in the dynamic loader") != NULL &&
            strstr(r.err, "nothing was changed") != NULL,
        "attach while a thread holds the loader's lock: status %d:\n%s", r.status, r.err);
  printf("ok: %s", r.err);
  char maps[64];
  snprintf(maps, sizeof maps, "/proc/%d/maps", (int)v.pid);
  char *m = read_file(maps);
  CHECK(m != NULL && strstr(m, "attach_stub") == NULL, "the library was loaded");
  free(m);
  target_status_t st;
  CHECK(target_status(v.pid, &st) == 0 && st.tracer == 0 && st.state != 't' && st.state != 'T',
        "the victim is left stopped or traced (state %c, tracer %ld)", st.state, st.tracer);
  CHECK(kill(v.pid, SIGKILL) == 0, "kill");
  int status;
  waitpid(v.pid, &status, 0);
  close(v.in), close(v.out);
  printf("ok: refused, the process untouched\n");
}

static void test_idle(void) {
  char pid[16];
  char *argv[] = {victim, "idle", "6", NULL};
  victim_t v = start(argv, victim_env);
  struct timespec settle = {0, 300000000};
  nanosleep(&settle, NULL);
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  char out[PATH_MAX], path[PATH_MAX];
  snprintf(out, sizeof out, "%s/idle.%%p.%%n", tl_tmpdir());
  result_t r = CLI("attach", pid, "-v", "--rate", "4K", "--out", out);
  CHECK(r.status == 0 && strstr(r.err, " blocked in ") != NULL &&
            strstr(r.err, "at the entry of") == NULL,
        "attach to an idle process: status %d:\n%s", r.status, r.err);
  printf("ok: idle attach:\n%s", r.err);
  snprintf(path, sizeof path, "%s/stub.%d.start", tl_tmpdir(), (int)v.pid);
  char *got = read_file(path);
  CHECK(got != NULL && strstr(got, "HEAPPROF_RATE=4K\n") != NULL, "stub settings %s: %s",
        path, got);
  free(got);
  CHECK(write(v.in, "xy", 2) == 2, "write to the victim");
  close(v.in);
  char results[256] = {0};
  size_t len = 0;
  ssize_t n;
  struct pollfd p = {.fd = v.out, .events = POLLIN};
  while (poll(&p, 1, DEADLINE_S * 1000) == 1 &&
         (n = read(v.out, results + len, sizeof results - 1 - len)) > 0)
    len += (size_t)n;
  int status;
  waitpid(v.pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "idle victim status %d", status);
  /* read and nanosleep are restarted as if nothing happened. epoll_wait
   * may return EINTR: any ptrace attach does that to it (signal(7),
   * "Interruption of system calls ... by stop signals"; a bare
   * `gdb -p PID -batch -ex detach` does it too), so it is allowed here and
   * documented rather than hidden. */
  CHECK(strcmp(results, "read 1 x 0\nepoll 1\nsleep 0 0\n") == 0 ||
            strcmp(results, "read 1 x 0\nepoll -4\nsleep 0 0\n") == 0,
        "the blocked calls returned something else:\n%s", results);
  printf("ok: read and nanosleep returned as without the attach; epoll_wait: %s",
         strstr(results, "epoll -4") ? "EINTR (as after any ptrace attach)\n" : "1\n");
  free(r.out), free(r.err);
}

/* One gdb run that fails: status 1, the line, the victim untouched
 * (`touched`: only alive and not stopped) and still running. */
static void gdb_failure(const char *what, char *mode, char **venv, const char *want,
                        int touched) {
  victim_t v = start_victim(mode, NULL, NULL, venv);
  snapshot_t before = snap(v.pid);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  result_t r = CLI("attach", pid);
  CHECK(r.status == 1 && strstr(r.err, want) != NULL && r.out[0] == '\0',
        "%s: status %d, want 1 and '%s':\n%s", what, r.status, want, r.err);
  printf("ok: %s: %s", what, r.err);
  if (!touched)
    untouched(what, v.pid, &before);
  if (strcmp(mode, "plain") == 0) {
    int status = finish(&v);
    CHECK(touched == 2 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "%s: victim status %d", what, status);
  } else {
    CHECK(waitpid(v.pid, NULL, WNOHANG) == 0, "%s: the victim ended", what);
    kill(v.pid, SIGKILL), waitpid(v.pid, NULL, 0);
  }
  free(r.out), free(r.err), free(before.maps);
}

static void test_results(void) {
  char *busy[] = {"PATH=/usr/bin:/bin", "ATTACH_STUB_RC=-4", NULL};
  gdb_failure("heapprof_attach_start says EBUSY", "plain", busy, "is already attached, or has "
              "heapprof preloaded or linked", 1);
  char *nomem[] = {"PATH=/usr/bin:/bin", "ATTACH_STUB_RC=-2", NULL};
  gdb_failure("heapprof_attach_start says ENOMEM", "plain", nomem, "failed: out of memory", 1);
  char *dies[] = {"PATH=/usr/bin:/bin", "ATTACH_STUB_EXIT=1", NULL};
  {
    victim_t v = start_victim("plain", NULL, NULL, dies);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)v.pid);
    result_t r = CLI("attach", pid);
    refused("the process exits during the attach", r, "exited during the attach");
    int status = finish(&v);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "exiting victim status %d", status);
  }
  set_env(stub_tls);
  gdb_failure("static TLS used up", "plain", NULL, "has used up glibc's static TLS reserve", 0);
  set_env(stub);
  gdb_failure("no safe point", "spin", NULL,
              "made no allocator call and had no idle thread in 10 s; nothing was changed", 0);
}

/* ---- the attach record ---- */

static void test_state(void) {
  char pid[16], out[PATH_MAX], rec[PATH_MAX], text[PATH_MAX + 128], dumped[PATH_MAX + 64];
  victim_t v = start_victim("plain", NULL, NULL, NULL);
  snprintf(pid, sizeof pid, "%d", (int)v.pid);
  snprintf(out, sizeof out, "%s/p.%%p.%%n.pb.gz", tl_tmpdir());
  result_t r = CLI("attach", pid, "--out", out, "--signal", "USR1");
  char want[PATH_MAX + 64];
  snprintf(want, sizeof want, "heapprof: attached to %d; profiles to %s/p.%d.%%n.pb.gz\n",
           (int)v.pid, tl_tmpdir(), (int)v.pid);
  CHECK(r.status == 0 && strcmp(r.err, want) == 0 && r.out[0] == '\0',
        "attach: status %d:\n%s\nwant\n%s", r.status, r.err, want);
  free(r.out), free(r.err);

  snprintf(rec, sizeof rec, "%s/heapprof/%d.attach", run_dir, (int)v.pid);
  unsigned long long start;
  CHECK(target_start_time(v.pid, &start) == 0, "start time");
  snprintf(text, sizeof text, "pid %d\nstart %llu\nsignal %d\nout %s\n", (int)v.pid, start,
           SIGUSR1, out);
  char *got = read_file(rec);
  struct stat fs, ds;
  char dir[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/heapprof", run_dir);
  CHECK(got != NULL && strcmp(got, text) == 0, "the record %s:\n%s\nwant\n%s", rec, got, text);
  CHECK(lstat(rec, &fs) == 0 && S_ISREG(fs.st_mode) && (fs.st_mode & 0777) == 0600 &&
            lstat(dir, &ds) == 0 && S_ISDIR(ds.st_mode) && (ds.st_mode & 0777) == 0700,
        "record mode %o, directory mode %o", fs.st_mode & 0777, ds.st_mode & 0777);
  free(got);
  printf("ok: the attach record %s", text);

  refused("attach twice", CLI("attach", pid), "is already attached (use heapprof dump or detach)");

  /* dump finds the template and USR1 through the record (the process's
   * environment says HEAPPROF_SIGNAL=none). */
  r = CLI("dump", pid, "--timeout", "20");
  snprintf(dumped, sizeof dumped, "%s/p.%d.1.pb.gz\n", tl_tmpdir(), (int)v.pid);
  CHECK(r.status == 0 && strcmp(r.out, dumped) == 0, "dump: status %d, printed '%s', want "
        "'%s':\n%s", r.status, r.out, dumped, r.err);
  free(r.out), free(r.err);
  printf("ok: dump through the record printed %s", dumped);

  /* A record of another start time (a reused pid) is not this process's. */
  char stale[PATH_MAX + 128];
  snprintf(stale, sizeof stale, "pid %d\nstart %llu\nsignal %d\nout %s\n", (int)v.pid,
           start + 1, SIGUSR1, out);
  int fd = open(rec, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, stale, strlen(stale)) == (ssize_t)strlen(stale) && close(fd) == 0,
        "rewrite %s", rec);
  refused("dump with a record of another start time", CLI("dump", pid, "--timeout", "2"),
          "HEAPPROF_SIGNAL=none");
  /* Nor is one behind a symbolic link. */
  char aside[PATH_MAX];
  snprintf(aside, sizeof aside, "%s/aside", tl_tmpdir());
  fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && close(fd) == 0,
        "write %s", aside);
  /* dump sweeps a stale record away (start time not the process's). */
  CHECK(access(rec, F_OK) != 0 && errno == ENOENT, "dump left the stale record %s", rec);
  CHECK(symlink(aside, rec) == 0, "symlink %s", rec);
  refused("dump with a record behind a symbolic link", CLI("dump", pid, "--timeout", "2"),
          "HEAPPROF_SIGNAL=none");
  CHECK(unlink(rec) == 0, "unlink");
  fd = open(rec, O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && close(fd) == 0,
        "restore %s", rec);

  r = CLI("detach", pid);
  CHECK(r.status == 0 && strstr(r.err, "detached from") && access(rec, F_OK) != 0,
        "detach: status %d, record %s:\n%s", r.status,
        access(rec, F_OK) == 0 ? "still there" : "gone", r.err);
  free(r.out), free(r.err);
  refused("dump after detach", CLI("dump", pid, "--timeout", "2"), "HEAPPROF_SIGNAL=none");
  refused("detach twice", CLI("detach", pid), "is not attached");

  /* Attach again (the library stays loaded): a relative --out is taken
   * from the command's directory. */
  char *argv[] = {cli, "attach", pid, "--out", "rel.%p.%n", NULL};
  r = run_in(argv, base_env, AS_IS, tl_tmpdir());
  snprintf(want, sizeof want, "profiles to %s/rel.%d.%%n", tl_tmpdir(), (int)v.pid);
  CHECK(r.status == 0 && strstr(r.err, want) != NULL, "attach again, relative --out: %d\n%s",
        r.status, r.err);
  free(r.out), free(r.err);
  got = read_file(rec);
  snprintf(want, sizeof want, "out %s/rel.%%p.%%n\n", tl_tmpdir());
  CHECK(got != NULL && strstr(got, want) != NULL, "record after re-attach:\n%s", got);
  free(got);
  CHECK(finish(&v) == 0, "victim status");
  printf("ok: record ignored for another start time and behind a link; detach removed it; "
         "attach again took a relative --out from its directory\n");
}

/* ---- usage ---- */

static void test_usage(void) {
  result_t r = CLI("--help");
  CHECK(r.status == 0 && strstr(r.out, "heapprof attach PID") && strstr(r.out, "heapprof detach PID"),
        "--help:\n%s", r.out);
  r = CLI("attach", "--help");
  CHECK(r.status == 0 && strstr(r.out, "usage: heapprof attach PID"), "attach --help:\n%s", r.out);
  static char *const bad[][4] = {
      {"attach", NULL},
      {"attach", "notapid", NULL},
      {"attach", "1", "--rate", "lots"},
      {"attach", "1", "--out", "a\nb"},
      {"attach", "1", "--frob", NULL},
      {"attach", "1", "--depth", NULL},
      {"detach", "1", "--rate", "1"},
      {"detach", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    r = CLI(bad[i][0], bad[i][1], bad[i][2], bad[i][3]);
    CHECK(r.status == 2 && one_line(r.err), "%s %s %s: status %d, want 2 and one line:\n%s",
          bad[i][0], bad[i][1] ? bad[i][1] : "", bad[i][2] ? bad[i][2] : "", r.status, r.err);
    if (bad[i][2] != NULL)
      CHECK(strstr(r.err, bad[i][2]) != NULL, "the line does not name %s: %s", bad[i][2], r.err);
  }
  printf("ok: %zu bad argument lists, status 2 and one line each\n", sizeof bad / sizeof *bad);

  /* The permission rules, Yama's included, as the kernel applies them. */
  target_status_t t = {.uid = {1000, 1000, 1000, 1000}, .gid = {1000, 1000, 1000, 1000}};
  char why[256];
  ptrace_facts_t f = {.uid = 1000, .gid = 1000, .target = &t, .yama_scope = -1};
  CHECK(target_ptrace_refusal(&f, why, sizeof why) == NULL, "same user, no Yama: allowed");
  f.yama_scope = 0;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) == NULL, "ptrace_scope 0: allowed");
  f.yama_scope = 1;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) && strstr(why, "ptrace_scope=1"),
        "ptrace_scope 1 without CAP_SYS_PTRACE");
  f.cap_sys_ptrace = 1;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) == NULL, "ptrace_scope 1 with the cap");
  f.yama_scope = 2;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) == NULL, "ptrace_scope 2 with the cap");
  f.yama_scope = 3;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) && strstr(why, "ptrace_scope=3"),
        "ptrace_scope 3 even with the cap");
  f.yama_scope = 2, f.cap_sys_ptrace = 0;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) && strstr(why, "ptrace_scope=2"),
        "ptrace_scope 2 without the cap");
  f.yama_scope = -1;
  t.gid[2] = 0;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) && strstr(why, "uid"), "saved gid differs");
  t.gid[2] = 1000, t.cap_prm = 1;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) && strstr(why, "capabilities"),
        "target capabilities");
  f.not_dumpable = 1, t.cap_prm = 0;
  CHECK(target_ptrace_refusal(&f, why, sizeof why) && strstr(why, "dumpable"), "not dumpable");
  printf("ok: the permission rules, ptrace_scope 0-3 included\n");
}

int main(int argc, char **argv) {
  CHECK(argc == 10, "usage: test_attach_cli MODE HEAPPROF STUB STUB_TLS VICTIM STATIC MUSL "
        "NOLIBC REAL_LIB");
  cli = argv[2], stub = argv[3], stub_tls = argv[4], victim = argv[5];
  prog_static = argv[6], prog_musl = argv[7], prog_nolibc = argv[8], real_lib = argv[9];
  CHECK(access("/usr/bin/gdb", X_OK) == 0 || strcmp(argv[1], "usage") == 0,
        "gdb is missing: scripts/setup.sh installs it (apt-get install gdb)");
  CHECK(geteuid() == 0 || strcmp(argv[1], "usage") == 0 || strcmp(argv[1], "safepoint") == 0 ||
            strcmp(argv[1], "idle") == 0 || strcmp(argv[1], "revisit") == 0 ||
            strcmp(argv[1], "loader") == 0,
        "this mode needs root (to make other users' and setuid targets)");
  snprintf(run_dir, sizeof run_dir, "%s/run", tl_tmpdir());
  CHECK(mkdir(run_dir, 0700) == 0, "mkdir %s", run_dir);
  snprintf(xdg_env, sizeof xdg_env, "XDG_RUNTIME_DIR=%s", run_dir);
  set_env(stub);
  CHECK(chdir(tl_tmpdir()) == 0, "chdir");
  const char *mode = argv[1];
  if (strcmp(mode, "usage") == 0)
    test_usage();
  else if (strcmp(mode, "refusals") == 0)
    test_refusals();
  else if (strcmp(mode, "safepoint") == 0)
    test_safepoint();
  else if (strcmp(mode, "idle") == 0)
    test_idle();
  else if (strcmp(mode, "revisit") == 0)
    test_revisit();
  else if (strcmp(mode, "loader") == 0)
    test_loader();
  else if (strcmp(mode, "results") == 0)
    test_results();
  else if (strcmp(mode, "state") == 0)
    test_state();
  else
    CHECK(0, "unknown mode %s", mode);
  return 0;
}
