/*
 * signsvc.c - the Signer service: request checks, peer authorization,
 * signing. What lives elsewhere: the certificate writing (lib/pki/pki.c), the
 * RPC layer (lib/rpc/rpc_*.c), the process around it (main.c).
 *
 * Order in a call: the peer's uid first (a foreign process learns nothing,
 * not even whether its request was well-formed), then every field of the
 * request, then - only for a request that passed - the CA key.
 */
#define _GNU_SOURCE
#include "signsvc.h"

#include <nng/nng.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc.h"
#include "clock.h"
#include "run_id.h"

#define RUN_ID_MAX 23
#define URI_MAX 255
#define SEG_MAX 63
#define URI_SCHEME "cep://"

struct cep_signsvc {
	cep_pki_ca *ca;
	cep_signsvc_policy pol;
	uid_t allow_uid;
	cep_rpc_server *srv;
	atomic_uint_fast64_t signed_ok, refused, foreign_peer;
	atomic_uint_fast32_t last_foreign_pipe; /* logged once per pipe */
};

/* ---- checks (pure: the tests and the fuzzer call them directly) ------- */

void signer_signsvc_policy_from(const cep_config *cfg, cep_signsvc_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	snprintf(pol->appliance, sizeof(pol->appliance), "%s", cfg->appliance);
	pol->max_lifetime_ms = cfg->policy.max_duration_ms +
	    CEP_SIGNSVC_SETUP_MS + cfg->runner_margin_ms + CEP_SIGNSVC_SLACK_MS;
}

/* One path segment up to the next '/', 1..SEG_MAX bytes. */
static bool take_seg(const char **p, char *out, size_t cap)
{
	const char *slash = strchr(*p, '/');
	size_t n = slash != NULL ? (size_t)(slash - *p) : 0;
	if (n == 0 || n > SEG_MAX || n >= cap)
		return false;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = slash + 1;
	return true;
}

static int check_uri(const cep_signsvc_policy *pol, const char *uri,
    const char *run_id, cep_err *err)
{
	char prefix[96], conn[SEG_MAX + 1], ns[SEG_MAX + 1], want[URI_MAX + 1];
	if (uri == NULL || strnlen(uri, URI_MAX + 1) > URI_MAX ||
	    strncmp(uri, URI_SCHEME, strlen(URI_SCHEME)) != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "URI SAN is not a " URI_SCHEME
		    " identity of at most %d bytes",
		    URI_MAX);
	snprintf(prefix, sizeof(prefix), URI_SCHEME "%s/", pol->appliance);
	if (strncmp(uri, prefix, strlen(prefix)) != 0)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "URI SAN names "
		    "another appliance (this signer signs for %s only)",
		    pol->appliance);
	const char *p = uri + strlen(prefix);
	cep_err e2 = {0};
	if (!take_seg(&p, conn, sizeof(conn)) ||
	    !take_seg(&p, ns, sizeof(ns)) ||
	    cep_pki_identity_uri(want, sizeof(want), pol->appliance, conn, ns,
	        run_id, &e2) != CEP_OK ||
	    strcmp(want, uri) != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "URI SAN is not " URI_SCHEME
		    "%s/<connector>/<namespace>/%s",
		    pol->appliance, run_id);
	return CEP_OK;
}

static int check_expiry(const cep_signsvc_policy *pol, int64_t na, int64_t now,
    cep_err *err)
{
	if (na <= now)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "not_after %lld "
		    "is not in the future (now %lld)",
		    (long long)na, (long long)now);
	if (na - now > pol->max_lifetime_ms)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "not_after is "
		    "%llds away; the policy allows at most %llds "
		    "(policy.maxDuration + setup + runner.identityMargin)",
		    (long long)((na - now) / 1000),
		    (long long)(pol->max_lifetime_ms / 1000));
	return CEP_OK;
}

int signer_signsvc_check(const cep_signsvc_policy *pol,
    const Cep__V1__SignRequest *req, int64_t now_ms, cep_err *err)
{
	if (req == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "no request");
	const char *id = req->run_id;
	if (id == NULL || strnlen(id, RUN_ID_MAX + 1) > RUN_ID_MAX ||
	    !cep_run_id_valid(id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "run id is not of the form r-<16 hex digits>");
	int rv = check_uri(pol, req->uri_san, id, err);
	if (rv == CEP_OK)
		rv = check_expiry(pol, req->not_after_ms, now_ms, err);
	if (rv == CEP_OK)
		rv = cep_pki_check_pub(req->public_key.data,
		    req->public_key.len, err);
	return rv;
}

/* ---- the service ------------------------------------------------------ */

/* The peer's uid from the kernel (SO_PEERCRED, taken at connect). A call
 * on a pipe we cannot ask, or of another uid, is refused. */
static bool authorize(cep_signsvc *s, cep_rpc_call *c)
{
	cep_pipe_id pid = cep_rpc_call_pipe(c);
	uint64_t uid = UINT64_MAX;
	nng_pipe np = NNG_PIPE_INITIALIZER;
	np.id = pid.id;
	if ((pid.id & CEP_RPC_VIRTUAL_PIPE) == 0 && pid.id != 0 &&
	    nng_pipe_get_uint64(np, NNG_OPT_IPC_PEER_UID, &uid) == 0 &&
	    uid == (uint64_t)s->allow_uid)
		return true;
	atomic_fetch_add(&s->foreign_peer, 1);
	/* a foreign peer repeating itself on one connection is not worth a
	 * log line per call */
	if (atomic_exchange(&s->last_foreign_pipe, pid.id) != pid.id)
		cep_log_warn(NULL,
		    "%s refused: peer uid %lld is not the "
		    "delegate's (%u)",
		    cep_rpc_call_method(c),
		    uid == UINT64_MAX ? -1LL : (long long)uid,
		    (unsigned)s->allow_uid);
	cep_rpc_call_fail(c, CEP_PERMISSION_DENIED,
	    "peer uid %lld may not "
	    "use the signer",
	    uid == UINT64_MAX ? -1LL : (long long)uid);
	return false;
}

static void h_sign(cep_rpc_call *c, void *arg)
{
	cep_signsvc *s = arg;
	if (!authorize(s, c))
		return;
	const Cep__V1__SignRequest *req = (const Cep__V1__SignRequest *)
	    cep_rpc_call_request(c);
	cep_err err = {0};
	char *pem = NULL;
	int rv = signer_signsvc_check(&s->pol, req, cep_clock_now_ms(), &err);
	if (rv == CEP_OK) {
		cep_pki_issue_req ir = {.cn = req->run_id,
		    .uri_san = req->uri_san,
		    .not_after_ms = req->not_after_ms,
		    .server = 0};
		rv = cep_pki_issue_pub(s->ca, &ir, req->public_key.data,
		    req->public_key.len, &pem, &err);
	}
	/* the run id is logged only once it is known to be one */
	const char *run = req != NULL && req->run_id != NULL &&
	        cep_run_id_valid(req->run_id) ?
	    req->run_id :
	    NULL;
	if (rv != CEP_OK) {
		atomic_fetch_add(&s->refused, 1);
		cep_log_warn(run, "Sign refused: %s", err.msg);
		cep_rpc_call_fail(c, rv, "%s", err.msg);
		return;
	}
	atomic_fetch_add(&s->signed_ok, 1);
	cep_log_info(run, "signed runner identity %s (not after %lld)",
	    req->uri_san, (long long)req->not_after_ms);
	Cep__V1__SignReply rep = CEP__V1__SIGN_REPLY__INIT;
	rep.cert_pem = pem;
	cep_rpc_call_reply(c, &rep.base);
	free(pem);
}

static void h_ca_cert(cep_rpc_call *c, void *arg)
{
	cep_signsvc *s = arg;
	if (!authorize(s, c))
		return;
	Cep__V1__CaCertReply rep = CEP__V1__CA_CERT_REPLY__INIT;
	rep.cert_pem = (char *)cep_pki_ca_cert_pem(s->ca);
	cep_rpc_call_reply(c, &rep.base);
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Signer/Sign", &cep__v1__sign_request__descriptor, h_sign},
    {"cep.v1.Signer/CaCert", &cep__v1__ca_cert_request__descriptor, h_ca_cert},
};

int signer_signsvc_start(cep_signsvc **out, cep_pki_ca *ca,
    const cep_signsvc_policy *pol, uid_t allow_uid, const char *url,
    cep_err *err)
{
	*out = NULL;
	if (url == NULL || strncmp(url, "ipc://", 6) != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "privsep.signer "
		    "\"%s\" is not an ipc:// URL: the signer serves the local "
		    "delegate only",
		    url ? url : "");
	cep_signsvc *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	s->pol = *pol;
	s->allow_uid = allow_uid;
	s->ca = ca; /* before listening: calls may come at once */
	/* few calls, one at a time each: a small pool bounds what a flood
	 * of connections can hold */
	cep_rpc_server_opts o = {.name = "signer",
	    .workers = 2,
	    .max_inflight = 64};
	int rv = cep_rpc_server_new(&s->srv, methods,
	    sizeof(methods) / sizeof(methods[0]), s, &o, err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(s->srv, url, NULL, err);
	if (rv != CEP_OK) {
		s->ca = NULL; /* the caller keeps ca on failure */
		signer_signsvc_free(s);
		return rv;
	}
	*out = s;
	return CEP_OK;
}

void signer_signsvc_free(cep_signsvc *s)
{
	if (s == NULL)
		return;
	cep_rpc_server_free(s->srv);
	cep_pki_ca_free(s->ca);
	free(s);
}

void signer_signsvc_stats_get(cep_signsvc *s, cep_signsvc_stats *out)
{
	out->signed_ok = atomic_load(&s->signed_ok);
	out->refused = atomic_load(&s->refused);
	out->foreign_peer = atomic_load(&s->foreign_peer);
}
