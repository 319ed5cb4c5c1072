/*
 * ctrpid.c - a container's process from its runtime id, through /proc
 * (see ctrpid.h). Reads only; everything read is treated as hostile
 * (a process can name its own cgroups and comm).
 */
#define _GNU_SOURCE
#include "ctrpid.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

#define CG_MAX (64 * 1024) /* a real cgroup file is far smaller */
#define PATH_CAP 4096

typedef struct match {
	pid_t pid, ppid;
	unsigned long long start;
	char path[PATH_CAP];
} match;

int cep_ctrpid_parse_id(const char *container_id, char *id, size_t idlen,
    const char **runtime, cep_err *err)
{
	static const char *const schemes[] = {"containerd", "cri-o", "docker",
	    NULL};
	const char *sep = container_id ? strstr(container_id, "://") : NULL;
	const char *rt = NULL;
	for (size_t i = 0; sep != NULL && schemes[i] != NULL; i++)
		if ((size_t)(sep - container_id) == strlen(schemes[i]) &&
		    strncmp(container_id, schemes[i], strlen(schemes[i])) == 0)
			rt = schemes[i];
	const char *hex = sep ? sep + 3 : "";
	bool ok = rt != NULL && strlen(hex) == CEP_CTRPID_ID_LEN &&
	    strspn(hex, "0123456789abcdef") == CEP_CTRPID_ID_LEN &&
	    idlen > CEP_CTRPID_ID_LEN;
	if (!ok)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "container id "
		    "\"%.80s\" is not <containerd|cri-o|docker>://<64 hex "
		    "digits>",
		    container_id ? container_id : "");
	memcpy(id, hex, CEP_CTRPID_ID_LEN + 1);
	if (runtime != NULL)
		*runtime = rt;
	return CEP_OK;
}

/* Is the component [c, c+n) the container's own cgroup? */
static bool component_is(const char *c, size_t n, const char *id)
{
	static const char *const wrap[][2] = {{"", ""},
	    {"cri-containerd-", ".scope"}, {"crio-", ".scope"},
	    {"docker-", ".scope"}};
	for (size_t i = 0; i < sizeof(wrap) / sizeof(wrap[0]); i++) {
		size_t pl = strlen(wrap[i][0]), sl = strlen(wrap[i][1]);
		if (n == pl + CEP_CTRPID_ID_LEN + sl &&
		    memcmp(c, wrap[i][0], pl) == 0 &&
		    memcmp(c + pl, id, CEP_CTRPID_ID_LEN) == 0 &&
		    memcmp(c + pl + CEP_CTRPID_ID_LEN, wrap[i][1], sl) == 0)
			return true;
	}
	return false;
}

/* One "hier:controllers:path" line: the path up to the matching
 * component into out (the container's cgroup, whatever the process made
 * below it), or false. */
static bool line_matches(const char *line, const char *id, char *out,
    size_t len)
{
	const char *p = strchr(line, ':');
	p = p ? strchr(p + 1, ':') : NULL;
	if (p == NULL || p[1] != '/')
		return false;
	p++;
	for (const char *c = p; *c != '\0';) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");
		if (n > 0 && component_is(c, n, id)) {
			size_t total = (size_t)(c + n - p);
			if (total >= len)
				return false;
			memcpy(out, p, total);
			out[total] = '\0';
			return true;
		}
		c += n;
	}
	return false;
}

/* The container's cgroup as pid's cgroup file shows it (the v2 "0::"
 * line preferred). false: not in the container, or unreadable (gone). */
static bool pid_matches(const char *root, const char *pid, const char *id,
    char *out, size_t len)
{
	char path[PATH_CAP], *data = NULL;
	size_t n;
	cep_err e = {0};
	snprintf(path, sizeof(path), "%s/%s/cgroup", root, pid);
	if (cep_target_read_kfile(path, CG_MAX, &data, &n, &e) != CEP_OK)
		return false;
	bool found = false;
	char *save = data;
	while (save != NULL && *save != '\0') {
		char *nl = strchr(save, '\n');
		if (nl != NULL)
			*nl = '\0';
		char tmp[PATH_CAP];
		if (line_matches(save, id, tmp, sizeof(tmp)) &&
		    (!found || strncmp(save, "0::", 3) == 0)) {
			snprintf(out, len, "%s", tmp);
			found = true;
		}
		save = nl ? nl + 1 : NULL;
	}
	free(data);
	return found;
}

/* ppid and start time from /proc/PID/stat; the comm may hold anything,
 * ")" included, so fields are counted from the last ")". */
static void read_stat(const char *root, match *m)
{
	char path[PATH_CAP], *data = NULL;
	size_t n;
	cep_err e = {0};
	m->ppid = 0;
	m->start = UINT64_MAX;
	snprintf(path, sizeof(path), "%s/%d/stat", root, (int)m->pid);
	if (cep_target_read_kfile(path, 4096, &data, &n, &e) != CEP_OK)
		return;
	/* fields 3 (state) .. 22 (starttime), space separated */
	char *p = strrchr(data, ')');
	int field = 2;
	while (p != NULL && *p != '\0' && field < 22) {
		p += strspn(p, ")");
		if (*p != ' ')
			break;
		p++;
		field++;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		bool num = end != p && errno == 0 &&
		    (*end == ' ' || *end == '\n' || *end == '\0');
		if (field == 4 && num && v < 4194305)
			m->ppid = (pid_t)v;
		if (field == 22 && num)
			m->start = v;
		p += strcspn(p, " ");
	}
	free(data);
}

static bool pid_name(const char *s, pid_t *pid)
{
	if (s[0] < '1' || s[0] > '9' || strlen(s) > 9 ||
	    strspn(s, "0123456789") != strlen(s))
		return false;
	*pid = (pid_t)strtol(s, NULL, 10);
	return true;
}

static int collect(const char *root, const char *id, match **ms, size_t *nm,
    cep_err *err)
{
	DIR *d = opendir(root);
	if (d == NULL)
		return cep_err_errno(err, errno, root);
	size_t cap = 0;
	int rc = CEP_OK;
	struct dirent *de;
	while (rc == CEP_OK && (de = readdir(d)) != NULL) {
		pid_t pid;
		char cg[PATH_CAP];
		if (!pid_name(de->d_name, &pid) ||
		    !pid_matches(root, de->d_name, id, cg, sizeof(cg)))
			continue;
		if (*nm == cap) {
			size_t nc = cap ? cap * 2 : 8;
			match *nb = realloc(*ms, nc * sizeof(**ms));
			if (nb == NULL) {
				rc = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
				    "out of memory scanning %s", root);
				break;
			}
			*ms = nb;
			cap = nc;
		}
		match *m = &(*ms)[(*nm)++];
		m->pid = pid;
		snprintf(m->path, sizeof(m->path), "%s", cg);
		read_stat(root, m);
	}
	closedir(d);
	return rc;
}

static bool is_match(const match *ms, size_t nm, pid_t pid)
{
	for (size_t i = 0; i < nm; i++)
		if (ms[i].pid == pid)
			return true;
	return false;
}

int cep_ctrpid_find(const char *proc_root, const char *id, pid_t *pid,
    char *cgpath, size_t cglen, cep_err *err)
{
	*pid = 0;
	if (id == NULL || strlen(id) != CEP_CTRPID_ID_LEN ||
	    strspn(id, "0123456789abcdef") != CEP_CTRPID_ID_LEN)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "container id "
		    "must be 64 lowercase hex digits");
	match *ms = NULL;
	size_t nm = 0;
	int rc = collect(proc_root, id, &ms, &nm, err);
	const match *best = NULL;
	for (size_t i = 0; rc == CEP_OK && i < nm; i++) {
		if (strcmp(ms[i].path, ms[0].path) != 0) {
			rc = cep_err_set(err, CEP_FAILED_PRECONDITION,
			    "container %.12s: processes in two cgroups (%.300s "
			    "and %.300s), refusing to guess",
			    id, ms[0].path, ms[i].path);
			break;
		}
		if (is_match(ms, nm, ms[i].ppid))
			continue;
		if (best == NULL || ms[i].start < best->start ||
		    (ms[i].start == best->start && ms[i].pid < best->pid))
			best = &ms[i];
	}
	if (rc == CEP_OK && best == NULL)
		rc = cep_err_set(err, CEP_NOT_FOUND,
		    "container %.12s: no "
		    "process in %s is in its cgroup (not running on this node, "
		    "or not the host's pid namespace)",
		    id, proc_root);
	if (rc == CEP_OK) {
		*pid = best->pid;
		snprintf(cgpath, cglen, "%s", best->path);
	}
	free(ms);
	return rc;
}
