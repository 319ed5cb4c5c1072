/* fuzz_kube_list.c - libFuzzer target: a Kubernetes list answer (one
 * page) as the client merges it (lib/kube/kube_watch.c): the body decoded
 * as JSON and its items appended to the result, each given the kind and
 * apiVersion of the resource listed when it has none (list items carry
 * neither; watch events do). The first byte picks the resource. Must
 * never crash or leak. Invariants: exactly the items that are objects
 * are appended, in order, each the same object (not a copy); each then
 * has a kind and an apiVersion; one it had is kept; what was in the
 * result before stays first. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube_int.h"

static void trap_unless(int ok)
{
	if (!ok)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const kinds[] = {"pods", "Deployment", "nodes",
	    "ConfigMap", "jobs", "rolebindings", "poddisruptionbudgets",
	    "Namespace"};
	if (size < 1)
		return 0;
	const cep_kube_res *r = cep_kube_res_find(kinds[data[0] % 8]);
	trap_unless(r != NULL);
	json_t *page = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	json_t *items = json_object_get(page, "items");
	/* what each item had before the merge touches it */
	json_t *before = json_deep_copy(items);
	json_t *all = json_array();
	json_t *first = json_object();
	json_array_append_new(all, first);
	cep_kube_list_append_items(all, page, r);

	trap_unless(json_array_get(all, 0) == first);
	size_t j = 1, i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		if (!json_is_object(it))
			continue;
		trap_unless(json_array_get(all, j++) == it);
		const char *k = json_string_value(json_object_get(it, "kind"));
		const char *v = json_string_value(
		    json_object_get(it, "apiVersion"));
		json_t *old = json_array_get(before, i);
		json_t *ok = json_object_get(old, "kind");
		json_t *ov = json_object_get(old, "apiVersion");
		trap_unless(ok != NULL ?
		        json_equal(ok, json_object_get(it, "kind")) :
		        k != NULL && strcmp(k, r->kind) == 0);
		trap_unless(ov != NULL ?
		        json_equal(ov, json_object_get(it, "apiVersion")) :
		        v != NULL && strcmp(v, r->gv) == 0);
	}
	trap_unless(json_array_size(all) == j);
	json_decref(before);
	json_decref(all);
	json_decref(page);
	return 0;
}
