/*
 * cmd_kube.c - cepctl's Kubernetes commands, all offline from the
 * delegate (they read connectors.d and talk to the clusters directly):
 *
 *   connectors   each connector with its server, reachability and version;
 *                the clusters are asked concurrently with a bounded
 *                timeout, so one dead API server does not stall the list
 *   rbac         the ServiceAccount/Role/RoleBinding manifests the
 *                delegate and the runner need (lib/kube/kube_rbac.c's table)
 *   check        every delegate verb by SelfSubjectAccessReview; the
 *                runner's verbs are listed with the commands that verify
 *                them, because a review only answers for its caller
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd_common.h"
#include "connector.h"
#include "kube.h"
#include "kube_rbac.h"
#include "err.h"

/* How long `cepctl connectors` waits for one cluster. */
#define PROBE_TIMEOUT_MS 5000
#define MAX_TYPES 32

/* ---- loading ---- */

static int load_all(const cepctl_opts *o, const char *cmd, cep_connectors **cs)
{
	cep_paths p;
	cep_err err = {0};
	if (cep_paths_resolve(o->home, &p, &err) != CEP_OK ||
	    cep_connector_list_load(&p, cs, &err) != CEP_OK) {
		fprintf(stderr, "cepctl %s: %s\n", cmd, err.msg);
		return -1;
	}
	return 0;
}

static const cep_connector *find_one(const cep_connectors *cs, const char *cmd,
    const char *name)
{
	const cep_connector *c = cep_connector_list_find(cs, name);
	if (c != NULL)
		return c;
	fprintf(stderr, "cepctl %s: no connector \"%s\"; known:", cmd, name);
	for (size_t i = 0; i < cep_connector_list_count(cs); i++)
		fprintf(stderr, " %s", cep_connector_list_at(cs, i)->name);
	fprintf(stderr, "%s\n",
	    cep_connector_list_count(cs) ?
	        "" :
	        " none (connectors.d/ holds no *.yaml)");
	return NULL;
}

/* "a,b,c" -> types (pointing into buf). -1 after printing a bad type. */
static int split_types(const char *cmd, const char *list, char *buf,
    size_t blen, const char **types, size_t *n)
{
	*n = 0;
	if (list == NULL)
		return 0;
	snprintf(buf, blen, "%s", list);
	for (char *p = buf; *p != '\0' && *n < MAX_TYPES;) {
		size_t l = strcspn(p, ",");
		bool last = p[l] == '\0';
		p[l] = '\0';
		const cep_kube_perm *perms;
		cep_err err = {0};
		if (l > 0 &&
		    cep_kube_rbac_for_type(p, &perms, &err) != CEP_OK) {
			fprintf(stderr, "cepctl %s: --faults: %s\n", cmd,
			    err.msg);
			return -1;
		}
		if (l > 0)
			types[(*n)++] = p;
		p += l + (last ? 0 : 1);
	}
	return 0;
}

/* What rbac and check work on: the --faults types and the one connector
 * named. pick: 0 with c set (cs to free), -1 after saying what failed
 * (nothing to free). */
struct kube_pick {
	char buf[1024];
	const char *types[MAX_TYPES];
	size_t ntypes;
	cep_connectors *cs;
	const cep_connector *c;
};

static int pick(const cepctl_opts *o, const char *cmd, const char *faults,
    const char *name, struct kube_pick *k)
{
	k->cs = NULL;
	if (split_types(cmd, faults, k->buf, sizeof(k->buf), k->types,
	        &k->ntypes) != 0 ||
	    load_all(o, cmd, &k->cs) != 0)
		return -1;
	k->c = find_one(k->cs, cmd, name);
	if (k->c != NULL)
		return 0;
	cep_connector_list_free(k->cs);
	return -1;
}

static void join_ns(const cep_connector *c, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < c->n_ns && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? "," : "",
		    c->namespaces[i]);
		off += w > 0 ? (size_t)w : 0;
	}
}

/* ---- connectors: concurrent, bounded probes ---- */

struct probe {
	const cep_connector *c;
	pthread_t thread;
	bool started, done, reachable;
	char server[256], version[64], error[CEP_ERR_MSG_MAX];
};

struct probes {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n, ndone;
	struct probe *v;
};

struct probe_arg {
	struct probes *all;
	size_t i;
};

static void *probe_main(void *arg)
{
	struct probe_arg *pa = arg;
	struct probes *all = pa->all;
	size_t i = pa->i;
	free(pa);
	pthread_mutex_lock(&all->mu);
	struct probe r = all->v[i];
	pthread_mutex_unlock(&all->mu);
	cep_kube *k = NULL;
	cep_err err = {0};
	int rv = cep_connector_client(r.c, &k, &err);
	if (rv == CEP_OK) {
		snprintf(r.server, sizeof(r.server), "%s", cep_kube_server(k));
		int64_t t = r.c->request_timeout_ms;
		cep_kube_set_timeout(k,
		    t < PROBE_TIMEOUT_MS ? t : PROBE_TIMEOUT_MS);
		cep_kube_set_retries(k, 1);
		rv = cep_kube_version(k, r.version, sizeof(r.version), &err);
		cep_kube_free(k);
	}
	r.reachable = rv == CEP_OK;
	if (rv != CEP_OK)
		snprintf(r.error, sizeof(r.error), "%s", err.msg);
	pthread_mutex_lock(&all->mu);
	r.thread = all->v[i].thread;
	r.started = all->v[i].started;
	r.done = true;
	all->v[i] = r;
	all->ndone++;
	pthread_cond_signal(&all->cv);
	pthread_mutex_unlock(&all->mu);
	return NULL;
}

/*
 * Starts one thread per connector and waits for all of them, at most the
 * probe timeout plus a margin for the TLS handshake and thread start. A
 * cluster that has not answered by then is reported as such; its thread
 * is left to finish on its own (the client's timeout ends it), so *all is
 * then deliberately not freed. Returns true when every probe finished.
 */
static bool probe_all(struct probes *all)
{
	for (size_t i = 0; i < all->n; i++) {
		pthread_t t;
		struct probe_arg *pa = malloc(sizeof(*pa));
		if (pa != NULL) {
			pa->all = all;
			pa->i = i;
		}
		if (pa == NULL ||
		    pthread_create(&t, NULL, probe_main, pa) != 0) {
			free(pa);
			pthread_mutex_lock(&all->mu);
			snprintf(all->v[i].error, sizeof(all->v[i].error),
			    "cannot start a thread to ask it");
			all->v[i].done = true;
			all->ndone++;
			pthread_mutex_unlock(&all->mu);
			continue;
		}
		pthread_mutex_lock(&all->mu);
		all->v[i].thread = t;
		all->v[i].started = true;
		pthread_mutex_unlock(&all->mu);
	}
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += PROBE_TIMEOUT_MS / 1000 + 3;
	pthread_mutex_lock(&all->mu);
	while (all->ndone < all->n &&
	    pthread_cond_timedwait(&all->cv, &all->mu, &dl) == 0)
		;
	bool complete = all->ndone == all->n;
	pthread_mutex_unlock(&all->mu);
	/* done threads have nothing left but to return: join them; the
	 * others are let go */
	for (size_t i = 0; i < all->n; i++) {
		if (!all->v[i].started)
			continue;
		if (complete)
			pthread_join(all->v[i].thread, NULL);
		else
			pthread_detach(all->v[i].thread);
	}
	return complete;
}

static json_t *probe_json(const struct probe *r)
{
	const cep_connector *c = r->c;
	json_t *ns = json_array();
	for (size_t i = 0; i < c->n_ns; i++)
		json_array_append_new(ns, json_string(c->namespaces[i]));
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "name", c->name,
	    "file", c->file, "server", r->server, "context", c->context,
	    "namespaces", ns, "reachable", r->reachable);
	json_object_set_new(j, "version",
	    r->reachable ? json_string(r->version) : json_null());
	json_object_set_new(j, "error",
	    r->reachable ?
	        json_null() :
	        json_string(r->done ? r->error : "no answer in time"));
	return j;
}

static void print_probes(const cepctl_opts *o, const struct probes *all)
{
	if (o->output == CEPCTL_OUT_JSON) {
		json_t *arr = json_array();
		for (size_t i = 0; i < all->n; i++)
			json_array_append_new(arr, probe_json(&all->v[i]));
		json_dumpf(arr, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(arr);
		return;
	}
	if (all->n == 0) {
		printf("no connectors (add one as connectors.d/NAME.yaml: "
		       "see connectors.d/example.yaml.sample)\n");
		return;
	}
	printf("%-16s %-30s %-18s %-20s %-9s %s\n", "NAME", "SERVER", "CONTEXT",
	    "NAMESPACES", "REACHABLE", "VERSION");
	for (size_t i = 0; i < all->n; i++) {
		const struct probe *r = &all->v[i];
		char ns[256];
		join_ns(r->c, ns, sizeof(ns));
		printf("%-16s %-30s %-18s %-20s %-9s %s\n", r->c->name,
		    r->server[0] ? r->server : "-",
		    r->c->context[0] ? r->c->context : "(current)", ns,
		    r->reachable ? "yes" : "no",
		    r->reachable ? r->version : "-");
	}
	for (size_t i = 0; i < all->n; i++) {
		const struct probe *r = &all->v[i];
		if (!r->reachable)
			printf("%s: %s\n", r->c->name,
			    r->done ? r->error : "no answer in time");
	}
}

/* Exit 0 when every connector answered, 1 when one did not, 2 when the
 * connectors could not be loaded. */
int cepctl_cmd_connectors(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	int npos;
	cep_connectors *cs = NULL;
	if (cepctl_parse_args(&o, argc, argv, NULL, pos, 0, &npos) != 0 ||
	    load_all(&o, "connectors", &cs) != 0)
		return CEPCTL_ERROR;
	struct probes *all = calloc(1, sizeof(*all));
	size_t n = cep_connector_list_count(cs);
	if (all == NULL || (all->v = calloc(n + 1, sizeof(*all->v))) == NULL) {
		fprintf(stderr, "cepctl connectors: out of memory\n");
		free(all);
		cep_connector_list_free(cs);
		return CEPCTL_ERROR;
	}
	pthread_mutex_init(&all->mu, NULL);
	pthread_cond_init(&all->cv, NULL);
	all->n = n;
	for (size_t i = 0; i < n; i++)
		all->v[i].c = cep_connector_list_at(cs, i);
	bool complete = probe_all(all);
	pthread_mutex_lock(&all->mu);
	print_probes(&o, all);
	int rv = CEPCTL_OK;
	for (size_t i = 0; i < n; i++)
		if (!all->v[i].reachable)
			rv = CEPCTL_FAIL;
	pthread_mutex_unlock(&all->mu);
	if (complete) {
		pthread_mutex_destroy(&all->mu);
		pthread_cond_destroy(&all->cv);
		free(all->v);
		free(all);
		cep_connector_list_free(cs);
	}
	return rv;
}

/* ---- rbac ---- */

static const char rbac_usage[] =
    "usage: cepctl rbac CONNECTOR --namespace "
    "NS [--faults TYPE,...] [--who delegate|runner|both]\n";

static int ns_ok(const char *cmd, const cep_connector *c, const char *ns)
{
	char why[512];
	if (cep_connector_ns_allowed(c, ns, why, sizeof(why)))
		return 0;
	fprintf(stderr, "cepctl %s: %s\n", cmd, why);
	return -1;
}

static int print_manifests(const cep_connector *c, const char *who,
    const char *ns, const char **types, size_t ntypes)
{
	bool deleg = strcmp(who, "delegate") == 0 || strcmp(who, "both") == 0;
	bool runner = strcmp(who, "runner") == 0 || strcmp(who, "both") == 0;
	char *y = NULL;
	cep_err err = {0};
	if (deleg) {
		if (cep_kube_rbac_manifests("delegate", "cep-delegate", ns,
		        (const char *const *)types, ntypes, &y, &err) != CEP_OK)
			goto fail;
		fputs(y, stdout);
		free(y);
		y = NULL;
	}
	if (runner) {
		if (cep_kube_rbac_manifests("runner", c->service_account, ns,
		        (const char *const *)types, ntypes, &y, &err) != CEP_OK)
			goto fail;
		if (deleg)
			fputs("---\n", stdout);
		fputs(y, stdout);
		free(y);
	}
	return fflush(stdout) == 0 ? CEPCTL_OK : CEPCTL_ERROR;
fail:
	fprintf(stderr, "cepctl rbac: %s\n", err.msg);
	return CEPCTL_ERROR;
}

int cepctl_cmd_rbac(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *ns = NULL, *faults = NULL, *who = "both", *pos[1];
	const cepctl_flag flags[] = {{"--namespace", &ns}, {"-n", &ns},
	    {"--faults", &faults}, {"--who", &who}, {NULL, NULL}};
	int npos;
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 1, &npos) != 0)
		return CEPCTL_ERROR;
	if (npos != 1 || ns == NULL ||
	    (strcmp(who, "delegate") != 0 && strcmp(who, "runner") != 0 &&
	        strcmp(who, "both") != 0)) {
		fputs(rbac_usage, stderr);
		return CEPCTL_ERROR;
	}
	struct kube_pick k;
	if (pick(&o, "rbac", faults, pos[0], &k) != 0)
		return CEPCTL_ERROR;
	int rv = CEPCTL_ERROR;
	if (ns_ok("rbac", k.c, ns) == 0)
		rv = print_manifests(k.c, who, ns, k.types, k.ntypes);
	cep_connector_list_free(k.cs);
	return rv;
}

/* ---- check ---- */

static const char check_usage[] = "usage: cepctl check CONNECTOR "
                                  "[--namespace NS] [--faults TYPE,...]\n";

static size_t count_perms(const cep_kube_perm *p)
{
	size_t n = 0;
	while (p != NULL && p[n].verb != NULL)
		n++;
	return n;
}

/* Reviews perms in ns; prints "  <who>: ..." and the missing ones.
 * 0 all present, 1 some missing, 2 the reviews could not be made. */
static int check_perms(cep_kube *k, const char *who, const cep_kube_perm *perms,
    const char *ns)
{
	char *missing = NULL;
	size_t nm = 0;
	cep_err err = {0};
	if (cep_kube_rbac_check(k, perms, ns, &missing, &nm, &err) != CEP_OK) {
		fprintf(stderr, "cepctl check: namespace %s: %s\n", ns,
		    err.msg);
		return CEPCTL_ERROR;
	}
	size_t total = count_perms(perms);
	if (nm == 0) {
		printf("  %s: all %zu permissions present\n", who, total);
	} else {
		printf("  %s: %zu of %zu permissions MISSING:\n", who, nm,
		    total);
		for (char *l = missing; *l != '\0';) {
			size_t len = strcspn(l, "\n");
			printf("    %.*s\n", (int)len, l);
			l += len + (l[len] == '\n' ? 1 : 0);
		}
	}
	free(missing);
	return nm == 0 ? CEPCTL_OK : CEPCTL_FAIL;
}

/* The delegate's verbs, and for each listed fault type the verbs the
 * delegate needs to undo it if the runner dies: all reviewed by the API
 * server with the delegate's own credentials. */
static int check_delegate(cep_kube *k, const char *ns, const char **types,
    size_t ntypes)
{
	int rv = check_perms(k, "delegate", cep_kube_rbac_delegate(), ns);
	for (size_t i = 0; rv != CEPCTL_ERROR && i < ntypes; i++) {
		const cep_kube_perm *u = cep_kube_rbac_undo_for_type(types[i]);
		if (u == NULL)
			continue;
		char who[96];
		snprintf(who, sizeof(who), "delegate (undo of %s)", types[i]);
		int r = check_perms(k, who, u, ns);
		if (r != CEPCTL_OK)
			rv = r;
	}
	return rv;
}

/*
 * The runner's verbs belong to its service account, and a
 * SelfSubjectAccessReview made with the delegate's credentials answers
 * for the delegate only; asking for another subject (SubjectAccessReview)
 * needs a cluster-wide permission the delegate must not have. So this
 * lists what the runner needs and the commands an administrator runs to
 * verify and grant it, instead of pretending to have checked.
 */
static void runner_hint(const cep_connector *c, const char *ns,
    const char **types, size_t ntypes)
{
	printf("  runner (service account %s): not checkable with the "
	       "delegate's credentials; verify as a cluster administrator:\n",
	    c->service_account);
	size_t shown = 0;
	for (size_t i = 0; i < ntypes; i++) {
		const cep_kube_perm *p = NULL;
		cep_kube_rbac_for_type(types[i], &p, NULL);
		for (; p != NULL && p->verb != NULL; p++, shown++)
			printf("    kubectl auth can-i %s %s%s%s%s%s%s%s "
			       "--as system:serviceaccount:%s:%s   # %s\n",
			    p->verb, p->resource, p->group[0] ? "." : "",
			    p->group, p->sub ? " --subresource " : "",
			    p->sub ? p->sub : "", p->cluster ? "" : " -n ",
			    p->cluster ? "" : ns, ns, c->service_account,
			    types[i]);
	}
	char list[1024] = "";
	for (size_t i = 0, off = 0; i < ntypes && off < sizeof(list); i++) {
		int w = snprintf(list + off, sizeof(list) - off, "%s%s",
		    i ? "," : "", types[i]);
		off += w > 0 ? (size_t)w : 0;
	}
	if (shown == 0)
		printf(
		    "    (the listed types need no Kubernetes permissions)\n");
	else
		printf("  grant: cepctl rbac %s --namespace %s --who runner "
		       "--faults %s | kubectl apply -f -\n",
		    c->name, ns, list);
}

static int check_ns(cep_kube *k, const cep_connector *c, const char *ns,
    const char **types, size_t ntypes)
{
	printf("connector %s (%s), namespace %s\n", c->name, cep_kube_server(k),
	    ns);
	int rv = check_delegate(k, ns, types, ntypes);
	if (rv != CEPCTL_ERROR && ntypes > 0)
		runner_hint(c, ns, types, ntypes);
	return rv;
}

/* The namespaces to check: --namespace, else the connector's exact
 * names (a glob cannot be reviewed: it names no namespace). */
static size_t namespaces_of(const cep_connector *c, const char *ns,
    const char **out)
{
	if (ns != NULL) {
		out[0] = ns;
		return 1;
	}
	size_t n = 0;
	for (size_t i = 0; i < c->n_ns; i++) {
		if (strpbrk(c->namespaces[i], "*?[") == NULL)
			out[n++] = c->namespaces[i];
		else
			printf("(skipping the glob %s: check a namespace it "
			       "matches with --namespace)\n",
			    c->namespaces[i]);
	}
	return n;
}

static int run_check(const cep_connector *c, const char *ns, const char **types,
    size_t ntypes)
{
	if (ns != NULL && ns_ok("check", c, ns) != 0)
		return CEPCTL_ERROR;
	const char *nss[CEP_CONN_MAX_NS];
	size_t n = namespaces_of(c, ns, nss);
	if (n == 0) {
		fprintf(stderr,
		    "cepctl check: connector %s lists only globs: "
		    "name a namespace with --namespace\n",
		    c->name);
		return CEPCTL_ERROR;
	}
	cep_kube *k = NULL;
	cep_err err = {0};
	if (cep_connector_client(c, &k, &err) != CEP_OK) {
		fprintf(stderr, "cepctl check: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	int worst = CEPCTL_OK;
	for (size_t i = 0; i < n && worst != CEPCTL_ERROR; i++) {
		int rv = check_ns(k, c, nss[i], types, ntypes);
		if (rv > worst)
			worst = rv;
	}
	cep_kube_free(k);
	return worst;
}

/* Exit 0: every delegate verb present; 1: one missing (named);
 * 2: the connector or the cluster could not be used. */
int cepctl_cmd_check(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *ns = NULL, *faults = NULL, *pos[1];
	const cepctl_flag flags[] = {{"--namespace", &ns}, {"-n", &ns},
	    {"--faults", &faults}, {NULL, NULL}};
	int npos;
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 1, &npos) != 0)
		return CEPCTL_ERROR;
	if (npos != 1) {
		fputs(check_usage, stderr);
		return CEPCTL_ERROR;
	}
	struct kube_pick k;
	if (pick(&o, "check", faults, pos[0], &k) != 0)
		return CEPCTL_ERROR;
	int rv = run_check(k.c, ns, k.types, k.ntypes);
	cep_connector_list_free(k.cs);
	return rv;
}
