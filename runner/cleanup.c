/* cleanup.c - the runner's cleanup mode (see cleanup.h). */
#define _GNU_SOURCE
#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "log.h"
#include "undo.h"
#include "undo_node.h"
#include "files.h"

#define REPORT_MAX 4096 /* Kubernetes keeps at most 4 KiB of it */

static const char *field(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* One record: undone (1), failed (0, why in err). */
static int undo_one(const char *run_id, json_t *r, cep_err *err)
{
	if (strcmp(field(r, "run_id"), run_id) != 0)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "record of run "
		    "\"%.40s\", this cleanup is for %s",
		    field(r, "run_id"), run_id);
	Cep__V1__FaultRecord rec = CEP__V1__FAULT_RECORD__INIT;
	rec.run_id = (char *)field(r, "run_id");
	rec.fault_id = (char *)field(r, "fault_id");
	rec.type = (char *)field(r, "type");
	rec.target = (char *)field(r, "target");
	rec.mechanism = (char *)field(r, "mechanism");
	rec.undo = (char *)field(r, "undo");
	/* node mechanisms only (cep_undo_on_node): no cluster client */
	return cep_undo_apply(NULL, &rec, err);
}

char *runner_cleanup_json(const char *run_id, const char *recs_json, size_t len,
    int *status)
{
	json_error_t je;
	cep_undo_node_register(); /* idempotent: the node mechanisms */
	json_t *recs = json_loadb(recs_json, len, 0, &je);
	json_t *undone = json_array(), *failed = json_object();
	*status = 0;
	if (!json_is_array(recs)) {
		json_object_set_new(failed, "-",
		    json_string(
		        "the cleanup "
		        "assignment is not a JSON array of fault records"));
		*status = 2;
	}
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r)
	{
		cep_err err = {0};
		const char *id = field(r, "fault_id");
		char key[80];
		snprintf(key, sizeof(key), "%.64s", id[0] ? id : "?");
		if (json_is_object(r) && undo_one(run_id, r, &err) == CEP_OK) {
			json_array_append_new(undone, json_string(key));
			cep_log_info(run_id,
			    "fault %s undone by the cleanup runner", key);
			continue;
		}
		if (!json_is_object(r))
			snprintf(err.msg, sizeof(err.msg),
			    "not a fault record");
		cep_log_error(run_id, "fault %s: undo failed: %s", key,
		    err.msg);
		json_object_set_new(failed, key, json_string(err.msg));
		*status = 1;
	}
	json_decref(recs);
	json_t *rep = json_pack("{s:O, s:O}", "undone", undone, "failed",
	    failed);
	char *out = json_dumps(rep, JSON_COMPACT);
	json_decref(rep);
	/* Too long for the termination message: the ids matter most. */
	if (out != NULL && strlen(out) >= REPORT_MAX) {
		free(out);
		rep = json_pack("{s:O, s:{s:s}}", "undone", undone, "failed",
		    "-", "errors too long to report; see the pod's log");
		out = json_dumps(rep, JSON_COMPACT);
		json_decref(rep);
	}
	json_decref(undone);
	json_decref(failed);
	return out;
}

int runner_cleanup(const char *run_id, const char *file,
    const char *report_path)
{
	char *data = NULL;
	size_t len = 0;
	cep_err err = {0};
	if (cep_files_read(file, 1024 * 1024, &data, &len, &err) != CEP_OK) {
		cep_log_error(run_id, "cleanup: %s", err.msg);
		return 2;
	}
	int status;
	char *rep = runner_cleanup_json(run_id, data, len, &status);
	free(data);
	if (rep == NULL)
		return 2;
	printf("%s\n", rep);
	fflush(stdout);
	int fd = open(report_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t n = strlen(rep);
	if (fd < 0 || write(fd, rep, n) != (ssize_t)n)
		cep_log_error(run_id, "cleanup: writing the report to %s: %s",
		    report_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(rep);
	return status;
}
