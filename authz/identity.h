/*
 * identity.h: who is asking -- the client certificate facts and the verified
 * token, as one value handed to the policy engine.
 *
 * Owns nothing: every pointer is borrowed from the connection (certificate
 * fields, extracted once at handshake) or from a verified struct az_token.
 * Valid for the duration of one evaluation.
 */
#ifndef AZ_IDENTITY_H
#define AZ_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "authz/token.h"

#define AZ_MAX_SANS 16

struct az_cert_info {
    char subject[512];       /* RFC 2253-ish one-line subject, e.g. "CN=alice,O=Example" */
    char cn[256];            /* subject commonName ("" if none) */
    char issuer[512];        /* issuer one-line */
    char thumbprint_hex[65]; /* SHA-256 of leaf DER, lowercase hex */
    char thumbprint_b64u[44];/* same, base64url no padding (the x5t#S256 form) */
    uint8_t sha256[32];
    char *san_dns[AZ_MAX_SANS];
    int n_dns;
    char *san_email[AZ_MAX_SANS];
    int n_email;
    char *san_uri[AZ_MAX_SANS]; /* includes spiffe:// IDs */
    int n_uri;
};

struct az_identity {
    const struct az_cert_info *cert; /* never NULL on an mTLS connection */
    const struct az_token *token;    /* NULL on routes with authz off */
};

struct az_request_info {
    const char *route_id;
    const char *method;
    const char *path;                 /* path only, no query */
    const struct sockaddr *client;    /* source address */
    int64_t now_s;                    /* wall clock, seconds */
};

#endif
