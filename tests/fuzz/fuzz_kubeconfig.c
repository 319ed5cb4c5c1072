/* fuzz_kubeconfig.c - libFuzzer target: kubeconfig text -> cep_kube (the
 * loader behind cep_kube_from_kubeconfig). Must never crash, leak or
 * hang; every refusal names the input. File references resolve under a
 * folder that does not exist, so the run touches no real files through
 * relative paths. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cep_kube *k = NULL;
	cep_err err;
	/* the first byte picks the options, the rest is the document */
	bool insecure = size > 0 && (data[0] & 1);
	const char *ctx = size > 0 && (data[0] & 2) ? "ctx1" : NULL;
	const char *text = size > 0 ? (const char *)data + 1 : "";
	size_t len = size > 0 ? size - 1 : 0;
	int rc = cep_kube_from_kubeconfig_text(text, len, "fuzz.kubeconfig",
	    "/nonexistent-cep-fuzz", ctx, insecure, &k, &err);
	if (rc != CEP_OK) {
		if (k != NULL)
			__builtin_trap(); /* no handle on failure */
		if (err.code == CEP_INVALID_ARGUMENT &&
		    strncmp(err.msg, "fuzz.kubeconfig", 15) != 0)
			__builtin_trap(); /* every refusal names the file */
		return 0;
	}
	/* a loaded handle is usable: a server URL and a path to build */
	if (strncmp(cep_kube_server(k), "https://", 8) != 0)
		__builtin_trap();
	char url[4096];
	(void)cep_kube_url(k, "/version", "a=b", url, sizeof(url), &err);
	cep_kube_free(k);
	return 0;
}
