/*
 * policy_cli.h: `gatehouse policy check|test` -- validate a policy file and
 * evaluate it offline against a hand-written identity and request, so DevOps
 * can test policy changes in CI before they apply them.
 *
 * Owns: argument parsing, reading the identity/request JSON (inline or
 * @FILE), building a struct az_cert_info and an unverified struct az_token
 * from it, and printing the verdict (text or --json). Must not: verify
 * signatures, contact an IdP or read gateway config: the claims given are
 * taken as already verified, which the help text says.
 *
 * Thread rules: single-threaded command-line use only. Everything it
 * allocates is freed before it returns.
 */
#ifndef AZ_POLICY_CLI_H
#define AZ_POLICY_CLI_H

#include <stdio.h>

/*
 * Entry point for `gatehouse policy ...`: argv[0] is the subcommand ("test",
 * "check" or "help"), argv[1..] its options. Prints to stdout/stderr.
 * Returns the process exit code: test: 0 allow, 1 deny; check: 0 valid;
 * 2 usage, input or policy load error (the file:line:col errors are printed).
 */
int az_policy_test_main(int argc, char **argv);

/* Same, writing normal output to out and diagnostics to err (for tests). */
int az_policy_cli_run(int argc, char **argv, FILE *out, FILE *err);

#endif
