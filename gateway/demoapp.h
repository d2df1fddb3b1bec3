/*
 * demoapp.h: the demo upstream app of `gatehouse demo` -- an internal web app
 * that shows what the gateway told it about the caller.
 *
 * Plain HTTP on loopback. Any GET/HEAD/POST answers a text/plain page with
 * the identity headers it received (X-Gatehouse-User, -Email, -Groups,
 * -Session, -Cert-Thumbprint, -Cert-Subject) and the result of verifying
 * X-Gatehouse-Assertion with az_assertion_verify against the gateway's
 * assertion JWKS. The JWKS is handed in at start (gw_demo_main derives it
 * from the same key file the gateway signs with, DIR/state/assertion.key),
 * so the app needs no network call to trust the assertion.
 *
 * Owns: its listener (a gateway/demosrv.h server) and its parsed key set.
 * Must not: be exposed beyond loopback (it trusts its callers' headers only
 * because the gateway is its only caller) or run outside `gatehouse demo`.
 * Thread rules: start/stop from one thread; requests on connection threads.
 */
#ifndef GW_DEMOAPP_H
#define GW_DEMOAPP_H

#include "gateway/base/err.h"

struct gw_demoapp_opts {
    const char *host; /* numeric listen address, e.g. "127.0.0.1" */
    int port;
    const char *jwks_json;   /* the gateway's assertion JWKS (copied) */
    const char *gateway_iss; /* the assertion's expected iss (server.name) */
    const char *route_id;    /* the assertion's expected aud (the route id) */
};

struct gw_demoapp;

/* Parse the JWKS and start listening. NULL + err on failure. */
struct gw_demoapp *gw_demoapp_start(const struct gw_demoapp_opts *o, struct gh_err *err) GH_WUR;
/* Stop, wait for in-flight requests, free. NULL is a no-op. */
void gw_demoapp_stop(struct gw_demoapp *a);

#endif
