/* testutil.c - helpers shared by the Criterion tests. */
#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

char *cep_test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;
	if (asprintf(&path, "%s/cep-test-%s-XXXXXX", base ? base : "/tmp",
	        tag) < 0)
		abort();
	if (mkdtemp(path) == NULL)
		abort();
	return path;
}

void cep_test_rmdir(char *dir)
{
	if (dir != NULL)
		cep_files_rmtree(dir, NULL);
	free(dir);
}

char *cep_test_tmpfs(const char *tag, size_t bytes)
{
	char *dir = cep_test_tmpdir(tag), *mnt = NULL, opts[64];
	snprintf(opts, sizeof(opts), "size=%zu,mode=0700", bytes);
	if (asprintf(&mnt, "%s/state", dir) < 0)
		abort();
	free(dir);
	if (mkdir(mnt, 0700) == 0 && unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0)
		return mnt;
	int e = errno;
	cep_test_tmpfs_free(mnt);
	errno = e;
	return NULL;
}

void cep_test_tmpfs_free(char *mnt)
{
	if (mnt == NULL)
		return;
	(void)umount2(mnt, MNT_DETACH);
	char *slash = strrchr(mnt, '/');
	*slash = '\0'; /* the temp dir above it */
	cep_test_rmdir(mnt);
}

long long cep_test_fill(const char *path)
{
	static const char block[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	long long total = 0;
	for (;;) {
		ssize_t n = write(fd, block, sizeof(block));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	return total;
}

char *cep_test_bin(const char *name)
{
	const char *dir = getenv("CEP_BIN_DIR");
	char *path = NULL;
	if (asprintf(&path, "%s/%s", dir ? dir : ".", name) < 0)
		abort();
	return path;
}

int cep_test_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) != 0)
		abort();
	close(fd);
	return ntohs(a.sin_port);
}

int cep_test_count_procs(const char *comm)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[300], buf[64];
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL) {
			buf[strcspn(buf, "\n")] = '\0';
			if (strcmp(buf, comm) == 0)
				n++;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}
