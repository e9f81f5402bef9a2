/*
 * http — Go's /debug/pprof endpoints, served from a thread of the library
 * (HEAPPROF_HTTP), so that `go tool pprof http://HOST:PORT/debug/pprof/heap`
 * works against a C or C++ process unchanged.
 */
#ifndef HEAPPROF_HTTP_H
#define HEAPPROF_HTTP_H

/* Starts the server thread for `addr` ("127.0.0.1:6060", ":0",
 * "[::1]:6060", "localhost:6060"; checked by config.c, loopback unless
 * `remote_ok`), which binds in a descriptor table of its own. Port 0 picks
 * a free port; the address served is printed on stderr then. Problems are
 * reported on stderr; the program goes on without the server. A port that
 * another heapprof serves (a fixed HEAPPROF_HTTP inherited from a profiled
 * parent) is left to it silently, or with one line when `verbose`. A
 * forked child does not serve: the socket stays with the parent's thread. */
void http_start(const char *addr, int remote_ok, int verbose);

/* Ends the server thread (within a tenth of a second, after the request in
 * progress): 1 if there was one. http_restart starts it again on the same
 * address (port 0 picks, and prints, a new port). */
int http_stop(void);
void http_restart(void);

/* In a forked child: there is no server thread here. */
void http_fork_child(void);

#endif /* HEAPPROF_HTTP_H */
