/*
 * demo_kube.c - `cepctl demo --kubernetes`: a pod-delete experiment against
 * the Kubernetes API test server (tests/kubeapi/kubeapi.py), no cluster
 * needed. It builds a temporary home, starts the test server (its kubelet
 * runs the runner image as the real cep-runner, in a private mount
 * namespace - the one reason this needs root), writes a connector, starts
 * cep-relay and cep-delegate, creates a Deployment `web` with 3 replicas,
 * and runs: delete one web pod every 3 s while a k8s probe watches the
 * deployment's ready replicas. The run's events are shown live beside what
 * happens in the cluster (runner Pod and Secret created and removed, web
 * pods deleted and replaced), and at the end every object carrying the cep
 * labels is listed: there must be none.
 */
#define _GNU_SOURCE
#include "demo_kube.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kube.h"
#include "kube_rbac.h"
#include "clock.h"
#include "files.h"
#include "util.h"

#define NS "demo"
#define CONNECTOR "demo-cluster"
#define RUNNER_IMAGE "cep.io/runner:demo"
#define RUNNER_SA "cep-runner"
#define CEP_SELECTOR "app.kubernetes.io/managed-by=cep"

/* The experiment. Fixed text but for nothing: the demo needs no file from
 * the source tree. The probe tolerates one pod missing at a time (a pod is
 * deleted every 3 s and replaced within about a second) and asks for 80%
 * of its checks, so a slow machine still passes. */
static const char demo_yaml[] =
    "# The cep Kubernetes demo: delete one pod of Deployment web every 3\n"
    "# seconds while a k8s probe watches the deployment's ready replicas.\n"
    "apiVersion: cep.io/v1\n"
    "kind: Experiment\n"
    "metadata:\n"
    "  name: demo-k8s-pod-delete\n"
    "spec:\n"
    "  target:\n"
    "    kind: kubernetes\n"
    "    connector: " CONNECTOR "\n"
    "    namespace: " NS "\n"
    "  duration: 12s\n"
    "  deadman: 10s\n"
    "  faults:\n"
    "    - name: delete-web-pod\n"
    "      type: pod-delete\n"
    "      labelSelector: app=web\n"
    "      count: 1\n"
    "      interval: 3s\n"
    "  probes:\n"
    "    - name: web-ready-replicas\n"
    "      type: k8s\n"
    "      mode: continuous\n"
    "      resource: deployments\n"
    "      # by label: the item's own `name` is the probe's name\n"
    "      labelSelector: app=web\n"
    "      check: field\n"
    "      field: status.readyReplicas\n"
    "      atLeast: 2\n"
    "      interval: 500ms\n"
    "      attempts: 3\n"
    "      minSuccess: 80%\n";

struct kdemo {
	cepctl_opts *o;
	const char *home, *bindir;
	char kdir[CEP_PATH_MAX]; /* the test server's folder */
	pid_t kubeapi, relay, delegate;
	cep_kube *admin;
	pthread_t th[2];
	int nth;
	atomic_bool stop;
	pthread_mutex_t mu; /* output lines and the table below */
	struct seen {
		char kind;
		char name[96];
		char phase[24];
	} seen[128];
	size_t nseen;
};

/* A build tree carries share/cep/kubeapi next to bin/ (a link to the
 * source tree's tests/kubeapi, made by appliance/CMakeLists.txt), an
 * installed cepctl /usr/share/cep/kubeapi when someone put it there: one
 * rule relative to the binary, and no build path compiled in. */
bool cepctl_demo_kubeapi_path(char *buf, size_t len)
{
	const char *env = getenv("CEP_KUBEAPI");
	if (env != NULL && env[0] != '\0') {
		snprintf(buf, len, "%s", env);
		return access(buf, R_OK) == 0;
	}
	char bindir[CEP_PATH_MAX];
	cep_err err;
	if (cepctl_bindir(bindir, sizeof(bindir), &err) == CEP_OK) {
		snprintf(buf, len, "%s/../share/cep/kubeapi/kubeapi.py",
		    bindir);
		/* the real path: kubeapi.py looks for its schemas
		 * (../../../shared) relative to where it is, not to the link */
		char real[PATH_MAX];
		if (access(buf, R_OK) == 0 && realpath(buf, real) != NULL) {
			snprintf(buf, len, "%s", real);
			return true;
		}
	}
	snprintf(buf, len, "/usr/share/cep/kubeapi/kubeapi.py");
	return access(buf, R_OK) == 0;
}

static void say(struct kdemo *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct kdemo *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&d->mu);
	fprintf(stdout, "   k8s  %s\n", line);
	fflush(stdout);
	pthread_mutex_unlock(&d->mu);
}

pid_t cepctl_demo_spawn(const char *file, char *const argv[], const char *home,
    const char *logname)
{
	char log[CEP_PATH_MAX + 32];
	snprintf(log, sizeof(log), "%s/log/%s.log", home, logname);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* whatever ends cepctl (a closed pipe, a kill) ends the demo's
	 * daemons too: the demo must leave nothing running */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd >= 0)
		dup2(nullfd, STDIN_FILENO);
	execvp(file, argv);
	_exit(127);
}

static pid_t spawn(const char *home, const char *logname, char *const argv[])
{
	return cepctl_demo_spawn(argv[0], argv, home, logname);
}

static void stop_child(const char *name, pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	int64_t until = cep_clock_mono_ms() + 10000;
	for (;;) {
		pid_t w = waitpid(*pid, NULL, WNOHANG);
		if (w == *pid || (w < 0 && errno == ECHILD))
			break;
		if (cep_clock_mono_ms() > until) {
			fprintf(stderr, "demo: %s did not stop; killing it\n",
			    name);
			kill(*pid, SIGKILL);
			waitpid(*pid, NULL, 0);
			break;
		}
		cep_clock_sleep_ms(50);
	}
	*pid = 0;
}

static bool exited(pid_t pid)
{
	return pid <= 0 || waitpid(pid, NULL, WNOHANG) != 0;
}

/* One rule per permission, exactly as kube_rbac.h lists them. */
static int add_rules(json_t *rules, const cep_kube_perm *p, const char *ns)
{
	for (; p != NULL && p->verb != NULL; p++) {
		char res[128];
		if (p->sub != NULL)
			snprintf(res, sizeof(res), "%s/%s", p->resource,
			    p->sub);
		else
			snprintf(res, sizeof(res), "%s", p->resource);
		json_t *r = json_pack("{s:[s],s:[s],s:[s],s:[s]}", "namespaces",
		    p->cluster ? "*" : ns, "groups", p->group, "resources", res,
		    "verbs", p->verb);
		if (r == NULL || json_array_append_new(rules, r) != 0)
			return -1;
	}
	return 0;
}

static int random_token(char *buf, size_t len, cep_err *err)
{
	unsigned char raw[16];
	if (cep_util_random(raw, sizeof(raw), err) != CEP_OK)
		return err->code;
	size_t n = 0;
	for (size_t i = 0; i < sizeof(raw) && n + 3 < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%02x", raw[i]);
	return CEP_OK;
}

/* The users file: admin (everything: the demo creates the deployment),
 * the delegate (exactly its pods/secrets verbs in NS) and the runner's
 * service account (exactly what pod-delete and the k8s probe need). */
static int write_users(const char *path, cep_err *err)
{
	const cep_kube_perm *pd = NULL, *pk = NULL;
	char tadmin[40], tdeleg[40];
	if (cep_kube_rbac_for_type("pod-delete", &pd, err) != CEP_OK ||
	    cep_kube_rbac_for_type("k8s", &pk, err) != CEP_OK ||
	    random_token(tadmin, sizeof(tadmin), err) != CEP_OK ||
	    random_token(tdeleg, sizeof(tdeleg), err) != CEP_OK)
		return err->code;
	json_t *radm = json_pack("[{s:[s],s:[s],s:[s],s:[s]}]", "namespaces",
	    "*", "groups", "*", "resources", "*", "verbs", "*");
	json_t *rdel = json_array(), *rrun = json_array();
	int bad = radm == NULL || rdel == NULL || rrun == NULL ||
	    add_rules(rdel, cep_kube_rbac_delegate(), NS) != 0 ||
	    add_rules(rrun, pd, NS) != 0 || add_rules(rrun, pk, NS) != 0;
	json_t *doc = bad ?
	    NULL :
	    json_pack("{s:[{s:s,s:s,s:o},{s:s,s:s,s:o},"
	              "{s:s,s:o}]}",
	        "users", "name", "admin", "token", tadmin, "rules", radm,
	        "name", "cep-delegate", "token", tdeleg, "rules", rdel, "name",
	        "system:serviceaccount:" NS ":" RUNNER_SA, "rules", rrun);
	if (doc == NULL) {
		if (bad) {
			json_decref(radm);
			json_decref(rdel);
			json_decref(rrun);
		}
		return cep_err_set(err, CEP_INTERNAL, "building %s failed",
		    path);
	}
	/* tokens inside: 0600 from the start */
	char *text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	if (text == NULL)
		return cep_err_set(err, CEP_INTERNAL, "encoding %s failed",
		    path);
	int rv = cep_files_write(path, text, strlen(text), 0600, err);
	free(text);
	return rv;
}

/* The server runs without its OpenAPI documents when they are not beside
 * the clone (../shared, outside the repository): it says so in kdir/notice,
 * and the demo shows that line rather than hiding it in kubeapi.log. */
static void say_notice(struct kdemo *d)
{
	char path[CEP_PATH_MAX + 16], line[256];
	snprintf(path, sizeof(path), "%s/notice", d->kdir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		say(d, "%s", line);
	}
	fclose(f);
}

static int start_kubeapi(struct kdemo *d, const char *script, cep_err *err)
{
	char users[CEP_PATH_MAX + 16], exec_img[CEP_PATH_MAX + 300];
	snprintf(d->kdir, sizeof(d->kdir), "%s/kubeapi", d->home);
	if (cep_files_mkdirs(d->kdir, 0700, err) != CEP_OK)
		return err->code;
	snprintf(users, sizeof(users), "%s/users.json", d->home);
	if (write_users(users, err) != CEP_OK)
		return err->code;
	snprintf(exec_img, sizeof(exec_img), "%s=%s/cep-runner", RUNNER_IMAGE,
	    d->bindir);
	char *argv[] = {"python3", (char *)script, "--dir", d->kdir, "--port",
	    "0", "--users", users, "--namespace", NS, "--nodes", "3",
	    "--exec-image", exec_img, "--openapi-optional", NULL};
	d->kubeapi = spawn(d->home, "kubeapi", argv);
	if (d->kubeapi < 0)
		return cep_err_errno(err, errno, "fork");
	char ready[CEP_PATH_MAX + 16];
	snprintf(ready, sizeof(ready), "%s/ready", d->kdir);
	for (int i = 0; i < 1200; i++) {
		if (access(ready, F_OK) == 0) {
			say_notice(d);
			return CEP_OK;
		}
		if (exited(d->kubeapi)) {
			d->kubeapi = 0;
			return cep_err_set(err, CEP_UNAVAILABLE,
			    "the Kubernetes "
			    "API test server (%s) exited at start; see %s/log/"
			    "kubeapi.log",
			    script, d->home);
		}
		cep_clock_sleep_ms(50);
	}
	return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
	    "the Kubernetes API "
	    "test server did not write %s within 60 s",
	    ready);
}

static int write_connector(struct kdemo *d, cep_err *err)
{
	char dir[CEP_PATH_MAX + 32], path[CEP_PATH_MAX + 64];
	char text[CEP_PATH_MAX + 1024];
	snprintf(dir, sizeof(dir), "%s/config/connectors.d", d->home);
	if (cep_files_mkdirs(dir, 0700, err) != CEP_OK)
		return err->code;
	int n = snprintf(text, sizeof(text),
	    "# The demo's cluster: the Kubernetes API test server.\n"
	    "kubeconfig: %s/kubeconfig-cep-delegate\n"
	    "namespaces: [" NS "]\n"
	    "runner:\n"
	    "  serviceAccount: " RUNNER_SA "\n"
	    "  image: " RUNNER_IMAGE "\n"
	    "  imagePullPolicy: IfNotPresent\n"
	    "timeouts: {request: 10s, launch: 1m}\n",
	    d->kdir);
	snprintf(path, sizeof(path), "%s/" CONNECTOR ".yaml", dir);
	return cep_files_write(path, text, (size_t)n, 0600, err);
}

/* Deployment web: 3 replicas of a pod the kubelet simply runs. */
static int create_web(struct kdemo *d, cep_err *err)
{
	json_t *dep = json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:i,s:{s:{s:s}},"
	                        "s:{s:{s:{s:s}},s:{s:[{s:s,s:s,s:[{s:i}]}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
	    "web", "labels", "app", "web", "spec", "replicas", 3, "selector",
	    "matchLabels", "app", "web", "template", "metadata", "labels",
	    "app", "web", "spec", "containers", "name", "web", "image",
	    "nginx:1.27", "ports", "containerPort", 80);
	if (dep == NULL)
		return cep_err_set(err, CEP_INTERNAL,
		    "building deployment web");
	int rv = cep_kube_create(d->admin, &cep_kube_deployments, NS, dep, NULL,
	    err);
	json_decref(dep);
	if (rv != CEP_OK)
		return rv;
	for (int i = 0; i < 600; i++) {
		json_t *obj = NULL;
		if (cep_kube_get(d->admin, &cep_kube_deployments, NS, "web",
		        &obj, err) == CEP_OK) {
			json_int_t ready = json_integer_value(
			    json_object_get(json_object_get(obj, "status"),
			        "readyReplicas"));
			json_decref(obj);
			if (ready >= 3)
				return CEP_OK;
		}
		cep_clock_sleep_ms(100);
	}
	return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
	    "deployment " NS "/web "
	    "did not get 3 ready replicas within 60 s");
}

/* The watch table: one line per change worth seeing, once per object and
 * phase (a re-listed watch delivers everything again as ADDED). */
static struct seen *seen_get(struct kdemo *d, char kind, const char *name,
    bool *isnew)
{
	for (size_t i = 0; i < d->nseen; i++)
		if (d->seen[i].kind == kind &&
		    strcmp(d->seen[i].name, name) == 0) {
			*isnew = false;
			return &d->seen[i];
		}
	*isnew = true;
	if (d->nseen == sizeof(d->seen) / sizeof(d->seen[0]))
		d->nseen = 0; /* a demo never gets here; stay bounded anyway */
	struct seen *s = &d->seen[d->nseen++];
	s->kind = kind;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->phase[0] = '\0';
	return s;
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : "";
}

static void pod_line(struct kdemo *d, const char *type, json_t *pod)
{
	const char *name = jstr(pod, "metadata", "name");
	const char *phase = jstr(pod, "status", "phase");
	bool runner = strncmp(name, "cep-runner-", 11) == 0;
	bool deleting = json_object_get(json_object_get(pod, "metadata"),
	                    "deletionTimestamp") != NULL;
	char state[24];
	snprintf(state, sizeof(state), "%s",
	    strcmp(type, "DELETED") == 0 ? "gone" :
	        deleting                 ? "deleting" :
	        phase[0]                 ? phase :
	                                   "Pending");
	pthread_mutex_lock(&d->mu);
	bool isnew;
	struct seen *s = seen_get(d, 'p', name, &isnew);
	bool changed = strcmp(s->phase, state) != 0;
	snprintf(s->phase, sizeof(s->phase), "%s", state);
	pthread_mutex_unlock(&d->mu);
	if (!changed)
		return;
	if (runner && isnew) {
		json_t *spec = json_object_get(pod, "spec");
		say(d,
		    "runner pod %s/%s created (activeDeadlineSeconds %lld, "
		    "restartPolicy %s)",
		    NS, name,
		    (long long)json_integer_value(
		        json_object_get(spec, "activeDeadlineSeconds")),
		    jstr(spec, "restartPolicy", NULL));
		if (strcmp(state, "Pending") == 0)
			return;
	}
	if (strcmp(state, "gone") == 0)
		say(d, "%s %s/%s removed", runner ? "runner pod" : "pod", NS,
		    name);
	else if (strcmp(state, "deleting") == 0)
		say(d, "%s %s/%s being deleted", runner ? "runner pod" : "pod",
		    NS, name);
	else
		say(d, "%s %s/%s %s", runner ? "runner pod" : "pod", NS, name,
		    state);
}

static int on_pod(void *arg, const char *type, json_t *obj)
{
	struct kdemo *d = arg;
	pod_line(d, type, obj);
	return atomic_load(&d->stop) ? 1 : 0;
}

static int on_secret(void *arg, const char *type, json_t *obj)
{
	struct kdemo *d = arg;
	const char *name = jstr(obj, "metadata", "name");
	bool gone = strcmp(type, "DELETED") == 0;
	pthread_mutex_lock(&d->mu);
	bool isnew;
	struct seen *s = seen_get(d, 's', name, &isnew);
	bool changed = isnew || (gone && strcmp(s->phase, "gone") != 0);
	if (gone)
		snprintf(s->phase, sizeof(s->phase), "gone");
	pthread_mutex_unlock(&d->mu);
	if (!changed)
		return atomic_load(&d->stop) ? 1 : 0;
	if (gone) {
		say(d, "secret %s/%s removed", NS, name);
	} else {
		json_t *own =
		    json_array_get(json_object_get(json_object_get(obj,
		                                       "metadata"),
		                       "ownerReferences"),
		        0);
		say(d, "secret %s/%s created (owned by %s %s)", NS, name,
		    own ? jstr(own, "kind", NULL) : "nobody",
		    own ? jstr(own, "name", NULL) : "");
	}
	return atomic_load(&d->stop) ? 1 : 0;
}

struct watch_arg {
	struct kdemo *d;
	const cep_kube_res *res;
};

static void *watch_main(void *p)
{
	struct watch_arg *w = p;
	struct kdemo *d = w->d;
	cep_kube_list_opts lo = {0};
	/* secrets: only the runner's (the namespace may hold others) */
	if (w->res == &cep_kube_secrets)
		lo.label_selector = CEP_SELECTOR;
	while (!atomic_load(&d->stop)) {
		cep_err err;
		cep_kube_watch_spec ws = {.res = w->res,
		    .ns = NS,
		    .list = &lo,
		    .timeout_ms = 600000,
		    .stop = &d->stop,
		    .fn = w->res == &cep_kube_pods ? on_pod : on_secret,
		    .arg = d};
		int rv = cep_kube_watch(d->admin, &ws, &err);
		if (rv != CEP_OK && rv != CEP_CANCELLED &&
		    rv != CEP_DEADLINE_EXCEEDED && !atomic_load(&d->stop)) {
			say(d, "watching %s: %s (retrying)", w->res->plural,
			    err.msg);
			cep_clock_sleep_ms(1000);
		}
	}
	free(w);
	return NULL;
}

static void start_watches(struct kdemo *d)
{
	const cep_kube_res *res[2] = {&cep_kube_pods, &cep_kube_secrets};
	for (int i = 0; i < 2; i++) {
		struct watch_arg *w = malloc(sizeof(*w));
		if (w == NULL)
			continue;
		*w = (struct watch_arg){d, res[i]};
		if (pthread_create(&d->th[d->nth], NULL, watch_main, w) == 0)
			d->nth++;
		else
			free(w);
	}
}

static void stop_watches(struct kdemo *d)
{
	atomic_store(&d->stop, true);
	for (int i = 0; i < d->nth; i++)
		pthread_join(d->th[i], NULL);
	d->nth = 0;
}

/* Every pod and secret carrying the cep label, in every namespace: the
 * count (-1 when the listing failed). Printed one by one. */
static int leftovers(struct kdemo *d)
{
	const cep_kube_res *res[2] = {&cep_kube_pods, &cep_kube_secrets};
	int total = 0;
	for (int i = 0; i < 2; i++) {
		cep_kube_list_opts lo = {.label_selector = CEP_SELECTOR};
		json_t *items = NULL;
		cep_err err;
		if (cep_kube_list(d->admin, res[i], NULL, &lo, &items, NULL, 0,
		        &err) != CEP_OK) {
			fprintf(stderr, "demo: listing %s: %s\n",
			    res[i]->plural, err.msg);
			return -1;
		}
		size_t j;
		json_t *it;
		json_array_foreach(items, j, it)
		{
			printf("   left: %s %s/%s\n", res[i]->kind,
			    jstr(it, "metadata", "namespace"),
			    jstr(it, "metadata", "name"));
			total++;
		}
		json_decref(items);
	}
	return total;
}

/* Removed objects are confirmed by the executor before the run is final,
 * but give the cluster's garbage collector a moment for what it owns. */
static int wait_no_leftovers(struct kdemo *d)
{
	int n = -1;
	for (int i = 0; i < 50; i++) {
		cep_kube_list_opts lo = {.label_selector = CEP_SELECTOR};
		json_t *p = NULL, *s = NULL;
		cep_err err;
		bool ok = cep_kube_list(d->admin, &cep_kube_pods, NULL, &lo, &p,
		              NULL, 0, &err) == CEP_OK &&
		    cep_kube_list(d->admin, &cep_kube_secrets, NULL, &lo, &s,
		        NULL, 0, &err) == CEP_OK;
		size_t cnt = ok ? json_array_size(p) + json_array_size(s) : 1;
		json_decref(p);
		json_decref(s);
		if (cnt == 0)
			break;
		cep_clock_sleep_ms(100);
	}
	printf("\nobjects carrying " CEP_SELECTOR " (pods, secrets, all "
	       "namespaces):\n");
	n = leftovers(d);
	if (n == 0)
		printf("   none: the run left nothing in the cluster\n");
	return n;
}

static int run_experiment(struct kdemo *d)
{
	cepctl_admin *a = NULL;
	cep_err err;
	d->o->home = d->home;
	if (cepctl_admin_open(d->o, &a, &err) != CEP_OK) {
		fprintf(stderr, "demo: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	int rv = cepctl_demo_submit_follow(d->o, a, demo_yaml, "demo-k8s.yaml",
	    20000);
	cepctl_admin_close(a);
	return rv;
}

static void start_daemons(struct kdemo *d)
{
	char relay_bin[CEP_PATH_MAX + 16], deleg_bin[CEP_PATH_MAX + 16];
	snprintf(relay_bin, sizeof(relay_bin), "%s/cep-relay", d->bindir);
	snprintf(deleg_bin, sizeof(deleg_bin), "%s/cep-delegate", d->bindir);
	char *ra[] = {relay_bin, "--home", (char *)d->home, NULL};
	char *da[] = {deleg_bin, "--home", (char *)d->home, NULL};
	d->relay = spawn(d->home, "relay", ra);
	d->delegate = spawn(d->home, "delegate", da);
}

static int setup(struct kdemo *d, const char *script)
{
	cep_err err;
	char url[64], path[CEP_PATH_MAX + 32];
	if (cepctl_demo_init_home(d->home, url, sizeof(url)) != 0)
		return -1;
	if (start_kubeapi(d, script, &err) != CEP_OK ||
	    write_connector(d, &err) != CEP_OK) {
		fprintf(stderr, "demo: %s\n", err.msg);
		return -1;
	}
	start_daemons(d);
	snprintf(path, sizeof(path), "%s/kubeconfig", d->kdir);
	if (cep_kube_from_kubeconfig(path, NULL, false, &d->admin, &err) !=
	        CEP_OK ||
	    create_web(d, &err) != CEP_OK) {
		fprintf(stderr, "demo: %s\n", err.msg);
		return -1;
	}
	printf(
	    "cep demo --kubernetes: appliance home %s\n"
	    "  cluster: the Kubernetes API test server (%s), %s\n"
	    "  connector %s: namespace " NS ", runner image " RUNNER_IMAGE
	    " (run by the test server's kubelet as %s/cep-runner)\n"
	    "  relay on %s; deployment " NS "/web has 3 ready replicas\n"
	    "  experiment: delete one pod labelled app=web every 3s while a k8s "
	    "probe checks the deployment's readyReplicas >= 2\n\n",
	    d->home, script, cep_kube_server(d->admin), CONNECTOR, d->bindir,
	    url);
	fflush(stdout);
	return 0;
}

static void teardown(struct kdemo *d)
{
	stop_watches(d);
	stop_child("cep-delegate", &d->delegate);
	stop_child("cep-relay", &d->relay);
	stop_child("the Kubernetes API test server", &d->kubeapi);
	cep_kube_free(d->admin);
	d->admin = NULL;
}

int cepctl_demo_kube_ready(char *script, size_t len)
{
	if (!cepctl_demo_kubeapi_path(script, len)) {
		const char *env = getenv("CEP_KUBEAPI");
		if (env != NULL && env[0] != '\0')
			fprintf(stderr,
			    "demo --kubernetes: the Kubernetes API test "
			    "server is missing: CEP_KUBEAPI=%s is not readable\n",
			    env);
		else
			fprintf(stderr,
			    "demo --kubernetes: the Kubernetes API test "
			    "server is missing (tried BINDIR/../share/cep/kubeapi/"
			    "kubeapi.py, /usr/share/cep/kubeapi/kubeapi.py); set "
			    "CEP_KUBEAPI to the tests/kubeapi/kubeapi.py of a cep "
			    "source tree\n");
		return -1;
	}
	if (geteuid() != 0) {
		fprintf(stderr,
		    "demo --kubernetes: must run as root: the test "
		    "server's kubelet runs the runner pod in its own mount namespace "
		    "(secret volumes at the pod's paths); the plain `cepctl demo` "
		    "needs no root\n");
		return -1;
	}
	return 0;
}

int cepctl_demo_kube(cepctl_opts *o, const char *home, const char *bindir)
{
	char script[CEP_PATH_MAX];
	if (cepctl_demo_kube_ready(script, sizeof(script)) != 0)
		return CEPCTL_ERROR;
	struct kdemo *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return CEPCTL_ERROR;
	d->o = o;
	d->home = home;
	d->bindir = bindir;
	pthread_mutex_init(&d->mu, NULL);
	int rv = CEPCTL_ERROR;
	if (setup(d, script) == 0) {
		start_watches(d);
		rv = run_experiment(d);
		/* the last removal events may trail the run's final state */
		int left = wait_no_leftovers(d);
		cep_clock_sleep_ms(300);
		if (left != 0) {
			fprintf(stderr,
			    "demo: %d object(s) carrying the cep labels "
			    "left in the cluster\n",
			    left < 0 ? 0 : left);
			rv = CEPCTL_ERROR;
		}
	}
	teardown(d);
	printf("demo: stopped relay, delegate and the Kubernetes API test "
	       "server\n");
	fflush(stdout);
	pthread_mutex_destroy(&d->mu);
	free(d);
	return rv;
}
