/*
 * rpc_tls.c - the transport side of the RPC layer, shared by server and
 * client: nng TLS configurations built from PEM text (never from files, so
 * keys are not re-read from places others may write), listeners (ipc socket
 * files: stale ones removed, mode 0660; tls+tcp with client certificates),
 * and what a pipe says about its peer (address, verified or not).
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* nng reports bad PEM as a crypto error; for a caller it is bad input. */
static int tls_fail(cep_err *err, int rv, const char *what)
{
	return cep_err_set(err, CEP_INVALID_ARGUMENT, "TLS %s: %s", what,
	    nng_strerror(rv));
}

static int tls_load(nng_tls_config *cfg, const cep_rpc_tls *tls, cep_err *err)
{
	int rv;
	if (tls->ca_pem != NULL &&
	    (rv = nng_tls_config_ca_chain(cfg, tls->ca_pem, NULL)) != 0)
		return tls_fail(err, rv, "CA certificate");
	if ((tls->cert_pem == NULL) != (tls->key_pem == NULL))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "TLS: a certificate needs its key and a key its certificate");
	if (tls->cert_pem != NULL &&
	    (rv = nng_tls_config_own_cert(cfg, tls->cert_pem, tls->key_pem,
	         NULL)) != 0)
		return tls_fail(err, rv, "own certificate and key");
	return CEP_OK;
}

int cep_rpc_tls_server_config(nng_tls_config **out, const cep_rpc_tls *tls,
    cep_err *err)
{
	if (tls == NULL || tls->cert_pem == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "TLS listener needs a certificate and key");
	if (tls->ca_pem == NULL && !tls->client_cert_optional)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "TLS listener requiring client certificates needs a CA");
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv,
		    "allocating a TLS configuration");
	nng_tls_auth_mode mode = tls->client_cert_optional ?
	    NNG_TLS_AUTH_MODE_OPTIONAL :
	    NNG_TLS_AUTH_MODE_REQUIRED;
	if (tls->ca_pem == NULL)
		mode = NNG_TLS_AUTH_MODE_NONE;
	if (tls_load(cfg, tls, err) != CEP_OK) {
		nng_tls_config_free(cfg);
		return err ? err->code : CEP_INVALID_ARGUMENT;
	}
	if ((rv = nng_tls_config_auth_mode(cfg, mode)) != 0) {
		nng_tls_config_free(cfg);
		return tls_fail(err, rv, "auth mode");
	}
	*out = cfg;
	return CEP_OK;
}

int cep_rpc_tls_client_config(nng_tls_config **out, const cep_rpc_tls *tls,
    const char *host, cep_err *err)
{
	if (tls == NULL || tls->ca_pem == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "TLS client needs the CA that signed the server");
	const char *name = tls->server_name ? tls->server_name : host;
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv,
		    "allocating a TLS configuration");
	if (tls_load(cfg, tls, err) != CEP_OK) {
		nng_tls_config_free(cfg);
		return err ? err->code : CEP_INVALID_ARGUMENT;
	}
	if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) !=
	        0 ||
	    (name != NULL && name[0] != '\0' &&
	        (rv = nng_tls_config_server_name(cfg, name)) != 0)) {
		nng_tls_config_free(cfg);
		return tls_fail(err, rv, "client settings");
	}
	*out = cfg;
	return CEP_OK;
}

const char *cep_rpc_ipc_path(const char *url)
{
	if (url == NULL || strncmp(url, "ipc://", 6) != 0)
		return NULL;
	return url + 6;
}

bool cep_rpc_url_is_tls(const char *url)
{
	return url != NULL && strncmp(url, "tls+tcp://", 10) == 0;
}

int cep_rpc_ipc_prepare(const char *path, cep_err *err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(a.sun_path))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "ipc path \"%s\" is empty or longer than %zu bytes", path,
		    sizeof(a.sun_path) - 1);
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? CEP_OK :
		                         cep_err_errno(err, errno, path);
	if (!S_ISSOCK(st.st_mode))
		return cep_err_set(err, CEP_ALREADY_EXISTS,
		    "%s exists and is not a socket; not removing it", path);
	memcpy(a.sun_path, path, len + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cep_err_errno(err, errno, "socket(AF_UNIX)");
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	close(fd);
	if (rc == 0)
		return cep_err_set(err, CEP_ALREADY_EXISTS,
		    "another process listens on %s", path);
	if (e != ECONNREFUSED)
		return cep_err_errno(err, e, path);
	/* Stale: left by a process that died without removing it. */
	if (unlink(path) != 0 && errno != ENOENT)
		return cep_err_errno(err, errno, path);
	return CEP_OK;
}

static int listen_ipc(nng_listener l, const char *path, cep_err *err)
{
	int rv;
	if (cep_rpc_ipc_prepare(path, err) != CEP_OK)
		return err ? err->code : CEP_INTERNAL;
	/* nng chmods between bind() and listen(): no window for others */
	if ((rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0660)) != 0)
		return cep_rpc_err_nng(err, rv, "ipc permissions");
	if ((rv = nng_listener_start(l, 0)) != 0)
		return cep_rpc_err_nng(err, rv, path);
	if (chmod(path, 0660) != 0) /* belt and braces; a no-op normally */
		return cep_err_errno(err, errno, path);
	return CEP_OK;
}

int cep_rpc_listen(nng_socket sock, const char *url, const cep_rpc_tls *tls,
    nng_listener *out, cep_err *err)
{
	const char *path = cep_rpc_ipc_path(url);
	bool is_tls = cep_rpc_url_is_tls(url);
	if (path == NULL && !is_tls)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "listen URL \"%s\": only ipc:// and tls+tcp:// are served",
		    url ? url : "");
	nng_listener l;
	int rv = nng_listener_create(&l, sock, url);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv, url);
	int code = CEP_OK;
	if (path != NULL) {
		code = listen_ipc(l, path, err);
	} else {
		nng_tls_config *cfg = NULL;
		code = cep_rpc_tls_server_config(&cfg, tls, err);
		if (code == CEP_OK &&
		    (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) !=
		        0)
			code = cep_rpc_err_nng(err, rv, "TLS configuration");
		if (cfg != NULL)
			nng_tls_config_free(cfg); /* the listener holds it */
		if (code == CEP_OK && (rv = nng_listener_start(l, 0)) != 0)
			code = cep_rpc_err_nng(err, rv, url);
	}
	if (code != CEP_OK) {
		nng_listener_close(l);
		return code;
	}
	*out = l;
	return CEP_OK;
}

/* Who is on a pipe: ipc pipes count as verified (the socket file's mode is
 * the trust); tls pipes when the client's certificate verified against the
 * CA (nng 1.5 does not expose the certificate itself). */
void cep_rpc_pipe_query(nng_pipe p, cep_rpc_pipe_info *pi)
{
	nng_sockaddr sa;
	bool v = false;
	pi->id = nng_pipe_id(p) > 0 ? (uint32_t)nng_pipe_id(p) : 0;
	snprintf(pi->peer, sizeof(pi->peer), "unknown");
	pi->verified = false;
	pi->tokens = 0;
	pi->refill_ms = 0; /* the call rate's bucket starts full */
	pi->bucket = NULL; /* the pipe's own until it proves an identity */
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	char ip[INET6_ADDRSTRLEN] = "";
	switch (sa.s_family) {
	case NNG_AF_IPC:
		snprintf(pi->peer, sizeof(pi->peer), "ipc");
		pi->verified = true;
		return;
	case NNG_AF_INET:
		inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
		snprintf(pi->peer, sizeof(pi->peer), "%s:%u", ip,
		    (unsigned)ntohs(sa.s_in.sa_port));
		break;
	case NNG_AF_INET6:
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip));
		snprintf(pi->peer, sizeof(pi->peer), "[%s]:%u", ip,
		    (unsigned)ntohs(sa.s_in6.sa_port));
		break;
	default: return;
	}
	if (nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &v) == 0)
		pi->verified = v;
}
