/*
 * ufs_time.c - the times the object stores write: ISO 8601 UTC (S3 listings) and RFC 1123
 * HTTP dates (Azure listings, Last-Modified headers), as seconds since the epoch.
 * See ufs_time.h.
 */
#include "ufs_time.h"

#include <stdio.h>
#include <time.h>

#include "ufs_conn.h"

int64_t ufs_cloud_parse_time(const char *text)
{
    int year, month, day, hour, minute, second;
    char t;
    if (!text)
        return 0;
    if (sscanf(text, "%4d-%2d-%2d%c%2d:%2d:%2d", &year, &month, &day, &t, &hour, &minute,
               &second) == 7 &&
        (t == 'T' || t == 't' || t == ' ')) {
        if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
            second > 60)
            return 0;
        struct tm tm = {.tm_year = year - 1900,
                        .tm_mon = month - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};
        return (int64_t)timegm(&tm);
    }
    int64_t when = ufs_http_date(text);
    return when < 0 ? 0 : when;
}
