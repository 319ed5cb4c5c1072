/* util.c - clocks, ids, durations, files. */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t cep_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cep_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cep_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {.tv_sec = ms / 1000,
	    .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int cep_random(void *buf, size_t len, cep_err *err)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cep_err_errno(err, errno, "getrandom");
		}
		p += n;
		len -= (size_t)n;
	}
	return CEP_OK;
}

/* Units in the order they may appear: "1h2m3s4ms". */
bool cep_parse_duration_ms(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = {
	    {"ms", 1},
	    {"h", 3600000},
	    {"m", 60000},
	    {"s", 1000},
	};
	if (s == NULL || *s == '\0')
		return false;
	int64_t total = 0;
	const char *p = s;
	while (*p != '\0') {
		if (*p < '0' || *p > '9')
			return false;
		int64_t whole = 0, frac = 0, fdiv = 1;
		while (*p >= '0' && *p <= '9') {
			whole = whole * 10 + (*p++ - '0');
			if (whole > 1000000000)
				return false;
		}
		if (*p == '.') {
			p++;
			if (*p < '0' || *p > '9')
				return false;
			while (*p >= '0' && *p <= '9') {
				if (fdiv < 1000000) {
					frac = frac * 10 + (*p - '0');
					fdiv *= 10;
				}
				p++;
			}
		}
		size_t i;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t ul = strlen(units[i].u);
			if (strncmp(p, units[i].u, ul) == 0) {
				/* "m" must not swallow the "m" of "ms" */
				if (units[i].u[0] == 'm' && ul == 1 &&
				    p[1] == 's')
					continue;
				p += ul;
				break;
			}
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return false;
		total += whole * units[i].ms + frac * units[i].ms / fdiv;
		if (total > (int64_t)366 * 24 * 3600000)
			return false;
	}
	*out_ms = total;
	return true;
}

void cep_format_duration(int64_t ms, char *buf, size_t len)
{
	if (ms < 1000) {
		snprintf(buf, len, "%lldms", (long long)ms);
		return;
	}
	long long h = ms / 3600000, m = (ms / 60000) % 60;
	long long s = (ms / 1000) % 60, r = ms % 1000;
	char sec[32];
	if (r != 0)
		snprintf(sec, sizeof(sec), "%lld.%03llds", s, r);
	else
		snprintf(sec, sizeof(sec), "%llds", s);
	/* trim trailing zeros of the fraction: 1.500s -> 1.5s */
	char *dot = strchr(sec, '.');
	if (dot != NULL) {
		size_t l = strlen(sec) - 1; /* before 's' */
		while (l > 0 && sec[l - 1] == '0')
			sec[--l] = 's', sec[l + 1] = '\0';
	}
	if (s == 0 && r == 0)
		sec[0] = '\0'; /* "2m", not "2m0s" */
	if (h > 0 && m == 0 && sec[0] == '\0')
		snprintf(buf, len, "%lldh", h);
	else if (h > 0)
		snprintf(buf, len, "%lldh%lldm%s", h, m, sec);
	else if (m > 0)
		snprintf(buf, len, "%lldm%s", m, sec);
	else
		snprintf(buf, len, "%s", sec);
}

int cep_mkdirs(const char *path, unsigned mode, cep_err *err)
{
	char buf[4096];
	if (cep_path(buf, sizeof(buf), err, "%s", path) != CEP_OK)
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

int cep_read_file(const char *path, size_t max, char **data, size_t *len,
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
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rv = fsync(fd);
	close(fd);
	return rv;
}

int cep_write_file(const char *path, const void *data, size_t len,
    unsigned mode, cep_err *err)
{
	char tmp[4096];
	if (cep_path(tmp, sizeof(tmp), err, "%s.tmp.%d", path, (int)getpid()) !=
	    0)
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

int cep_path(char *buf, size_t len, cep_err *err, const char *fmt, ...)
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

int cep_rmtree(const char *path, cep_err *err)
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
		rv = cep_path(child, sizeof(child), err, "%s/%s", path,
		    de->d_name);
		if (rv == CEP_OK)
			rv = cep_rmtree(child, err);
	}
	closedir(d);
	if (rv == CEP_OK && rmdir(path) != 0 && errno != ENOENT)
		rv = cep_err_errno(err, errno, path);
	return rv;
}

/* The fields of /proc/<pid>/stat after "pid (comm)": comm may hold
 * spaces and ')', so they start after the last ')'. NULL if gone. */
static const char *proc_stat_fields(int pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return (p != NULL && p[1] == ' ') ? p + 1 : NULL;
}

bool cep_proc_info(int pid, char *comm, size_t clen, int *ppid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	const char *open = strchr(buf, '(');
	if (p == NULL || open == NULL || open > p)
		return false;
	if (comm != NULL)
		snprintf(comm, clen, "%.*s", (int)(p - open - 2), open + 1);
	/* p: " S ppid ..." */
	if (ppid != NULL) {
		char *end;
		*ppid = (int)strtol(p + 3, &end, 10);
		if (end == p + 3)
			return false;
	}
	return true;
}

int64_t cep_proc_start_time(int pid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	if (p == NULL)
		return 0;
	/* p points at the space before field 3; the start time is field 22 */
	int field = 2;
	for (; *p != '\0'; p++) {
		if (*p != ' ')
			continue;
		if (++field == 22)
			return strtoll(p + 1, NULL, 10);
	}
	return 0;
}

char cep_proc_state(int pid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	return p != NULL ? p[1] : 0;
}

void cep_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}
