/*
 * testlib — shared test helpers. Profiles are read only through the real
 * `go tool pprof`: a profile pprof cannot read fails the test.
 */
#define _GNU_SOURCE
#include "testlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void tl_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) {
  fprintf(stderr, "FAIL %s:%d: %s\n  ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

char **tl_env(const char *const *drop, const char *add) {
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + 2, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int keep = 1;
    for (const char *const *d = drop; keep && *d != NULL; d++)
      keep = strncmp(environ[i], *d, strlen(*d)) != 0;
    if (keep)
      env[k++] = environ[i];
  }
  if (add != NULL)
    env[k] = strdup(add);
  return env;
}

static char **clean_env(void) {
  return tl_env((const char *const[]){"LD_PRELOAD=", "HEAPPROF_", NULL}, NULL);
}

/* Reads all of fd into a malloc'd string. */
static char *slurp(int fd) {
  size_t len = 0, cap = 1 << 16;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 4096 > cap)
      buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  buf[len] = '\0';
  return buf;
}

int tl_run_env(char *const argv[], char *const env[], char **out, char **err) {
  char outp[600], errp[600];
  snprintf(outp, sizeof outp, "%s/run.out", tl_tmpdir());
  snprintf(errp, sizeof errp, "%s/run.err", tl_tmpdir());
  fflush(NULL); /* or the child's freopen writes our pending output again */
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    freopen(outp, "w", stdout);
    freopen(errp, "w", stderr);
    execve(argv[0], argv, env);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  int fo = open(outp, O_RDONLY), fe = open(errp, O_RDONLY);
  *out = slurp(fo);
  *err = slurp(fe);
  close(fo);
  close(fe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tl_run(char *const argv[], char **out) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execvpe(argv[0], argv, clean_env());
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  char *buf = slurp(fds[0]);
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- parsing `go tool pprof -raw` ---- */

typedef struct loc {
  long id;
  char *func;
} loc_t;

static const char *loc_func(loc_t *locs, size_t n, long id) {
  for (size_t i = 0; i < n; i++)
    if (locs[i].id == id)
      return locs[i].func;
  return "";
}

/* "     12: 0x7f.. M=2 name file:line s=0" → id 12, func "name". */
static int parse_location(char *line, loc_t *l) {
  char *colon = strchr(line, ':');
  if (colon == NULL || sscanf(line, " %ld:", &l->id) != 1)
    return 0;
  char *m = strstr(colon, " M=");
  char *name = m ? strchr(m + 3, ' ') : NULL;
  l->func = strdup("");
  if (name == NULL)
    return 1;
  while (*name == ' ')
    name++;
  size_t len = strcspn(name, " \n");
  if (len > 0 && strncmp(name, "s=", 2) != 0) {
    free(l->func);
    l->func = strndup(name, len);
  }
  return 1;
}

/* Whether `q` starts a `key:[` of pprof's label lines: the key runs to
 * the first ':' and holds no space. */
static int label_start(const char *q) {
  size_t k = strcspn(q, ": ");
  return k > 0 && q[k] == ':' && q[k + 1] == '[';
}

/* The ']' that closes the value starting at `v`: the first one followed by
 * the end of the line or by a space and the next `key:[` (a value may
 * itself hold spaces and brackets). */
static const char *value_end(const char *v) {
  for (const char *e = strchr(v, ']'); e != NULL; e = strchr(e + 1, ']'))
    if (e[1] == '\0' ||
        (e[1] == ' ' && label_start(e + 1 + strspn(e + 1, " "))))
      return e;
  return v + strlen(v);
}

/* A label line under sample `s` ("                tenant:[acme] zone:[eu]"
 * for its string labels, "                bytes:[1000]" for the numeric
 * one): its labels go to `s`. 0 if `line` is not one. */
static int parse_labels(const char *line, tl_sample_t *s) {
  const char *q = line + strspn(line, " ");
  if (q == line || !label_start(q))
    return 0;
  while (label_start(q)) {
    size_t klen = strcspn(q, ":");
    const char *v = q + klen + 2, *end = value_end(v);
    if (klen == 5 && strncmp(q, "bytes", 5) == 0) {
      s->bytes = atoll(v);
    } else {
      s->labels = realloc(s->labels, (2 * s->nlabels + 2) * sizeof *s->labels);
      s->labels[2 * s->nlabels] = strndup(q, klen);
      s->labels[2 * s->nlabels + 1] = strndup(v, (size_t)(end - v));
      s->nlabels++;
    }
    q = *end != '\0' ? end + 1 : end;
    q += strspn(q, " ");
  }
  return 1;
}

void tl_read_profile(const char *path, tl_profile_t *p) {
  char *argv[] = {"go", "tool", "pprof", "-raw", (char *)path, NULL};
  memset(p, 0, sizeof *p);
  int rc = tl_run(argv, &p->raw);
  CHECK(rc == 0, "go tool pprof -raw %s failed (exit %d):\n%s", path, rc,
        p->raw ? p->raw : "");
  CHECK(strstr(p->raw, "Samples:") != NULL, "no Samples in -raw output:\n%s",
        p->raw);
  char *save, *text = strdup(p->raw);
  enum { HEAD, SAMPLES, LOCATIONS, OTHER } section = HEAD;
  loc_t *locs = NULL;
  size_t nlocs = 0;
  typedef struct { tl_sample_t s; long *ids; } pending_t;
  pending_t *pend = NULL;
  size_t npend = 0;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    if (strncmp(line, "Period: ", 8) == 0)
      p->period = atoll(line + 8);
    if (strcmp(line, "Samples:") == 0) { section = SAMPLES; continue; }
    if (strcmp(line, "Locations") == 0) { section = LOCATIONS; continue; }
    if (strcmp(line, "Mappings") == 0) { section = OTHER; continue; }
    if (section == SAMPLES) {
      if (npend > 0 && parse_labels(line, &pend[npend - 1].s))
        continue;
      pending_t pe;
      memset(&pe, 0, sizeof pe);
      pe.s.bytes = -1;
      int used = 0;
      if (sscanf(line, " %ld %ld %ld %ld:%n", &pe.s.v[0], &pe.s.v[1],
                 &pe.s.v[2], &pe.s.v[3], &used) != 4)
        continue;
      pe.ids = calloc(512, sizeof(long));
      char *q = line + used;
      int k;
      long id;
      while (pe.s.nlocs < 512 && sscanf(q, " %ld%n", &id, &k) == 1) {
        pe.ids[pe.s.nlocs++] = id;
        q += k;
      }
      pend = realloc(pend, (npend + 1) * sizeof *pend);
      pend[npend++] = pe;
    } else if (section == LOCATIONS) {
      loc_t l;
      if (parse_location(line, &l)) {
        locs = realloc(locs, (nlocs + 1) * sizeof *locs);
        locs[nlocs++] = l;
      } else if (nlocs > 0 && line[0] == ' ') {
        /* A further line of the same location: the function it was
         * inlined into. The last one holds the code, and is the frame. */
        char *name = line + strspn(line, " ");
        size_t len = strcspn(name, " \n");
        if (len > 0 && strncmp(name, "s=", 2) != 0) {
          free(locs[nlocs - 1].func);
          locs[nlocs - 1].func = strndup(name, len);
        }
      }
    }
  }
  p->samples = calloc(npend + 1, sizeof *p->samples);
  for (size_t i = 0; i < npend; i++) {
    tl_sample_t *s = &p->samples[i];
    *s = pend[i].s;
    s->funcs = calloc(s->nlocs + 1, sizeof *s->funcs);
    for (size_t j = 0; j < s->nlocs; j++)
      s->funcs[j] = loc_func(locs, nlocs, pend[i].ids[j]);
    free(pend[i].ids);
  }
  p->nsamples = npend;
  free(pend);
  free(text);
  p->names = malloc((nlocs + 1) * sizeof *p->names);
  for (size_t i = 0; i < nlocs; i++)
    p->names[i] = locs[i].func; /* the samples point at these */
  p->nnames = nlocs;
  free(locs);
}

size_t tl_site(const tl_profile_t *p, const char *func, int64_t v[4]) {
  size_t n = 0;
  memset(v, 0, 4 * sizeof *v);
  for (size_t i = 0; i < p->nsamples; i++) {
    const tl_sample_t *s = &p->samples[i];
    if (s->nlocs == 0 || strcmp(s->funcs[0], func) != 0)
      continue;
    for (int j = 0; j < 4; j++)
      v[j] += s->v[j];
    n++;
  }
  return n;
}

size_t tl_site_any(const tl_profile_t *p, const char *func, int64_t v[4]) {
  size_t n = 0;
  memset(v, 0, 4 * sizeof *v);
  for (size_t i = 0; i < p->nsamples; i++) {
    const tl_sample_t *s = &p->samples[i];
    for (size_t j = 0; j < s->nlocs; j++) {
      if (strcmp(s->funcs[j], func) != 0)
        continue;
      for (int k = 0; k < 4; k++)
        v[k] += s->v[k];
      n++;
      break;
    }
  }
  return n;
}

const char *tl_sample_label(const tl_sample_t *s, const char *key) {
  for (size_t i = 0; i < s->nlabels; i++)
    if (strcmp(s->labels[2 * i], key) == 0)
      return s->labels[2 * i + 1];
  return NULL;
}

size_t tl_site_label(const tl_profile_t *p, const char *func, const char *key,
                     const char *value, int64_t v[4]) {
  size_t n = 0;
  memset(v, 0, 4 * sizeof *v);
  for (size_t i = 0; i < p->nsamples; i++) {
    const tl_sample_t *s = &p->samples[i];
    const char *has = tl_sample_label(s, key);
    if (func != NULL && (s->nlocs == 0 || strcmp(s->funcs[0], func) != 0))
      continue;
    if (value == NULL ? has != NULL : has == NULL || strcmp(has, value) != 0)
      continue;
    for (int j = 0; j < 4; j++)
      v[j] += s->v[j];
    n++;
  }
  return n;
}

void tl_free_profile(tl_profile_t *p) {
  for (size_t i = 0; i < p->nsamples; i++) {
    tl_sample_t *s = &p->samples[i];
    free(s->funcs);
    for (size_t j = 0; j < 2 * s->nlabels; j++)
      free(s->labels[j]);
    free(s->labels);
  }
  free(p->samples);
  free(p->raw);
  for (size_t i = 0; i < p->nnames; i++)
    free(p->names[i]);
  free(p->names);
  memset(p, 0, sizeof *p);
}

static void *api(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  CHECK(f != NULL, "%s not found: is libheapprof.so preloaded or linked?",
        name);
  return f;
}

int tl_write_profile(const char *path, int allocs_view) {
  int (*f)(const char *, int) = (int (*)(const char *, int))api(
      "heapprof_write_profile");
  return f(path, allocs_view);
}

int tl_set_rate(long rate) {
  int (*f)(long) = (int (*)(long))api("heapprof_set_rate");
  return f(rate);
}

const char *tl_tmpdir(void) {
  static char dir[256];
  if (dir[0] == '\0') {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/heapprof-test.XXXXXX", base);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
  }
  return dir;
}
