/*
 * units.c - size and duration grammar and formatting (units.h). The parsers are node/config.c's
 * config_parse_size / config_parse_duration, moved here unchanged so that every input keeps the
 * value it had.
 */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The leading number of a size or duration: a finite, non-negative decimal (strtod's grammar)
 * that starts with a digit, or also with '.' when `leading_dot`. Sets *end_out past it. */
static int s_number(const char *text, bool leading_dot, double *number_out, char **end_out)
{
    if (text == NULL || !(isdigit((unsigned char)text[0]) || (leading_dot && text[0] == '.')))
        return SHOAL_EINVAL;
    char *end = NULL;
    errno = 0;
    double number = strtod(text, &end);
    if (errno != 0 || end == text || !isfinite(number) || number < 0)
        return SHOAL_EINVAL;
    *number_out = number;
    *end_out = end;
    return 0;
}

int units_parse_size(const char *text, uint64_t *bytes_out)
{
    double number;
    char *end;
    if (s_number(text, false, &number, &end) < 0)
        return SHOAL_EINVAL;
    uint64_t unit = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        unit = 1ull << 10;
        end++;
        break;
    case 'M':
        unit = 1ull << 20;
        end++;
        break;
    case 'G':
        unit = 1ull << 30;
        end++;
        break;
    case 'T':
        unit = 1ull << 40;
        end++;
        break;
    default:
        break;
    }
    if (unit > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0')
        return SHOAL_EINVAL;
    double bytes = number * (double)unit;
    if (bytes >= 18446744073709551615.0)
        return SHOAL_EINVAL;
    if (unit == 1 && bytes != floor(bytes))
        return SHOAL_EINVAL; /* "12.5" bytes */
    *bytes_out = (uint64_t)bytes;
    return 0;
}

int units_parse_duration(const char *text, int64_t *ns_out)
{
    double number;
    char *end;
    if (s_number(text, true, &number, &end) < 0)
        return SHOAL_EINVAL;
    double scale = 1e9;
    if (strcmp(end, "ms") == 0)
        scale = 1e6;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        scale = 1e9;
    else if (strcmp(end, "m") == 0)
        scale = 60e9;
    else if (strcmp(end, "h") == 0)
        scale = 3600e9;
    else
        return SHOAL_EINVAL;
    double ns = number * scale;
    if (ns > 9.0e18)
        return SHOAL_EINVAL;
    *ns_out = (int64_t)ns;
    return 0;
}

/* tools/shoal_cli.c's s_bytes, moved here. */
const char *units_format_size(uint64_t bytes, char *out, size_t out_len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double value = (double)bytes;
    size_t unit = 0;
    while (value >= 1024 && unit + 1 < sizeof units / sizeof *units) {
        value /= 1024;
        unit++;
    }
    if (unit == 0)
        snprintf(out, out_len, "%" PRIu64 " B", bytes);
    else
        snprintf(out, out_len, "%.1f %s", value, units[unit]);
    return out;
}

const char *units_format_duration(int64_t ns, char *out, size_t out_len)
{
    const char *sign = ns < 0 ? "-" : "";
    /* magnitude as unsigned: -INT64_MIN does not fit in int64_t */
    uint64_t magnitude = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (magnitude < 1000)
        snprintf(out, out_len, "%s%" PRIu64 " ns", sign, magnitude);
    else if (magnitude < 1000000)
        snprintf(out, out_len, "%s%.1f us", sign, (double)magnitude / 1e3);
    else if (magnitude < 1000000000)
        snprintf(out, out_len, "%s%.1f ms", sign, (double)magnitude / 1e6);
    else
        snprintf(out, out_len, "%s%.2f s", sign, (double)magnitude / 1e9);
    return out;
}
