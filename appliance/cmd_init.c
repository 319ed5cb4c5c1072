/*
 * cmd_init.c - `cepctl init`: the folders, config, CA and relay certificate
 * of an appliance home. Idempotent: what exists is kept (a CA is never
 * replaced: that would orphan every identity it issued).
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

#include "cli.h"
#include "cmd_common.h"
#include "connector.h"
#include "pki.h"
#include "util.h"

/* --- config emission through libyaml (no YAML built by hand) ---------- */
static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_scalar(yaml_emitter_t *em, const char *s)
{
	yaml_event_t ev;
	/* "" must stay a string (metrics off), not become a null */
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
	    (int)strlen(s), 1, 1, s[0] == '\0' ?
	    YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
	return emit(em, &ev);
}

static int emit_kv(yaml_emitter_t *em, const char *k, const char *v)
{
	return emit_scalar(em, k) || emit_scalar(em, v);
}

static int emit_map_start(yaml_emitter_t *em, bool flow)
{
	yaml_event_t ev;
	yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	    flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
	return emit(em, &ev);
}

static int emit_map_end(yaml_emitter_t *em)
{
	yaml_event_t ev;
	yaml_mapping_end_event_initialize(&ev);
	return emit(em, &ev);
}

static int emit_list(yaml_emitter_t *em, const char *k, char rules[][128],
    size_t n)
{
	yaml_event_t ev;
	if (emit_scalar(em, k))
		return -1;
	yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	    YAML_FLOW_SEQUENCE_STYLE);
	if (emit(em, &ev))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (emit_scalar(em, rules[i]))
			return -1;
	yaml_sequence_end_event_initialize(&ev);
	return emit(em, &ev);
}

static int emit_dur(yaml_emitter_t *em, const char *k, int64_t ms)
{
	char buf[32];
	cep_format_duration(ms, buf, sizeof(buf));
	return emit_kv(em, k, buf);
}

static int emit_int(yaml_emitter_t *em, const char *k, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	return emit_kv(em, k, buf);
}

static int emit_policy(yaml_emitter_t *em, const cep_policy *p)
{
	return emit_scalar(em, "policy") || emit_map_start(em, false) ||
	    emit_dur(em, "maxDuration", p->max_duration_ms) ||
	    emit_int(em, "maxConcurrentRuns", p->max_concurrent_runs) ||
	    emit_int(em, "maxCpuWorkers", p->max_cpu_workers) ||
	    emit_int(em, "maxMemoryMiB", p->max_memory_mib) ||
	    emit_scalar(em, "targets") || emit_map_start(em, false) ||
	    emit_list(em, "allow", (char(*)[128])p->allow, p->n_allow) ||
	    emit_list(em, "deny", (char(*)[128])p->deny, p->n_deny) ||
	    emit_map_end(em) || emit_scalar(em, "namespaces") ||
	    emit_map_start(em, false) ||
	    emit_list(em, "deny", (char(*)[128])p->ns_deny, p->n_ns_deny) ||
	    emit_map_end(em) || emit_map_end(em);
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
	if (emit_scalar(em, "controlPlane") || emit_map_start(em, false))
		return -1;
	for (size_t i = 0; i < 4; i++)
		if (vals[i][0] != '\0' && emit_kv(em, keys[i], vals[i]))
			return -1;
	return emit_map_end(em);
}

static int emit_config(yaml_emitter_t *em, const cep_config *c)
{
	yaml_event_t ev;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (emit(em, &ev))
		return -1;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	if (emit(em, &ev) || emit_map_start(em, false) ||
	    emit_kv(em, "appliance", c->appliance) ||
	    emit_scalar(em, "relay") || emit_map_start(em, false) ||
	    emit_kv(em, "listen", c->relay_listen) ||
	    emit_kv(em, "advertise", c->relay_advertise) ||
	    emit_kv(em, "metrics", c->relay_metrics) || emit_map_end(em) ||
	    emit_scalar(em, "delegate") || emit_map_start(em, false) ||
	    emit_kv(em, "metrics", c->delegate_metrics) || emit_map_end(em) ||
	    emit_scalar(em, "runner") || emit_map_start(em, false) ||
	    emit_dur(em, "deadman", c->deadman_ms) ||
	    emit_dur(em, "identityMargin", c->runner_margin_ms) ||
	    emit_map_end(em) || emit_policy(em, &c->policy) ||
	    emit_cp(em, &c->cp) || emit_map_end(em))
		return -1;
	yaml_document_end_event_initialize(&ev, 1);
	if (emit(em, &ev))
		return -1;
	yaml_stream_end_event_initialize(&ev);
	return emit(em, &ev);
}

static int write_config(const char *path, const cep_config *c, cep_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (mem == NULL)
		return cep_err_errno(err, errno, "open_memstream");
	fputs("# cep appliance configuration: see docs/configuration.md\n", mem);
	yaml_emitter_t em;
	yaml_emitter_initialize(&em);
	yaml_emitter_set_output_file(&em, mem);
	int bad = emit_config(&em, c);
	yaml_emitter_delete(&em);
	fclose(mem);
	int rv = bad ? cep_err_set(err, CEP_INTERNAL, "emitting %s", path)
	             : cep_write_file(path, buf, len, 0644, err);
	free(buf);
	return rv;
}

/* --- PKI ---------------------------------------------------------------- */
static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int issue_relay_cert(const cep_paths *p, cep_err *err)
{
	char crt[CEP_PATH_MAX + 16], key[CEP_PATH_MAX + 16];
	snprintf(crt, sizeof(crt), "%s/relay.crt", p->relay_pki);
	snprintf(key, sizeof(key), "%s/relay.key", p->relay_pki);
	if (exists(crt) && exists(key))
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
	    .cn = "cep-relay", .dns = dns, .ips = ips,
	    .not_after_ms = cep_now_ms() + (int64_t)825 * 24 * 3600 * 1000,
	    .server = 1,
	};
	char *cert_pem = NULL, *key_pem = NULL;
	rv = cep_pki_issue(ca, &req, &cert_pem, &key_pem, err);
	if (rv == CEP_OK)
		rv = cep_write_file(key, key_pem, strlen(key_pem), 0600, err);
	if (rv == CEP_OK)
		rv = cep_write_file(crt, cert_pem, strlen(cert_pem), 0644, err);
	free(cert_pem);
	cep_pki_free_secret(key_pem);
	cep_pki_ca_free(ca);
	return rv;
}

/* The relay's own folder (installed: /etc/cep/relay) gets a copy of the
 * public CA certificate: the relay never reads the delegate's pki. */
static int copy_ca_cert(const cep_paths *p, cep_err *err)
{
	if (strcmp(p->pki, p->relay_pki) == 0)
		return CEP_OK;
	char src[CEP_PATH_MAX + 16], dst[CEP_PATH_MAX + 16];
	snprintf(src, sizeof(src), "%s/ca.crt", p->pki);
	snprintf(dst, sizeof(dst), "%s/ca.crt", p->relay_pki);
	char *pem = NULL;
	size_t len = 0;
	int rv = cep_read_file(src, 64 * 1024, &pem, &len, err);
	if (rv == CEP_OK)
		rv = cep_write_file(dst, pem, len, 0644, err);
	free(pem);
	return rv;
}

static int chown_one(const char *path, uid_t uid, gid_t gid, unsigned mode,
    cep_err *err)
{
	if (chown(path, uid, gid) != 0 || chmod(path, mode) != 0)
		return cep_err_errno(err, errno, path);
	return CEP_OK;
}

/*
 * Installed layout, run as root (the package's %post, or an operator with
 * sudo): the daemons run as their own users, so the files get theirs -
 * pki (CA key) to cep-delegate only; the relay's key root:root 0600: no
 * daemon can open it, systemd hands cep-relay its own copy
 * (LoadCredential=cep:/etc/cep/relay, lib/cred.h), and group cep (which
 * the delegate is in) no longer reads it.
 */
static int fhs_owners(const cep_paths *p, cep_err *err)
{
	if (geteuid() != 0 || strcmp(p->pki, p->relay_pki) == 0)
		return CEP_OK;
	struct passwd *pw = getpwnam("cep-delegate");
	struct group *gr = getgrnam("cep");
	if (pw == NULL || gr == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION, "the users of "
		    "the installed layout (cep-delegate, group cep) do not "
		    "exist: install the package (sysusers) first, or use "
		    "--home DIR");
	uid_t du = pw->pw_uid;
	gid_t g = gr->gr_gid;
	static const char *const dfiles[] = {"", "/ca.key", "/ca.crt"};
	static const unsigned dmodes[] = {0700, 0600, 0644};
	static const char *const rfiles[] = {"", "/relay.key", "/relay.crt",
	    "/ca.crt"};
	static const unsigned rmodes[] = {0750, 0600, 0644, 0644};
	char path[CEP_PATH_MAX + 16];
	int rv = CEP_OK;
	for (size_t i = 0; rv == CEP_OK && i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", p->pki, dfiles[i]);
		rv = chown_one(path, du, g, dmodes[i], err);
	}
	for (size_t i = 0; rv == CEP_OK && i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", p->relay_pki, rfiles[i]);
		rv = chown_one(path, 0, i == 1 ? 0 : g, rmodes[i], err);
	}
	if (rv == CEP_OK)
		rv = chown_one(p->state, du, g, 0700, err);
	return rv;
}

/* connectors.d/ with a commented example that is not loaded (*.yaml
 * only are): the folder's place and format are then self-explaining. */
static int init_connectors(const cep_paths *p, cep_err *err)
{
	char dir[CEP_PATH_MAX], sample[CEP_PATH_MAX + 32];
	int rv = cep_path(dir, sizeof(dir), err, "%s/connectors.d", p->config);
	if (rv == CEP_OK)
		rv = cep_mkdirs(dir, 0755, err);
	if (rv != CEP_OK)
		return rv;
	snprintf(sample, sizeof(sample), "%s/example.yaml.sample", dir);
	if (exists(sample))
		return CEP_OK;
	const char *text = cep_connector_example_yaml();
	return cep_write_file(sample, text, strlen(text), 0644, err);
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
	int rv = cep_path(dst, len, err, "%s", r);
	free(r);
	return rv;
}

/* --- control-plane secrets as systemd credentials --------------------- */

/* Copies the operator's file src to <store>/name, root:root 0600; dst gets
 * the copy's path, which cep.yaml names. */
static int place_credential(const char *store, const char *name,
    const char *src, char *dst, size_t dlen, cep_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int rv = cep_mkdirs(store, 0700, err);
	if (rv == CEP_OK)
		rv = cep_path(dst, dlen, err, "%s/%s", store, name);
	if (rv == CEP_OK)
		rv = cep_read_file(src, 64 * 1024, &data, &len, err);
	if (rv == CEP_OK)
		rv = cep_write_file(dst, data, len, 0600, err);
	if (rv == CEP_OK)
		rv = chown_one(dst, 0, 0, 0600, err);
	if (data != NULL)
		explicit_bzero(data, len);
	free(data);
	return rv;
}

/*
 * The files of --control-plane-ca/--control-plane-token, as cep.yaml
 * names them. Installed layout, as root: copied into <config>/credentials
 * (root:root 0700, files 0600), the folder both units load with
 * LoadCredential=cep-shared:/etc/cep/credentials, so relay and delegate
 * each read their own private copy and no file is readable by two users
 * (docs/privsep.md, Secrets). Given again, they replace the copies
 * (rotation). In a home: the operator's files, as absolute paths.
 */
static int cp_files(const cep_paths *p, const cepctl_init_opts *io,
    cep_cp_opts *out, cep_err *err)
{
	int rv;
	if (!p->installed || geteuid() != 0) {
		rv = abs_opt(out->ca_file, sizeof(out->ca_file), io->cp_ca, err);
		if (rv == CEP_OK)
			rv = abs_opt(out->token_file, sizeof(out->token_file),
			    io->cp_token, err);
		return rv;
	}
	char store[CEP_PATH_MAX];
	rv = cep_path(store, sizeof(store), err, "%s/credentials", p->config);
	if (rv == CEP_OK && io->cp_ca != NULL)
		rv = place_credential(store, "cp-ca.crt", io->cp_ca,
		    out->ca_file, sizeof(out->ca_file), err);
	if (rv == CEP_OK && io->cp_token != NULL)
		rv = place_credential(store, "cp-token", io->cp_token,
		    out->token_file, sizeof(out->token_file), err);
	return rv;
}

int cepctl_init_home(const char *home, const cepctl_init_opts *io,
    cep_err *err)
{
	cep_paths p;
	int rv = cep_paths_resolve(home, &p, err);
	if (rv != CEP_OK)
		return rv;
	if ((rv = cep_mkdirs(p.config, 0755, err)) != CEP_OK ||
	    (rv = cep_mkdirs(p.pki, 0700, err)) != CEP_OK ||
	    (rv = cep_mkdirs(p.relay_pki, 0750, err)) != CEP_OK ||
	    (rv = cep_mkdirs(p.state, 0700, err)) != CEP_OK ||
	    (rv = cep_mkdirs(p.run, 0750, err)) != CEP_OK)
		return rv;
	char cfgpath[CEP_PATH_MAX + 16];
	snprintf(cfgpath, sizeof(cfgpath), "%s/cep.yaml", p.config);
	cep_cp_opts files = {0};
	if ((rv = cp_files(&p, io, &files, err)) != CEP_OK)
		return rv;
	if (!exists(cfgpath)) {
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
		/* files as absolute paths: cep.yaml resolves relative ones
		 * against its own folder, not where cepctl ran */
		memcpy(c.cp.ca_file, files.ca_file, sizeof(c.cp.ca_file));
		memcpy(c.cp.token_file, files.token_file,
		    sizeof(c.cp.token_file));
		if ((rv = write_config(cfgpath, &c, err)) != CEP_OK)
			return rv;
	}
	if ((rv = init_connectors(&p, err)) != CEP_OK)
		return rv;
	cep_config cfg;
	if ((rv = cep_config_load(&p, &cfg, err)) != CEP_OK)
		return rv;
	char cakey[CEP_PATH_MAX + 16];
	snprintf(cakey, sizeof(cakey), "%s/ca.key", p.pki);
	if (!exists(cakey) &&
	    (rv = cep_pki_ca_create(p.pki, cfg.appliance, err)) != CEP_OK)
		return rv;
	if ((rv = issue_relay_cert(&p, err)) != CEP_OK ||
	    (rv = copy_ca_cert(&p, err)) != CEP_OK)
		return rv;
	return fhs_owners(&p, err);
}

int cepctl_cmd_init(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	cepctl_init_opts io = {0};
	const cepctl_flag flags[] = {
	    {"--appliance", &io.appliance}, {"--relay-listen", &io.listen},
	    {"--relay-advertise", &io.advertise},
	    {"--relay-metrics", &io.relay_metrics},
	    {"--delegate-metrics", &io.delegate_metrics},
	    {"--control-plane", &io.cp_url}, {"--control-plane-ca", &io.cp_ca},
	    {"--control-plane-token", &io.cp_token},
	    {"--control-plane-proxy", &io.cp_proxy}, {NULL, NULL},
	};
	const char *pos[1];
	int npos;
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 0, &npos) != 0)
		return CEPCTL_ERROR;
	cep_err err;
	if (cepctl_init_home(o.home, &io, &err) != CEP_OK) {
		fprintf(stderr, "cepctl init: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	cep_paths p;
	cep_paths_resolve(o.home, &p, NULL);
	printf("appliance home ready: config %s, pki %s, state %s, sockets %s\n",
	    p.config, p.pki, p.state, p.run);
	return CEPCTL_OK;
}
