/*
 * fds_strtok — heapprof never touches the program's strtok state
 * (behaviour B13): a program thread that tokenizes with strtok() gets every
 * token right while heapprof answers POST /debug/pprof/symbol requests.
 *
 * usage: fds_strtok LIBHEAPPROF
 *
 * The program (preloaded, HEAPPROF_HTTP=127.0.0.1:0) runs a thread that
 * splits a 2,000-word line with strtok() over and over and compares every
 * token with the word expected at that place. Meanwhile the driver POSTs
 * "0x401000+0x401010+..." (64 addresses) to heapprof's symbol service, up
 * to 3,000 times or for 20 s. Not one token may be wrong (the old code,
 * which split the body with strtok() on its HTTP thread: 119,134 wrong in
 * 169M), and the test insists on enough tokens and requests to mean
 * something.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

#define WORDS 2000
#define MAX_REQUESTS 3000
#define MAX_MS 20000

/* ---- the program ---- */

static char line[WORDS * 8];
static _Atomic int stop;
static unsigned long long tokens, wrong, short_passes;
static char first_wrong[128];

static void *tokenizer(void *arg) {
  (void)arg;
  static char work[sizeof line];
  char want[16];
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    memcpy(work, line, sizeof line);
    int i = 0;
    for (char *tok = strtok(work, " "); tok != NULL; tok = strtok(NULL, " "), i++) {
      tokens++;
      snprintf(want, sizeof want, "w%d", i);
      if (strcmp(tok, want) != 0 && wrong++ == 0)
        snprintf(first_wrong, sizeof first_wrong,
                 "token %d was \"%.40s\", want \"%s\"", i, tok, want);
    }
    short_passes += i != WORDS;
  }
  return NULL;
}

static int program(void) {
  alarm(120);
  size_t at = 0;
  for (int i = 0; i < WORDS; i++)
    at += (size_t)snprintf(line + at, sizeof line - at, "%sw%d", i ? " " : "", i);
  pthread_t t;
  FU_EXPECT(pthread_create(&t, NULL, tokenizer, NULL) == 0, "pthread_create");
  printf("@ready\n");
  fflush(stdout);
  char word[64];
  FU_EXPECT(fu_line(0, word, sizeof word, 90000) >= 0, "no word from the driver");
  atomic_store(&stop, 1);
  pthread_join(t, NULL);
  printf("program: %llu tokens, %llu wrong, %llu passes with a wrong count\n",
         tokens, wrong, short_passes);
  FU_EXPECT(wrong == 0 && short_passes == 0,
            "the program's strtok() went wrong %llu times while heapprof "
            "answered symbol requests; first: %s", wrong, first_wrong);
  FU_EXPECT(tokens >= 100000, "only %llu tokens checked", tokens);
  return fu_finish("the program's strtok state");
}

/* ---- the driver ---- */

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--child") == 0)
    return program();
  CHECK(argc == 2, "usage: fds_strtok LIBHEAPPROF");
  char **env = fu_env(argv[1], "HEAPPROF_HTTP=127.0.0.1:0", (char *)NULL);
  char *args[] = {(char *)fu_self(), "--child", NULL};
  fu_proc_t p = fu_start(args, env, FU_IN | FU_OUT | FU_ERR);
  int port = fu_port_line(p.err, 30000, NULL, 0);
  FU_EXPECT(port > 0, "no \"serving http://\" line on the program's stderr");
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_expect_line(p.out, "@ready", 30000) == 0, "the program is not ready");

  char body[64 * 12];
  size_t used = 0;
  for (int i = 0; i < 64; i++)
    used += (size_t)snprintf(body + used, sizeof body - used, "%s%#x",
                             i ? "+" : "", 0x401000 + i * 16);
  int requests = 0, answered = 0, first_bad = 0;
  long long end = fu_now_ms() + MAX_MS;
  while (port > 0 && requests < MAX_REQUESTS && fu_now_ms() < end) {
    int status = fu_post(port, "/debug/pprof/symbol", body, NULL);
    requests++;
    if (status == 200)
      answered++;
    else if (first_bad == 0)
      first_bad = status;
  }
  printf("driver: %d symbol requests, %d answered 200\n", requests, answered);
  FU_EXPECT(answered == requests && requests >= 100,
            "%d of %d symbol requests answered (first other status %d)",
            answered, requests, first_bad);
  ssize_t ignored = write(p.in, "stop\n", 5);
  (void)ignored;
  FU_EXPECT(fu_relay(p.out, 60000) == 0, "the program did not finish");
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above); "
                         "its stderr:\n%s", status, err);
  return fu_finish("the program's strtok state");
}
