/* test_signsvc.c - cep-signer's service: every check of a Sign request,
 * the peer uid gate, and signing a delegate-made key over real ipc. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "pki.h"
#include "rpc.h"
#include "signsvc.h"
#include "keyfix.h"
#include "testutil.h"
#include "clock.h"
#include "run_id.h"

#define MIN_MS (60 * 1000LL)

static char *dir;
static cep_signsvc_policy pol = {.appliance = "app1",
    .max_lifetime_ms = 30 * MIN_MS};
static cep_run_id rid;
static char uri[256];
static char *key_pem;
static uint8_t *pub;
static size_t pub_len;

static void setup(void)
{
	cep_err err;
	dir = cep_test_tmpdir("signsvc");
	cep_run_id_new(&rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "app1", "local",
	                 "host", rid.s, &err),
	    CEP_OK);
	cr_assert_eq(cep_pki_keypair_new(&key_pem, &pub, &pub_len, &err),
	    CEP_OK, "%s", err.msg);
}

static void teardown(void)
{
	cep_pki_free_secret(key_pem);
	free(pub);
	cep_test_rmdir(dir);
}

static Cep__V1__SignRequest good(void)
{
	Cep__V1__SignRequest r = CEP__V1__SIGN_REQUEST__INIT;
	r.run_id = rid.s;
	r.uri_san = uri;
	r.not_after_ms = cep_clock_now_ms() + 10 * MIN_MS;
	r.public_key.data = pub;
	r.public_key.len = pub_len;
	return r;
}

static void refused(const Cep__V1__SignRequest *r, int code, const char *why)
{
	cep_err err = {0};
	cr_assert_eq(signer_signsvc_check(&pol, r, cep_clock_now_ms(), &err),
	    code, "code %d: %s", err.code, err.msg);
	cr_assert(strstr(err.msg, why) != NULL, "\"%s\" not in \"%s\"", why,
	    err.msg);
}

TestSuite(check, .init = setup, .fini = teardown);

Test(check, a_good_request_passes)
{
	Cep__V1__SignRequest r = good();
	cep_err err = {0};
	cr_assert_eq(signer_signsvc_check(&pol, &r, cep_clock_now_ms(), &err),
	    CEP_OK, "%s", err.msg);
	/* kubernetes identities: cep://app1/<connector>/<ns>/<run> */
	char k[256];
	cr_assert_eq(cep_pki_identity_uri(k, sizeof(k), "app1", "prod", "shop",
	                 rid.s, &err),
	    CEP_OK);
	r.uri_san = k;
	cr_assert_eq(signer_signsvc_check(&pol, &r, cep_clock_now_ms(), &err),
	    CEP_OK, "%s", err.msg);
}

Test(check, bad_run_ids)
{
	const char *bad[] = {"", "r-123", "r-0123456789ABCDEF", "../etc/passwd",
	    "r-0123456789abcdef0", "x-0123456789abcdef",
	    "r-0123456789abcdef/../..", NULL};
	Cep__V1__SignRequest r = good();
	for (size_t i = 0; bad[i] != NULL; i++) {
		r.run_id = (char *)bad[i];
		refused(&r, CEP_INVALID_ARGUMENT, "run id");
	}
	r.run_id = NULL;
	refused(&r, CEP_INVALID_ARGUMENT, "run id");
}

Test(check, foreign_or_wrong_uris)
{
	Cep__V1__SignRequest r = good();
	char u[512];
	snprintf(u, sizeof(u), "cep://other/local/host/%s", rid.s);
	r.uri_san = u;
	refused(&r, CEP_PERMISSION_DENIED, "another appliance");
	snprintf(u, sizeof(u), "cep://app1x/local/host/%s", rid.s);
	refused(&r, CEP_PERMISSION_DENIED, "another appliance");
	cep_run_id other;
	cep_run_id_new(&other);
	snprintf(u, sizeof(u), "cep://app1/local/host/%s", other.s);
	refused(&r, CEP_INVALID_ARGUMENT, "URI SAN is not");
	/* shapes around the run id: prefix + id + suffix */
	const char *shapes[][2] = {{"cep://app1/local/", ""},
	    {"cep://app1/a/b/c/", ""}, {"cep://app1//host/", ""},
	    {"cep://app1/lo cal/host/", ""}, {"cep://app1/local/host/", "/"},
	    {"cep://app1/local/host/", "?x"}, {"https://app1/local/host/", ""},
	    {"CEP://app1/local/host/", ""}, {NULL, NULL}};
	for (size_t i = 0; shapes[i][0] != NULL; i++) {
		snprintf(u, sizeof(u), "%s%s%s", shapes[i][0], rid.s,
		    shapes[i][1]);
		cep_err err = {0};
		cr_assert_neq(signer_signsvc_check(&pol, &r, cep_clock_now_ms(),
		                  &err),
		    CEP_OK, "%s accepted", u);
	}
	char longu[400];
	memset(longu, 'a', sizeof(longu) - 1);
	longu[sizeof(longu) - 1] = '\0';
	memcpy(longu, "cep://app1/", 11);
	r.uri_san = longu;
	refused(&r, CEP_INVALID_ARGUMENT, "at most");
	r.uri_san = NULL;
	refused(&r, CEP_INVALID_ARGUMENT, "URI SAN");
}

Test(check, expiry_past_or_too_far)
{
	Cep__V1__SignRequest r = good();
	int64_t now = cep_clock_now_ms();
	cep_err err = {0};
	r.not_after_ms = now - 1;
	refused(&r, CEP_INVALID_ARGUMENT, "not in the future");
	r.not_after_ms = 0;
	refused(&r, CEP_INVALID_ARGUMENT, "not in the future");
	r.not_after_ms = INT64_MIN;
	refused(&r, CEP_INVALID_ARGUMENT, "not in the future");
	r.not_after_ms = now + pol.max_lifetime_ms + MIN_MS;
	refused(&r, CEP_INVALID_ARGUMENT, "at most");
	r.not_after_ms = INT64_MAX;
	refused(&r, CEP_INVALID_ARGUMENT, "at most");
	/* the edge itself is allowed */
	r.not_after_ms = now + pol.max_lifetime_ms;
	cr_assert_eq(signer_signsvc_check(&pol, &r, now, &err), CEP_OK, "%s",
	    err.msg);
}

Test(check, only_p256_keys)
{
	uint8_t buf[1024];
	Cep__V1__SignRequest r = good();
	r.public_key.data = buf;
	r.public_key.len = cep_test_foreign_pub(MBEDTLS_PK_RSA, 0, buf,
	    sizeof(buf));
	refused(&r, CEP_INVALID_ARGUMENT, "RSA");
	r.public_key.len = cep_test_foreign_pub(MBEDTLS_PK_ECKEY,
	    MBEDTLS_ECP_DP_SECP384R1, buf, sizeof(buf));
	refused(&r, CEP_INVALID_ARGUMENT, "secp384r1");
	memset(buf, 0x30, sizeof(buf));
	r.public_key.len = 100;
	refused(&r, CEP_INVALID_ARGUMENT, "public key");
	r.public_key.len = 0;
	refused(&r, CEP_INVALID_ARGUMENT, "public key");
	r.public_key.len = sizeof(buf);
	refused(&r, CEP_INVALID_ARGUMENT, "bytes");
}

Test(check, policy_from_config)
{
	cep_config c;
	cep_config_defaults(&c);
	snprintf(c.appliance, sizeof(c.appliance), "edge-7");
	c.policy.max_duration_ms = 30 * MIN_MS;
	c.runner_margin_ms = 2 * MIN_MS;
	cep_signsvc_policy p;
	signer_signsvc_policy_from(&c, &p);
	cr_assert_str_eq(p.appliance, "edge-7");
	cr_assert_eq(p.max_lifetime_ms,
	    30 * MIN_MS + CEP_SIGNSVC_SETUP_MS + 2 * MIN_MS +
	        CEP_SIGNSVC_SLACK_MS);
}

/* ---- the service over ipc --------------------------------------------- */

static cep_signsvc *svc;
static cep_rpc_client *cli;
static char *ca_pem;

static void serve(uid_t allow)
{
	cep_err err;
	char cadir[600], url[700];
	snprintf(cadir, sizeof(cadir), "%s/ca", dir);
	cr_assert_eq(cep_pki_ca_create(cadir, "app1", &err), CEP_OK, "%s",
	    err.msg);
	cep_pki_ca *ca = NULL;
	cr_assert_eq(cep_pki_ca_load(&ca, cadir, &err), CEP_OK, "%s", err.msg);
	ca_pem = strdup(cep_pki_ca_cert_pem(ca));
	snprintf(url, sizeof(url), "ipc://%s/signer.sock", dir);
	cr_assert_eq(signer_signsvc_start(&svc, ca, &pol, allow, url, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_rpc_client_new(&cli, url, NULL, &err), CEP_OK);
}

static void svc_teardown(void)
{
	cep_rpc_client_free(cli);
	cli = NULL;
	signer_signsvc_free(svc);
	svc = NULL;
	free(ca_pem);
	ca_pem = NULL;
	teardown();
}

static int sign(const Cep__V1__SignRequest *r, char **cert, cep_err *err)
{
	Cep__V1__SignReply *rep = NULL;
	int rv = cep_rpc_invoke(cli, "cep.v1.Signer/Sign", &r->base,
	    &cep__v1__sign_reply__descriptor, (ProtobufCMessage **)&rep, 5000,
	    err);
	if (rv == CEP_OK) {
		*cert = strdup(rep->cert_pem);
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	}
	return rv;
}

TestSuite(service, .init = setup, .fini = svc_teardown);

Test(service, signs_a_delegate_made_key)
{
	serve(getuid());
	Cep__V1__SignRequest r = good();
	char *cert = NULL;
	cep_err err = {0};
	cr_assert_eq(sign(&r, &cert, &err), CEP_OK, "%s", err.msg);
	uint8_t *der;
	size_t dlen;
	cr_assert_eq(cep_pki_cert_der(cert, &der, &dlen, &err), CEP_OK);
	cep_pki_identity id;
	cr_assert_eq(cep_pki_verify_der(ca_pem, der, dlen, 0, &id, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(id.uri, uri);
	cr_assert_str_eq(id.cn, rid.s);
	cr_assert_str_eq(id.appliance, "app1");
	/* it certifies the key the delegate holds */
	uint8_t nonce[32] = {9}, *sig = NULL;
	size_t slen;
	cr_assert_eq(cep_pki_sign_proof(key_pem, nonce, sizeof(nonce), &sig,
	                 &slen, &err),
	    CEP_OK);
	cr_assert_eq(cep_pki_check_proof(der, dlen, nonce, sizeof(nonce), sig,
	                 slen, &err),
	    CEP_OK, "%s", err.msg);
	free(sig);
	free(der);
	free(cert);
	/* and CaCert hands out the same CA */
	Cep__V1__CaCertRequest q = CEP__V1__CA_CERT_REQUEST__INIT;
	Cep__V1__CaCertReply *rep = NULL;
	cr_assert_eq(cep_rpc_invoke(cli, "cep.v1.Signer/CaCert", &q.base,
	                 &cep__v1__ca_cert_reply__descriptor,
	                 (ProtobufCMessage **)&rep, 5000, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(rep->cert_pem, ca_pem);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	cep_signsvc_stats st;
	signer_signsvc_stats_get(svc, &st);
	cr_assert_eq(st.signed_ok, 1);
	cr_assert_eq(st.refused, 0);
}

Test(service, refusals_reach_the_caller_and_the_service_lives_on)
{
	serve(getuid());
	Cep__V1__SignRequest r = good();
	char *cert = NULL;
	cep_err err = {0};
	char u[256];
	snprintf(u, sizeof(u), "cep://evil/local/host/%s", rid.s);
	r.uri_san = u;
	cr_assert_eq(sign(&r, &cert, &err), CEP_PERMISSION_DENIED);
	cr_assert(strstr(err.msg, "another appliance") != NULL, "%s", err.msg);
	r = good();
	r.run_id = "r-nothex!!!!!!!!!!";
	cr_assert_eq(sign(&r, &cert, &err), CEP_INVALID_ARGUMENT);
	r = good();
	r.not_after_ms = cep_clock_now_ms() + 365 * 24 * 60 * MIN_MS;
	cr_assert_eq(sign(&r, &cert, &err), CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "policy allows") != NULL, "%s", err.msg);
	/* oversized: a megabyte of "key" is refused by its length */
	uint8_t *big = calloc(1, 1 << 20);
	r = good();
	r.public_key.data = big;
	r.public_key.len = 1 << 20;
	cr_assert_eq(sign(&r, &cert, &err), CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "bytes") != NULL, "%s", err.msg);
	free(big);
	/* malformed: another message whose field 1 is a varint, where Sign
	 * expects a string */
	Cep__V1__CpAck bogus = CEP__V1__CP_ACK__INIT;
	bogus.ok = true;
	cr_assert_eq(cep_rpc_invoke(cli, "cep.v1.Signer/Sign", &bogus.base,
	                 NULL, NULL, 5000, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "malformed") != NULL, "%s", err.msg);
	/* still serving */
	r = good();
	cr_assert_eq(sign(&r, &cert, &err), CEP_OK, "%s", err.msg);
	free(cert);
	cep_signsvc_stats st;
	signer_signsvc_stats_get(svc, &st);
	cr_assert_eq(st.refused, 4);
	cr_assert_eq(st.signed_ok, 1);
}

Test(service, another_uid_is_refused)
{
	serve(getuid() + 1);
	Cep__V1__SignRequest r = good();
	char *cert = NULL;
	cep_err err = {0};
	cr_assert_eq(sign(&r, &cert, &err), CEP_PERMISSION_DENIED);
	cr_assert(strstr(err.msg, "may not use the signer") != NULL, "%s",
	    err.msg);
	Cep__V1__CaCertRequest q = CEP__V1__CA_CERT_REQUEST__INIT;
	cr_assert_eq(cep_rpc_invoke(cli, "cep.v1.Signer/CaCert", &q.base, NULL,
	                 NULL, 5000, &err),
	    CEP_PERMISSION_DENIED);
	cep_signsvc_stats st;
	signer_signsvc_stats_get(svc, &st);
	cr_assert_eq(st.foreign_peer, 2);
	cr_assert_eq(st.signed_ok, 0);
}

Test(service, only_ipc)
{
	cep_err err;
	cep_signsvc *s = NULL;
	cr_assert_eq(signer_signsvc_start(&s, NULL, &pol, 0,
	                 "tls+tcp://127.0.0.1:0", &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "ipc://") != NULL, "%s", err.msg);
	cr_assert_null(s);
}
