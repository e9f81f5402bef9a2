/*
 * http — Go's /debug/pprof endpoints, served from a thread of the library
 * (HEAPPROF_HTTP), so that `go tool pprof http://HOST:PORT/debug/pprof/heap`
 * works against a C or C++ process unchanged.
 */
#ifndef HEAPPROF_HTTP_H
#define HEAPPROF_HTTP_H

/* Parses `addr` ("127.0.0.1:6060", ":0", "[::1]:6060", "localhost:6060"),
 * binds, and starts the server thread. A non-loopback address needs
 * `remote_ok`. Port 0 picks a free port; the address served is printed on
 * stderr then. Problems are reported on stderr; the program goes on
 * without the server. */
void http_start(const char *addr, int remote_ok);

/* In a forked child the server is the parent's: the child closes its copy
 * of the listening socket. */
void http_fork_child(void);

#endif /* HEAPPROF_HTTP_H */
