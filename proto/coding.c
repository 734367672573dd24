/*
 * coding.c - hex and percent coding (coding.h).
 */
#include "coding.h"

#include <stdint.h>
#include <string.h>

static const char s_lower[] = "0123456789abcdef";
static const char s_upper[] = "0123456789ABCDEF";

int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_encode(const void *in, size_t len, char *out, size_t out_len, bool upper)
{
    if (len > (SIZE_MAX - 1) / 2 || out_len < 2 * len + 1)
        return SHOAL_EMSGSIZE;
    const unsigned char *p = in;
    const char *digits = upper ? s_upper : s_lower;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

int hex_decode(const char *in, size_t len, void *out, size_t out_cap, size_t *out_len)
{
    if (len % 2 != 0)
        return SHOAL_EINVAL;
    if (out_cap < len / 2)
        return SHOAL_EMSGSIZE;
    unsigned char *p = out;
    for (size_t i = 0; i < len; i += 2) {
        int high = hex_digit_value(in[i]);
        int low = hex_digit_value(in[i + 1]);
        if (high < 0 || low < 0)
            return SHOAL_EINVAL;
        p[i / 2] = (unsigned char)(high * 16 + low);
    }
    if (out_len)
        *out_len = len / 2;
    return 0;
}

bool pct_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int pct_encode_append(char *out, size_t out_len, const char *text, bool keep_slash)
{
    size_t len = strlen(out);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        bool plain = pct_is_unreserved(*p) || (keep_slash && *p == '/');
        if (len + (plain ? 1 : 3) >= out_len) {
            out[len] = '\0';
            return SHOAL_EMSGSIZE;
        }
        if (plain) {
            out[len++] = (char)*p;
        } else {
            out[len++] = '%';
            out[len++] = s_upper[*p >> 4];
            out[len++] = s_upper[*p & 15];
        }
    }
    out[len] = '\0';
    return 0;
}

int pct_decode(const char *in, size_t len, char *out, size_t out_len)
{
    size_t pos = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return SHOAL_EINVAL;
            int high = hex_digit_value(in[i + 1]);
            int low = hex_digit_value(in[i + 2]);
            if (high < 0 || low < 0 || (high == 0 && low == 0))
                return SHOAL_EINVAL;
            c = (char)(high * 16 + low);
            i += 2;
        }
        if (pos + 1 >= out_len)
            return SHOAL_EMSGSIZE;
        out[pos++] = c;
    }
    if (pos >= out_len)
        return SHOAL_EMSGSIZE;
    out[pos] = '\0';
    return 0;
}
