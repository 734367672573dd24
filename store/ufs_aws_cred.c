/*
 * ufs_aws_cred.c - static AWS credentials for the s3:// connector: the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), else the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or "default")
 * and its INI parser. See ufs_aws_cred.h for the contracts.
 */
#include "ufs_aws_cred.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"
#include "ufs_uri.h"

/* The parser follows Python's configparser as botocore uses it: a line indented deeper than
 * the key line before it continues that key's value (botocore uses such nested values for
 * settings like "s3 =\n  addressing_style = path"); we ignore continuations, since none of
 * the three keys we read is ever continued. Sections may repeat; their keys merge. */
int ufs_s3_credentials_parse(const char *text, const char *profile, ufs_s3_credentials_t *out)
{
    char section[256] = "";
    bool in_profile = false;
    bool have_key = false; /* a key line was seen in the current section */
    size_t key_indent = 0; /* indentation of that key line */
    bool found = false;
    memset(out, 0, sizeof *out);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *next = end ? end + 1 : NULL;
        if (!end)
            end = line + strlen(line);
        size_t indent = 0;
        while (line + indent < end && (line[indent] == ' ' || line[indent] == '\t'))
            indent++;
        const char *content = line + indent;
        bool blank = content == end || *content == '\r';
        if (blank || *content == '#' || *content == ';') {
            /* comment or blank: nothing */
        } else if (have_key && indent > key_indent) {
            /* continuation of the previous key's value: ignored (see above) */
        } else if (*content == '[') {
            const char *close = memchr(content, ']', (size_t)(end - content));
            have_key = false;
            if (!close || ufs_copy_trimmed(content + 1, close, section, sizeof section) < 0) {
                in_profile = false; /* malformed or absurd header: skip the section */
            } else {
                const char *name = section;
                if (strncmp(name, "profile", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
                    name += 8;
                    while (*name == ' ' || *name == '\t')
                        name++;
                }
                in_profile = strcmp(name, profile) == 0;
                found = found || in_profile;
            }
        } else {
            const char *equals = memchr(content, '=', (size_t)(end - content));
            have_key = equals != NULL;
            key_indent = indent;
            if (equals && in_profile) {
                char key[64];
                char *target = NULL;
                size_t target_len = 0;
                if (ufs_copy_trimmed(content, equals, key, sizeof key) == 0) {
                    for (char *p = key; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                    if (strcmp(key, "aws_access_key_id") == 0) {
                        target = out->access_key;
                        target_len = sizeof out->access_key;
                    } else if (strcmp(key, "aws_secret_access_key") == 0) {
                        target = out->secret_key;
                        target_len = sizeof out->secret_key;
                    } else if (strcmp(key, "aws_session_token") == 0) {
                        target = out->session_token;
                        target_len = sizeof out->session_token;
                    }
                }
                if (target && ufs_copy_trimmed(equals + 1, end, target, target_len) < 0) {
                    memset(out, 0, sizeof *out);
                    return shoal_fail(SHOAL_EMSGSIZE, "credentials: %s value too long", key);
                }
            }
        }
        line = next;
    }
    if (!found)
        return shoal_fail(SHOAL_ENOENT, "credentials: no profile [%s]", profile);
    if (!out->access_key[0] || !out->secret_key[0]) {
        memset(out, 0, sizeof *out);
        return shoal_fail(SHOAL_ENOENT,
                          "credentials: profile [%s] lacks aws_access_key_id or "
                          "aws_secret_access_key",
                          profile);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Environment and file                                                                      */
/* ---------------------------------------------------------------------------------------- */

#define S_CREDENTIALS_MAX (1u << 20) /* a credentials file larger than this is refused */

const char *ufs_aws_env(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

/* Reads a whole small file; NULL if it is missing, unreadable or over S_CREDENTIALS_MAX. */
static char *s_read_small_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    char *text = malloc(S_CREDENTIALS_MAX + 1);
    size_t len = text ? fread(text, 1, S_CREDENTIALS_MAX + 1, file) : 0;
    fclose(file);
    if (!text || len > S_CREDENTIALS_MAX) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

/* A profile that was asked for by name but cannot be found is a configuration error, not a
 * silent anonymous fallback. */
int ufs_aws_credentials_load(ufs_s3_credentials_t *out, char *source, size_t source_len,
                             char *config_error, size_t config_error_len)
{
    memset(out, 0, sizeof *out);
    const char *key = ufs_aws_env("AWS_ACCESS_KEY_ID");
    const char *secret = ufs_aws_env("AWS_SECRET_ACCESS_KEY");
    const char *token = ufs_aws_env("AWS_SESSION_TOKEN");
    if (key && secret) {
        if (strlen(key) >= sizeof out->access_key || strlen(secret) >= sizeof out->secret_key ||
            (token && strlen(token) >= sizeof out->session_token)) {
            snprintf(config_error, config_error_len,
                     "s3: AWS credentials in the environment are too long");
            return 0;
        }
        snprintf(out->access_key, sizeof out->access_key, "%s", key);
        snprintf(out->secret_key, sizeof out->secret_key, "%s", secret);
        snprintf(out->session_token, sizeof out->session_token, "%s", token ? token : "");
        snprintf(source, source_len, "key %.40s from the environment", key);
        return 1;
    }

    const char *profile = ufs_aws_env("AWS_PROFILE");
    const char *file = ufs_aws_env("AWS_SHARED_CREDENTIALS_FILE");
    char path[4096];
    if (file) {
        snprintf(path, sizeof path, "%s", file);
    } else if (ufs_aws_env("HOME")) {
        snprintf(path, sizeof path, "%s/.aws/credentials", ufs_aws_env("HOME"));
    } else {
        path[0] = '\0';
    }
    int found = 0;
    char *text = path[0] ? s_read_small_file(path) : NULL;
    if (text) {
        shoal_clear_error();
        if (ufs_s3_credentials_parse(text, profile ? profile : "default", out) == 0) {
            snprintf(source, source_len, "key %.40s from profile [%.40s] of %.60s", out->access_key,
                     profile ? profile : "default", path);
            found = 1;
        } else if (profile || file) {
            snprintf(config_error, config_error_len, "s3: %s (file %s)", shoal_last_error(), path);
        }
        memset(text, 0, strlen(text)); /* the file held secrets */
        free(text);
    } else if (profile || file) {
        snprintf(config_error, config_error_len,
                 "s3: cannot read the credentials file %s for profile [%s]", path[0] ? path : "~",
                 profile ? profile : "default");
    }
    return found;
}
