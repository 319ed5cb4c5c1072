/*
 * signer.h - where the delegate gets runner identities: one interface,
 * two backends (docs/privsep.md).
 *
 *   in-process   privsep.signer "" (a home's default): the CA is loaded
 *                from paths.pki into the delegate, as before privsep.
 *   cep-signer   privsep.signer ipc://...: the delegate never opens
 *                ca.key; it sends the public key and the run's identity
 *                to cep-signer and gets the certificate back. The CA
 *                certificate comes from cep-signer too (CaCert), so the
 *                delegate needs no file of the CA at all.
 *
 * Either way the runner's key pair is made here, in the delegate, and
 * never leaves it except into the run's identity folder.
 */
#ifndef CEP_DELEGATE_SIGNER_H
#define CEP_DELEGATE_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct cep_signer cep_signer;

/* Picks the backend from cfg->signer_url. The remote one asks cep-signer
 * for the CA certificate, waiting up to wait_ms for it to come up (0 =
 * 15 s); a signer that does not answer is UNAVAILABLE naming its URL. */
int delegate_signer_open(cep_signer **out, const cep_paths *p,
    const cep_config *cfg, int64_t wait_ms, cep_err *err);
void delegate_signer_free(cep_signer *s); /* NULL-safe; wipes a loaded CA key */
/* "in-process" or "cep-signer". */
const char *delegate_signer_name(const cep_signer *s);
/* The CA certificate (PEM), valid as long as s. */
const char *delegate_signer_ca_pem(const cep_signer *s);
/* A public key (DER SubjectPublicKeyInfo) signed as the identity of run
 * run_id: CN run_id, URI SAN uri, clientAuth, not after not_after_ms.
 * *cert_pem: caller frees. Thread-safe. */
int delegate_signer_sign(cep_signer *s, const char *run_id, const char *uri,
    int64_t not_after_ms, const uint8_t *pub, size_t pub_len, char **cert_pem,
    cep_err *err);
/* A fresh key pair made here and its certificate from delegate_signer_sign.
 * *key_pem: wipe with cep_pki_free_secret; *cert_pem: free. */
int delegate_signer_issue(cep_signer *s, const char *run_id, const char *uri,
    int64_t not_after_ms, char **cert_pem, char **key_pem, cep_err *err);

#endif
