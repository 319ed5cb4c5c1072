/* pod_select.c - pods chosen by label selector (see pod_select.h). */
#define _GNU_SOURCE
#include "pod_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "kube_target.h"
#include "podtarget.h"

#define MAX_PODS 10000

size_t runner_podsel_running(json_t *items, const char *node,
    const char **names, size_t cap, size_t *all)
{
	size_t n = 0, running = 0, i;
	json_t *pod;
	json_array_foreach(items, i, pod)
	{
		json_t *md = json_object_get(pod, "metadata");
		const char *phase = json_string_value(
		    json_object_get(json_object_get(pod, "status"), "phase"));
		const char *name = json_string_value(
		    json_object_get(md, "name"));
		const char *on = json_string_value(
		    json_object_get(json_object_get(pod, "spec"), "nodeName"));
		if (name == NULL || phase == NULL ||
		    strcmp(phase, "Running") != 0 ||
		    json_object_get(md, "deletionTimestamp") != NULL)
			continue;
		running++;
		if (n < cap &&
		    (node == NULL || (on != NULL && strcmp(on, node) == 0)))
			names[n++] = name;
	}
	if (all != NULL)
		*all = running;
	for (size_t j = n; j > 1; j--) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (uint32_t)cep_clock_mono_ms();
		size_t k = r % j;
		const char *t = names[j - 1];
		names[j - 1] = names[k];
		names[k] = t;
	}
	return n;
}

int runner_podsel_choose(const char *selector, int64_t count, int64_t percent,
    const char *node, char (*out)[254], size_t cap, size_t *n, size_t *matching,
    bool *capped, cep_err *err)
{
	cep_kube *k;
	char ns[254];
	json_t *items = NULL;
	*n = *matching = 0;
	*capped = false;
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	cep_kube_list_opts o = {.label_selector = selector};
	if (rc == CEP_OK)
		rc = cep_kube_list(k, &cep_kube_pods, ns, &o, &items, NULL, 0,
		    err);
	if (rc != CEP_OK)
		return rc;
	size_t total = json_array_size(items);
	const char **names = calloc(total ? total : 1, sizeof(*names));
	if (names == NULL) {
		json_decref(items);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	}
	size_t here = runner_podsel_running(items, node, names,
	    total < MAX_PODS ? total : MAX_PODS, matching);
	size_t want = cep_podtarget_quota(count, percent, *matching);
	size_t max = runner_kube_target_max();
	if (want > max || want > cap) {
		*capped = true;
		want = max < cap ? max : cap;
	}
	if (want > here && *matching > 0) {
		rc = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "%zu of the %zu Running pods matching %.300s in %s asked "
		    "for, %zu of them on node %s where this runner is (they "
		    "moved since launch)",
		    want, *matching, selector, ns, here, node ? node : "");
		want = 0;
	}
	for (size_t i = 0; i < want; i++)
		snprintf(out[i], sizeof(out[i]), "%s", names[i]);
	*n = want;
	free(names);
	json_decref(items);
	if (rc == CEP_OK && *n == 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "no Running pod "
		    "matches %.300s in %s",
		    selector, ns);
	return rc;
}
