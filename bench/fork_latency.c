/*
 * fork_latency — how long fork() takes while profiles are being written.
 *
 * Run preloaded (or not, for the baseline). It keeps 200,000 distinct
 * sampled stacks' worth of buckets (at HEAPPROF_RATE=1), then one thread
 * writes profiles back to back with heapprof_write_profile_fd into
 * /dev/null (when heapprof is loaded) while the main thread forks 200
 * children that _exit at once, timing each fork() in the parent. Prints
 * the mean and the worst fork time in milliseconds. A profiler that holds
 * its dump lock around fork shows the dump's length here.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORKS 200
#define SITES 200000

static _Atomic int done;
static int (*write_fd)(int, int);
static void *volatile keep[SITES];

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Distinct stacks: the recursion depth and the size make each bucket. */
static __attribute__((noinline)) void *grow(int depth, size_t size) {
  void *p = depth == 0 ? malloc(size) : grow(depth - 1, size);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void *dumper(void *arg) {
  (void)arg;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  while (!atomic_load(&done))
    write_fd(fd, 0);
  close(fd);
  return NULL;
}

int main(void) {
  write_fd = (int (*)(int, int))dlsym(RTLD_DEFAULT, "heapprof_write_profile_fd");
  for (int i = 0; i < SITES; i++)
    keep[i] = grow(i % 16, 16 + (size_t)(i / 16));
  pthread_t t;
  if (write_fd != NULL)
    pthread_create(&t, NULL, dumper, NULL);
  double sum = 0, worst = 0;
  for (int i = 0; i < FORKS; i++) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0)
      _exit(0);
    double ms = now_ms() - t0;
    waitpid(pid, NULL, 0);
    sum += ms;
    worst = ms > worst ? ms : worst;
    usleep(2000);
  }
  atomic_store(&done, 1);
  if (write_fd != NULL)
    pthread_join(t, NULL);
  printf("fork while dumping: mean %.2f ms, worst %.2f ms (%d forks%s)\n",
         sum / FORKS, worst, FORKS, write_fd ? "" : ", no heapprof");
  return 0;
}
