/*
 * paths.h - where an appliance keeps things.
 *
 * An appliance "home" is either one folder (--home DIR or $CEP_HOME:
 * DIR/config, DIR/pki, DIR/state, DIR/run - appliances side by side, no
 * root) or the installed FHS layout (/etc/cep, /var/lib/cep-signer,
 * /var/lib/cep, /run/cep). In base, below every module that reads a file
 * of the home (conf, kube's connectors), so none of them needs another.
 */
#ifndef CEP_PATHS_H
#define CEP_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Not PATH_MAX: <limits.h> hides it in strict C11 unless a feature macro
 * is set first, and every includer would have to remember that. */
#define CEP_PATH_MAX 4096

typedef struct cep_paths {
	char config[CEP_PATH_MAX]; /* cep.yaml */
	/* ca.crt ca.key: the CA's folder. DIR/pki in a home; installed,
	 * /var/lib/cep-signer, cep-signer's alone (docs/privsep.md) */
	char pki[CEP_PATH_MAX];
	/* the CA certificate (public) for everyone else: DIR/pki/ca.crt in
	 * a home, /etc/cep/ca.crt (0644) installed */
	char ca_cert[CEP_PATH_MAX];
	/* ca.crt relay.crt relay.key: what cep-relay reads. DIR/pki in a home
	 * (one user); /etc/cep/relay when installed, group cep, because the
	 * relay runs as another user than the delegate and must never be able
	 * to read the CA key. */
	char relay_pki[CEP_PATH_MAX];
	char state[CEP_PATH_MAX]; /* runs/<run-id>/journal */
	/* the relay's own state: spool/ (events for the control plane).
	 * DIR/state in a home; /var/lib/cep-relay when installed, because
	 * the relay's user cannot enter the delegate's /var/lib/cep. */
	char relay_state[CEP_PATH_MAX];
	/* sockets: relay.sock delegate.sock admin.sock */
	char run[CEP_PATH_MAX];
	/* the installed (FHS) layout, not a home: privilege separation is
	 * on by default there (cep_config.privsep, docs/privsep.md) */
	bool installed;
} cep_paths;

/* home NULL: $CEP_HOME if set, else the FHS layout. */
int cep_paths_resolve(const char *home, cep_paths *p, cep_err *err);
/* ipc:// URLs for the appliance's sockets. */
int cep_paths_url(const cep_paths *p, const char *sock, char *buf, size_t len,
    cep_err *err);
/* name in the folder of the running program (/proc/self/exe): how the
 * programs find each other (cep-runner beside cep-launcher, cep-relay
 * beside cepctl). name NULL: the folder itself. */
int cep_paths_beside_self(const char *name, char *buf, size_t len,
    cep_err *err);

#endif
