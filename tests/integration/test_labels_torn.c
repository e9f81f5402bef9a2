/*
 * test_labels_torn — a label push must read the caller's key and value
 * once. heapprof_label_push promises that keys and values are copied and
 * that what it keeps is a valid label (heapprof.h: a key of at most 63
 * bytes, a value of at most 255 bytes of UTF-8 without control
 * characters). A program whose other thread rewrites the string while the
 * push runs (its own data race, but a hostile one) must at worst get one
 * of the two strings, or HEAPPROF_EINVAL: never a label heapprof's checks
 * would refuse, and never heapprof copying more bytes than it measured
 * into its own memory.
 *
 * The rewrite is made deterministic by a seam: this program defines
 * strnlen and strlen (the loader binds libheapprof's calls to them). The
 * k-th time heapprof measures the armed string, the measurement is
 * answered truthfully and then the string is rewritten, as another thread
 * would do between that reading and the next: its terminating NUL becomes
 * a letter, so that the string now runs on for 128 KiB, with a newline in
 * it. Each k from 1 to ROUNDS is tried in a child process of its own (so
 * that a crash inside heapprof is reported as such). A push that measures
 * once and copies what it measured keeps the short string whatever k is;
 * one that checks a string and later measures it again to copy it copies
 * 128 KiB into a 64 KiB pool (at 69b5cd3..9c5144c: the value torn at k = 2
 * or 3, after the insert's check or its measuring; the key at k = 1, after
 * its first measuring, since keys are checked without one).
 *
 * Modes (one per CTest entry):
 *   value   the value is rewritten
 *   key     the key is rewritten
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapprof.h"
#include "testlib.h"

#define TORN_BYTES (128 << 10)
#define SHORT_LEN 8

static char torn[TORN_BYTES];
#define ROUNDS 6

static volatile int armed, fired; /* armed: measurements left before it */

/* After the measurement: the string runs on past its old end. */
static void measured(const char *s) {
  if (armed > 0 && s == torn && --armed == 0) {
    fired++;
    torn[SHORT_LEN] = 'a';
  }
}

/* The seam: the C library's contract, measured without the library (a
 * loop the compiler must not turn back into a call of strlen). */
static size_t measure(const char *s, size_t max) {
  const volatile char *p = s;
  size_t n = 0;
  while (n < max && p[n] != '\0')
    n++;
  return n;
}

size_t strnlen(const char *s, size_t max) {
  size_t n = measure(s, max);
  measured(s);
  return n;
}

size_t strlen(const char *s) {
  size_t n = measure(s, (size_t)-1);
  measured(s);
  return n;
}

static void fill(char first) {
  memset(torn, 'a', sizeof torn - 1);
  torn[sizeof torn - 1] = '\0';
  torn[1000] = '\n';
  snprintf(torn, SHORT_LEN + 1, "%c%07d", first, 1); /* "t0000001" + NUL */
}

static int valid_value(const char *v) {
  size_t n = measure(v, 4096);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
      return 0;
  return n >= 1 && n <= HEAPPROF_LABEL_VALUE_MAX;
}

static int valid_key(const char *k) {
  size_t n = measure(k, 4096);
  for (size_t i = 0; i < n; i++)
    if (!(k[i] == '_' || (k[i] >= 'a' && k[i] <= 'z') ||
          (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9')))
      return 0;
  return n >= 1 && n <= HEAPPROF_LABEL_KEY_MAX;
}

/* The child: one push of a string torn after heapprof's k-th measurement
 * of it, then what is in force. */
static int child(int torn_key, int k) {
  fill(torn_key ? 'k' : 't');
  armed = k;
  int rc = torn_key ? heapprof_label_push(torn, "v")
                    : heapprof_label_push("tenant", torn);
  armed = 0;
  CHECK(fired || k > 1, "heapprof never measured the caller's %s with "
        "strnlen or strlen: the seam of this test is gone (see its comment)",
        torn_key ? "key" : "value");
  CHECK(rc == 0 || rc == HEAPPROF_EINVAL, "k=%d: push: %d (%s)", k, rc,
        heapprof_strerror(rc));
  heapprof_label_t l[HEAPPROF_LABELS_MAX];
  int n = heapprof_label_list(l, HEAPPROF_LABELS_MAX);
  CHECK(n == (rc == 0), "%d labels in force after a push that returned %d",
        n, rc);
  if (n == 1) {
    CHECK(valid_key(l[0].key), "k=%d: a key of %zu bytes is in force: "
          "heapprof kept a label its own check refuses", k,
          measure(l[0].key, 1 << 20));
    CHECK(valid_value(l[0].value), "k=%d: a value of %zu bytes (with a "
          "newline) is in force: heapprof kept a label its own check "
          "refuses", k, measure(l[0].value, 1 << 20));
  }
  return 0;
}

static const char *describe(int status) {
  static char buf[64];
  if (WIFSIGNALED(status))
    snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(status));
  else
    snprintf(buf, sizeof buf, "exit status %d", WEXITSTATUS(status));
  return buf;
}

int main(int argc, char **argv) {
  CHECK(argc == 2 && (strcmp(argv[1], "value") == 0 ||
                      strcmp(argv[1], "key") == 0),
        "usage: %s value|key", argv[0]);
  int torn_key = strcmp(argv[1], "key") == 0, failed = 0;
  for (int k = 1; k <= ROUNDS; k++) {
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
      alarm(60);
      _exit(child(torn_key, k));
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "the child whose %s was torn after heapprof's "
              "measurement %d: %s\n", argv[1], k, describe(status));
      failed++;
    }
  }
  CHECK(failed == 0, "%d of %d torn pushes kept an invalid label or died",
        failed, ROUNDS);
  printf("a torn %s, whenever torn: the label kept is one heapprof's checks "
         "accept\n", argv[1]);
  return 0;
}
