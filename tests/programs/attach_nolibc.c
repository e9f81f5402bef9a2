/*
 * attach_nolibc — a dynamically linked program (it has glibc's dynamic
 * linker as PT_INTERP) that uses no libc at all: heapprof attach must
 * refuse it as "not linked with glibc". Prints "ready", reads stdin until
 * EOF, with raw system calls. Built -nostdlib.
 */
static long sys3(long nr, long a, long b, long c) {
  long rc;
  __asm__ volatile("syscall" : "=a"(rc) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return rc;
}

void _start(void) {
  static const char msg[] = "ready\n";
  char buf[64];
  sys3(1, 1, (long)msg, sizeof msg - 1);
  while (sys3(0, 0, (long)buf, sizeof buf) > 0) {
  }
  sys3(60, 0, 0, 0);
  for (;;) {
  }
}
