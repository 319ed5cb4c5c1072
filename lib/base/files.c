/* files.c - whole-file reads, atomic writes, mkdir -p, rm -r, bounded paths. */
#define _GNU_SOURCE
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cep_files_mkdirs(const char *path, unsigned mode, cep_err *err)
{
	char buf[4096];
	if (cep_files_path(buf, sizeof(buf), err, "%s", path) != CEP_OK)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return cep_err_errno(err, errno, buf);
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return cep_err_errno(err, errno, buf);
	return CEP_OK;
}

int cep_files_read(const char *path, size_t max, char **data, size_t *len,
    cep_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cep_err_errno(err, errno, path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return cep_err_errno(err, e, path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: %lld bytes, more than the limit of %zu", path,
		    (long long)st.st_size, max);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*data = buf;
	if (len != NULL)
		*len = got;
	return CEP_OK;
}

int cep_files_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rv = fsync(fd);
	close(fd);
	return rv;
}

static int fsync_dir_of(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return cep_files_fsync_dir(dir);
}

int cep_files_write(const char *path, const void *data, size_t len,
    unsigned mode, cep_err *err)
{
	char tmp[4096];
	if (cep_files_path(tmp, sizeof(tmp), err, "%s.tmp.%d", path,
	        (int)getpid()) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return cep_err_errno(err, errno, tmp);
	(void)fchmod(fd, mode); /* umask must not widen or narrow it */
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			return cep_err_errno(err, e, tmp);
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		int e = errno;
		unlink(tmp);
		return cep_err_errno(err, e, tmp);
	}
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return cep_err_errno(err, e, path);
	}
	(void)fsync_dir_of(path);
	return CEP_OK;
}

int cep_files_path(char *buf, size_t len, cep_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "path too long (%d bytes, limit %zu)", n, len - 1);
	return CEP_OK;
}

int cep_files_rmtree(const char *path, cep_err *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? CEP_OK :
		                         cep_err_errno(err, errno, path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0 && errno != ENOENT)
			return cep_err_errno(err, errno, path);
		return CEP_OK;
	}
	DIR *d = opendir(path);
	if (d == NULL)
		return cep_err_errno(err, errno, path);
	struct dirent *de;
	int rv = CEP_OK;
	while (rv == CEP_OK && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char child[4096];
		rv = cep_files_path(child, sizeof(child), err, "%s/%s", path,
		    de->d_name);
		if (rv == CEP_OK)
			rv = cep_files_rmtree(child, err);
	}
	closedir(d);
	if (rv == CEP_OK && rmdir(path) != 0 && errno != ENOENT)
		rv = cep_err_errno(err, errno, path);
	return rv;
}
