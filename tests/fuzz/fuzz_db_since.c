/*
 * fuzz_db_since.c: libFuzzer target for the --since parser of the database
 * CLI (db_cli_parse_since): relative durations, ISO-8601 times, raw
 * microseconds. The input is an operator's argument, so the bar is: no
 * crash or UB on any bytes, nothing accepted that is not one of the three
 * forms, and full "YYYY-MM-DDTHH:MM:SSZ" times agree with libc's timegm.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[160];
    if (size >= sizeof(s)) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    const int64_t now = 1714564800000000LL;
    int64_t v = 0;
    if (db_cli_parse_since(s, now, &v) != 0) {
        return 0;
    }
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        abort(); /* accepted an empty or oversized argument */
    }
    if (strchr("smhdw", s[n - 1]) != NULL && n <= 10 && strspn(s, "0123456789") == n - 1) {
        if (v > now) {
            abort(); /* a relative time must lie in the past */
        }
        return 0;
    }
    int y, mo, d, h, mi, sec;
    char z;
    if (n == 20 && sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &z) == 7 &&
        z == 'Z') {
        struct tm tm = {.tm_year = y - 1900,
                        .tm_mon = mo - 1,
                        .tm_mday = d,
                        .tm_hour = h,
                        .tm_min = mi,
                        .tm_sec = sec};
        time_t t = timegm(&tm);
        if ((int64_t)t * 1000000 != v) {
            abort(); /* disagrees with libc */
        }
    }
    if (v < 0 && strspn(s, "0123456789") == n) {
        abort();
    }
    return 0;
}
