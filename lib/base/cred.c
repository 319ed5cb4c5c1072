/* cred.c - systemd credentials first, the configured path else (cred.h). */
#define _GNU_SOURCE
#include "cred.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* $CREDENTIALS_DIRECTORY/<id>_<base> into out when it is a regular file. */
static bool from_credentials(const char *id, const char *base, char *out,
    size_t len)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	/* systemd sets an absolute path; anything else is not systemd's */
	if (dir == NULL || dir[0] != '/' || base[0] == '\0' ||
	    strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return false;
	char cand[4096];
	int n = snprintf(cand, sizeof(cand), "%s/%s_%s", dir, id, base);
	if (n < 0 || (size_t)n >= sizeof(cand) || (size_t)n >= len)
		return false;
	struct stat st;
	/* lstat: systemd never puts a symlink there */
	if (lstat(cand, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	memcpy(out, cand, (size_t)n + 1);
	return true;
}

bool cep_cred_path(const char *path, char *out, size_t len)
{
	if (len == 0)
		return false;
	const char *slash = strrchr(path, '/');
	const char *base = slash != NULL ? slash + 1 : path;
	static const char *const ids[] = {"cep", "cep-shared"};
	for (size_t i = 0; path[0] != '\0' && i < 2; i++)
		if (from_credentials(ids[i], base, out, len))
			return true;
	if (out != path)
		snprintf(out, len, "%s", path);
	return false;
}
