/*
 * target — reading another process and ELF files for the heapprof
 * command's checks (target.h). Every function here only reads: the
 * invariant is that no check can change the process it looks at.
 */
#define _GNU_SOURCE
#include "target.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void proc_path(char *out, size_t cap, pid_t pid, const char *file) {
  if (pid == 0)
    snprintf(out, cap, "/proc/self/%s", file);
  else
    snprintf(out, cap, "/proc/%d/%s", (int)pid, file);
}

int target_status(pid_t pid, target_status_t *st) {
  char path[64], line[512];
  proc_path(path, sizeof path, pid, "status");
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  memset(st, 0, sizeof *st);
  int seen = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "State: %c", &st->state) == 1)
      seen |= 1;
    else if (sscanf(line, "Uid: %lu %lu %lu %lu", &st->uid[0], &st->uid[1],
                    &st->uid[2], &st->uid[3]) == 4)
      seen |= 2;
    else if (sscanf(line, "Gid: %lu %lu %lu %lu", &st->gid[0], &st->gid[1],
                    &st->gid[2], &st->gid[3]) == 4)
      seen |= 4;
    else if (sscanf(line, "TracerPid: %ld", &st->tracer) == 1)
      seen |= 8;
    else if (sscanf(line, "CapPrm: %" SCNx64, &st->cap_prm) == 1)
      seen |= 16;
    else if (sscanf(line, "CapEff: %" SCNx64, &st->cap_eff) == 1)
      seen |= 32;
    else if (sscanf(line, "SigCgt: %" SCNx64, &st->sig_cgt) == 1)
      seen |= 64;
    else if (sscanf(line, "Threads: %ld", &st->threads) == 1)
      seen |= 128;
  }
  fclose(f);
  if (seen != 255) {
    errno = seen == 0 ? ESRCH : EINVAL;
    return -1;
  }
  return 0;
}

int target_start_time(pid_t pid, unsigned long long *start) {
  char path[64], buf[1024];
  proc_path(path, sizeof path, pid, "stat");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return errno = ESRCH, -1;
  buf[n] = '\0';
  /* The command name (field 2) may hold spaces and parentheses: count
   * fields from its closing parenthesis, field 3 onwards. */
  char *p = strrchr(buf, ')');
  if (p == NULL)
    return errno = EINVAL, -1;
  p++;
  for (int field = 3; field <= 22; field++) {
    while (*p == ' ')
      p++;
    if (field == 22)
      return sscanf(p, "%llu", start) == 1 ? 0 : (errno = EINVAL, -1);
    p = strchr(p, ' ');
    if (p == NULL)
      return errno = EINVAL, -1;
  }
  return errno = EINVAL, -1;
}

int target_not_dumpable(pid_t pid, const target_status_t *st) {
  char path[64];
  struct stat sb;
  proc_path(path, sizeof path, pid, "status");
  if (stat(path, &sb) != 0)
    return -1;
  return st->uid[1] != 0 && sb.st_uid == 0;
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

int target_is_heapprof(const char *base) {
  return strcmp(base, "libheapprof.so") == 0 || starts_with(base, "libheapprof.so.");
}

int target_is_libc(const char *base) {
  return strcmp(base, "libc.so.6") == 0 ||
         (starts_with(base, "libc-2.") && strstr(base, ".so") != NULL);
}

int target_is_glibc_ld(const char *base) {
  return strcmp(base, "ld-linux-x86-64.so.2") == 0;
}

int target_mapping(pid_t pid, int (*want)(const char *base), target_mapping_t *m) {
  char path[64], line[4352];
  proc_path(path, sizeof path, pid, "maps");
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  int found = 0;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    unsigned maj, min;
    unsigned long inode;
    int at = 0;
    if (sscanf(line, "%*s %*s %*s %x:%x %lu %n", &maj, &min, &inode, &at) != 3 ||
        line[at] != '/')
      continue;
    char *file = line + at;
    file[strcspn(file, "\n")] = '\0';
    size_t len = strlen(file);
    if (len > 10 && strcmp(file + len - 10, " (deleted)") == 0)
      file[len - 10] = '\0';
    if (want(strrchr(file, '/') + 1)) {
      snprintf(m->path, sizeof m->path, "%s", file);
      m->dev_major = maj, m->dev_minor = min, m->inode = inode;
      found = 1;
    }
  }
  int failed = ferror(f);
  fclose(f);
  return failed ? (errno = EIO, -1) : found;
}

int target_env(pid_t pid, const char *name, char *buf, size_t cap, const char **value) {
  char path[64];
  proc_path(path, sizeof path, pid, "environ");
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  size_t len = strlen(name);
  for (char *v = buf; v < buf + n; v += strlen(v) + 1)
    if (strncmp(v, name, len) == 0 && v[len] == '=') {
      *value = v + len + 1;
      return 1;
    }
  *value = NULL;
  return 0;
}

/* ---- ELF files ---- */

static int read_at(int fd, void *buf, size_t n, off_t at) {
  ssize_t got = pread(fd, buf, n, at);
  return got == (ssize_t)n ? 0 : (errno = got < 0 ? errno : EINVAL, -1);
}

static int open_elf(const char *path, Elf64_Ehdr *eh) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (read_at(fd, eh, sizeof *eh, 0) != 0 || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
    close(fd);
    return errno = EINVAL, -1;
  }
  return fd;
}

int elf_facts(const char *path, elf_facts_t *f) {
  Elf64_Ehdr eh;
  int fd = open_elf(path, &eh);
  if (fd < 0)
    return -1;
  memset(f, 0, sizeof *f);
  f->elf64 = eh.e_ident[EI_CLASS] == ELFCLASS64;
  f->machine = eh.e_machine; /* same offset in both classes */
  for (unsigned i = 0; f->elf64 && i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    if (read_at(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) != 0)
      break;
    if (ph.p_type != PT_INTERP)
      continue;
    size_t n = ph.p_filesz < sizeof f->interp ? ph.p_filesz : sizeof f->interp - 1;
    if (read_at(fd, f->interp, n, (off_t)ph.p_offset) == 0) {
      f->interp[n < sizeof f->interp ? n : sizeof f->interp - 1] = '\0';
      f->has_interp = 1;
    }
  }
  close(fd);
  return 0;
}

int elf_exports(const char *path, const char *name) {
  Elf64_Ehdr eh;
  int fd = open_elf(path, &eh);
  if (fd < 0)
    return -1;
  int found = 0;
  for (unsigned i = 0; eh.e_ident[EI_CLASS] == ELFCLASS64 && i < eh.e_shnum && !found; i++) {
    Elf64_Shdr sh, strsh;
    if (read_at(fd, &sh, sizeof sh, (off_t)(eh.e_shoff + (uint64_t)i * eh.e_shentsize)) != 0 ||
        sh.sh_type != SHT_DYNSYM || sh.sh_entsize != sizeof(Elf64_Sym) ||
        read_at(fd, &strsh, sizeof strsh,
                (off_t)(eh.e_shoff + (uint64_t)sh.sh_link * eh.e_shentsize)) != 0)
      continue;
    size_t want = strlen(name) + 1;
    char got[256];
    for (uint64_t k = 1; k < sh.sh_size / sizeof(Elf64_Sym) && !found; k++) {
      Elf64_Sym sym;
      if (read_at(fd, &sym, sizeof sym, (off_t)(sh.sh_offset + k * sizeof sym)) != 0)
        break;
      int bind = ELF64_ST_BIND(sym.st_info);
      if (sym.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym.st_info) != STT_FUNC ||
          (bind != STB_GLOBAL && bind != STB_WEAK) || sym.st_name >= strsh.sh_size ||
          want > sizeof got || strsh.sh_size - sym.st_name < want)
        continue;
      found = read_at(fd, got, want, (off_t)(strsh.sh_offset + sym.st_name)) == 0 &&
              memcmp(got, name, want) == 0;
    }
  }
  close(fd);
  return found;
}

/* ---- permission ---- */

int target_yama_scope(void) {
  FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
  int scope = -1;
  if (f != NULL) {
    if (fscanf(f, "%d", &scope) != 1)
      scope = -1;
    fclose(f);
  }
  return scope;
}

const char *target_ptrace_refusal(const ptrace_facts_t *f, char *why, size_t cap) {
  const target_status_t *t = f->target;
  const char *fix = "run as root or with CAP_SYS_PTRACE";
  if (f->yama_scope >= 3)
    snprintf(why, cap, "ptrace_scope=%d: no process may be traced", f->yama_scope);
  else if (f->yama_scope >= 1 && !f->cap_sys_ptrace)
    snprintf(why, cap, "ptrace_scope=%d; %s", f->yama_scope, fix);
  else if (f->cap_sys_ptrace)
    return NULL;
  else if (t->uid[0] != f->uid || t->uid[1] != f->uid || t->uid[2] != f->uid ||
           t->gid[0] != f->gid || t->gid[1] != f->gid || t->gid[2] != f->gid)
    snprintf(why, cap, "it runs as uid %lu, you as uid %lu; %s", t->uid[1], f->uid, fix);
  else if (f->not_dumpable)
    snprintf(why, cap, "it is not dumpable; %s", fix);
  else if ((t->cap_prm & ~f->cap_prm) != 0)
    snprintf(why, cap, "it has capabilities you lack; %s", fix);
  else
    return NULL;
  return why;
}
