/*
 * test_att_python — `heapprof attach` into Debian's python3 (3.11: a
 * non-PIE executable with CPython inside it, whose malloc and free are
 * canonical PLT entries because it takes their addresses) running
 * att_rounds.py: attach --rate 4096, dump, detach, while it builds and
 * frees big bytearrays, bytes, lists and dicts and prints a checksum per
 * round.
 *
 * Checks: every "round R CHECKSUM" line is exactly what the same script
 * prints without heapprof (run again afterwards for as many rounds), the
 * script ends with status 0 and nothing on stderr; the profile has
 * samples under CPython's own functions (Py* / _Py* frames) — the
 * executable's own allocator calls are sampled, not only the libraries'.
 *
 * usage: test_att_python HEAPPROF_CLI ATT_ROUNDS_PY
 * Needs /usr/bin/python3 (Debian's) and gdb. Hang detectors only.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "att_util.h"

#define PYTHON "/usr/bin/python3"

static char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};

typedef struct lines {
  char **v;
  size_t n;
} lines_t;

static void add(lines_t *l, const char *s) {
  l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
  l->v[l->n++] = strdup(s);
}

/* Reads round lines until `n` more have come. */
static void rounds(att_proc_t *p, lines_t *l, size_t n) {
  for (size_t k = 0; k < n; k++) {
    const char *s = att_line(p);
    if (s == NULL) {
      char *err = att_stderr(p);
      CHECK(0, "python ended early; stderr:\n%s", err);
    }
    CHECK(strncmp(s, "round ", 6) == 0, "not a round line: '%s'", s);
    add(l, s);
  }
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_att_python HEAPPROF_CLI ATT_ROUNDS_PY");
  att_require("/usr/bin/gdb", "gdb, which heapprof attach runs");
  att_require(PYTHON, "Debian's python3 (apt-get install python3)");
  att_set_cli(argv[1]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *dir = tl_tmpdir();
  char stop[PATH_MAX], out[PATH_MAX];
  snprintf(stop, sizeof stop, "%s/stop", dir);
  snprintf(out, sizeof out, "%s/py.%%n.pb.gz", dir);

  att_proc_t py;
  char *py_argv[] = {PYTHON, "-u", argv[2], "--until", stop, NULL};
  att_start(&py, py_argv, plain_env);
  lines_t got = {0};
  rounds(&py, &got, 5);
  att_attach(py.pid, "4096", out, NULL);
  /* Rounds read now may have run before the attach: sample the ones that
   * begin after a mark made once it returned. */
  char mark[PATH_MAX + 8];
  snprintf(mark, sizeof mark, "%s.mark", stop);
  FILE *m = fopen(mark, "w");
  CHECK(m != NULL && fclose(m) == 0, "create %s", mark);
  for (const char *s; (s = att_line(&py)) != NULL && strcmp(s, "mark") != 0;) {
    CHECK(strncmp(s, "round ", 6) == 0, "not a round line: '%s'", s);
    add(&got, s);
  }
  rounds(&py, &got, 5);
  char *path = att_dump(py.pid);
  rounds(&py, &got, 5);
  att_detach(py.pid);
  rounds(&py, &got, 5);
  FILE *f = fopen(stop, "w");
  CHECK(f != NULL && fclose(f) == 0, "create %s", stop);
  for (const char *s; (s = att_line(&py)) != NULL && strcmp(s, "end") != 0;) {
    CHECK(strncmp(s, "round ", 6) == 0, "not a round line: '%s'", s);
    add(&got, s);
  }
  int status = att_wait(&py);
  char *err = att_stderr(&py);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && err[0] == '\0',
        "python ended with status %#x; stderr:\n%s", status, err);

  /* The same rounds without heapprof. */
  char limit[32];
  snprintf(limit, sizeof limit, "%zu", got.n);
  char *ref_argv[] = {PYTHON, argv[2], limit, NULL};
  att_result_t ref = att_run(ref_argv, plain_env);
  CHECK(ref.status == 0, "the reference run: status %d\n%s", ref.status, ref.err);
  char *line = ref.out;
  for (size_t i = 0; i < got.n; i++) {
    size_t n = strcspn(line, "\n");
    CHECK(strlen(got.v[i]) == n && strncmp(got.v[i], line, n) == 0,
          "line %zu: attached '%s', without heapprof '%.*s'", i, got.v[i], (int)n, line);
    line += n + (line[n] != '\0');
  }
  CHECK(strcmp(line, "end\n") == 0, "the reference run ended with '%s'", line);
  printf("ok: %zu round lines identical to the run without heapprof; status 0, "
         "stderr empty\n", got.n);

  tl_profile_t p;
  tl_read_profile(path, &p);
  size_t py_frames = 0, big = 0;
  for (size_t i = 0; i < p.nsamples; i++) {
    int py = 0;
    for (size_t j = 0; j < p.samples[i].nlocs; j++)
      py |= strncmp(p.samples[i].funcs[j], "Py", 2) == 0 ||
            strncmp(p.samples[i].funcs[j], "_Py", 3) == 0;
    py_frames += (size_t)py;
    /* bytearray(n) and bytes(a) * 2, n >= 300000: malloc called by the
     * executable itself (PyMem_RawMalloc), never a realloc. At rate 4096
     * each is sampled with probability 1 - e^(-300000/4096) ~ 1. */
    big += (size_t)(p.samples[i].bytes >= 300000);
  }
  char real[PATH_MAX];
  CHECK(realpath(PYTHON, real) != NULL, "realpath %s", PYTHON);
  size_t in_exe = att_samples_in_module(&p, strrchr(real, '/'));
  printf("profile %s: %zu samples, %zu with a Py*/_Py* frame, %zu in %s, %zu of blocks "
         ">= 300000 bytes\n", path, p.nsamples, py_frames, in_exe, real, big);
  CHECK(py_frames > 0 && in_exe > 0,
        "no sample from CPython's own code: the executable's allocator calls were not "
        "sampled:\n%.3000s", p.raw);
  CHECK(big > 0,
        "no sample of the round's bytearray and bytes blocks (>= 300000 bytes, from the "
        "executable's own malloc calls), though the rounds made them while attached: "
        "python3.11's malloc is a canonical PLT entry (a non-PIE executable that takes "
        "its address), and its own calls to it were not sampled (%zu samples, the "
        "largest of their blocks below 300000 bytes: realloc's growth of lists only?)",
        p.nsamples);
  printf("ok: the profile has CPython's frames and its bytearray/bytes blocks\n");
  tl_free_profile(&p);
  return 0;
}
