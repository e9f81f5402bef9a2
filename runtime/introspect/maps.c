/*
 * maps — reading and parsing /proc/thread-self/maps (see maps.h).
 *
 * Invariant: a maps_view_t's objects never overlap and are sorted by low,
 * and each range lies inside its object; both follow from the kernel's
 * address order, which read_lines() checks rather than trusts.
 */
#define _GNU_SOURCE
#include "maps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FIRST_TEXT_BYTES (64 * 1024)
#define STREAM_CHUNK_BYTES 4096

static const char DELETED_SUFFIX[] = " (deleted)";

static int open_maps(void) {
  int fd = open("/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) /* before Linux 3.17 */
    fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  return fd;
}

static ssize_t read_some(int fd, void *buf, size_t len) {
  ssize_t r;
  while ((r = read(fd, buf, len)) < 0 && errno == EINTR)
    ;
  return r;
}

static void close_keeping_errno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

/* The whole map as a malloc'd NUL-terminated string; NULL with errno. */
static char *slurp(void) {
  int fd = open_maps();
  if (fd < 0)
    return NULL;
  size_t cap = FIRST_TEXT_BYTES, len = 0;
  char *text = malloc(cap);
  for (ssize_t r = 1; text != NULL && r > 0;) {
    if (cap - len < STREAM_CHUNK_BYTES) {
      char *grown = realloc(text, cap *= 2);
      if (grown == NULL) {
        free(text);
        text = NULL;
        errno = ENOMEM;
        break;
      }
      text = grown;
    }
    r = read_some(fd, text + len, cap - len - 1);
    if (r > 0)
      len += (size_t)r;
    else if (r < 0)
      free(text), text = NULL;
  }
  close_keeping_errno(fd);
  if (text != NULL)
    text[len] = '\0';
  return text;
}

/* ---- one line --------------------------------------------------------- */

struct line {
  uint64_t start, end, offset, inode, dev;
  char perms[4];
  char *path; /* into the line; "" for anonymous memory */
  bool deleted;
};

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads a number in `base` (16 or 10) at *p; false if there is no digit
 * or it overflows. */
static bool number(const char **p, unsigned base, uint64_t *out) {
  uint64_t v = 0;
  const char *s = *p;
  int d;
  for (; (d = hex_digit(*s)) >= 0 && (unsigned)d < base; s++) {
    if (v > (UINT64_MAX - (unsigned)d) / base)
      return false;
    v = v * base + (unsigned)d;
  }
  if (s == *p)
    return false;
  *p = s;
  *out = v;
  return true;
}

static bool expect(const char **p, char c) {
  if (**p != c)
    return false;
  (*p)++;
  return true;
}

static void skip_blanks(const char **p) {
  while (**p == ' ' || **p == '\t')
    (*p)++;
}

/* "start-end perms offset major:minor inode   path"; false for anything
 * else. The path runs to the end of the line and may hold spaces. */
static bool parse_line(char *text, struct line *m) {
  const char *p = text;
  uint64_t major, minor;
  if (!number(&p, 16, &m->start) || !expect(&p, '-') ||
      !number(&p, 16, &m->end) || !expect(&p, ' ') || m->end <= m->start)
    return false;
  for (int i = 0; i < 4; i++, p++) {
    if (*p == '\0' || *p == ' ')
      return false;
    m->perms[i] = *p;
  }
  if (!expect(&p, ' ') || !number(&p, 16, &m->offset) || !expect(&p, ' ') ||
      !number(&p, 16, &major) || !expect(&p, ':') || !number(&p, 16, &minor) ||
      !expect(&p, ' ') || !number(&p, 10, &m->inode) || major > UINT32_MAX ||
      minor > UINT32_MAX)
    return false;
  skip_blanks(&p);
  m->dev = makedev((unsigned)major, (unsigned)minor);
  m->path = text + (p - text);
  size_t len = strlen(m->path), suffix = sizeof DELETED_SUFFIX - 1;
  m->deleted = len > suffix && !strcmp(m->path + len - suffix, DELETED_SUFFIX);
  if (m->deleted)
    m->path[len - suffix] = '\0';
  return true;
}

/* ---- grouping lines into objects -------------------------------------- */

/* Doubles *cap (from `first`) and reallocs *array when n reaches it. */
static bool reserve(void **array, size_t *cap, size_t n, size_t elem_bytes,
                    size_t first) {
  if (n < *cap)
    return true;
  size_t cap2 = *cap ? 2 * *cap : first;
  void *grown = realloc(*array, cap2 * elem_bytes);
  if (grown == NULL)
    return false;
  *array = grown;
  *cap = cap2;
  return true;
}

/* Files and the vdso can hold ELF images; [stack], [heap], [vvar] and
 * anonymous memory cannot. */
static bool is_elf_candidate(const struct line *m) {
  return m->path[0] == '/' || strcmp(m->path, "[vdso]") == 0;
}

static bool continues(const maps_object_t *o, const struct line *m) {
  return !o->vdso && o->inode == m->inode && o->dev == m->dev &&
         m->start >= o->lines_end;
}

/* Forgets the last object if it turned out to hold no code (its path is
 * set by its first executable line). */
static void drop_data_object(maps_view_t *v) {
  if (v->nobjects > 0 && v->objects[v->nobjects - 1].path == NULL)
    v->nobjects--;
}

/* The object `m` belongs to: the last one if `m` continues it, else a new
 * one. 0, EINVAL for a line below the last object (not the kernel's
 * address order: skipped), or ENOMEM. */
static int object_for(maps_view_t *v, const struct line *m,
                      maps_object_t **out) {
  if (v->nobjects > 0 && continues(&v->objects[v->nobjects - 1], m)) {
    *out = &v->objects[v->nobjects - 1];
    return 0;
  }
  drop_data_object(v);
  if (v->nobjects > 0 && m->start < v->objects[v->nobjects - 1].lines_end)
    return EINVAL;
  if (!reserve((void **)&v->objects, &v->objects_cap, v->nobjects,
               sizeof *v->objects, 64))
    return ENOMEM;
  maps_object_t *o = *out = &v->objects[v->nobjects++];
  bool vdso = m->path[0] == '[';
  *o = (maps_object_t){.dev = vdso ? 0 : m->dev,
                       .inode = vdso ? 0 : m->inode,
                       .vdso = vdso,
                       .deleted = m->deleted};
  return 0;
}

/* 0 or ENOMEM. */
static int take_line(maps_view_t *v, const struct line *m) {
  maps_object_t *o;
  if (!is_elf_candidate(m))
    return 0;
  int err = object_for(v, m, &o);
  if (err != 0)
    return err == EINVAL ? 0 : err;
  o->lines_end = m->end;
  if (m->perms[2] != 'x')
    return 0;
  if (o->path == NULL) {
    o->path = m->path;
    o->low = m->start;
    o->offset = m->offset;
  }
  o->high = m->end;
  if (!reserve((void **)&v->ranges, &v->ranges_cap, v->nranges,
               sizeof *v->ranges, 64))
    return ENOMEM;
  v->ranges[v->nranges++] =
      (maps_range_t){m->start, m->end, m->offset, v->nobjects - 1};
  return 0;
}

static int read_lines(maps_view_t *v) {
  struct line m;
  int err = 0;
  for (char *line = v->text, *end; err == 0 && *line != '\0'; line = end) {
    end = strchr(line, '\n');
    end = end != NULL ? (*end = '\0', end + 1) : line + strlen(line);
    if (parse_line(line, &m))
      err = take_line(v, &m);
  }
  drop_data_object(v);
  return err;
}

int maps_read(maps_view_t *v) {
  *v = (maps_view_t){0};
  if ((v->text = slurp()) == NULL)
    return errno ? errno : EIO;
  int err = read_lines(v);
  if (err != 0)
    maps_view_free(v);
  return err;
}

void maps_view_free(maps_view_t *v) {
  free(v->objects);
  free(v->ranges);
  free(v->text);
  *v = (maps_view_t){0};
}

int maps_stream(const pprof_sink_t *out) {
  int fd = open_maps();
  if (fd < 0)
    return 0;
  char buf[STREAM_CHUNK_BYTES];
  ssize_t r;
  int rc = 0;
  while (rc == 0 && (r = read_some(fd, buf, sizeof buf)) > 0)
    rc = out->write(out->ctx, buf, (size_t)r) == 0 ? 0 : -1;
  close_keeping_errno(fd);
  return rc;
}
