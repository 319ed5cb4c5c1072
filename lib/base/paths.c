/*
 * paths.c - an appliance's home: where its config, keys, state and
 * sockets are (a --home folder or the installed FHS layout), and the ipc://
 * URLs of its sockets, and the running program's folder (where the
 * other cep programs are). What cep.yaml says is lib/conf/config.c's.
 */
#define _GNU_SOURCE /* readlink */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"

static int home_paths(const char *home, cep_paths *p, cep_err *err)
{
	char abs[CEP_PATH_MAX];
	if (home[0] != '/') {
		char cwd[CEP_PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return cep_err_errno(err, errno, "getcwd");
		if (cep_files_path(abs, sizeof(abs), err, "%s/%s", cwd, home) !=
		    CEP_OK)
			return err ? err->code : CEP_INVALID_ARGUMENT;
	} else if (cep_files_path(abs, sizeof(abs), err, "%s", home) !=
	    CEP_OK) {
		return err ? err->code : CEP_INVALID_ARGUMENT;
	}
	size_t n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = '\0';
	if (cep_files_path(p->config, sizeof(p->config), err, "%s/config",
	        abs) ||
	    cep_files_path(p->pki, sizeof(p->pki), err, "%s/pki", abs) ||
	    cep_files_path(p->ca_cert, sizeof(p->ca_cert), err, "%s/pki/ca.crt",
	        abs) ||
	    cep_files_path(p->relay_pki, sizeof(p->relay_pki), err, "%s/pki",
	        abs) ||
	    cep_files_path(p->state, sizeof(p->state), err, "%s/state", abs) ||
	    cep_files_path(p->relay_state, sizeof(p->relay_state), err,
	        "%s/state", abs) ||
	    cep_files_path(p->run, sizeof(p->run), err, "%s/run", abs))
		return err ? err->code : CEP_INVALID_ARGUMENT;
	return CEP_OK;
}

int cep_paths_resolve(const char *home, cep_paths *p, cep_err *err)
{
	memset(p, 0, sizeof(*p));
	if (home == NULL || home[0] == '\0')
		home = getenv("CEP_HOME");
	if (home != NULL && home[0] != '\0')
		return home_paths(home, p, err);
	/* the installed layout (FHS): packaging/ and appliance/ units agree */
	snprintf(p->config, sizeof(p->config), "/etc/cep");
	snprintf(p->pki, sizeof(p->pki), "/var/lib/cep-signer");
	snprintf(p->ca_cert, sizeof(p->ca_cert), "/etc/cep/ca.crt");
	snprintf(p->relay_pki, sizeof(p->relay_pki), "/etc/cep/relay");
	snprintf(p->state, sizeof(p->state), "/var/lib/cep");
	snprintf(p->relay_state, sizeof(p->relay_state), "/var/lib/cep-relay");
	snprintf(p->run, sizeof(p->run), "/run/cep");
	p->installed = true;
	return CEP_OK;
}

int cep_paths_url(const cep_paths *p, const char *sock, char *buf, size_t len,
    cep_err *err)
{
	/* sun_path holds 108 bytes including the NUL */
	const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	if (sock == NULL || sock[0] == '\0' || strchr(sock, '/') != NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "socket name \"%s\" must be a plain file name",
		    sock ? sock : "");
	size_t plen = strlen(p->run) + 1 + strlen(sock);
	if (plen > max)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "socket path %s/%s is %zu bytes; unix socket paths are "
		    "limited to %zu bytes (use a shorter home directory)",
		    p->run, sock, plen, max);
	return cep_files_path(buf, len, err, "ipc://%s/%s", p->run, sock);
}

int cep_paths_beside_self(const char *name, char *buf, size_t len, cep_err *err)
{
	char self[CEP_PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return cep_err_errno(err, errno, "/proc/self/exe");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	if (name == NULL)
		return cep_files_path(buf, len, err, "%s", self);
	return cep_files_path(buf, len, err, "%s/%s", self, name);
}
