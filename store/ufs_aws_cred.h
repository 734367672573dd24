/*
 * ufs_aws_cred.h - static AWS credentials for the s3:// connector: from the environment or
 * the shared credentials file, and that file's INI parser. Not for use outside store/.
 */
#ifndef SHOAL_UFS_AWS_CRED_H
#define SHOAL_UFS_AWS_CRED_H

#include <stddef.h>

#define UFS_S3_KEY_MAX   256  /* access key id / secret key, incl. NUL */
#define UFS_S3_TOKEN_MAX 8192 /* session token, incl. NUL (STS tokens run to a few KiB) */

/* Static AWS credentials. */
typedef struct ufs_s3_credentials {
    char access_key[UFS_S3_KEY_MAX];      /* aws_access_key_id */
    char secret_key[UFS_S3_KEY_MAX];      /* aws_secret_access_key */
    char session_token[UFS_S3_TOKEN_MAX]; /* aws_session_token, or "" */
} ufs_s3_credentials_t;

/* Finds profile `profile` in the text of an AWS shared credentials file (INI: "[name]"
 * sections, also "[profile name]"; "key = value" lines; '#' and ';' comment lines; blank lines;
 * CRLF; keys case-insensitive; whitespace around names and values ignored; a later duplicate
 * key wins) and copies its keys into *out. Returns 0, SHOAL_ENOENT when the profile is absent
 * or lacks aws_access_key_id or aws_secret_access_key, SHOAL_EMSGSIZE when a value is too
 * long. */
int ufs_s3_credentials_parse(const char *text, const char *profile, ufs_s3_credentials_t *out);

/* The value of environment variable `name`, or NULL when it is unset or empty. */
const char *ufs_aws_env(const char *name);

/* Loads credentials in the order the AWS SDKs use for static keys: the environment
 * (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the shared
 * credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or
 * "default", at most 1 MiB; wiped from memory after parsing) into *out (caller-owned).
 * Returns 1 with *out filled and `source` describing where the keys came from (key id, never
 * the secret), or 0 when there are none: then `config_error` is "" (anonymous requests) or
 * names a configuration that cannot work (environment values too long, a profile or file that
 * was asked for by name but cannot be read or lacks the keys). */
int ufs_aws_credentials_load(ufs_s3_credentials_t *out, char *source, size_t source_len,
                             char *config_error, size_t config_error_len);

#endif
