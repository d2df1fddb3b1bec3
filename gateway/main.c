/*
 * main.c: the `gatehouse` command line. Each subcommand is owned by its
 * module (serve/check-config: gateway, policy: authz, db/decisions/audit:
 * db); main only dispatches and prints usage.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "authz/policy_cli.h"
#include "db/cli.h"
#include "gateway/base/pool.h"
#include "gateway/demo.h"
#include "gateway/server.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: gatehouse COMMAND [options]\n"
            "  serve -c FILE                 run the gateway\n"
            "  check-config -c FILE          validate a configuration and exit\n"
            "  policy test -p FILE --identity JSON --request JSON [--json]\n"
            "  policy check -p FILE          validate a policy file\n"
            "  decisions --db FILE [filters] query the decision log\n"
            "  audit verify --db FILE        verify the decision log's hash chain\n"
            "  db migrate --db FILE          create or upgrade the database schema\n"
            "  db retention --db FILE --days N\n"
            "  demo [--dir DIR] [--port N]   run a self-contained demo (dev issuer + app)\n"
            "  --version\n");
    return 2;
}

static const char *config_arg(int argc, char **argv)
{
    for (int i = 2; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            return argv[i + 1];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    /* First, before any libevent call: evbuffer chains come from the
     * per-thread pools (gateway/base/pool.h). */
    event_set_mem_functions(gh_pool_alloc, gh_pool_realloc, gh_pool_free);
    if (argc < 2) {
        return usage();
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("gatehouse %s\n", GH_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "check-config") == 0) {
        const char *cfg = config_arg(argc, argv);
        if (cfg == NULL) {
            return usage();
        }
        return strcmp(cmd, "serve") == 0 ? gw_serve(cfg) : gw_check_config(cfg);
    }
    if (strcmp(cmd, "demo") == 0) {
        return gw_demo_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "policy") == 0) {
        return az_policy_test_main(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "decisions") == 0 || strcmp(cmd, "audit") == 0 || strcmp(cmd, "db") == 0) {
        return db_cli_main(argc - 1, argv + 1);
    }
    return usage();
}
