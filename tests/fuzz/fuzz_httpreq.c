/*
 * fuzz_httpreq — libFuzzer target for the /debug/pprof request parser: any
 * bytes, as a request head, must be framed, parsed or refused without a
 * fault; a parsed request must satisfy what http.c relies on; and the
 * framing check must agree with the parser (a head the parser accepts is
 * one httpreq_head_end finds complete, ending where the parser stopped).
 * The same bytes are also tried as a Host header and a HEAPPROF_HTTP
 * address.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

static void check_framing(const uint8_t *data, size_t size, int parsed,
                          const char *copy) {
  size_t head_len = 0;
  int end = httpreq_head_end((const char *)data, size, &head_len);
  if (end == 1 && (head_len < 4 || head_len > size ||
                   memcmp(data + head_len - 4, "\r\n\r\n", 4) != 0))
    abort();
  if (!parsed)
    return;
  const char *blank = strstr(copy, "\r\n\r\n");
  if (end != 1 || blank == NULL || head_len != (size_t)(blank - copy) + 4)
    abort();
}

static void check_address(const char *s) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  memset(&ss, 0, sizeof ss);
  if (strlen(s) < 128 && httpreq_parse_addr(s, &ss, &len) == 0 &&
      !((ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
        (ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6))))
    abort();
  httpreq_addr_loopback(&ss);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 9000) /* http.c never parses more than its 8 KiB head */
    return 0;
  char *head = malloc(size + 1), *copy = malloc(size + 1);
  memcpy(head, data, size);
  head[size] = '\0';
  memcpy(copy, head, size + 1);
  request_t rq;
  int parsed = httpreq_parse(head, &rq) == 0;
  if (parsed) {
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
  check_framing(data, size, parsed, copy);
  if (strlen(copy) < 300)
    httpreq_host_ok(copy, "127.0.0.1", 6060, 0);
  check_address(copy);
  free(copy);
  free(head);
  return 0;
}
