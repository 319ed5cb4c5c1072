/* fuzz_cert.c - hostile bytes into cep_pki_verify_der, the first thing the
 * relay does with what a runner presents, and into the proof check. The CA
 * is made once per process in a temporary directory removed right away.
 * An input starting with 'U' is instead used as the URI SAN of a real
 * certificate from that CA, so the identity parser behind a *successful*
 * chain check gets hostile input too. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

static char *ca_pem;
static cep_pki_ca *ca;

static void make_ca(void)
{
	char dir[] = "/tmp/cep-fuzz-cert-XXXXXX";
	cep_err err;
	if (mkdtemp(dir) == NULL)
		abort();
	if (cep_pki_ca_create(dir, "fuzz", &err) != 0 ||
	    cep_pki_ca_load(&ca, dir, &err) != 0) {
		fprintf(stderr, "fuzz_cert: CA: %s\n", err.msg);
		abort();
	}
	ca_pem = strdup(cep_pki_ca_cert_pem(ca));
	cep_files_rmtree(dir, NULL);
	if (ca_pem == NULL)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_ca();
	return 0;
}

static void fuzz_uri(const uint8_t *data, size_t size)
{
	char uri[300];
	if (size >= sizeof(uri))
		return;
	memcpy(uri, data, size);
	uri[size] = '\0';
	cep_pki_issue_req req = {.cn = "fuzz",
	    .uri_san = uri,
	    .not_after_ms = cep_clock_now_ms() + 3600 * 1000};
	char *crt = NULL, *key = NULL;
	uint8_t *der = NULL;
	size_t n = 0;
	cep_err err;
	cep_pki_identity id;
	if (cep_pki_issue(ca, &req, &crt, &key, &err) == 0 &&
	    cep_pki_cert_der(crt, &der, &n, &err) == 0 &&
	    cep_pki_verify_der(ca_pem, der, n, 0, &id, &err) == 0) {
		/* accepted: then it names a run, and exactly this URI */
		if (strcmp(id.uri, uri) != 0 || !cep_run_id_valid(id.run_id.s))
			__builtin_trap();
	}
	free(der);
	free(crt);
	cep_pki_free_secret(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'U') {
		fuzz_uri(data + 1, size - 1);
		return 0;
	}
	cep_pki_identity id;
	cep_err err;
	int rv = cep_pki_verify_der(ca_pem, data, size, 0, &id, &err);
	/* a success must come with a well-formed identity */
	if (rv == CEP_OK &&
	    (strnlen(id.uri, sizeof(id.uri)) == sizeof(id.uri) ||
	        strnlen(id.cn, sizeof(id.cn)) == sizeof(id.cn)))
		__builtin_trap();
	/* the proof check parses the same bytes as a certificate */
	static const uint8_t nonce[16];
	(void)cep_pki_check_proof(data, size, nonce, sizeof(nonce), data,
	    size < 72 ? size : 72, &err);
	return 0;
}
