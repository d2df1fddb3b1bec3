/*
 * demo.h: `gatehouse demo` -- a self-contained, development-only setup: a
 * demo PKI, config and policy in DIR, a development issuer, a demo upstream
 * app and the gateway, all in one process (docs/README tour).
 *
 * Must not: be reachable from `gatehouse serve` -- the development issuer
 * exists only inside the demo command.
 */
#ifndef GW_DEMO_H
#define GW_DEMO_H

/* argv[0] is "demo". Returns the process exit code. */
int gw_demo_main(int argc, char **argv);

#endif
