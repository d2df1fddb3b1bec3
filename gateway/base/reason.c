/*
 * reason.c: name and status tables for enum gh_reason, generated from the
 * X-macro list in reason.h so the enum, names and statuses cannot drift.
 */
#include "gateway/base/reason.h"

#include <string.h>

static const char *const names[GH_R__COUNT] = {
#define GH_R_NAME(e, n, s) [e] = n,
    GH_REASONS(GH_R_NAME)
#undef GH_R_NAME
};

static const short statuses[GH_R__COUNT] = {
#define GH_R_STATUS(e, n, s) [e] = s,
    GH_REASONS(GH_R_STATUS)
#undef GH_R_STATUS
};

const char *gh_reason_name(enum gh_reason r)
{
    if ((int)r < 0 || r >= GH_R__COUNT) {
        return "unknown";
    }
    return names[r];
}

int gh_reason_status(enum gh_reason r)
{
    if ((int)r < 0 || r >= GH_R__COUNT) {
        return 500;
    }
    return statuses[r];
}

int gh_reason_from_name(const char *name)
{
    for (int i = 0; i < GH_R__COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}
