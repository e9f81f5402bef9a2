/*
 * sym_inline — an allocation whose call site sits in two inlined helpers,
 * for tests/integration/symbols/sym_inline.py (built -O2 -g).
 *
 * build (noinline) calls make_node, a static inline function, which calls
 * grow, another: at -O2 both are inlined, so the malloc call's return
 * address lies in build's code and DWARF records the chain grow ←
 * make_node ← build. The test finds the lines by their markers: LINE:x is
 * the line of the call inside x, DECL:x the line that declares x. The
 * result of each call is used after it, so no call becomes a jump (a
 * sibling call would leave the return address in main).
 *
 *   sym_inline [N]        N allocations (default 100) kept live, then exit
 *   sym_inline --wait     the same, then "ready" on stdout, and exit at the
 *                         end of stdin (for the HTTP test)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
  struct node *next;
  char *buf;
};

static struct node *volatile nodes;

static inline __attribute__((always_inline)) char *grow(size_t n) /* DECL:grow */
{
  char *p = malloc(n); /* LINE:grow */
  if (p)
    p[0] = (char)n;
  return p;
}

static inline __attribute__((always_inline)) struct node *make_node(struct node *next) /* DECL:make_node */
{
  struct node *n = (struct node *)grow(sizeof *n + 24); /* LINE:make_node */
  if (n) {
    n->next = next;
    n->buf = NULL;
  }
  return n;
}

__attribute__((noinline)) struct node *build(int count) /* DECL:build */
{
  struct node *head = nodes;
  for (int i = 0; i < count; i++) {
    struct node *n = make_node(head); /* LINE:build */
    if (!n)
      abort();
    head = n;
  }
  nodes = head;
  return head;
}

int main(int argc, char **argv) {
  int wait = argc > 1 && strcmp(argv[1], "--wait") == 0;
  int count = argc > 1 && !wait ? atoi(argv[1]) : 100;
  if (!build(count))
    return 1;
  if (wait) {
    printf("ready\n");
    fflush(stdout);
    while (getchar() != EOF)
      ;
  }
  return 0;
}
