/*
 * main.c - cep-signer: holds the appliance CA key and signs runner
 * identities for the delegate, nothing else (docs/privsep.md).
 *
 *   cep-signer [--home DIR] [--allow-uid N] [--debug]
 *
 * Reads cep.yaml (appliance name, policy, privsep.signer) and the CA from
 * the pki folder (installed: /var/lib/cep-signer), serves cep.v1.Signer on
 * privsep.signer until SIGTERM/SIGINT. Only one uid may call it: the
 * delegate's - installed, the user cep-delegate; in a home, our own uid
 * (delegate and signer run as one user there); --allow-uid overrides both
 * (tests, unusual layouts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "signsvc.h"
#include "files.h"

typedef struct args {
	cep_daemon_args d;   /* --home, --debug */
	long long allow_uid; /* -1: by layout */
} args;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: cep-signer [--home DIR] [--allow-uid N] [--debug]\n"
	    "  --home DIR      appliance home (default $CEP_HOME, else the\n"
	    "                  installed layout: CA in /var/lib/cep-signer)\n"
	    "  --allow-uid N   the uid allowed to call (default: cep-delegate's\n"
	    "                  when installed, our own uid in a home)\n");
}

static bool parse_uid(const char *s, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 0x7fffffff)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, args *a)
{
	for (int i = 1; i < argc; i++) {
		enum cep_daemon_arg t = cep_daemon_arg("cep-signer", argc, argv,
		    &i, true, usage, &a->d);
		if (t == CEP_DAEMON_ARG_EXIT)
			return 1;
		if (t == CEP_DAEMON_ARG_TAKEN)
			continue;
		if (strcmp(argv[i], "--allow-uid") != 0 || i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (!parse_uid(argv[++i], &a->allow_uid)) {
			fprintf(stderr,
			    "cep-signer: --allow-uid %s is not a uid\n",
			    argv[i]);
			return 2;
		}
	}
	return 0;
}

static int allowed_uid(const args *a, const cep_paths *p, uid_t *out,
    cep_err *err)
{
	if (a->allow_uid >= 0) {
		*out = (uid_t)a->allow_uid;
		return CEP_OK;
	}
	if (!p->installed) {
		*out = getuid();
		return CEP_OK;
	}
	struct passwd *pw = getpwnam("cep-delegate");
	if (pw == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "user "
		    "cep-delegate does not exist: install the package's "
		    "sysusers.d file, or pass --allow-uid");
	*out = pw->pw_uid;
	return CEP_OK;
}

/* The socket's folder: the unit's RuntimeDirectory when installed, made
 * here for a home. */
static int socket_dir(const char *url, cep_err *err)
{
	char path[CEP_PATH_MAX];
	if (strncmp(url, "ipc://", 6) != 0)
		return CEP_OK; /* refused with its reason by signer_signsvc_start */
	int rv = cep_files_path(path, sizeof(path), err, "%s", url + 6);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(dirname(path), 0750, err);
	return rv;
}

static int start(const args *a, cep_signsvc **svc, cep_err *err)
{
	cep_paths paths;
	cep_config cfg;
	uid_t uid = (uid_t)-1;
	int rv = cep_paths_resolve(a->d.home, &paths, err);
	if (rv == CEP_OK)
		rv = cep_config_load(&paths, &cfg, err);
	if (rv == CEP_OK && cfg.signer_url[0] == '\0')
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "privsep.signer "
		    "is \"\" in %s/cep.yaml: the delegate signs in-process and "
		    "there is nothing for cep-signer to serve",
		    paths.config);
	if (rv == CEP_OK)
		rv = allowed_uid(a, &paths, &uid, err);
	cep_pki_ca *ca = NULL;
	if (rv == CEP_OK && (rv = cep_pki_ca_load(&ca, paths.pki, err)))
		cep_err_wrap(err, "loading the appliance CA");
	if (rv == CEP_OK)
		rv = socket_dir(cfg.signer_url, err);
	cep_signsvc_policy pol = {0};
	if (rv == CEP_OK) {
		signer_signsvc_policy_from(&cfg, &pol);
		rv = signer_signsvc_start(svc, ca, &pol, uid, cfg.signer_url,
		    err);
	}
	if (rv != CEP_OK) {
		cep_pki_ca_free(ca);
		return rv;
	}
	cep_log_info(NULL,
	    "signer up: appliance %s, CA %s, serving %s to uid "
	    "%u, identities up to %llds",
	    cfg.appliance, paths.pki, cfg.signer_url, (unsigned)uid,
	    (long long)(pol.max_lifetime_ms / 1000));
	return CEP_OK;
}

/* The signer has no loop of its own (nng's threads answer the calls):
 * its liveness is the process's, so every watchdog period counts as a
 * tick, as the main thread's own pings did before (sdnotify.h). */
static uint64_t sd_tick(void *arg)
{
	(void)arg;
	static uint64_t n;
	return ++n;
}

static void sd_status(void *arg, char *buf, size_t len)
{
	cep_signsvc_stats st;
	signer_signsvc_stats_get(arg, &st);
	snprintf(buf, len,
	    "serving: %llu signed, %llu refused, %llu foreign "
	    "peer call(s)",
	    (unsigned long long)st.signed_ok, (unsigned long long)st.refused,
	    (unsigned long long)st.foreign_peer);
}

int main(int argc, char **argv)
{
	args a = {.allow_uid = -1};
	int pa = parse_args(argc, argv, &a);
	if (pa != 0)
		return pa == 1 ? 0 : 2;
	cep_err err = {0};
	cep_signsvc *svc = NULL;
	umask(077);
	if (cep_daemon_init("signer", a.d.debug, &err) != CEP_OK ||
	    start(&a, &svc, &err) != CEP_OK) {
		cep_log_error(NULL, "%s", err.msg);
		return 1;
	}
	const cep_sd_ops sdo = {.tick = sd_tick,
	    .status = sd_status,
	    .arg = svc};
	cep_sd *sd = cep_daemon_ready(&sdo);
	cep_daemon_wait_stop(sd, NULL);
	cep_sdnotify_free(sd);
	signer_signsvc_free(svc);
	cep_log_info(NULL, "stopped");
	return 0;
}
