/*
 * bearer.c: pulls the access token out of the Authorization header values
 * of one request (RFC 6750 section 2.1), without copying it.
 *
 * Why it is strict: the same request must mean the same thing to us and to
 * every component behind us. Two Authorization headers (which one wins?),
 * tabs, double spaces or trailing junk are refused instead of "repaired";
 * a non-Bearer scheme (Basic, DPoP, ...) simply carries no bearer token.
 *   credentials = "Bearer" 1*SP b64token   (we allow exactly one SP)
 *   b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 */
#include "authz/token.h"

#include <stddef.h>
#include <strings.h>

/* RFC 7230 section 3.2.6 tchar: what an auth-scheme name is made of. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

static int is_b64token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

enum gh_reason az_bearer_extract(const char *const *values, const size_t *lens, int n,
                                 const char **tok, size_t *len)
{
    if (tok != NULL) {
        *tok = NULL;
    }
    if (len != NULL) {
        *len = 0;
    }
    if (n <= 0 || values == NULL || lens == NULL || values[0] == NULL) {
        return GH_R_TOKEN_MISSING;
    }
    /* RFC 6750 section 2 / RFC 7230 section 3.2.2: Authorization is a
     * singleton; several copies are an ambiguity we do not resolve. */
    if (n > 1) {
        return GH_R_TOKEN_MULTIPLE_AUTH;
    }
    const char *v = values[0];
    size_t l = lens[0];
    if (l == 0) {
        return GH_R_TOKEN_MISSING;
    }
    size_t s = 0;
    while (s < l && is_tchar((unsigned char)v[s])) {
        s++;
    }
    if (s == 0) {
        return GH_R_TOKEN_MALFORMED; /* no scheme at all (leading space, ...) */
    }
    /* Auth schemes compare case-insensitively (RFC 7235 section 2.1). */
    if (s != 6 || strncasecmp(v, "Bearer", 6) != 0) {
        return GH_R_TOKEN_MISSING; /* another scheme: no bearer token here */
    }
    /* Exactly "Bearer" SP token: anything else after the scheme is malformed. */
    if (l < 8 || v[6] != ' ') {
        return GH_R_TOKEN_MALFORMED;
    }
    const char *t = v + 7;
    size_t tl = l - 7;
    if (tl > AZ_TOKEN_MAX_LEN) {
        return GH_R_TOKEN_TOO_LARGE;
    }
    size_t i = 0;
    while (i < tl && is_b64token_char((unsigned char)t[i])) {
        i++;
    }
    if (i == 0) {
        return GH_R_TOKEN_MALFORMED;
    }
    while (i < tl && t[i] == '=') {
        i++;
    }
    if (i != tl) {
        return GH_R_TOKEN_MALFORMED;
    }
    if (tok != NULL) {
        *tok = t;
    }
    if (len != NULL) {
        *len = tl;
    }
    return GH_R_ALLOW;
}
