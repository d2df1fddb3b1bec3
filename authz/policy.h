/*
 * policy.h: the policy engine -- YAML policy as code, compiled once into an
 * immutable snapshot, evaluated per request without allocation.
 *
 * Owns: parsing (libfyaml) with `file:line:col` errors, the compiled rule
 * set, evaluation and the verdict. Must not: do I/O beyond reading the policy
 * file it is given, or know about sockets. The language is documented in
 * docs/POLICY.md (operators, combining semantics, examples).
 *
 * Combining semantics (default deny): rules apply to the route(s) they name;
 * if any matching `deny` rule matches -> deny (GH_R_POLICY_DENY, its id);
 * else if any matching `allow` rule matches -> allow (first such rule's id);
 * else deny (GH_R_POLICY_NO_MATCH).
 *
 * Lifetime: refcounted (atomic); a request keeps the snapshot it started with.
 */
#ifndef AZ_POLICY_H
#define AZ_POLICY_H

#include <stddef.h>

#include "authz/identity.h"
#include "gateway/base/err.h"

struct az_policy;

struct az_verdict {
    enum gh_decision decision;
    enum gh_reason reason;  /* GH_R_ALLOW, GH_R_POLICY_DENY, GH_R_POLICY_NO_MATCH */
    char rule_id[64];       /* "" when no rule matched */
};

/* Load from a file / buffer. NULL on any error, all errors in errs. */
struct az_policy *az_policy_load_file(const char *path, struct gh_errlist *errs) GH_WUR;
struct az_policy *az_policy_load_buf(const char *name, const char *buf, size_t len,
                                     struct gh_errlist *errs) GH_WUR;
struct az_policy *az_policy_ref(struct az_policy *p);
void az_policy_unref(struct az_policy *p);

/* Reports every rule naming a route not in route_ids as file:line:col;
 * 0 if all exist, -1 otherwise. */
int az_policy_check_routes(const struct az_policy *p, const char *const *route_ids, int n,
                           struct gh_errlist *errs);

/* SHA-256 hex of the source bytes: the "policy version hash" in every decision. */
const char *az_policy_version(const struct az_policy *p);
/* The source text the snapshot was compiled from (for admin get/export). */
const char *az_policy_source(const struct az_policy *p, size_t *len);
size_t az_policy_rule_count(const struct az_policy *p);

/* Evaluate. Never fails: anything unexpected is a deny. If `why` is not NULL
 * a human explanation (which rules were considered and why they did or did
 * not match) is written there, for `gatehouse policy test`. */
void az_policy_eval(const struct az_policy *p, const struct az_identity *id,
                    const struct az_request_info *req, struct az_verdict *out, char *why,
                    size_t why_len);

#endif
