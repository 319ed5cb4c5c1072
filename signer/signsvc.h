/*
 * signsvc.h - cep-signer's service: the only code that uses the CA key
 * when privilege separation is on (docs/privsep.md).
 *
 * Two calls over ipc, cep.v1.Signer/Sign and cep.v1.Signer/CaCert
 * (proto/cep.proto, "privsep: signer"), answered only to pipes whose peer
 * uid (SO_PEERCRED, NNG_OPT_IPC_PEER_UID) is the delegate's. A Sign
 * request is length-checked and checked field by field before the CA key
 * is touched: the signer never trusts the delegate to ask for the right
 * thing, only to be the one asking.
 */
#ifndef CEP_SIGNSVC_H
#define CEP_SIGNSVC_H

#include <stdint.h>
#include <sys/types.h>

#include "cep.pb-c.h"
#include "config.h"
#include "err.h"
#include "pki.h"

/* Clock skew and scheduling between the delegate computing not_after and
 * the signer checking it. */
#define CEP_SIGNSVC_SLACK_MS (60 * 1000LL)
/* The delegate's run setup allowance (delegate_int.h CEP_RUN_SETUP_MS):
 * deadline = created + duration + setup. */
#define CEP_SIGNSVC_SETUP_MS (60 * 1000LL)

typedef struct cep_signsvc_policy {
	char appliance[64];      /* the URI's authority must be this */
	int64_t max_lifetime_ms; /* not_after <= now + this */
} cep_signsvc_policy;

/* From cep.yaml: appliance, and policy.maxDuration + setup +
 * runner.identityMargin + slack. */
void signer_signsvc_policy_from(const cep_config *cfg, cep_signsvc_policy *pol);

/* Checks a Sign request at time now_ms: run id syntax, URI exactly
 * cep://<pol->appliance>/<connector>/<ns>/<run_id> (as cep_pki_identity_uri
 * makes it), not_after in (now, now + max_lifetime], the key one canonical
 * DER P-256 SubjectPublicKeyInfo. INVALID_ARGUMENT with the reason
 * (PERMISSION_DENIED for a URI of another appliance). Reads req only. */
int signer_signsvc_check(const cep_signsvc_policy *pol,
    const Cep__V1__SignRequest *req, int64_t now_ms, cep_err *err);

typedef struct cep_signsvc cep_signsvc;

/* Serves at url (ipc:// only) with ca (kept; freed by signer_signsvc_free),
 * answering only peers of uid allow_uid. */
int signer_signsvc_start(cep_signsvc **out, cep_pki_ca *ca,
    const cep_signsvc_policy *pol, uid_t allow_uid, const char *url,
    cep_err *err);
/* Stops serving, wipes the CA key. NULL-safe. */
void signer_signsvc_free(cep_signsvc *s);

/* Counters for the STATUS= line and tests. */
typedef struct cep_signsvc_stats {
	uint64_t signed_ok, refused, foreign_peer;
} cep_signsvc_stats;
void signer_signsvc_stats_get(cep_signsvc *s, cep_signsvc_stats *out);

#endif
