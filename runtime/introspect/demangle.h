/*
 * demangle — the readable name of a C++ (Itanium ABI) or Rust (legacy
 * and v0) function symbol, for a Function's `name`; its `system_name`
 * stays the linker's.
 *
 * The work is done by libiberty's demanglers (GCC's cp-demangle and
 * rust-demangle, the ones binutils and gdb use), linked statically and
 * hidden inside libheapprof.so, through their callback entry points:
 * they write into the caller's buffer and allocate nothing. So demangle
 * never reaches heapprof's own malloc, needs no C++ runtime and keeps no
 * state of its own: what one call needs is on a stack (the caller's, or a
 * demangle_stack_t the caller owns).
 *
 * Styles, chosen by HEAPPROF_DEMANGLE, follow go tool pprof's
 * -symbolize=demangle= modes, and the default is what pprof 1.19 shows
 * for the mangled name, so storing it changes nothing there while every
 * other reader becomes readable. Compared with pprof's own demangler on
 * 7,941 names (libstdc++'s exports, 1 in 20 of libLLVM-14's, C++ and Rust
 * test programs), every one reads the same except, deliberately:
 *   - legacy Rust identifiers that start with '_': pprof 1.19 drops one
 *     (`THREAD_INFO::__getit` shows as `_getit`); libiberty keeps the
 *     name rustc wrote;
 *   - FULL: pprof 1.19 substitutes some template parameters wrongly
 *     (`yamlize<Hex16>(IO&, has_ScalarTraits&, bool, ...)` for
 *     `Hex16&`); libiberty's signature is the right one;
 *   - DEMANGLE_NONE means the linker's name, where pprof's
 *     `demangle=none` shows full signatures with their clone suffixes;
 *   - a name over the caps (below) is left as it is, and pprof shows what
 *     it always showed for it.
 *
 * Names that are not mangled get what pprof does to them too. DWARF names
 * many inlined functions by DW_AT_name alone, and g++ writes template
 * arguments there (`__invoke_impl<void, main()::<lambda(int)>&, int>`).
 * When pprof cannot demangle a name that looks like demangled C++ (it has
 * one of `<>[]` or "::", and neither ".<" nor "]).", which Java and Go
 * names have), it removes each balanced (...) in its default and
 * templates modes, then each balanced <...> in its default mode, stopping
 * at the first unmatched closer (symbolizer.go's removeMatching). Since
 * heapprof stores name != system_name, pprof no longer does it, so
 * demangle does it the same way: SIMPLE gives `__invoke_impl`, TEMPLATES
 * `__invoke_impl<void, main::<lambda>&, int>`, FULL nothing.
 */
#ifndef HEAPPROF_INTROSPECT_DEMANGLE_H
#define HEAPPROF_INTROSPECT_DEMANGLE_H

#include <stddef.h>

/* The numbers are also HEAPPROF_DEMANGLE's in hp_config_t.demangle
 * (config.h's CONFIG_DEMANGLE_*: runtime/base cannot include this
 * header); test_demangle checks that both agree. */
typedef enum demangle_style {
  DEMANGLE_SIMPLE = 0, /* default: what `go tool pprof` shows: no parameter
                          lists, no template arguments, no return type, no
                          clone suffix */
  DEMANGLE_TEMPLATES,  /* like SIMPLE, template arguments kept (pprof's
                          -symbolize=demangle=templates) */
  DEMANGLE_FULL,       /* the full signature as pprof's demangle=full:
                          parameters and return type, no " [clone ...]" */
  DEMANGLE_NONE,       /* nothing demangled: the linker's name */
} demangle_style_t;

/* ---- on the caller's stack ----
 * The longest C++ or Rust v0 name demangle reads there. libiberty keeps
 * its parse tree on the stack (VLAs of ~72 bytes per byte of name) and
 * its printer recurses once per element of every template argument or
 * parameter list and once per level of nesting, ~424 bytes a level.
 * Measured on a painted stack (test_demangle checks it on every build):
 * the worst shape found, a list of one-letter types (`_Z1f` + 72 × `i`
 * in FULL, `_Z1fI` + 68 × `i` + `Evv` in any style), costs 424 bytes of
 * stack per byte of name, and 76 bytes need ~32,400 bytes (32,375 to
 * 32,487 in Release, Debug and TSan builds): half of the 64 KiB a thread
 * of the program calling the dump API may have. Real names cost far less
 * (at most 212 bytes per byte over 43,355 names of libstdc++, libLLVM-14
 * and Rust's std), but only 66% of them fit 76 bytes. The cap also bounds
 * the time, which nothing else can there: both demanglers can print
 * output exponential in the name's length (substitutions and Rust
 * back-references that double at each level: 196 bytes print 12 MB), and
 * libiberty cannot be stopped from its callback on the caller's stack;
 * the densest such name built here prints 3 KB at 76 bytes. */
#ifndef DEMANGLE_MAX_NAME
#define DEMANGLE_MAX_NAME 76
#endif

/* ---- on a demangle_stack_t ----
 * With a stack of its own, demangle reads names up to
 * DEMANGLE_MAX_NAME_SWITCHED bytes: every one of the 43,355 real names
 * (the longest 545), and as long a C++ name as libiberty reads anyway (it
 * refuses more than 2,048 components, 2 a byte, unless told to drop the
 * recursion limits that bound its stack). It stops libiberty as soon as
 * the readable form can no longer fit `cap` or libiberty has printed
 * DEMANGLE_MAX_PRINTED bytes (the form with template arguments, which
 * SIMPLE strips: 2,343 bytes at most for those real names), switching
 * back to the caller from inside the callback and abandoning the
 * demangler's frames on that stack. So a name costs the parse of at most
 * 1 KB plus that much printing. Measured (Release, a loaded 2-core VM):
 * C++ names doubling their template arguments at each level give up
 * after ~0.5 ms, Rust ones after ~0.1 ms; the slowest found, ~300
 * references to a template parameter (`RT_`) re-printed through
 * substitutions in a local name's parameters, after 1.2 to 2 ms
 * (libiberty looks each one up in a list as long as their number). A
 * call also costs ~1 µs more than on the caller's stack: getcontext,
 * swapcontext and setcontext each make one rt_sigprocmask call.
 *
 * One thing printing does not bound: libiberty's search for the pack a
 * pack expansion (`Dp`, `sp`) expands walks the expansion's pattern with
 * substitutions expanded and prints nothing when the pack is empty
 * (`JE`), so `_Z1fIJEEvDp1cI1aFS1_S1_S1_EFS2_S2_S2_E...T_E` costs 3× per
 * 11 bytes (195 bytes: 0.5 s); `sP` (sizeof... of a captured pack) walks
 * without printing whatever the packs hold. A name with an empty pack or
 * `sP`, and an expansion of anything but a template parameter (`sp`,
 * `sZ`, a `Dp` not of the form `DpOT_`, `DpRKT0_`), is read up to
 * DEMANGLE_MAX_NAME_PACKS bytes (0.3 ms at most measured). None of the
 * 43,355 real names is such a name: every `Dp` in them expands a
 * parameter.
 *
 * DEMANGLE_STACK_BYTES: libiberty's arrays take at most ~200 KB at 1 KB
 * (parse tree, substitutions, saved scopes and templates: each bounded by
 * the number of components), and its printer stops at 1,024 levels of
 * recursion, ~424 bytes each on the deepest path found. The worst name
 * found needs ~575 KB (180 `RT_` before 36 levels of b<previous,
 * previous>); the list of one-letter types alone 434,247 bytes (a search
 * over 100 repeated units in 16 contexts and both demanglers found none
 * deeper). 2 MiB is 3.6 times that. Below it lies DEMANGLE_GUARD_BYTES
 * of PROT_NONE: libiberty.a is built without stack-clash probes and takes
 * each of its arrays (64 KiB at most at 1 KB) from the stack in one step,
 * so a one-page guard could be stepped over. Only the pages a name
 * reaches are ever touched: real names need up to 212 bytes of stack a
 * byte. */
#define DEMANGLE_MAX_NAME_SWITCHED 1024
#define DEMANGLE_MAX_NAME_PACKS 128
#define DEMANGLE_MAX_PRINTED 16384
#ifndef DEMANGLE_STACK_BYTES /* test_demangle_guard builds a tiny one */
#define DEMANGLE_STACK_BYTES (2 * 1024 * 1024)
#endif
#define DEMANGLE_GUARD_BYTES (256 * 1024)

/* The longest legacy Rust name (`_ZN...17h<hash>E`) demangle reads on
 * any stack. Their demangler walks the path in a loop: ~700 bytes of
 * stack and linear time whatever the length (measured at 4,093 bytes),
 * and half of the legacy names in Rust's std are longer than
 * DEMANGLE_MAX_NAME. */
#define DEMANGLE_MAX_RUST_LEGACY 4096

/* A stack to demangle on: an anonymous mapping of DEMANGLE_STACK_BYTES
 * with DEMANGLE_GUARD_BYTES of PROT_NONE below it (no descriptor, no
 * malloc). One call at a time may use it: the symbolizer owns one and
 * uses it under the dump lock. While a call runs on it, every signal but
 * the faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) is held, so no
 * handler of the program's runs there; a signal that arrives meanwhile is
 * delivered when the call returns, a few µs (at most ~2 ms) later. */
typedef struct demangle_stack demangle_stack_t;

/* NULL with errno set when it cannot be mapped. */
demangle_stack_t *demangle_stack_new(void);
/* NULL is fine; errno is kept. */
void demangle_stack_free(demangle_stack_t *st);

/* How many bytes of `st` any call has used so far (for tests and
 * measurement: it reads the whole stack). */
size_t demangle_stack_used(const demangle_stack_t *st);

/* Writes the readable form of `name` into out[0..cap), NUL-terminated,
 * and returns its length; returns 0 (out then unspecified) when `name`
 * is neither an Itanium C++ or Rust (legacy _ZN...17h<hash>E or v0 _R...)
 * mangled name nor a name that pprof's heuristic (above) changes, when
 * style is DEMANGLE_NONE, when the readable form does not fit in cap, or
 * when a mangled `name` is longer than its cap: DEMANGLE_MAX_NAME when
 * `st` is NULL, DEMANGLE_MAX_NAME_SWITCHED (or DEMANGLE_MAX_NAME_PACKS)
 * on `st`, DEMANGLE_MAX_RUST_LEGACY for legacy Rust. The caller then uses
 * `name` as it is. `st`, when given, is switched to for libiberty's work
 * (the signal mask stays the caller's). Allocates nothing (no malloc
 * family at all); safe on any number of threads at once, each with its
 * own `st` or none. */
size_t demangle(const char *name, demangle_style_t style, char *out,
                size_t cap, demangle_stack_t *st);

#endif /* HEAPPROF_INTROSPECT_DEMANGLE_H */
