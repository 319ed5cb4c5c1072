/*
 * cmd_seed.c - `cepctl seed DIR`: configures an appliance from a seed, a
 * folder - in the VM image the CEPSEED drive, mounted read-only by
 * cep-seed.service on first boot (docs/images.md) - holding any of:
 *
 *   cep.yaml                the appliance's cep.yaml, whole or in part
 *                           (keys left out keep their defaults)
 *   appliance               its name, one line
 *   control-plane/url       the plane's URL, one line
 *   control-plane/token     its bearer token        (a secret)
 *   control-plane/ca.crt    the CA of its certificate
 *   control-plane/proxy     an HTTP proxy to reach it, one line
 *   connectors.d/N.yaml     Kubernetes connectors (docs/connectors.md) and
 *   connectors.d/N.kubeconfig  their credentials    (secrets)
 *   ssh/authorized_keys     keys for root's ssh: the image starts sshd
 *                           only when this was given
 *
 * Everything is read and checked before anything is written, so a bad
 * seed changes nothing. The settings then go through `cepctl init`
 * (cepctl_init_run): the token and CA land root-only in
 * <config>/credentials, the folder the units hand over with
 * LoadCredential=, and the keys in cep.yaml (the seed's value replaces
 * one the file has); on a machine without a CA, init makes it, named
 * after the seed's appliance - this machine's own first-boot CA.
 * Secrets are never printed.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_common.h"
#include "config.h"
#include "files.h"

enum { SEED_MAX_FILES = 64, SEED_FILE_MAX = 1024 * 1024, SEED_LINE = 1024 };

typedef struct seed_file {
	char name[256]; /* file name in connectors.d */
	char *data;
	size_t len;
	bool secret; /* a kubeconfig: 0600, the delegate's */
} seed_file;

typedef struct seed {
	const char *dir;
	char *yaml; /* cep.yaml, NULL if absent */
	size_t yaml_len;
	char appliance[128], url[SEED_LINE], proxy[SEED_LINE];
	char *token, *ca; /* control-plane/token, ca.crt, NULL if absent */
	size_t token_len, ca_len;
	seed_file conn[SEED_MAX_FILES];
	size_t n_conn;
	char *keys; /* ssh/authorized_keys */
	size_t keys_len;
} seed;

static void seed_free(seed *s)
{
	free(s->yaml);
	if (s->token != NULL)
		explicit_bzero(s->token, s->token_len);
	free(s->token);
	free(s->ca);
	for (size_t i = 0; i < s->n_conn; i++) {
		if (s->conn[i].secret)
			explicit_bzero(s->conn[i].data, s->conn[i].len);
		free(s->conn[i].data);
	}
	free(s->keys);
}

/* DIR/rel into *data; 0 absent, 1 read, -1 error. Only a regular file
 * (no symlink: the drive is not trusted to point elsewhere). */
static int read_opt(const seed *s, const char *rel, char **data, size_t *len,
    cep_err *err)
{
	char path[CEP_PATH_MAX];
	struct stat st;
	if (cep_files_path(path, sizeof(path), err, "%s/%s", s->dir, rel) !=
	    CEP_OK)
		return -1;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		cep_err_errno(err, errno, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "seed %s: not a regular "
		    "file",
		    path);
		return -1;
	}
	return cep_files_read(path, SEED_FILE_MAX, data, len, err) == CEP_OK ?
	    1 :
	    -1;
}

/* A one-line value: trailing white space dropped, no control character
 * left, not empty. */
static int read_line(const seed *s, const char *rel, char *out, size_t max,
    cep_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int got = read_opt(s, rel, &data, &len, err);
	if (got <= 0)
		return got;
	while (len > 0 && isspace((unsigned char)data[len - 1]))
		data[--len] = '\0';
	bool ok = len > 0 && len < max;
	for (size_t i = 0; ok && i < len; i++)
		ok = !iscntrl((unsigned char)data[i]);
	if (ok)
		memcpy(out, data, len + 1);
	free(data);
	if (ok)
		return 1;
	cep_err_set(err, CEP_INVALID_ARGUMENT,
	    "seed %s/%s: expected one "
	    "line of 1..%zu printable bytes",
	    s->dir, rel, max - 1);
	return -1;
}

/* connectors.d: N.yaml and N.kubeconfig, names of [A-Za-z0-9._-] only;
 * anything else is refused rather than ignored, so a typo is seen. */
static int name_ok(const char *n, bool *secret)
{
	size_t len = strlen(n);
	if (len == 0 || len >= sizeof(((seed_file *)0)->name) || n[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("._-", n[i]))
			return 0;
	*secret = len > 11 && strcmp(n + len - 11, ".kubeconfig") == 0;
	return *secret || (len > 5 && strcmp(n + len - 5, ".yaml") == 0);
}

static int read_connector(seed *s, const char *name, cep_err *err)
{
	seed_file *f = &s->conn[s->n_conn];
	char rel[300];
	if (!name_ok(name, &f->secret))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "seed %s/"
		    "connectors.d/%s: expected NAME.yaml (a connector) or "
		    "NAME.kubeconfig, NAME of letters, digits, '.', '_', '-'",
		    s->dir, name);
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(rel, sizeof(rel), "connectors.d/%s", name);
	int got = read_opt(s, rel, &f->data, &f->len, err);
	if (got == 0) /* listed, then gone: the drive changed under us */
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "seed %s/%s: "
		    "vanished while read",
		    s->dir, rel);
	if (got < 0)
		return CEP_INTERNAL;
	s->n_conn++;
	return CEP_OK;
}

static int read_connectors(seed *s, cep_err *err)
{
	char path[CEP_PATH_MAX];
	if (cep_files_path(path, sizeof(path), err, "%s/connectors.d", s->dir))
		return CEP_INTERNAL;
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? CEP_OK :
		                         cep_err_errno(err, errno, path);
	int rv = CEP_OK;
	struct dirent *e;
	while (rv == CEP_OK && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (s->n_conn == SEED_MAX_FILES)
			rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "seed %s: more "
			    "than %d files",
			    path, SEED_MAX_FILES);
		else
			rv = read_connector(s, e->d_name, err);
	}
	closedir(d);
	return rv;
}

/* The seed's cep.yaml must load as the daemons load it. */
static int check_yaml(const cep_paths *p, seed *s, cep_err *err)
{
	cep_config cfg;
	int got = read_opt(s, "cep.yaml", &s->yaml, &s->yaml_len, err);
	if (got <= 0)
		return got < 0 ? CEP_INTERNAL : CEP_OK;
	char name[CEP_PATH_MAX];
	if (cep_files_path(name, sizeof(name), err, "%s/cep.yaml", s->dir) !=
	    CEP_OK)
		return CEP_INTERNAL;
	/* errors name the seed's file, file:line:col */
	return cep_config_load_text(p, s->yaml, s->yaml_len, name, &cfg, err);
}

static int seed_read(const cep_paths *p, seed *s, cep_err *err)
{
	if (check_yaml(p, s, err) != CEP_OK ||
	    read_line(s, "appliance", s->appliance, sizeof(s->appliance), err) <
	        0 ||
	    read_line(s, "control-plane/url", s->url, sizeof(s->url), err) <
	        0 ||
	    read_line(s, "control-plane/proxy", s->proxy, sizeof(s->proxy),
	        err) < 0 ||
	    read_opt(s, "control-plane/token", &s->token, &s->token_len, err) <
	        0 ||
	    read_opt(s, "control-plane/ca.crt", &s->ca, &s->ca_len, err) < 0 ||
	    read_opt(s, "ssh/authorized_keys", &s->keys, &s->keys_len, err) < 0)
		return CEP_INTERNAL;
	if ((s->token != NULL || s->ca != NULL || s->proxy[0]) && !s->url[0])
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "seed %s: "
		    "control-plane/ holds a token, CA or proxy but no url",
		    s->dir);
	return read_connectors(s, err);
}

/* --- writing ---------------------------------------------------------- */

/* dst in a folder made with dmode, owned by uid (-1: the caller's). */
static int put(const char *dir, unsigned dmode, const char *name,
    const char *data, size_t len, unsigned mode, uid_t uid, cep_err *err)
{
	char path[CEP_PATH_MAX];
	int rv = cep_files_mkdirs(dir, dmode, err);
	if (rv == CEP_OK)
		rv = cep_files_path(path, sizeof(path), err, "%s/%s", dir,
		    name);
	if (rv == CEP_OK)
		rv = cep_files_write(path, data, len, mode, err);
	if (rv == CEP_OK && uid != (uid_t)-1 && chown(path, uid, (gid_t)-1))
		rv = cep_err_errno(err, errno, path);
	return rv;
}

/* Installed and root: kubeconfigs go to the delegate's user, the only
 * reader (the daemon reads them by path, not as a credential). */
static uid_t kube_owner(const cep_paths *p)
{
	struct passwd *pw = NULL;
	if (p->installed && geteuid() == 0)
		pw = getpwnam("cep-delegate");
	return pw != NULL ? pw->pw_uid : (uid_t)-1;
}

static int write_files(const cep_paths *p, const seed *s, cep_err *err)
{
	char dir[CEP_PATH_MAX];
	int rv = CEP_OK;
	if (s->yaml != NULL)
		rv = put(p->config, 0755, "cep.yaml", s->yaml, s->yaml_len,
		    0644, (uid_t)-1, err);
	if (rv == CEP_OK)
		rv = cep_files_path(dir, sizeof(dir), err, "%s/credentials",
		    p->config);
	if (rv == CEP_OK && s->token != NULL)
		rv = put(dir, 0700, "cp-token", s->token, s->token_len, 0600,
		    (uid_t)-1, err);
	if (rv == CEP_OK && s->ca != NULL)
		rv = put(dir, 0700, "cp-ca.crt", s->ca, s->ca_len, 0600,
		    (uid_t)-1, err);
	if (rv == CEP_OK)
		rv = cep_files_path(dir, sizeof(dir), err, "%s/connectors.d",
		    p->config);
	uid_t kube = kube_owner(p);
	for (size_t i = 0; rv == CEP_OK && i < s->n_conn; i++) {
		const seed_file *f = &s->conn[i];
		rv = put(dir, 0755, f->name, f->data, f->len,
		    f->secret ? 0600 : 0644, f->secret ? kube : (uid_t)-1, err);
	}
	/* sshd reads <config>/ssh/authorized_keys (the image's
	 * sshd_config.d); root's, StrictModes-clean */
	if (rv == CEP_OK && s->keys != NULL &&
	    (rv = cep_files_path(dir, sizeof(dir), err, "%s/ssh", p->config)) ==
	        CEP_OK)
		rv = put(dir, 0700, "authorized_keys", s->keys, s->keys_len,
		    0600, (uid_t)-1, err);
	return rv;
}

/* The settings through cepctl init, with the credential copies written
 * above as its files (init copies them onto themselves when installed). */
static int seed_init(const cep_paths *p, const seed *s, cepctl_init_result *res,
    const char *home, cep_err *err)
{
	char token[CEP_PATH_MAX], ca[CEP_PATH_MAX];
	cepctl_init_opts io = {.ca = CEPCTL_CA_KEEP,
	    .replace_config_keys = true};
	io.appliance = s->appliance[0] ? s->appliance : NULL;
	io.cp_url = s->url[0] ? s->url : NULL;
	io.cp_proxy = s->proxy[0] ? s->proxy : NULL;
	if (s->token != NULL) {
		if (cep_files_path(token, sizeof(token), err,
		        "%s/credentials/cp-token", p->config) != CEP_OK)
			return CEP_INTERNAL;
		io.cp_token = token;
	}
	if (s->ca != NULL) {
		if (cep_files_path(ca, sizeof(ca), err,
		        "%s/credentials/cp-ca.crt", p->config) != CEP_OK)
			return CEP_INTERNAL;
		io.cp_ca = ca;
	}
	return cepctl_init_run(home, &io, res, err);
}

static void say_seeded(const seed *s, const cepctl_init_result *r,
    const cep_paths *p)
{
	size_t kube = 0;
	for (size_t i = 0; i < s->n_conn; i++)
		kube += s->conn[i].secret;
	printf("seed %s: %s%s%s, control plane %s%s%s, %zu connector "
	       "files (%zu kubeconfigs), ssh keys %s\n",
	    s->dir, s->yaml ? "cep.yaml, " : "", "appliance ",
	    s->appliance[0] ? s->appliance : "(unchanged)",
	    s->url[0] ? s->url : "(none)", s->token ? ", token" : "",
	    s->ca ? ", CA" : "", s->n_conn, kube, s->keys ? "yes" : "no");
	printf("%s the CA (SHA-256 %s) in %s; credentials in %s/credentials\n",
	    r->ca_created ? "created" : "kept", r->fingerprint, r->pki,
	    p->config);
}

int cepctl_cmd_seed(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *dir = NULL;
	if (cepctl_one_arg(&o, argc, argv, "cepctl seed DIR", &dir) != 0)
		return CEPCTL_ERROR;
	cep_paths p;
	cep_err err;
	seed s = {.dir = dir};
	cepctl_init_result res;
	int rv = cep_paths_resolve(o.home, &p, &err);
	if (rv == CEP_OK)
		rv = seed_read(&p, &s, &err);
	if (rv == CEP_OK)
		rv = write_files(&p, &s, &err);
	if (rv == CEP_OK)
		rv = seed_init(&p, &s, &res, o.home, &err);
	if (rv == CEP_OK)
		say_seeded(&s, &res, &p);
	else
		fprintf(stderr, "cepctl seed: %s\n", err.msg);
	seed_free(&s);
	return rv == CEP_OK ? CEPCTL_OK : CEPCTL_ERROR;
}
