/*
 * secret.h - the one reader of secret files: private keys, bearer tokens,
 * kubeconfigs (which hold both).
 *
 * The file is opened once (O_NOFOLLOW unless asked otherwise, O_CLOEXEC)
 * and everything is checked on the open descriptor, so the file read is
 * the file checked: a regular file, at most max bytes, and a mode no one
 * else can use. The mode policy (one for every secret):
 *   - no bit for group or others (0600, 0400): any owner;
 *   - group read only (0440, 0640) when the file is root's, we are not
 *     root and its group is one of ours: how a key is handed to a daemon
 *     through its group (a Kubernetes secret volume with fsGroup,
 *     /etc/cep/relay/relay.key root:cep 0640);
 *   - a systemd credential (lib/base/cred.h, opts.any_mode) is private
 *     to its unit whatever its mode says.
 * Messages name the path and what is wrong, never the content. The
 * buffer is wiped when freed.
 */
#ifndef CEP_SECRET_H
#define CEP_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CEP_SECRET_MAX (1024u * 1024u)

typedef struct cep_secret_opts {
	size_t max; /* bytes; 0 = CEP_SECRET_MAX */
	/* no mode rule: a systemd credential (its mode is systemd's
	 * business), or a public file read with the same care (the
	 * certificates beside a key) */
	bool any_mode;
	/* follow a symlink as the last component: only for folders that
	 * are trees of links by design and writable by no one we distrust
	 * (a Kubernetes secret volume: runner.key -> ..data/runner.key) */
	bool follow;
	const char *what; /* "the CA key", in messages; NULL = "a secret" */
} cep_secret_opts;

typedef struct cep_secret {
	char *data; /* len bytes and a NUL */
	size_t len;
} cep_secret;

/* Reads path into out (out zeroed first). o may be NULL (defaults).
 * Errors: open's errno (NOT_FOUND, PERMISSION_DENIED, ...; a symlink
 * without follow: "<path>: is a symbolic link"), INVALID_ARGUMENT (not a
 * regular file), RESOURCE_EXHAUSTED (larger than max), PERMISSION_DENIED
 * ("<path>: mode 0644 lets group or others read the CA key; it must be
 * 0600"). */
int cep_secret_read(const char *path, const cep_secret_opts *o, cep_secret *out,
    cep_err *err);
/* Wipes and frees the data; s may be NULL or already freed. */
void cep_secret_free(cep_secret *s);
/* Hands the data over (a NUL-terminated string the caller wipes with
 * cep_secret_wipe_str) and leaves s empty. */
char *cep_secret_take(cep_secret *s);
/* Wipes n bytes so that the compiler cannot drop it. */
void cep_secret_wipe(void *p, size_t n);
/* Wipes and frees a NUL-terminated secret; NULL is fine. */
void cep_secret_wipe_str(char *s);

struct stat;
/* The mode policy above, for a file already open (st from fstat). */
bool cep_secret_mode_ok(const struct stat *st);

#endif
