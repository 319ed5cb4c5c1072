/* podtarget.c - a pod target from its Pod object (see podtarget.h). */
#include "podtarget.h"

#include <stdio.h>
#include <string.h>

#include "ctrpid.h"

static const char *str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The status entry of the container wanted (by name, or the only one). */
static int pick(const json_t *pod, const char *name, const char *want,
    const json_t **cs, cep_err *err)
{
	const json_t *st = json_object_get(json_object_get(pod, "status"),
	    "containerStatuses");
	size_t n = json_is_array(st) ? json_array_size(st) : 0;
	char names[256] = "";
	*cs = NULL;
	for (size_t i = 0; i < n; i++) {
		const json_t *c = json_array_get(st, i);
		const char *cn = str_at(c, "name", NULL);
		if (cn == NULL)
			continue;
		size_t l = strlen(names);
		snprintf(names + l, sizeof(names) - l, "%s%.63s", l ? ", " : "",
		    cn);
		if (want != NULL ? strcmp(cn, want) == 0 : n == 1)
			*cs = c;
	}
	if (*cs != NULL)
		return CEP_OK;
	if (want != NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "pod %.253s "
		    "has no container \"%.63s\" (containers: %s)",
		    name, want, names[0] ? names : "none reported");
	return cep_err_set(err, CEP_FAILED_PRECONDITION,
	    "pod %.253s has %zu "
	    "containers (%s), expected container: NAME to say which",
	    name, n, names[0] ? names : "none reported");
}

int cep_podtarget_read(const json_t *pod, const char *container,
    cep_podtarget *out, cep_err *err)
{
	memset(out, 0, sizeof(*out));
	const char *name = str_at(pod, "metadata", "name");
	const char *uid = str_at(pod, "metadata", "uid");
	if (!json_is_object(pod) || name == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "not a Pod object");
	const char *phase = str_at(pod, "status", "phase");
	if (phase == NULL || strcmp(phase, "Running") != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "pod %.253s is "
		    "%.32s, expected Running",
		    name,
		    phase ? phase :
		            "not "
		            "started");
	const char *node = str_at(pod, "spec", "nodeName");
	if (node == NULL || node[0] == '\0' ||
	    strlen(node) >= sizeof(out->node))
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "pod %.253s is "
		    "not scheduled on a node (no spec.nodeName)",
		    name);
	const json_t *cs;
	int rc = pick(pod, name, container, &cs, err);
	if (rc != CEP_OK)
		return rc;
	const char *cn = str_at(cs, "name", NULL);
	const char *cid = str_at(cs, "containerID", NULL);
	if (json_object_get(json_object_get(cs, "state"), "running") == NULL ||
	    cid == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "container "
		    "%.63s of pod %.253s is not running",
		    cn, name);
	char id[CEP_CTRPID_ID_LEN + 1];
	if (cep_ctrpid_parse_id(cid, id, sizeof(id), NULL, err) != CEP_OK)
		return cep_err_wrap(err, "pod %.253s container %.63s", name,
		    cn);
	snprintf(out->node, sizeof(out->node), "%s", node);
	snprintf(out->uid, sizeof(out->uid), "%.63s", uid ? uid : "");
	snprintf(out->container, sizeof(out->container), "%.63s", cn);
	snprintf(out->container_id, sizeof(out->container_id), "%s", cid);
	return CEP_OK;
}

size_t cep_podtarget_quota(int64_t count, int64_t percent, size_t running)
{
	size_t want = count > 0 ? (size_t)count :
	    percent > 0         ? (running * (size_t)percent + 99) / 100 :
	                          0;
	return want > running ? running : want;
}
