/*
 * cli — what the heapprof command's parts share (heapprof.c defines it):
 * failing with one line, checking an option value with the library's own
 * parser, the library's path, and telling where profiles go.
 */
#ifndef HEAPPROF_CLI_H
#define HEAPPROF_CLI_H

#include <stddef.h>
#include <sys/types.h>

/* The profile template when none is given (relative: to the process's
 * working directory for run, to the command's for attach). */
#define DEFAULT_OUT "heapprof.%p.%n.pb.gz"

/* "heapprof: " + the message + newline on stderr, then exit(status):
 * 1 for a refusal or failure, 2 for a usage error. */
void die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* At most 64 bytes of `v` with control bytes shown as '?'. */
const char *shown(const char *v, char out[65]);

/* Exits with status 2 unless the library's parser for `var` takes
 * `value`; `what` names it in the message (the option). */
void check_value(const char *what, const char *var, const char *value);

/* The options run and attach share that take a value, and the variable
 * each sets; NULL if `opt` is none of them. */
const char *option_variable(const char *opt);

/* `tmpl` with %p filled in and the other % sequences kept. */
void describe_out(const char *tmpl, pid_t pid, char *out, size_t cap);

/* libheapprof.so beside this program (its install or build tree), or
 * where it was to be installed; exits with status 1 if none is there. */
void find_library(char *out, size_t cap);

/* A decimal process id, or exit with status 2. */
pid_t parse_pid(const char *s);

int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);

#endif /* HEAPPROF_CLI_H */
