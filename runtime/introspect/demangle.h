/*
 * demangle — the readable name of a C++ (Itanium ABI) or Rust (legacy
 * and v0) function symbol, for a Function's `name`; its `system_name`
 * stays the linker's.
 *
 * The work is done by libiberty's demanglers (GCC's cp-demangle and
 * rust-demangle, the ones binutils and gdb use), linked statically and
 * hidden inside libheapprof.so, through their callback entry points:
 * they write into the caller's buffer and allocate nothing. So demangle
 * never reaches heapprof's own malloc, needs no C++ runtime, keeps no
 * state and may run on any number of threads at once.
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
 *   - a name over the cap (below) is left as it is, and pprof shows what
 *     it always showed for it.
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

/* The longest C++ or Rust v0 name demangle reads. libiberty keeps its
 * parse tree on the stack (VLAs of ~72 bytes per byte of name) and its
 * printer recurses once per element of every template argument or
 * parameter list and once per level of nesting, ~424 bytes a level.
 * Measured on a painted stack (test_demangle checks it on every build):
 * the worst shape found, a list of one-letter types (`_Z1f` + 72 × `i`
 * in FULL, `_Z1fI` + 68 × `i` + `Evv` in any style), costs 424 bytes of
 * stack per byte of name, and 76 bytes need ~32,400 bytes (32,375 to
 * 32,487 in Release, Debug and TSan builds): half of the 64 KiB a thread
 * of the program calling the dump API may have. Real
 * names cost far less (at most 212 bytes per byte over 43,355 names of
 * libstdc++, libLLVM-14 and Rust's std: a 256-byte one 30.4 KB), but only
 * 66% of them fit 76 bytes; the rest, e.g. std::vector<T>::
 * _M_realloc_insert (~106 bytes), are left mangled and go tool pprof
 * demangles them itself (name == system_name). The cap also bounds the
 * time: both demanglers can print output exponential in the name's length
 * (substitutions and Rust back-references that double at each level: 196
 * bytes print 12 MB); the densest such name built here prints 3 KB at 76
 * bytes. Raising the cap needs a bigger stack AND a bound on that output
 * (libiberty cannot be stopped from its callback). */
#ifndef DEMANGLE_MAX_NAME /* test_demangle_uncapped builds a larger one */
#define DEMANGLE_MAX_NAME 76
#endif

/* The longest legacy Rust name (`_ZN...17h<hash>E`) demangle reads. Their
 * demangler walks the path in a loop: ~700 bytes of stack and linear time
 * whatever the length (measured at 4,093 bytes), and half of the legacy
 * names in Rust's std are longer than DEMANGLE_MAX_NAME. */
#define DEMANGLE_MAX_RUST_LEGACY 4096

/* Writes the readable form of `name` into out[0..cap), NUL-terminated,
 * and returns its length; returns 0 (out then unspecified) when `name` is
 * not an Itanium C++ or Rust (legacy _ZN...17h<hash>E or v0 _R...)
 * mangled name, when style is DEMANGLE_NONE, when the readable form does
 * not fit in cap, or when `name` is longer than DEMANGLE_MAX_NAME (a
 * legacy Rust name: DEMANGLE_MAX_RUST_LEGACY). The caller then uses
 * `name` as it is. Allocates nothing (no malloc family at all), keeps no
 * state: safe on any thread at once. */
size_t demangle(const char *name, demangle_style_t style, char *out,
                size_t cap);

#endif /* HEAPPROF_INTROSPECT_DEMANGLE_H */
