/*
 * pipeline — the one way a profile is made, whoever asks for it (the API,
 * the dump thread's triggers, the exit profile, the HTTP server):
 *
 *   snapshot   the buckets now, or as kept at the high-water mark
 *   symbolize  the process's one symbolizer, kept between profiles and
 *              refreshed only when libraries came or went
 *   encode     profile/pprof.c: gzipped proto, or Go's debug=1 text
 *   sink       a file placed whole, a descriptor, or an HTTP body
 *
 * One profile at a time (dump_lock, pipeline.c). Every function here is
 * the profiler's own work: it marks the calling thread busy, so what it
 * allocates is forwarded unsampled and uncounted, and it holds off the
 * calling thread's cancellation.
 *
 * Errors: 0, or -1 with errno for the pipeline's own reasons — EINVAL (a
 * bad argument, or a HEAPPROF_OUT that cannot name the profile), ENOMEM,
 * EBUSY (not started, exiting, or the window was ended), ENODATA (no peak
 * kept) — or PIPELINE_EIO when the file or descriptor itself failed
 * (creating, writing, syncing or placing it), with errno as that call left
 * it: a write may fail with any errno, so the return tells them apart.
 */
#ifndef HEAPPROF_PIPELINE_H
#define HEAPPROF_PIPELINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buckets.h"
#include "config.h"
#include "heapprof.h"
#include "sink.h"
#include "symtab.h"

#define PIPELINE_EIO (-2)

/* The memory profile/ works in on the dump path (alloc.h). */
extern const prof_alloc_t pipeline_heap;

/* Profiles can be made from now on, as `cfg` says: numbered names from
 * its HEAPPROF_OUT template (copied), each file written said when
 * verbose, C++ and Rust names in its HEAPPROF_DEMANGLE style. */
void pipeline_start(const hp_config_t *cfg);

/*
 * A library is about to be unloaded (dlclose, unload.c): the one `handle`
 * (not NULL) names. Before it goes, if samples hold addresses in its code,
 * a heapprof thread answers and keeps them (symbolizer_retire), so that
 * its frames keep their names, lines and mapping in every later profile;
 * the call waits for that (3 s at most; the thread waits 1 s at most for
 * a profile being written). Nested in another dlclose (`nested`: the
 * loader's lock is held) nothing is handed over and the frames are not
 * kept. Either way, the symbolizer's images of its files are freed: nothing
 * of the library stays mapped. Opens no descriptor in the caller's table.
 */
void pipeline_unloading(void *handle, int nested);

/* The gzipped profile of `kind` into `fd` (left open). */
int pipeline_write_fd(heapprof_kind_t kind, int fd);

/* The gzipped profile of `kind` as the file `path`, replacing a regular
 * file there, complete or not at all. */
int pipeline_write_file(heapprof_kind_t kind, const char *path);

/*
 * The next profile named by HEAPPROF_OUT (a peak profile gets ".peak"
 * before ".pb.gz"); with %n, an existing file is never replaced: the name
 * moves on to the next number. Failures are said on stderr, as is each
 * file written when verbose. The name used goes to path_out (cap bytes,
 * NUL-terminated, truncated) when that is not NULL.
 */
int pipeline_dump(heapprof_kind_t kind, char *path_out, size_t cap);

/*
 * HTTP bodies: start `body` as {.alloc = &pipeline_heap} and
 * pprof_membuf_free it whatever the result.
 *
 * pipeline_body: the profile of `kind`, gzipped proto, or Go's debug=1
 * text when `text`.
 */
int pipeline_body(heapprof_kind_t kind, int text, pprof_membuf_t *body);

/*
 * A window (Go's ?seconds=N) is opened now and closed later, the waiting
 * being the caller's (the HTTP server waits without a thread): open keeps
 * the buckets' counts (24 bytes a bucket; no lock held afterwards), close
 * makes the profile of what was allocated and freed in between — every
 * value a difference, in-use ones too, as Go's are — dated by its end
 * with the window as its duration, and frees what open kept; drop frees
 * it without a profile. `kind` is HEAPPROF_HEAP or HEAPPROF_ALLOCS.
 */
typedef struct pipeline_window {
  bucket_snapshot_t before;
  int64_t opened_ns; /* CLOCK_MONOTONIC */
} pipeline_window_t;

int pipeline_window_open(pipeline_window_t *w);
int pipeline_window_close(pipeline_window_t *w, heapprof_kind_t kind,
                          pprof_membuf_t *body);
void pipeline_window_drop(pipeline_window_t *w);

/*
 * godeltaprof's /debug/pprof/delta_heap: alloc_* since the previous answer
 * (the first: since profiling started), inuse_* as they are now, the time
 * since the previous answer as duration. One base for the process, kept
 * here: whoever asks next gets what came after the last answer. With
 * `advance` 0 (a HEAD request) the base stays where it was.
 */
int pipeline_delta_heap(pprof_membuf_t *body, int advance);

/* Runs fn with the process's symbol table, refreshed, one profile's
 * worth of exclusion held: for the leak report's and the HTTP symbol
 * service's names. The strings fn sees are valid only inside it. */
int pipeline_symbolize(void (*fn)(const prof_symtab_t *syms, void *ctx),
                       void *ctx);

/* At exit: the exit profile is being written, so a dump stuck in another
 * thread is waited for 5 s at most (pipeline_exiting); after the last
 * one, pipeline_stop lets none start (a dump cut off by the end of the
 * process would leave its temp file behind). */
void pipeline_exiting(void);
void pipeline_stop(void);

/* The child starts with no dump in progress; a symbolizer the fork caught
 * mid-refresh is dropped for a new one. */
void pipeline_fork_child(void);

#endif /* HEAPPROF_PIPELINE_H */
