/*
 * resp.h: an incremental, bounded parser for the admin API's HTTP/1.1
 * responses (status line, headers, Content-Length / chunked / until-close
 * bodies).
 *
 * Owns: the response being read -- its head fields and a heap body buffer
 * that never grows past max_body. Must not: do I/O (it is handed bytes, so
 * the fuzz target and the unit test drive it without sockets), or accept
 * anything ambiguous (both Content-Length and Transfer-Encoding, two
 * different Content-Lengths, a transfer coding other than chunked, a bare
 * LF where CRLF belongs): the gateway is a security product and its console
 * trusts only framing it can parse one way.
 *
 * Stream mode (the endless /v1/decisions/stream): the body is not required
 * to end; max_body then bounds what is buffered at once, and the caller
 * removes what it has used with tui_resp_consume().
 *
 * Thread rules: one parser per response, used by one thread. tui_resp_cleanup
 * frees the body (safe twice; a zeroed struct is valid to clean up).
 */
#ifndef TUI_RESP_H
#define TUI_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/base/err.h"

#define TUI_RESP_MAX_HEAD (64 * 1024) /* status line + headers */
#define TUI_RESP_MAX_HEADERS 100
#define TUI_RESP_MAX_BODY (8u * 1024u * 1024u) /* default per response */

enum tui_resp_state {
    TUI_RS_HEAD = 0,
    TUI_RS_BODY_LEN,   /* Content-Length body */
    TUI_RS_BODY_CLOSE, /* body delimited by the connection closing */
    TUI_RS_CHUNK_SIZE,
    TUI_RS_CHUNK_DATA,
    TUI_RS_CHUNK_CRLF,
    TUI_RS_TRAILER,
    TUI_RS_DONE,
    TUI_RS_ERROR,
};

struct tui_resp {
    enum tui_resp_state state;
    int status;     /* 100..599 once the head is parsed */
    int minor;      /* HTTP/1.<minor> */
    int conn_close; /* server will close (Connection: close or HTTP/1.0) */
    int chunked;
    int64_t content_length; /* -1 when absent */
    char content_type[128];
    int stream; /* stream mode, see above */
    size_t max_body;

    char *body; /* NUL-terminated; never NULL after a body byte */
    size_t body_len;
    size_t body_cap;
    uint64_t body_total; /* body bytes received in all (stream mode grows) */

    /* internal */
    char head[TUI_RESP_MAX_HEAD];
    size_t head_len;
    char line[256]; /* chunk-size or trailer line being read */
    size_t line_len;
    uint64_t left; /* bytes left in this chunk / Content-Length body */
    size_t trailer_bytes;
};

/* Prepare r for one response. max_body 0 means TUI_RESP_MAX_BODY. */
void tui_resp_init(struct tui_resp *r, size_t max_body, int stream);
void tui_resp_cleanup(struct tui_resp *r);

/* Feed len bytes. Returns 0 (check r->state: TUI_RS_DONE when the response
 * is complete; *used then says how many bytes belonged to it -- anything
 * after them is not ours), or -1 with err set and r->state TUI_RS_ERROR on
 * malformed framing or a limit hit. */
int tui_resp_feed(struct tui_resp *r, const char *data, size_t len, size_t *used,
                  struct gh_err *err) GH_WUR;

/* The peer closed the connection. Returns 0 if that completes the response
 * (a body delimited by close), -1 with err set if the response is cut short. */
int tui_resp_eof(struct tui_resp *r, struct gh_err *err) GH_WUR;

/* Drop the first n buffered body bytes (stream mode: lines already used). */
void tui_resp_consume(struct tui_resp *r, size_t n);

/* Next complete line ('\n'-terminated, CR stripped) of the buffered body, for
 * newline-delimited JSON. Returns its length and sets *line (NUL-terminated,
 * valid until the next feed/consume), or -1 when no full line is buffered.
 * The caller then calls tui_resp_consume(r, *adv). */
long tui_resp_line(struct tui_resp *r, const char **line, size_t *adv);

#endif
