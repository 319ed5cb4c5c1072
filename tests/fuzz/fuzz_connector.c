/* fuzz_connector.c - libFuzzer target: the connector parser on arbitrary
 * connectors.d/NAME.yaml contents. It must never crash or leak, a refusal
 * must say why, and an accepted connector must keep the namespace rule
 * (kube-system and its appliance namespace only by exact name). The
 * loader reads a file, so the input is written to one in a private
 * temporary folder created once. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/cep-fuzz-connector-XXXXXX";
static char file[sizeof(dir) + 32];

static void cleanup(void)
{
	cep_files_rmtree(dir, NULL);
}

static void setup(void)
{
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(file, sizeof(file), "%s/fuzz.yaml", dir);
	atexit(cleanup);
}

static bool listed(const cep_connector *c, const char *ns)
{
	for (size_t i = 0; i < c->n_ns; i++)
		if (strcmp(c->namespaces[i], ns) == 0)
			return true;
	return false;
}

static void check_rule(const cep_connector *c)
{
	char why[512];
	const char *special[] = {"kube-system", c->appliance_ns};
	for (size_t i = 0; i < 2; i++)
		if (cep_connector_ns_allowed(c, special[i], why, sizeof(why)) !=
		    listed(c, special[i]))
			__builtin_trap(); /* a glob reached a denied namespace */
	for (size_t i = 0; i < c->n_ns; i++)
		(void)cep_connector_ns_allowed(c, c->namespaces[i], why,
		    sizeof(why));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (file[0] == '\0')
		setup();
	FILE *f = fopen(file, "wb");
	if (f == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	cep_connector *c = NULL;
	cep_err err = {0};
	if (cep_connector_load_file(file, &c, &err) != CEP_OK) {
		if (err.msg[0] == '\0' || c != NULL)
			__builtin_trap(); /* a refusal must say why */
		return 0;
	}
	check_rule(c);
	cep_connector_free(c);
	return 0;
}
