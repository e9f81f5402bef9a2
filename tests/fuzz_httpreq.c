/*
 * fuzz_httpreq — libFuzzer target for the /debug/pprof request parser: any
 * bytes, as a request head, must be parsed or refused without a fault, and
 * a parsed request must satisfy what http.c relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 9000) /* http.c never parses more than its 8 KiB head */
    return 0;
  char *head = malloc(size + 1);
  memcpy(head, data, size);
  head[size] = '\0';
  request_t rq;
  if (httpreq_parse(head, &rq) == 0) {
    if (rq.path[0] != '/' || strlen(rq.path) >= sizeof rq.path ||
        strlen(rq.host) >= sizeof rq.host ||
        rq.content_length > HTTPREQ_BODY_MAX)
      abort();
    long v;
    httpreq_query_int(rq.query, "seconds", &v);
    httpreq_query_int(rq.query, "debug", &v);
    httpreq_host_ok(rq.host, "127.0.0.1", 6060, 0);
    httpreq_host_ok(rq.host, "[::1]", 6060, 0);
  }
  free(head);
  return 0;
}
