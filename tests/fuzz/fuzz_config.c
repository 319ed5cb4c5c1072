/* fuzz_config.c - libFuzzer target: the appliance config loader on
 * arbitrary cep.yaml contents. It must never crash or leak, and a refusal
 * must say why. (The loader reads a file, so the input is written to one
 * in a private temporary home created once.) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cep_paths paths;
static char file[CEP_PATH_MAX + 16];

static char home[] = "/tmp/cep-fuzz-config-XXXXXX";

static void cleanup(void)
{
	cep_files_rmtree(home, NULL);
}

static void setup(void)
{
	if (mkdtemp(home) == NULL ||
	    cep_paths_resolve(home, &paths, NULL) != 0 ||
	    cep_files_mkdirs(paths.config, 0700, NULL) != 0)
		abort();
	snprintf(file, sizeof(file), "%s/cep.yaml", paths.config);
	atexit(cleanup);
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
	cep_config cfg;
	cep_err err = {0};
	if (cep_config_load(&paths, &cfg, &err) != CEP_OK && err.msg[0] == '\0')
		__builtin_trap(); /* a refusal must say why */
	return 0;
}
