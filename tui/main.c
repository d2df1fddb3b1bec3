/*
 * main.c: gatehousectl's entry point. Global options (where to find the
 * gateway, --json, --timeout) may appear anywhere on the command line, so
 * `gatehousectl sessions --json` and `gatehousectl --json sessions` both
 * work; what remains is a subcommand for ctl.c, or nothing, which opens the
 * console. Usage errors exit 2 before any connection is attempted.
 */
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui/console.h"
#include "tui/ctl.h"
#include "tui/fmt.h"

#define MAX_ARGS 256

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gatehousectl [OPTIONS] [COMMAND [ARGS]]\n"
            "\n"
            "With no COMMAND, opens the admin console (ncurses).\n"
            "\n"
            "Options (anywhere on the line):\n"
            "  --socket PATH        admin Unix socket (default $GATEHOUSE_SOCKET or "
            "./gatehouse.sock)\n"
            "  --connect HOST:PORT  remote admin listener over mTLS, with:\n"
            "  --cert FILE --key FILE --ca FILE\n"
            "                       admin certificate, its key, and the CA of the gateway\n"
            "  --json               print the server's JSON\n"
            "  --timeout SECONDS    per request (default 10)\n"
            "\n"
            "Commands:\n"
            "  sessions [--limit N]\n"
            "  session ID\n"
            "  revoke session ID|user SUBJECT|cert THUMBPRINT|token JTI\n"
            "         [--reason TEXT] [--expires SECONDS|90m|12h|7d]\n"
            "  unrevoke REVOCATION_ID\n"
            "  revocations\n"
            "  decisions [--since 1h|SECONDS] [--subject S] [--route R] [--decision allow|deny]\n"
            "            [--reason R] [--session ID] [--limit N] [--follow]\n"
            "  policy get | validate FILE | apply FILE | versions\n"
            "         | diff [--from V] [--to V] [FILE] | rollback VERSION\n"
            "  stats | metrics | health\n"
            "  audit verify DB      (runs `gatehouse audit verify --db DB`)\n"
            "\n"
            "Exit status: 0 ok, 1 refused/not found/denied/invalid/tampered, 2 usage,\n"
            "3 cannot reach the gateway, 4 server error. See docs/CONSOLE.md.\n");
}

int main(int argc, char **argv)
{
    struct tui_ctx x;
    memset(&x, 0, sizeof(x));
    x.timeout_ms = 10000;
    x.self = argv[0];
    char *rest[MAX_ARGS + 1];
    int nrest = 0;

    setlocale(LC_ALL, "");
    signal(SIGPIPE, SIG_IGN);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--socket") == 0) {
            dst = &x.conn.socket_path;
        } else if (strcmp(a, "--connect") == 0) {
            dst = &x.conn.connect;
        } else if (strcmp(a, "--cert") == 0) {
            dst = &x.conn.cert_file;
        } else if (strcmp(a, "--key") == 0) {
            dst = &x.conn.key_file;
        } else if (strcmp(a, "--ca") == 0) {
            dst = &x.conn.ca_file;
        } else if (strcmp(a, "--timeout") == 0) {
            int64_t s;
            if (i + 1 >= argc || tui_parse_int(argv[i + 1], &s) != 0 || s < 1 || s > 3600) {
                fprintf(stderr, "gatehousectl: --timeout wants seconds (1..3600)\n");
                return TUI_EXIT_USAGE;
            }
            x.timeout_ms = (int)s * 1000;
            i++;
            continue;
        } else if (strcmp(a, "--json") == 0) {
            x.json = 1;
            continue;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0) {
            usage(stdout);
            return TUI_EXIT_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("gatehousectl %s\n", GH_VERSION);
            return TUI_EXIT_OK;
        }
        if (dst != NULL) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fprintf(stderr, "gatehousectl: %s needs a value\n", a);
                return TUI_EXIT_USAGE;
            }
            *dst = argv[++i];
            continue;
        }
        if (nrest >= MAX_ARGS) {
            fprintf(stderr, "gatehousectl: too many arguments\n");
            return TUI_EXIT_USAGE;
        }
        rest[nrest++] = argv[i];
        /* Values of subcommand options pass through untouched, even when
         * they look like a global option (--reason --json). */
        static const char *const takes_value[] = {
            "--reason", "--expires", "--since", "--subject", "--route",   "--decision",
            "--limit",  "--from",    "--to",    "--session", "--after-id"};
        for (size_t k = 0; k < sizeof(takes_value) / sizeof(takes_value[0]); k++) {
            if (strcmp(a, takes_value[k]) == 0 && i + 1 < argc && nrest < MAX_ARGS) {
                rest[nrest++] = argv[++i];
                break;
            }
        }
    }
    rest[nrest] = NULL;

    if (x.conn.connect != NULL) {
        if (x.conn.socket_path != NULL) {
            fprintf(stderr, "gatehousectl: use --socket or --connect, not both\n");
            return TUI_EXIT_USAGE;
        }
        if (x.conn.cert_file == NULL || x.conn.key_file == NULL || x.conn.ca_file == NULL) {
            fprintf(stderr, "gatehousectl: --connect needs --cert, --key and --ca\n");
            return TUI_EXIT_USAGE;
        }
    } else if (x.conn.cert_file != NULL || x.conn.key_file != NULL || x.conn.ca_file != NULL) {
        fprintf(stderr, "gatehousectl: --cert/--key/--ca are for --connect\n");
        return TUI_EXIT_USAGE;
    }
    if (x.conn.connect == NULL && x.conn.socket_path == NULL) {
        const char *env = getenv("GATEHOUSE_SOCKET");
        x.conn.socket_path = env != NULL && env[0] != '\0' ? env : "./gatehouse.sock";
    }

    if (nrest == 0) {
        if (x.json) {
            fprintf(stderr, "gatehousectl: --json needs a COMMAND (the console is interactive)\n");
            return TUI_EXIT_USAGE;
        }
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
            fprintf(stderr, "gatehousectl: the console needs a terminal; "
                            "give a COMMAND for scripts (--help)\n");
            return TUI_EXIT_USAGE;
        }
        return tui_console_main(&x);
    }
    return tui_ctl_main(&x, nrest, rest);
}
