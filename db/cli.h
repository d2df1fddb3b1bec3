/*
 * cli.h: the database subcommands of the gatehouse command line.
 *
 * Owns: argument parsing and output (text or JSON lines) for
 *   gatehouse db migrate --db FILE
 *   gatehouse db retention --db FILE --days N [--batch N]
 *   gatehouse decisions --db FILE [--since 1h|ISO-8601|µs] [--after-id N] [--subject S]
 *                       [--route R] [--decision allow|deny] [--reason R] [--session ID]
 *                       [--limit N] [--oldest-first] [--json] [--explain]
 *   gatehouse audit verify --db FILE [--checkpoint ID:HASH] [--json]
 * Must not: open the database other than through db.h (each command is a
 * short-lived process; it never talks to a running gateway).
 *
 * Threads: runs on the caller's thread; writes to stdout/stderr.
 */
#ifndef DB_CLI_H
#define DB_CLI_H

#include <stdint.h>

/* argv[0] is the subcommand ("db", "decisions" or "audit"). Returns the
 * process exit status: 0 success (audit: chain intact), 1 audit found the
 * chain broken, 2 usage or runtime error. */
int db_cli_main(int argc, char **argv);

/* Parse a --since value into µs since the epoch: "90s", "15m", "1h", "7d",
 * "2w" (relative to now_us); an ISO-8601 UTC or offset time
 * ("2024-05-01", "2024-05-01T12:00", "2024-05-01T12:00:00.5Z",
 * "2024-05-01 12:00:00+02:00"); or plain digits (µs since the epoch).
 * Returns 0 with *out set, or -1 for anything else (nothing is guessed). */
int db_cli_parse_since(const char *s, int64_t now_us, int64_t *out);

#endif
