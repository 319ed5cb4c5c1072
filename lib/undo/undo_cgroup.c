/*
 * undo_cgroup.c - mechanism "node-cgroup": the cgroup a node-level hog
 * (cpu-hog, memory-hog, io-stress with `node`) created under the node's
 * cgroup v2 root for its workers. The runner's revert kills the workers
 * and removes it; after a kill -9 of the runner the workers are already
 * dead (PDEATHSIG) but the empty directory stays, so the cleanup runner
 * removes it through the same function. Plain filesystem calls: no
 * library beyond libc.
 */
#define _GNU_SOURCE
#include "undo.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REMOVE_TRIES 50 /* 100 ms apart: 5 s for workers to die */

static const char *const roots[] = {"/sys/fs/cgroup/unified/",
    "/sys/fs/cgroup/", NULL};

bool cep_undo_cgroup_name_ok(const char *dir, const char *run_id)
{
	char prefix[96];
	if (dir == NULL || run_id == NULL || run_id[0] == '\0')
		return false;
	snprintf(prefix, sizeof(prefix), "cep-node-%s-", run_id);
	for (size_t i = 0; roots[i] != NULL; i++) {
		size_t n = strlen(roots[i]);
		if (strncmp(dir, roots[i], n) != 0)
			continue;
		const char *base = dir + n;
		size_t bl = strlen(base);
		return strncmp(base, prefix, strlen(prefix)) == 0 &&
		    bl > strlen(prefix) && bl < 200 &&
		    strspn(base,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789-_.") == bl;
	}
	return false;
}

/* SIGKILL to every process still listed (the runner's revert has reaped
 * its own; these are strays). */
static void kill_members(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1)
		if (pid > 1)
			kill((pid_t)pid, SIGKILL);
	fclose(f);
}

int cep_undo_cgroup_remove(const char *dir, uint64_t ino, cep_err *err)
{
	struct stat st;
	for (int i = 0; i < REMOVE_TRIES; i++) {
		if (stat(dir, &st) != 0 && errno == ENOENT)
			return CEP_OK;
		/* another cgroup by that name is not the fault's */
		if (ino != 0 && (uint64_t)st.st_ino != ino)
			return CEP_OK;
		if (rmdir(dir) == 0 || errno == ENOENT)
			return CEP_OK;
		if (errno != EBUSY)
			return cep_err_set(err, CEP_INTERNAL,
			    "removing cgroup "
			    "%s: %s",
			    dir, strerror(errno));
		kill_members(dir);
		nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
	}
	return cep_err_set(err, CEP_UNAVAILABLE,
	    "cgroup %s still has processes after %d s", dir, REMOVE_TRIES / 10);
}

int cep_undo_node_cgroup(const char *run_id, const char *undo_json,
    cep_err *err)
{
	json_error_t je;
	json_t *j = undo_json != NULL ?
	    json_loadb(undo_json, strnlen(undo_json, 65536), 0, &je) :
	    NULL;
	const char *dir = json_string_value(json_object_get(j, "cgroup"));
	json_int_t ino = json_integer_value(json_object_get(j, "cgroup_ino"));
	int rc;
	if (dir == NULL)
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "node-cgroup undo "
		    "record without a cgroup");
	else if (!cep_undo_cgroup_name_ok(dir, run_id))
		/* from a runner, the least trusted party: only a directory
		 * this run's fault could have made */
		rc = cep_err_set(err, CEP_PERMISSION_DENIED,
		    "run %s: node-cgroup "
		    "undo record names %.200s, not a cgroup of this run "
		    "(expected /sys/fs/cgroup[/unified]/cep-node-%s-NAME)",
		    run_id, dir, run_id);
	else
		rc = cep_undo_cgroup_remove(dir, ino > 0 ? (uint64_t)ino : 0,
		    err);
	json_decref(j);
	return rc;
}
