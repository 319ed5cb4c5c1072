/*
 * signer.c - the two backends of signer.h: the CA in this process, or
 * cep-signer over ipc. Keys are made in issue() for both, so the two
 * differ only in who holds the CA key.
 */
#define _GNU_SOURCE
#include "signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cep.pb-c.h"
#include "log.h"
#include "pki.h"
#include "rpc.h"
#include "clock.h"

#define CALL_TIMEOUT_MS 10000
#define OPEN_WAIT_MS 15000
#define CA_PEM_MAX 65536

typedef struct signer_ops {
	const char *name;
	int (*sign)(cep_signer *s, const cep_pki_issue_req *req,
	    const uint8_t *pub, size_t len, char **cert, cep_err *err);
} signer_ops;

struct cep_signer {
	const signer_ops *ops;
	cep_pki_ca *ca;      /* in-process */
	cep_rpc_client *cli; /* cep-signer */
	char url[256];
	char *ca_pem; /* cep-signer's answer to CaCert */
};

/* ---- in-process -------------------------------------------------------- */

static int local_sign(cep_signer *s, const cep_pki_issue_req *req,
    const uint8_t *pub, size_t len, char **cert, cep_err *err)
{
	return cep_pki_issue_pub(s->ca, req, pub, len, cert, err);
}

static const signer_ops local_ops = {"in-process", local_sign};

/* ---- cep-signer over ipc ---------------------------------------------- */

/* What cep-signer sent back is checked before a runner gets it: signed
 * by the CA we were told, for the URI and run we asked. A signer bug then
 * fails the launch with a reason instead of a runner the relay refuses. */
static int check_answer(cep_signer *s, const cep_pki_issue_req *req,
    const char *pem, cep_err *err)
{
	uint8_t *der = NULL;
	size_t len = 0;
	cep_pki_identity id;
	int rv = pem != NULL ? cep_pki_cert_der(pem, &der, &len, err) :
	                       cep_err_set(err, CEP_INTERNAL, "no certificate");
	if (rv == CEP_OK)
		rv = cep_pki_verify_der(s->ca_pem, der, len, 0, &id, err);
	free(der);
	if (rv == CEP_OK &&
	    (strcmp(id.uri, req->uri_san) != 0 || strcmp(id.cn, req->cn) != 0))
		rv = cep_err_set(err, CEP_INTERNAL,
		    "certificate for %s, not %s", id.uri, req->uri_san);
	if (rv != CEP_OK)
		return cep_err_wrap(err,
		    "cep-signer at %s answered Sign with a "
		    "certificate we cannot use",
		    s->url);
	return CEP_OK;
}

static int remote_sign(cep_signer *s, const cep_pki_issue_req *req,
    const uint8_t *pub, size_t len, char **cert, cep_err *err)
{
	Cep__V1__SignRequest rq = CEP__V1__SIGN_REQUEST__INIT;
	rq.run_id = (char *)req->cn;
	rq.uri_san = (char *)req->uri_san;
	rq.not_after_ms = req->not_after_ms;
	rq.public_key.data = (uint8_t *)pub;
	rq.public_key.len = len;
	Cep__V1__SignReply *rep = NULL;
	int rv = cep_rpc_invoke(s->cli, "cep.v1.Signer/Sign", &rq.base,
	    &cep__v1__sign_reply__descriptor, (ProtobufCMessage **)&rep,
	    CALL_TIMEOUT_MS, err);
	if (rv != CEP_OK)
		return cep_err_wrap(err, "cep-signer at %s", s->url);
	rv = check_answer(s, req, rep->cert_pem, err);
	if (rv == CEP_OK && (*cert = strdup(rep->cert_pem)) == NULL)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return rv;
}

static const signer_ops remote_ops = {"cep-signer", remote_sign};

/* CaCert, retried while cep-signer is not up yet (started beside us). */
static int fetch_ca(cep_signer *s, int64_t wait_ms, cep_err *err)
{
	int64_t end = cep_clock_mono_ms() + wait_ms;
	Cep__V1__CaCertRequest rq = CEP__V1__CA_CERT_REQUEST__INIT;
	for (int attempt = 0;; attempt++) {
		Cep__V1__CaCertReply *rep = NULL;
		int rv = cep_rpc_invoke(s->cli, "cep.v1.Signer/CaCert",
		    &rq.base, &cep__v1__ca_cert_reply__descriptor,
		    (ProtobufCMessage **)&rep, 2000, err);
		if (rv == CEP_OK) {
			if (rep->cert_pem != NULL && rep->cert_pem[0] != '\0' &&
			    strlen(rep->cert_pem) < CA_PEM_MAX)
				s->ca_pem = strdup(rep->cert_pem);
			protobuf_c_message_free_unpacked(&rep->base, NULL);
			return s->ca_pem != NULL ?
			    CEP_OK :
			    cep_err_set(err, CEP_INTERNAL,
			        "cep-signer at %s sent no CA "
			        "certificate",
			        s->url);
		}
		if (!cep_rpc_retryable(rv) || cep_clock_mono_ms() >= end)
			return cep_err_wrap(err,
			    "asking cep-signer at %s for the "
			    "CA certificate",
			    s->url);
		if (attempt == 0)
			cep_log_info(NULL, "waiting for cep-signer at %s",
			    s->url);
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 50, 500));
	}
}

/* ---- the interface ----------------------------------------------------- */

int delegate_signer_open(cep_signer **out, const cep_paths *p,
    const cep_config *cfg, int64_t wait_ms, cep_err *err)
{
	*out = NULL;
	cep_signer *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int rv;
	if (cfg->signer_url[0] == '\0') {
		s->ops = &local_ops;
		if ((rv = cep_pki_ca_load(&s->ca, p->pki, err)) != CEP_OK)
			cep_err_wrap(err, "loading the appliance CA");
	} else {
		s->ops = &remote_ops;
		snprintf(s->url, sizeof(s->url), "%s", cfg->signer_url);
		rv = cep_rpc_client_new(&s->cli, s->url, NULL, err);
		if (rv == CEP_OK)
			rv = fetch_ca(s, wait_ms > 0 ? wait_ms : OPEN_WAIT_MS,
			    err);
	}
	if (rv != CEP_OK) {
		delegate_signer_free(s);
		return rv;
	}
	*out = s;
	return CEP_OK;
}

void delegate_signer_free(cep_signer *s)
{
	if (s == NULL)
		return;
	cep_pki_ca_free(s->ca);
	cep_rpc_client_free(s->cli);
	free(s->ca_pem);
	free(s);
}

const char *delegate_signer_name(const cep_signer *s)
{
	return s->ops->name;
}

const char *delegate_signer_ca_pem(const cep_signer *s)
{
	return s->ca != NULL ? cep_pki_ca_cert_pem(s->ca) : s->ca_pem;
}

int delegate_signer_sign(cep_signer *s, const char *run_id, const char *uri,
    int64_t not_after_ms, const uint8_t *pub, size_t pub_len, char **cert_pem,
    cep_err *err)
{
	*cert_pem = NULL;
	cep_pki_issue_req req = {.cn = run_id,
	    .uri_san = uri,
	    .not_after_ms = not_after_ms,
	    .server = 0};
	return s->ops->sign(s, &req, pub, pub_len, cert_pem, err);
}

int delegate_signer_issue(cep_signer *s, const char *run_id, const char *uri,
    int64_t not_after_ms, char **cert_pem, char **key_pem, cep_err *err)
{
	uint8_t *pub = NULL;
	size_t len = 0;
	*cert_pem = NULL;
	int rv = cep_pki_keypair_new(key_pem, &pub, &len, err);
	if (rv == CEP_OK)
		rv = delegate_signer_sign(s, run_id, uri, not_after_ms, pub,
		    len, cert_pem, err);
	free(pub);
	if (rv != CEP_OK) {
		cep_pki_free_secret(*key_pem);
		*key_pem = NULL;
	}
	return rv;
}
