/*
 * secret.c - the one reader of secret files (secret.h): open once, check
 * the open descriptor, read at most max bytes, wipe on free.
 */
#define _GNU_SOURCE
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cep_secret_wipe(void *p, size_t n)
{
	/* glibc's explicit_bzero is not optimised away as a dead store */
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void cep_secret_wipe_str(char *s)
{
	if (s == NULL)
		return;
	cep_secret_wipe(s, strlen(s));
	free(s);
}

void cep_secret_free(cep_secret *s)
{
	if (s == NULL)
		return;
	if (s->data != NULL) {
		cep_secret_wipe(s->data, s->len + 1);
		free(s->data);
	}
	s->data = NULL;
	s->len = 0;
}

char *cep_secret_take(cep_secret *s)
{
	char *d = s->data;
	s->data = NULL;
	s->len = 0;
	return d;
}

static bool in_our_groups(gid_t gid)
{
	if (gid == getegid())
		return true;
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

bool cep_secret_mode_ok(const struct stat *st)
{
	if ((st->st_mode & 077) == 0)
		return true;
	/* handed over through a group: root's file, group read only */
	return st->st_uid == 0 && geteuid() != 0 &&
	    (st->st_mode & 077) == 040 && in_our_groups(st->st_gid);
}

/* The checks on the open file: kind, size, mode. */
static int check(int fd, const char *path, const cep_secret_opts *o, size_t max,
    struct stat *st, cep_err *err)
{
	if (fstat(fd, st) != 0)
		return cep_err_errno(err, errno, path);
	if (!S_ISREG(st->st_mode))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: not a regular file", path);
	if ((uint64_t)st->st_size > max)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: %lld bytes, more than the limit of %zu for %s", path,
		    (long long)st->st_size, max,
		    o->what ? o->what : "a secret");
	if (!o->any_mode && !cep_secret_mode_ok(st))
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "%s: mode %04o lets group or others read %s; it must be "
		    "0600 (or 0440 owned by root, group one of ours)",
		    path, (unsigned)(st->st_mode & 07777),
		    o->what ? o->what : "a secret");
	return CEP_OK;
}

/* Reads the size fstat gave; one byte more tells a file that grew. */
static int read_all(int fd, const char *path, size_t size, cep_secret *out,
    cep_err *err)
{
	char *buf = calloc(1, size + 2);
	if (buf == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	size_t got = 0;
	int rv = CEP_OK;
	while (got < size + 1) {
		ssize_t n = read(fd, buf + got, size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rv = cep_err_errno(err, errno, path);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (rv == CEP_OK && got != size)
		rv = cep_err_set(err, CEP_ABORTED, "%s: changed while read",
		    path);
	if (rv != CEP_OK) {
		cep_secret_wipe(buf, size + 2);
		free(buf);
		return rv;
	}
	buf[got] = '\0';
	out->data = buf;
	out->len = got;
	return CEP_OK;
}

int cep_secret_read(const char *path, const cep_secret_opts *o, cep_secret *out,
    cep_err *err)
{
	static const cep_secret_opts defaults = {0};
	if (o == NULL)
		o = &defaults;
	size_t max = o->max > 0 ? o->max : CEP_SECRET_MAX;
	out->data = NULL;
	out->len = 0;
	int fd = open(path,
	    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	        (o->follow ? 0 : O_NOFOLLOW));
	if (fd < 0 && errno == ELOOP && !o->follow)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "%s: is a "
		    "symbolic link; a secret is read from a regular file only",
		    path);
	if (fd < 0)
		return cep_err_errno(err, errno, path);
	struct stat st;
	int rv = check(fd, path, o, max, &st, err);
	if (rv == CEP_OK)
		rv = read_all(fd, path, (size_t)st.st_size, out, err);
	close(fd);
	return rv;
}
