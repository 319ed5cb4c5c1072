/*
 * cmd_init.c - `cepctl init`: the folders, config, CA and relay certificate
 * of an appliance home or of the installed layout. An existing CA is never
 * replaced silently (that would orphan every identity it issued): init
 * refuses, --force replaces it and the relay's certificate.
 * `--first-boot` is what cep-firstboot.service runs: on a machine without
 * a CA it makes config (if missing), CA and relay identity; with one it
 * does nothing - so each clone of an image makes its own CA.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cfg_edit.h"
#include "cli.h"
#include "cmd_common.h"
#include "connector.h"
#include "pki.h"
#include "secret.h"
#include "clock.h"
#include "files.h"

/* --- config emission through libyaml (no YAML built by hand) ---------- */
static int emit_list(yaml_emitter_t *em, const char *k, char rules[][128],
    size_t n)
{
	yaml_event_t ev;
	if (cepctl_emit_scalar(em, k))
		return -1;
	yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	    YAML_FLOW_SEQUENCE_STYLE);
	if (cepctl_emit(em, &ev))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (cepctl_emit_scalar(em, rules[i]))
			return -1;
	yaml_sequence_end_event_initialize(&ev);
	return cepctl_emit(em, &ev);
}

static int emit_dur(yaml_emitter_t *em, const char *k, int64_t ms)
{
	char buf[32];
	cep_clock_format_duration(ms, buf, sizeof(buf));
	return cepctl_emit_kv(em, k, buf);
}

static int emit_int(yaml_emitter_t *em, const char *k, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	return cepctl_emit_kv(em, k, buf);
}

static int emit_policy(yaml_emitter_t *em, const cep_policy *p)
{
	return cepctl_emit_scalar(em, "policy") ||
	    cepctl_emit_map_start(em, false) ||
	    emit_dur(em, "maxDuration", p->max_duration_ms) ||
	    emit_int(em, "maxConcurrentRuns", p->max_concurrent_runs) ||
	    emit_int(em, "maxCpuWorkers", p->max_cpu_workers) ||
	    emit_int(em, "maxMemoryMiB", p->max_memory_mib) ||
	    cepctl_emit_scalar(em, "targets") ||
	    cepctl_emit_map_start(em, false) ||
	    emit_list(em, "allow", (char(*)[128])p->allow, p->n_allow) ||
	    emit_list(em, "deny", (char(*)[128])p->deny, p->n_deny) ||
	    cepctl_emit_map_end(em) || cepctl_emit_scalar(em, "namespaces") ||
	    cepctl_emit_map_start(em, false) ||
	    emit_list(em, "deny", (char(*)[128])p->ns_deny, p->n_ns_deny) ||
	    cepctl_emit_map_end(em) || cepctl_emit_map_end(em);
}

/* The control plane, only when one is given (cepctl init --control-plane):
 * the keys left out keep their defaults. */
static int emit_cp(yaml_emitter_t *em, const cep_cp_opts *o)
{
	if (o->url[0] == '\0')
		return 0;
	const char *const keys[] = {"url", "caFile", "tokenFile", "proxy"};
	const char *const vals[] = {o->url, o->ca_file, o->token_file,
	    o->proxy};
	if (cepctl_emit_scalar(em, "controlPlane") ||
	    cepctl_emit_map_start(em, false))
		return -1;
	for (size_t i = 0; i < 4; i++)
		if (vals[i][0] != '\0' && cepctl_emit_kv(em, keys[i], vals[i]))
			return -1;
	return cepctl_emit_map_end(em);
}

static int emit_config(yaml_emitter_t *em, const cep_config *c)
{
	yaml_event_t ev;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (cepctl_emit(em, &ev))
		return -1;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	if (cepctl_emit(em, &ev) || cepctl_emit_map_start(em, false) ||
	    cepctl_emit_kv(em, "appliance", c->appliance) ||
	    cepctl_emit_scalar(em, "relay") ||
	    cepctl_emit_map_start(em, false) ||
	    cepctl_emit_kv(em, "listen", c->relay_listen) ||
	    cepctl_emit_kv(em, "advertise", c->relay_advertise) ||
	    cepctl_emit_kv(em, "metrics", c->relay_metrics) ||
	    cepctl_emit_map_end(em) || cepctl_emit_scalar(em, "delegate") ||
	    cepctl_emit_map_start(em, false) ||
	    cepctl_emit_kv(em, "metrics", c->delegate_metrics) ||
	    cepctl_emit_map_end(em) || cepctl_emit_scalar(em, "runner") ||
	    cepctl_emit_map_start(em, false) ||
	    emit_dur(em, "deadman", c->deadman_ms) ||
	    emit_dur(em, "identityMargin", c->runner_margin_ms) ||
	    cepctl_emit_map_end(em) || emit_policy(em, &c->policy) ||
	    emit_cp(em, &c->cp) || cepctl_emit_map_end(em))
		return -1;
	yaml_document_end_event_initialize(&ev, 1);
	if (cepctl_emit(em, &ev))
		return -1;
	yaml_stream_end_event_initialize(&ev);
	return cepctl_emit(em, &ev);
}

static int write_config(const char *path, const cep_config *c, cep_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (mem == NULL)
		return cep_err_errno(err, errno, "open_memstream");
	fputs("# cep appliance configuration: see docs/configuration.md\n",
	    mem);
	yaml_emitter_t em;
	yaml_emitter_initialize(&em);
	yaml_emitter_set_output_file(&em, mem);
	int bad = emit_config(&em, c);
	yaml_emitter_delete(&em);
	fclose(mem);
	int rv = bad ? cep_err_set(err, CEP_INTERNAL, "emitting %s", path) :
	               cep_files_write(path, buf, len, 0644, err);
	free(buf);
	return rv;
}

/* --- PKI ---------------------------------------------------------------- */
static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int remove_file(const char *path, cep_err *err)
{
	if (unlink(path) != 0 && errno != ENOENT)
		return cep_err_errno(err, errno, path);
	return CEP_OK;
}

/* The relay's server certificate, signed by the CA in p->pki; replaced
 * when asked (a new CA), else kept if both files exist. */
static int issue_relay_cert(const cep_paths *p, bool replace, bool *issued,
    cep_err *err)
{
	char crt[CEP_PATH_MAX + 16], key[CEP_PATH_MAX + 16];
	snprintf(crt, sizeof(crt), "%s/relay.crt", p->relay_pki);
	snprintf(key, sizeof(key), "%s/relay.key", p->relay_pki);
	if (!replace && exists(crt) && exists(key))
		return CEP_OK;
	cep_pki_ca *ca = NULL;
	int rv = cep_pki_ca_load(&ca, p->pki, err);
	if (rv != CEP_OK)
		return rv;
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	const char *dns[] = {"localhost", "cep-relay", host, NULL};
	const char *ips[] = {"127.0.0.1", "::1", NULL};
	cep_pki_issue_req req = {
	    .cn = "cep-relay",
	    .dns = dns,
	    .ips = ips,
	    .not_after_ms = cep_clock_now_ms() +
	        (int64_t)825 * 24 * 3600 * 1000,
	    .server = 1,
	};
	char *cert_pem = NULL, *key_pem = NULL;
	rv = cep_pki_issue(ca, &req, &cert_pem, &key_pem, err);
	if (rv == CEP_OK)
		rv = cep_files_write(key, key_pem, strlen(key_pem), 0600, err);
	if (rv == CEP_OK)
		rv = cep_files_write(crt, cert_pem, strlen(cert_pem), 0644,
		    err);
	free(cert_pem);
	cep_pki_free_secret(key_pem);
	cep_pki_ca_free(ca);
	*issued = rv == CEP_OK;
	return rv;
}

static int copy_file(const char *src, const char *dst, cep_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	int rv = cep_files_read(src, 64 * 1024, &pem, &len, err);
	if (rv == CEP_OK)
		rv = cep_files_write(dst, pem, len, 0644, err);
	free(pem);
	return rv;
}

/* The public CA certificate where the others read it: the relay's own
 * folder (installed: /etc/cep/relay) and p->ca_cert (/etc/cep/ca.crt);
 * neither may read the signer's folder. */
static int copy_ca_cert(const cep_paths *p, cep_err *err)
{
	char src[CEP_PATH_MAX + 16], dst[CEP_PATH_MAX + 16];
	snprintf(src, sizeof(src), "%s/ca.crt", p->pki);
	int rv = CEP_OK;
	if (strcmp(p->pki, p->relay_pki) != 0) {
		snprintf(dst, sizeof(dst), "%s/ca.crt", p->relay_pki);
		rv = copy_file(src, dst, err);
	}
	if (rv == CEP_OK && strcmp(src, p->ca_cert) != 0)
		rv = copy_file(src, p->ca_cert, err);
	return rv;
}

static int ca_fingerprint(const cep_paths *p, char *fp, size_t len,
    cep_err *err)
{
	char path[CEP_PATH_MAX + 16], *pem = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/ca.crt", p->pki);
	int rv = cep_files_read(path, 64 * 1024, &pem, &n, err);
	if (rv == CEP_OK)
		rv = cep_pki_fingerprint(pem, fp, len, err);
	free(pem);
	return rv;
}

/* A CA exists: keep it, refuse, or replace it (--force), as asked. */
static int ca_exists(const cep_paths *p, const cepctl_init_opts *io,
    cepctl_init_result *res, cep_err *err)
{
	char key[CEP_PATH_MAX + 16], crt[CEP_PATH_MAX + 16];
	snprintf(key, sizeof(key), "%s/ca.key", p->pki);
	snprintf(crt, sizeof(crt), "%s/ca.crt", p->pki);
	if (io->ca == CEPCTL_CA_KEEP)
		return CEP_OK;
	if (io->ca == CEPCTL_CA_REFUSE) {
		char fp[128] = "unreadable";
		(void)ca_fingerprint(p, fp, sizeof(fp), NULL);
		return cep_err_set(err, CEP_ALREADY_EXISTS,
		    "%s already holds "
		    "a CA (SHA-256 %s); cepctl init does not replace it, "
		    "because every identity it issued would stop being "
		    "trusted. Use --force to make a new CA and relay "
		    "certificate",
		    p->pki, fp);
	}
	int rv = remove_file(key, err);
	if (rv == CEP_OK)
		rv = remove_file(crt, err);
	res->ca_replaced = rv == CEP_OK;
	return rv;
}

/* The CA (new if there is none or it is replaced), then the relay's
 * certificate (new with a new CA: the old one names another issuer). */
static int init_pki(const cep_paths *p, const cep_config *cfg,
    const cepctl_init_opts *io, cepctl_init_result *res, cep_err *err)
{
	char key[CEP_PATH_MAX + 16], crt[CEP_PATH_MAX + 16];
	snprintf(key, sizeof(key), "%s/ca.key", p->pki);
	snprintf(crt, sizeof(crt), "%s/ca.crt", p->pki);
	int rv = CEP_OK;
	if (exists(key))
		rv = ca_exists(p, io, res, err);
	else if (io->first_boot) /* half a CA (no key): start clean */
		rv = remove_file(crt, err);
	if (rv == CEP_OK && !exists(key)) {
		rv = cep_pki_ca_create(p->pki, cfg->appliance, err);
		res->ca_created = rv == CEP_OK;
	}
	if (rv == CEP_OK)
		rv = issue_relay_cert(p, res->ca_created, &res->relay_issued,
		    err);
	if (rv == CEP_OK)
		rv = copy_ca_cert(p, err);
	if (rv == CEP_OK)
		rv = ca_fingerprint(p, res->fingerprint,
		    sizeof(res->fingerprint), err);
	return rv;
}

static int chown_one(const char *path, uid_t uid, gid_t gid, unsigned mode,
    cep_err *err)
{
	if (chown(path, uid, gid) != 0 || chmod(path, mode) != 0)
		return cep_err_errno(err, errno, path);
	return CEP_OK;
}

/* The installed layout's users (appliance/systemd/cep.sysusers). */
typedef struct fhs_ids {
	uid_t signer, delegate;
	gid_t signer_g, cep_g;
} fhs_ids;

/* Run as root with the package's users in place, or not at all: files
 * written as root:root 0600 would keep the daemons from starting, and a
 * later init would refuse to replace the CA they hold. */
static int fhs_check(const cep_paths *p, fhs_ids *ids, cep_err *err)
{
	if (!p->installed)
		return CEP_OK;
	if (geteuid() != 0)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "the installed "
		    "layout (/etc/cep, %s) is set up as root: its files "
		    "belong to cep-signer, cep-delegate and group cep. Run "
		    "with sudo, or use --home DIR",
		    p->pki);
	/* getpwnam's answer lives in a static buffer: copied at once */
	struct passwd *pw = getpwnam("cep-signer");
	bool has_s = pw != NULL, has_d, has_g;
	if (has_s) {
		ids->signer = pw->pw_uid;
		ids->signer_g = pw->pw_gid;
	}
	if ((has_d = (pw = getpwnam("cep-delegate")) != NULL))
		ids->delegate = pw->pw_uid;
	struct group *gr = getgrnam("cep");
	if ((has_g = gr != NULL))
		ids->cep_g = gr->gr_gid;
	if (!has_s || !has_d || !has_g)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "the users of "
		    "the installed layout do not exist (missing:%s%s%s): "
		    "create them from cep.sysusers (systemd-sysusers) first, "
		    "or use --home DIR",
		    has_s ? "" : " user cep-signer",
		    has_d ? "" : " user cep-delegate",
		    has_g ? "" : " group cep");
	return CEP_OK;
}

/*
 * Installed layout: the CA to cep-signer alone (/var/lib/cep-signer 0700,
 * key 0600); its certificate public (/etc/cep/ca.crt 0644); the relay's
 * key root:root 0600: no daemon opens it, systemd hands cep-relay its own
 * copy (LoadCredential=cep:/etc/cep/relay, lib/base/cred.h); the delegate's
 * state to cep-delegate.
 */
static int fhs_owners(const cep_paths *p, const fhs_ids *ids, cep_err *err)
{
	if (!p->installed)
		return CEP_OK;
	static const char *const sfiles[] = {"", "/ca.key", "/ca.crt"};
	static const unsigned smodes[] = {0700, 0600, 0644};
	static const char *const rfiles[] = {"", "/relay.key", "/relay.crt",
	    "/ca.crt"};
	static const unsigned rmodes[] = {0750, 0600, 0644, 0644};
	char path[CEP_PATH_MAX + 16];
	int rv = CEP_OK;
	for (size_t i = 0; rv == CEP_OK && i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", p->pki, sfiles[i]);
		rv = chown_one(path, ids->signer, ids->signer_g, smodes[i],
		    err);
	}
	for (size_t i = 0; rv == CEP_OK && i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", p->relay_pki, rfiles[i]);
		rv = chown_one(path, 0, i == 1 ? 0 : ids->cep_g, rmodes[i],
		    err);
	}
	if (rv == CEP_OK)
		rv = chown_one(p->ca_cert, 0, 0, 0644, err);
	if (rv == CEP_OK)
		rv = chown_one(p->state, ids->delegate, ids->cep_g, 0700, err);
	return rv;
}

/* connectors.d/ with a commented example that is not loaded (*.yaml
 * only are): the folder's place and format are then self-explaining. */
static int init_connectors(const cep_paths *p, cep_err *err)
{
	char dir[CEP_PATH_MAX], sample[CEP_PATH_MAX + 32];
	int rv = cep_files_path(dir, sizeof(dir), err, "%s/connectors.d",
	    p->config);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(dir, 0755, err);
	if (rv != CEP_OK)
		return rv;
	snprintf(sample, sizeof(sample), "%s/example.yaml.sample", dir);
	if (exists(sample))
		return CEP_OK;
	const char *text = cep_connector_example_yaml();
	return cep_files_write(sample, text, strlen(text), 0644, err);
}

/* Creates the home's folders, config, CA and relay certificate. */
/* dst = v when v is given. */
static void opt(char *dst, size_t len, const char *v)
{
	if (v != NULL)
		snprintf(dst, len, "%s", v);
}

static int abs_opt(char *dst, size_t len, const char *v, cep_err *err)
{
	if (v == NULL)
		return CEP_OK;
	char *r = realpath(v, NULL);
	if (r == NULL)
		return cep_err_errno(err, errno, v);
	int rv = cep_files_path(dst, len, err, "%s", r);
	free(r);
	return rv;
}

/* --- control-plane secrets as systemd credentials --------------------- */

/* Copies the operator's file src to dst, root:root 0600, in a folder of
 * its own (root:root 0700). Read through the one secret reader (bounded,
 * wiped after use), without its mode rule and following a link: the
 * source is the operator's own file, as they keep it; the copy is what
 * must be private. */
static int place_credential(const char *store, const char *src, const char *dst,
    const char *what, cep_err *err)
{
	const cep_secret_opts so = {64 * 1024, true, true, what};
	cep_secret data = {0};
	int rv = cep_files_mkdirs(store, 0700, err);
	if (rv == CEP_OK)
		rv = cep_secret_read(src, &so, &data, err);
	if (rv == CEP_OK)
		rv = cep_files_write(dst, data.data, data.len, 0600, err);
	if (rv == CEP_OK)
		rv = chown_one(dst, 0, 0, 0600, err);
	cep_secret_free(&data);
	return rv;
}

/* Installed layout, as root: the secrets go to systemd credentials. */
static bool cp_creds(const cep_paths *p)
{
	return p->installed && geteuid() == 0;
}

/*
 * The files of --control-plane-ca/--control-plane-token, as cep.yaml
 * names them. Installed layout, as root: their copies in
 * <config>/credentials (root:root 0700, files 0600), the folder both units
 * load with LoadCredential=cep-shared:/etc/cep/credentials, so relay and
 * delegate each read their own private copy and no file is readable by
 * two users (docs/privsep.md, Secrets); cp_copy makes them once the
 * config is known to take them. In a home: the operator's files, as
 * absolute paths.
 */
static int cp_files(const cep_paths *p, const cepctl_init_opts *io,
    cep_cp_opts *out, cep_err *err)
{
	int rv = CEP_OK;
	if (!cp_creds(p)) {
		rv = abs_opt(out->ca_file, sizeof(out->ca_file), io->cp_ca,
		    err);
		if (rv == CEP_OK)
			rv = abs_opt(out->token_file, sizeof(out->token_file),
			    io->cp_token, err);
		return rv;
	}
	if (io->cp_ca != NULL)
		rv = cep_files_path(out->ca_file, sizeof(out->ca_file), err,
		    "%s/credentials/cp-ca.crt", p->config);
	if (rv == CEP_OK && io->cp_token != NULL)
		rv = cep_files_path(out->token_file, sizeof(out->token_file),
		    err, "%s/credentials/cp-token", p->config);
	return rv;
}

/* The copies cp_files named. Given again, they replace the copies
 * (rotation). */
static int cp_copy(const cep_paths *p, const cepctl_init_opts *io,
    const cep_cp_opts *files, cepctl_init_result *res, cep_err *err)
{
	char store[CEP_PATH_MAX];
	int rv = CEP_OK;
	if (!cp_creds(p) || (io->cp_ca == NULL && io->cp_token == NULL))
		return CEP_OK;
	rv = cep_files_path(store, sizeof(store), err, "%s/credentials",
	    p->config);
	if (rv == CEP_OK && io->cp_ca != NULL)
		rv = place_credential(store, io->cp_ca, files->ca_file,
		    "the control plane's CA", err);
	if (rv == CEP_OK && io->cp_token != NULL)
		rv = place_credential(store, io->cp_token, files->token_file,
		    "the control-plane token", err);
	res->credentials_placed = rv == CEP_OK;
	return rv;
}

/* What the flags set, by cep.yaml key (cfg_edit.h), NULL = not given. */
static void settings_of(const cepctl_init_opts *io, const cep_cp_opts *files,
    const char *want[CEPCTL_SET_N])
{
	want[CEPCTL_SET_APPLIANCE] = io->appliance;
	want[CEPCTL_SET_LISTEN] = io->listen;
	want[CEPCTL_SET_ADVERTISE] = io->advertise;
	want[CEPCTL_SET_RELAY_METRICS] = io->relay_metrics;
	want[CEPCTL_SET_DELEGATE_METRICS] = io->delegate_metrics;
	want[CEPCTL_SET_CP_URL] = io->cp_url;
	want[CEPCTL_SET_CP_CA] = io->cp_ca ? files->ca_file : NULL;
	want[CEPCTL_SET_CP_TOKEN] = io->cp_token ? files->token_file : NULL;
	want[CEPCTL_SET_CP_PROXY] = io->cp_proxy;
}

static bool has_settings(const cepctl_init_opts *io)
{
	cep_cp_opts none = {0};
	const char *want[CEPCTL_SET_N];
	settings_of(io, &none, want);
	for (size_t i = 0; i < CEPCTL_SET_N; i++)
		if (want[i] != NULL)
			return true;
	return false;
}

/* A new cep.yaml with the flags' settings and defaults for the rest. */
static int new_config(const char *cfgpath, const cepctl_init_opts *io,
    const cep_cp_opts *files, cepctl_init_result *res, cep_err *err)
{
	cep_config c;
	cep_config_defaults(&c);
	opt(c.appliance, sizeof(c.appliance), io->appliance);
	opt(c.relay_listen, sizeof(c.relay_listen), io->listen);
	opt(c.relay_advertise, sizeof(c.relay_advertise), io->advertise);
	opt(c.relay_metrics, sizeof(c.relay_metrics), io->relay_metrics);
	opt(c.delegate_metrics, sizeof(c.delegate_metrics),
	    io->delegate_metrics);
	opt(c.cp.url, sizeof(c.cp.url), io->cp_url);
	opt(c.cp.proxy, sizeof(c.cp.proxy), io->cp_proxy);
	/* absolute paths (cep.yaml resolves relative ones against its own
	 * folder), or the credential copies (cp_files) */
	memcpy(c.cp.ca_file, files->ca_file, sizeof(c.cp.ca_file));
	memcpy(c.cp.token_file, files->token_file, sizeof(c.cp.token_file));
	int rv = write_config(cfgpath, &c, err);
	res->config_created = rv == CEP_OK;
	return rv;
}

/*
 * cep.yaml: written when missing; when it exists (the package's conffile,
 * or an operator's), the flags' settings are added to it where it lacks
 * them, and a value it has otherwise is refused (cfg_edit.h). *edit is
 * the prepared change, written by cepctl_cfg_edit_commit once the
 * credentials are in place; NULL when there is nothing to change.
 */
static int init_config(const cep_paths *p, const cepctl_init_opts *io,
    const cep_cp_opts *files, cepctl_init_result *res, cepctl_cfg_edit **edit,
    cep_err *err)
{
	char cfgpath[CEP_PATH_MAX + 16];
	snprintf(cfgpath, sizeof(cfgpath), "%s/cep.yaml", p->config);
	*edit = NULL;
	if (!exists(cfgpath))
		return new_config(cfgpath, io, files, res, err);
	if (!has_settings(io))
		return CEP_OK;
	const char *want[CEPCTL_SET_N];
	settings_of(io, files, want);
	res->config_checked = true;
	int rv = cepctl_cfg_edit_plan(p, want, io->replace_config_keys, edit,
	    err);
	if (rv != CEP_OK)
		return rv;
	snprintf(res->config_added, sizeof(res->config_added), "%s",
	    cepctl_cfg_edit_added(*edit));
	snprintf(res->config_changed, sizeof(res->config_changed), "%s",
	    cepctl_cfg_edit_changed(*edit));
	return CEP_OK;
}

static int init_dirs(const cep_paths *p, cep_err *err)
{
	int rv;
	if ((rv = cep_files_mkdirs(p->config, 0755, err)) != CEP_OK ||
	    (rv = cep_files_mkdirs(p->pki, 0700, err)) != CEP_OK ||
	    (rv = cep_files_mkdirs(p->relay_pki, 0750, err)) != CEP_OK ||
	    (rv = cep_files_mkdirs(p->state, 0700, err)) != CEP_OK)
		return rv;
	/* installed, /run/cep is the units' (RuntimeDirectory, tmpfiles):
	 * made here as root it would keep the daemons out */
	return p->installed ? CEP_OK : cep_files_mkdirs(p->run, 0750, err);
}

int cepctl_init_run(const char *home, const cepctl_init_opts *io,
    cepctl_init_result *res, cep_err *err)
{
	cep_paths p;
	fhs_ids ids = {0};
	memset(res, 0, sizeof(*res));
	int rv = cep_paths_resolve(home, &p, err);
	if (rv != CEP_OK)
		return rv;
	snprintf(res->pki, sizeof(res->pki), "%s", p.pki);
	char cakey[CEP_PATH_MAX + 16];
	snprintf(cakey, sizeof(cakey), "%s/ca.key", p.pki);
	if (io->first_boot && exists(cakey)) {
		res->nothing = true; /* not the first boot of this machine */
		return CEP_OK;
	}
	/* settings for an appliance that has a CA: the operator configures
	 * it, and its CA stays (only --force replaces one) */
	cepctl_init_opts eff = *io;
	if (eff.ca == CEPCTL_CA_REFUSE && has_settings(io))
		eff.ca = CEPCTL_CA_KEEP;
	cep_cp_opts files = {0};
	cepctl_cfg_edit *edit = NULL;
	if ((rv = fhs_check(&p, &ids, err)) != CEP_OK ||
	    (rv = init_dirs(&p, err)) != CEP_OK ||
	    (rv = cp_files(&p, io, &files, err)) != CEP_OK ||
	    (rv = init_config(&p, io, &files, res, &edit, err)) != CEP_OK)
		return rv;
	rv = cp_copy(&p, io, &files, res, err);
	if (rv == CEP_OK && edit != NULL)
		rv = cepctl_cfg_edit_commit(edit, err);
	cepctl_cfg_edit_free(edit);
	cep_config cfg;
	if (rv != CEP_OK || (rv = init_connectors(&p, err)) != CEP_OK ||
	    (rv = cep_config_load(&p, &cfg, err)) != CEP_OK ||
	    (rv = init_pki(&p, &cfg, &eff, res, err)) != CEP_OK)
		return rv;
	return fhs_owners(&p, &ids, err);
}

int cepctl_init_home(const char *home, const cepctl_init_opts *io, cep_err *err)
{
	cepctl_init_result res;
	return cepctl_init_run(home, io, &res, err);
}

/* --force, --first-boot and --replace-config-keys take no value: taken out of argv before the
 * common parser sees it. */
static int take_switches(int argc, char **argv, cepctl_init_opts *io)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--force") == 0)
			io->ca = CEPCTL_CA_REPLACE;
		else if (i > 0 && strcmp(argv[i], "--first-boot") == 0)
			io->first_boot = true;
		else if (i > 0 && strcmp(argv[i], "--replace-config-keys") == 0)
			io->replace_config_keys = true;
		else
			argv[n++] = argv[i];
	}
	return n;
}

/* What init did to an existing cep.yaml and the credentials, and that
 * the daemons read both only when they start. */
static void say_config(const cepctl_init_opts *io, const cepctl_init_result *r,
    const cep_paths *p)
{
	bool added = r->config_added[0] != '\0';
	bool changed = r->config_changed[0] != '\0';
	if (added || changed)
		printf("cep.yaml: %s%s%s%s%s (%s/cep.yaml)\n",
		    added ? "added " : "", r->config_added,
		    added && changed ? "; " : "", changed ? "replaced " : "",
		    r->config_changed, p->config);
	else if (r->config_checked)
		printf("cep.yaml: unchanged, it has these settings already "
		       "(%s/cep.yaml)\n",
		    p->config);
	if (r->credentials_placed)
		printf("credentials: the control plane's files copied to "
		       "%s/credentials\n",
		    p->config);
	if (io->first_boot || (!added && !changed && !r->credentials_placed))
		return;
	if (p->installed)
		printf("restart the daemons to apply it: systemctl restart "
		       "cep-relay cep-delegate\n");
	else
		printf("restart cep-relay and cep-delegate (if they run) to "
		       "apply it\n");
}

static void say_done(const cepctl_init_opts *io, const cepctl_init_result *r,
    const cep_paths *p)
{
	if (io->first_boot && r->nothing) {
		printf("first boot: this machine has a CA already (%s/ca.key); "
		       "nothing done\n",
		    r->pki);
		return;
	}
	const char *ca = r->ca_replaced ? "replaced the CA" :
	    r->ca_created               ? "created a new CA" :
	                                  "kept the CA";
	printf("%s%s (SHA-256 %s) in %s%s%s%s\n",
	    io->first_boot ? "first boot: " : "", ca, r->fingerprint, r->pki,
	    r->relay_issued ? ", a new relay certificate in " : "",
	    r->relay_issued ? p->relay_pki : "",
	    r->config_created ? ", a default cep.yaml" : "");
	if (r->ca_replaced)
		printf("identities issued by the old CA are no longer trusted: "
		       "restart cep-signer, cep-relay and cep-delegate\n");
	if (!io->first_boot)
		printf("appliance home ready: config %s, pki %s, state %s, "
		       "sockets %s\n",
		    p->config, p->pki, p->state, p->run);
	say_config(io, r, p);
}

int cepctl_cmd_init(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	cepctl_init_opts io = {.ca = CEPCTL_CA_REFUSE};
	const cepctl_flag flags[] = {
	    {"--appliance", &io.appliance},
	    {"--relay-listen", &io.listen},
	    {"--relay-advertise", &io.advertise},
	    {"--relay-metrics", &io.relay_metrics},
	    {"--delegate-metrics", &io.delegate_metrics},
	    {"--control-plane", &io.cp_url},
	    {"--control-plane-ca", &io.cp_ca},
	    {"--control-plane-token", &io.cp_token},
	    {"--control-plane-proxy", &io.cp_proxy},
	    {NULL, NULL},
	};
	const char *pos[1];
	int npos;
	argc = take_switches(argc, argv, &io);
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 0, &npos) != 0)
		return CEPCTL_ERROR;
	if (io.first_boot && io.ca == CEPCTL_CA_REPLACE) {
		fprintf(stderr,
		    "cepctl init: --first-boot never replaces a CA; "
		    "drop --force\n");
		return CEPCTL_ERROR;
	}
	cep_err err;
	cepctl_init_result res;
	if (cepctl_init_run(o.home, &io, &res, &err) != CEP_OK) {
		fprintf(stderr, "cepctl init%s: %s\n",
		    io.first_boot ? " --first-boot" : "", err.msg);
		return CEPCTL_ERROR;
	}
	cep_paths p;
	cep_paths_resolve(o.home, &p, NULL);
	say_done(&io, &res, &p);
	return CEPCTL_OK;
}
