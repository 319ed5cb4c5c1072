/*
 * rpc_link.c - one connection of an RPC client: an nng req0 socket with
 * its one background dialer, and a close that cannot hang its caller.
 *
 * Its close has a bound (rpc_close.c): with libnng 1.5.2 a tls+tcp
 * dialer whose connection attempt is stuck in a TLS handshake the server
 * never answers makes nng_close of its socket wait for that attempt, i.e.
 * for good (docs/performance.md, the reconnect storm).
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>

#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

struct cep_rpc_link {
	nng_socket sock;
	bool sock_open;
	nng_dialer dialer;
};

static int link_socket(cep_rpc_link *l, cep_err *err)
{
	int rv;
	if ((rv = nng_req0_open(&l->sock)) != 0)
		return cep_rpc_err_nng(err, rv, "opening the req socket");
	l->sock_open = true;
	if ((rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ,
	         CEP_RPC_RECV_MAX)) != 0 ||
	    (rv = nng_socket_set_ms(l->sock, NNG_OPT_REQ_RESENDTIME,
	         NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT,
	         RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT,
	         RECONNECT_MAX_MS)) != 0)
		return cep_rpc_err_nng(err, rv, "setting up the req socket");
	return CEP_OK;
}

static int link_dialer(cep_rpc_link *l, const char *url, nng_tls_config *tls,
    cep_err *err)
{
	int rv = nng_dialer_create(&l->dialer, l->sock, url);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv, url);
	if (tls != NULL &&
	    (rv = nng_dialer_set_ptr(l->dialer, NNG_OPT_TLS_CONFIG, tls)) != 0)
		return cep_rpc_err_nng(err, rv, "TLS configuration");
	/* NONBLOCK: the server may not be up yet; nng keeps redialing. */
	if ((rv = nng_dialer_start(l->dialer, NNG_FLAG_NONBLOCK)) != 0)
		return cep_rpc_err_nng(err, rv, url);
	return CEP_OK;
}

int cep_rpc_link_new(cep_rpc_link **out, const char *url, nng_tls_config *tls,
    cep_err *err)
{
	*out = NULL;
	cep_rpc_link *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int code = link_socket(l, err);
	if (code == CEP_OK)
		code = link_dialer(l, url, tls, err);
	if (code != CEP_OK) {
		cep_rpc_link_close(l, -1);
		return code;
	}
	*out = l;
	return CEP_OK;
}

nng_socket cep_rpc_link_socket(const cep_rpc_link *l)
{
	return l->sock;
}

bool cep_rpc_link_close(cep_rpc_link *l, int wait_ms)
{
	if (l == NULL)
		return true;
	bool closed = true;
	if (l->sock_open) {
		/* Once a close is stuck on nng's one reaper every later one
		 * waits behind it, so a caller does not wait at all while one
		 * is pending (a process freeing 300 clients would otherwise
		 * wait 300 bounds). */
		if (wait_ms > 0 && cep_rpc_close_pending())
			wait_ms = 0;
		closed = cep_rpc_close_bounded(l->sock, wait_ms);
	}
	free(l); /* nng holds the socket's and dialer's ids, not l */
	return closed;
}
