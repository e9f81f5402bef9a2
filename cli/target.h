/*
 * target — what the heapprof command reads about another process, without
 * touching it: /proc/PID/status, stat, maps and environ, and the program
 * headers and dynamic symbols of ELF files (the target's executable, the
 * library to load). Nothing here writes to or signals the process.
 */
#ifndef HEAPPROF_CLI_TARGET_H
#define HEAPPROF_CLI_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CAP_SYS_PTRACE_BIT 19

/* The fields of /proc/PID/status the checks use. */
typedef struct target_status {
  char state;            /* State: R, S, D, T, t, Z, X ... */
  unsigned long uid[4];  /* real, effective, saved, filesystem */
  unsigned long gid[4];
  long tracer;           /* TracerPid, 0 = none */
  uint64_t cap_prm;      /* CapPrm */
  uint64_t cap_eff;      /* CapEff */
  uint64_t sig_cgt;      /* SigCgt: bit s-1 set = a handler for signal s */
  long threads;          /* Threads */
} target_status_t;

/* Reads /proc/PID/status (PID 0: this process). 0, or -1 with errno. */
int target_status(pid_t pid, target_status_t *st);

/* The process's start time, /proc/PID/stat field 22 (clock ticks since
 * boot): with the pid, it names one process for good. 0 or -1. */
int target_start_time(pid_t pid, unsigned long long *start);

/* Whether /proc/PID's files belong to root while the process runs as
 * someone else: the kernel's mark of a process that is not dumpable
 * (prctl PR_SET_DUMPABLE 0, or after a setuid). 1, 0, or -1. */
int target_not_dumpable(pid_t pid, const target_status_t *st);

/* A mapped file of the process, from /proc/PID/maps. */
typedef struct target_mapping {
  char path[4096];       /* as the process sees it, " (deleted)" removed */
  unsigned dev_major, dev_minor;
  unsigned long inode;
} target_mapping_t;

/* The first mapping whose file's base name `want` accepts: 1 found (and
 * *m filled), 0 none, -1 on error with errno. */
int target_mapping(pid_t pid, int (*want)(const char *base), target_mapping_t *m);

/* Base-name tests for target_mapping. */
int target_is_heapprof(const char *base);  /* libheapprof.so[.N...] */
int target_is_libc(const char *base);      /* libc.so.6 (or libc-2.N.so) */
int target_is_glibc_ld(const char *base);  /* ld-linux-x86-64.so.2 */

/* `name`'s value in /proc/PID/environ, read into buf: 1 found (*value set),
 * 0 not set, -1 unreadable with errno. */
int target_env(pid_t pid, const char *name, char *buf, size_t cap, const char **value);

/* What the ELF file at `path` says about how it runs. */
typedef struct elf_facts {
  int elf64;             /* ELFCLASS64 */
  unsigned machine;      /* e_machine: 62 = x86-64 */
  int has_interp;        /* a PT_INTERP: dynamically linked */
  char interp[256];      /* its dynamic linker */
} elf_facts_t;

/* 0, or -1 with errno (EINVAL: not an ELF file). */
int elf_facts(const char *path, elf_facts_t *f);

/* Whether the ELF file at `path` exports function `name` (a defined
 * global or weak symbol in .dynsym): 1, 0, or -1 with errno. */
int elf_exports(const char *path, const char *name);

/* Why the kernel would refuse to let this process ptrace the target,
 * or NULL if it would allow it, from the facts it judges by (kernel
 * ptrace_may_access and Yama): the attacher's real uid and gid, whether it
 * has CAP_SYS_PTRACE and its permitted capabilities, the target's ids,
 * permitted capabilities and dumpability, and
 * /proc/sys/kernel/yama/ptrace_scope (-1 without Yama). The target is
 * never the attacher's descendant here (gdb is the attacher's child, not
 * its parent). The reason completes "not permitted to attach to PID (…)". */
typedef struct ptrace_facts {
  unsigned long uid, gid;        /* the attacher's real ids */
  int cap_sys_ptrace;
  uint64_t cap_prm;
  const target_status_t *target;
  int not_dumpable;
  int yama_scope;
} ptrace_facts_t;
const char *target_ptrace_refusal(const ptrace_facts_t *f, char *why, size_t cap);

/* /proc/sys/kernel/yama/ptrace_scope, or -1 if there is no Yama. */
int target_yama_scope(void);

#endif /* HEAPPROF_CLI_TARGET_H */
