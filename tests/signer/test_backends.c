/* test_backends.c - the delegate's cep_signer (delegate/signer.h): one
 * suite run against both backends, in-process and cep-signer over ipc.
 * The remote one runs with ca.key moved out of the home after the signer
 * loaded it: it must not need the file. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cep.pb-c.h"
#include "pki.h"
#include "rpc.h"
#include "signer.h"
#include "signsvc.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#define MIN_MS (60 * 1000LL)

enum backend { IN_PROCESS, REMOTE };

static char *home;
static cep_paths paths;
static cep_config cfg;
static cep_signsvc *svc;
static cep_signer *sg;

static void setup(void)
{
	cep_err err;
	home = cep_test_tmpdir("signer-be");
	cr_assert_eq(cep_paths_resolve(home, &paths, &err), CEP_OK);
	cr_assert_eq(cep_files_mkdirs(paths.run, 0700, &err), CEP_OK);
	cr_assert_eq(cep_pki_ca_create(paths.pki, "app1", &err), CEP_OK, "%s",
	    err.msg);
	cep_config_defaults(&cfg);
	snprintf(cfg.appliance, sizeof(cfg.appliance), "app1");
}

static void teardown(void)
{
	delegate_signer_free(sg);
	sg = NULL;
	signer_signsvc_free(svc);
	svc = NULL;
	cep_test_rmdir(home);
}

static void open_backend(enum backend b)
{
	cep_err err;
	if (b == REMOTE) {
		cep_pki_ca *ca = NULL;
		cr_assert_eq(cep_pki_ca_load(&ca, paths.pki, &err), CEP_OK);
		cep_signsvc_policy pol;
		signer_signsvc_policy_from(&cfg, &pol);
		snprintf(cfg.signer_url, sizeof(cfg.signer_url),
		    "ipc://%s/signer.sock", paths.run);
		cr_assert_eq(signer_signsvc_start(&svc, ca, &pol, getuid(),
		                 cfg.signer_url, &err),
		    CEP_OK, "%s", err.msg);
		char key[CEP_PATH_MAX + 16], away[CEP_PATH_MAX + 32];
		snprintf(key, sizeof(key), "%s/ca.key", paths.pki);
		snprintf(away, sizeof(away), "%s/../ca.key.away", paths.pki);
		cr_assert_eq(rename(key, away), 0);
	}
	cr_assert_eq(delegate_signer_open(&sg, &paths, &cfg, 5000, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(delegate_signer_name(sg),
	    b == REMOTE ? "cep-signer" : "in-process");
}

static void issue_and_verify(enum backend b)
{
	open_backend(b);
	cep_err err;
	cep_run_id rid;
	char uri[256], *cert = NULL, *key = NULL;
	cep_run_id_new(&rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "app1", "local",
	                 "host", rid.s, &err),
	    CEP_OK);
	int64_t na = cep_clock_now_ms() + 10 * MIN_MS;
	cr_assert_eq(delegate_signer_issue(sg, rid.s, uri, na, &cert, &key,
	                 &err),
	    CEP_OK, "%s", err.msg);
	uint8_t *der;
	size_t dlen;
	cr_assert_eq(cep_pki_cert_der(cert, &der, &dlen, &err), CEP_OK);
	cep_pki_identity id;
	cr_assert_eq(cep_pki_verify_der(delegate_signer_ca_pem(sg), der, dlen,
	                 0, &id, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(id.uri, uri);
	cr_assert_str_eq(id.cn, rid.s);
	uint8_t nonce[16] = {7}, *sig = NULL;
	size_t slen;
	cr_assert_eq(cep_pki_sign_proof(key, nonce, sizeof(nonce), &sig, &slen,
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_pki_check_proof(der, dlen, nonce, sizeof(nonce), sig,
	                 slen, &err),
	    CEP_OK, "%s", err.msg);
	free(sig);
	free(der);
	free(cert);
	cep_pki_free_secret(key);
}

static void refuses_bad_key(enum backend b)
{
	open_backend(b);
	cep_err err;
	cep_run_id rid;
	char uri[256], *cert = (char *)"x";
	cep_run_id_new(&rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "app1", "local",
	                 "host", rid.s, &err),
	    CEP_OK);
	uint8_t junk[91];
	memset(junk, 0x30, sizeof(junk));
	cr_assert_eq(delegate_signer_sign(sg, rid.s, uri,
	                 cep_clock_now_ms() + MIN_MS, junk, sizeof(junk), &cert,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(cert);
	cr_assert(strstr(err.msg, "public key") != NULL, "%s", err.msg);
}

TestSuite(backends, .init = setup, .fini = teardown);

Test(backends, in_process_issues)
{
	issue_and_verify(IN_PROCESS);
}
Test(backends, remote_issues_without_the_key_file)
{
	issue_and_verify(REMOTE);
}
Test(backends, in_process_refuses_bad_keys)
{
	refuses_bad_key(IN_PROCESS);
}
Test(backends, remote_refuses_bad_keys)
{
	refuses_bad_key(REMOTE);
}

Test(backends, remote_refuses_what_the_signer_refuses)
{
	open_backend(REMOTE);
	cep_err err;
	cep_run_id rid;
	char uri[256], *cert = NULL, *key = NULL;
	cep_run_id_new(&rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "other", "local",
	                 "host", rid.s, &err),
	    CEP_OK);
	cr_assert_eq(delegate_signer_issue(sg, rid.s, uri,
	                 cep_clock_now_ms() + MIN_MS, &cert, &key, &err),
	    CEP_PERMISSION_DENIED);
	cr_assert_null(cert);
	cr_assert_null(key);
	cr_assert(strstr(err.msg, "cep-signer at ipc://") != NULL, "%s",
	    err.msg);
}

Test(backends, remote_signer_not_there)
{
	cep_err err;
	snprintf(cfg.signer_url, sizeof(cfg.signer_url), "ipc://%s/nobody.sock",
	    paths.run);
	int64_t t0 = cep_clock_mono_ms();
	int rv = delegate_signer_open(&sg, &paths, &cfg, 500, &err);
	cr_assert(rv == CEP_UNAVAILABLE || rv == CEP_DEADLINE_EXCEEDED, "%d %s",
	    rv, err.msg);
	cr_assert_null(sg);
	cr_assert(strstr(err.msg, "nobody.sock") != NULL, "%s", err.msg);
	cr_assert_lt(cep_clock_mono_ms() - t0, 5000);
}

Test(backends, in_process_without_a_ca)
{
	cep_err err;
	char key[CEP_PATH_MAX + 16];
	snprintf(key, sizeof(key), "%s/ca.key", paths.pki);
	cr_assert_eq(unlink(key), 0);
	cr_assert_neq(delegate_signer_open(&sg, &paths, &cfg, 0, &err), CEP_OK);
	cr_assert(strstr(err.msg, "CA") != NULL, "%s", err.msg);
}

/* ---- a lying signer: what it answers is checked ---------------------- */

static cep_pki_ca *liar_ca;    /* what CaCert says */
static cep_pki_ca *liar_other; /* what Sign really uses */

static void liar_ca_cert(cep_rpc_call *c, void *arg)
{
	(void)arg;
	Cep__V1__CaCertReply rep = CEP__V1__CA_CERT_REPLY__INIT;
	rep.cert_pem = (char *)cep_pki_ca_cert_pem(liar_ca);
	cep_rpc_call_reply(c, &rep.base);
}

static void liar_sign(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__SignRequest *r = (const Cep__V1__SignRequest *)
	    cep_rpc_call_request(c);
	cep_pki_issue_req ir = {.cn = r->run_id,
	    .uri_san = r->uri_san,
	    .not_after_ms = r->not_after_ms};
	char *pem = NULL;
	cep_err err;
	cr_assert_eq(cep_pki_issue_pub(liar_other, &ir, r->public_key.data,
	                 r->public_key.len, &pem, &err),
	    CEP_OK, "%s", err.msg);
	Cep__V1__SignReply rep = CEP__V1__SIGN_REPLY__INIT;
	rep.cert_pem = pem;
	cep_rpc_call_reply(c, &rep.base);
	free(pem);
}

static const cep_rpc_method liar_methods[] = {
    {"cep.v1.Signer/Sign", &cep__v1__sign_request__descriptor, liar_sign},
    {"cep.v1.Signer/CaCert", &cep__v1__ca_cert_request__descriptor,
        liar_ca_cert},
};

Test(backends, a_certificate_from_another_ca_is_not_used)
{
	cep_err err;
	char other[CEP_PATH_MAX + 16];
	snprintf(other, sizeof(other), "%s/other-ca", home);
	cr_assert_eq(cep_pki_ca_create(other, "app1", &err), CEP_OK);
	cr_assert_eq(cep_pki_ca_load(&liar_ca, paths.pki, &err), CEP_OK);
	cr_assert_eq(cep_pki_ca_load(&liar_other, other, &err), CEP_OK);
	cep_rpc_server *srv = NULL;
	snprintf(cfg.signer_url, sizeof(cfg.signer_url), "ipc://%s/liar.sock",
	    paths.run);
	cr_assert_eq(cep_rpc_server_new(&srv, liar_methods, 2, NULL, NULL,
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_server_listen(srv, cfg.signer_url, NULL, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(delegate_signer_open(&sg, &paths, &cfg, 5000, &err),
	    CEP_OK, "%s", err.msg);
	cep_run_id rid;
	char uri[256], *cert = NULL, *key = NULL;
	cep_run_id_new(&rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "app1", "local",
	                 "host", rid.s, &err),
	    CEP_OK);
	int rv = delegate_signer_issue(sg, rid.s, uri,
	    cep_clock_now_ms() + MIN_MS, &cert, &key, &err);
	cr_assert_neq(rv, CEP_OK);
	cr_assert_null(cert);
	cr_assert_null(key);
	cr_assert(strstr(err.msg, "cannot use") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "not signed by the appliance CA") != NULL,
	    "%s", err.msg);
	delegate_signer_free(sg);
	sg = NULL;
	cep_rpc_server_free(srv);
	cep_pki_ca_free(liar_ca);
	cep_pki_ca_free(liar_other);
}
