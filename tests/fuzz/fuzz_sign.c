/*
 * fuzz_sign.c - libFuzzer target for cep-signer's Sign request: whatever
 * bytes the delegate's socket delivers, decoding them as a SignRequest and
 * checking every field (signer_signsvc_check: run id, URI, expiry, the DER
 * public key through mbedTLS) must answer OK or a refusal with a reason,
 * without crashing, leaking or reading out of bounds. A request that
 * passes is also signed, so the certificate writer sees fuzzed keys too.
 *
 * Build: CC=clang cmake -DCEP_FUZZ=ON ...; run: ./fuzz_sign -max_len=4096
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "pki.h"
#include "signsvc.h"
#include "clock.h"
#include "files.h"

static cep_pki_ca *ca;
static const cep_signsvc_policy pol = {.appliance = "fuzz",
    .max_lifetime_ms = 3600 * 1000LL};

static void init_ca(void)
{
	char dir[] = "/tmp/cep-fuzz-sign-XXXXXX";
	cep_err err;
	if (mkdtemp(dir) == NULL)
		abort();
	char sub[64];
	snprintf(sub, sizeof(sub), "%s/ca", dir);
	if (cep_pki_ca_create(sub, "fuzz", &err) != 0 ||
	    cep_pki_ca_load(&ca, sub, &err) != 0) {
		fprintf(stderr, "fuzz_sign: %s\n", err.msg);
		abort();
	}
	cep_files_rmtree(dir, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ca == NULL)
		init_ca();
	Cep__V1__SignRequest *req = cep__v1__sign_request__unpack(NULL, size,
	    data);
	if (req == NULL)
		return 0;
	cep_err err = {0};
	int rv = signer_signsvc_check(&pol, req, cep_clock_now_ms(), &err);
	if (rv != CEP_OK && err.msg[0] == '\0')
		abort(); /* a refusal always says why */
	if (rv == CEP_OK) {
		char *pem = NULL;
		cep_pki_issue_req ir = {.cn = req->run_id,
		    .uri_san = req->uri_san,
		    .not_after_ms = req->not_after_ms};
		if (cep_pki_issue_pub(ca, &ir, req->public_key.data,
		        req->public_key.len, &pem, &err) != CEP_OK)
			abort(); /* checked requests are signed */
		free(pem);
	}
	cep__v1__sign_request__free_unpacked(req, NULL);
	return 0;
}
