/* fault_target.c - targets of the resource faults (see fault_target.h). */
#define _GNU_SOURCE
#include "fault_target.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctrpid.h"
#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "podtarget.h"
#include "undo.h"

/* Where the runner looks for the container's processes: the host's /proc
 * (the runner pod has hostPID). */
#define PROC_ROOT "/proc"

/* The pod a fault with labelSelector acts on now (engine.c sets it
 * around each call on one chosen pod), and what the last pod read said. */
static char cur_pod[254];
static cep_podtarget last;

void runner_fault_use_pod(const char *pod)
{
	snprintf(cur_pod, sizeof(cur_pod), "%s", pod ? pod : "");
	memset(&last, 0, sizeof(last));
}

void runner_fault_pod_undo(json_t *undo)
{
	if (cur_pod[0] == '\0' || undo == NULL || last.node[0] == '\0')
		return;
	json_object_set_new(undo, "pod", json_string(cur_pod));
	json_object_set_new(undo, "node", json_string(last.node));
	json_object_set_new(undo, "container", json_string(last.container));
}

static int pod_pid(const char *pod, const char *container, int64_t *pid,
    cep_err *err)
{
	cep_kube *k;
	char ns[254];
	json_t *obj = NULL;
	cep_podtarget t;
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	if (rc == CEP_OK)
		rc = cep_kube_get(k, &cep_kube_pods, ns, pod, &obj, err);
	if (rc == CEP_OK)
		rc = cep_podtarget_read(obj, container, &t, err);
	json_decref(obj);
	if (rc != CEP_OK)
		return rc;
	last = t;
	const char *node = getenv("CEP_NODE_NAME");
	if (node != NULL && node[0] != '\0' && strcmp(node, t.node) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "pod %s runs "
		    "on node %s, this runner on %s (the pod moved after the "
		    "runner was placed)",
		    pod, t.node, node);
	char id[CEP_CTRPID_ID_LEN + 1], cg[4096];
	pid_t p = 0;
	rc = cep_ctrpid_parse_id(t.container_id, id, sizeof(id), NULL, err);
	if (rc == CEP_OK)
		rc = cep_ctrpid_find(PROC_ROOT, id, &p, cg, sizeof(cg), err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "pod %s container %s", pod,
		    t.container);
	*pid = p;
	return CEP_OK;
}

int runner_fault_target_pid(const cep_exp_item *it, int64_t *pid, cep_err *err)
{
	const char *pod = runner_param_str(it, "pod", NULL);
	*pid = runner_param_int(it, "pid", 0);
	if (cep_exp_has(it, "labelSelector")) {
		if (cur_pod[0] == '\0')
			return cep_err_set(err, CEP_INTERNAL,
			    "%s: labelSelector "
			    "without a chosen pod",
			    cep_exp_item_type(it));
		pod = cur_pod;
	}
	if (pod == NULL)
		return CEP_OK;
	int rc = pod_pid(pod, runner_param_str(it, "container", NULL), pid,
	    err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "%s", cep_exp_item_type(it));
	return CEP_OK;
}

int runner_fault_node_cgroup(const cep_exp_item *it, char *dir, size_t len,
    cep_err *err)
{
	const char *node = runner_param_str(it, "node", NULL);
	const char *sel = runner_param_str(it, "nodeSelector", NULL);
	const char *here = getenv("CEP_NODE_NAME");
	const char *name = cep_exp_item_name(it);
	char root[64];
	dir[0] = '\0';
	if (node == NULL && sel == NULL)
		return CEP_OK;
	/* the scheduler placed this runner on a node of the selector's */
	if (node == NULL && (here == NULL || here[0] == '\0'))
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "nodeSelector %s: this runner does not know its node "
		    "(no CEP_NODE_NAME): it runs in a Pod the delegate made",
		    sel);
	if (node == NULL)
		node = here;
	/* the delegate placed this runner on the node and said so */
	if (here == NULL || strcmp(here, node) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "node %s: this runner runs on %s, not on the node named",
		    node, here != NULL && here[0] ? here : "no known node");
	int rc = cep_target_cgroup2_root(root, sizeof(root), err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "node %s", node);
	snprintf(dir, len, "%s/cep-node-%s-%s", root, runner_fault_run_id(),
	    name != NULL ? name : "");
	if (!cep_undo_cgroup_name_ok(dir, runner_fault_run_id()))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "node %s: no cgroup "
		    "name from run \"%s\" and fault \"%s\"",
		    node, runner_fault_run_id(), name ? name : "");
	return CEP_OK;
}

/* A node target: the fault's own cgroup, made here (describe and inject
 * both open it; the revert or the cleanup runner removes it). */
static int node_open(const char *dir, cep_target **t, cep_err *err)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return cep_err_set(err, CEP_INTERNAL, "creating cgroup %s: %s",
		    dir, strerror(errno));
	return cep_target_resolve(0, dir, t, err);
}

bool runner_fault_on_node(const cep_exp_item *it)
{
	return runner_param_str(it, "node", NULL) != NULL ||
	    runner_param_str(it, "nodeSelector", NULL) != NULL;
}

const char *runner_fault_hog_mechanism(const cep_exp_item *it)
{
	return runner_fault_on_node(it) ? "node-cgroup" : "child-process";
}

int runner_fault_node_remove(const char *dir, cep_err *err)
{
	if (dir == NULL || dir[0] == '\0')
		return CEP_OK;
	return cep_undo_cgroup_remove(dir, 0, err);
}

int runner_fault_target_open(const cep_exp_item *it, const char *fault,
    cep_target **t, cep_err *err)
{
	int64_t pid;
	const char *cg = runner_param_str(it, "cgroup", NULL);
	char dir[512];
	*t = NULL;
	int nrc = runner_fault_node_cgroup(it, dir, sizeof(dir), err);
	if (nrc == CEP_OK && dir[0] != '\0')
		nrc = node_open(dir, t, err);
	if (nrc != CEP_OK || dir[0] != '\0')
		return nrc == CEP_OK ? CEP_OK : cep_err_wrap(err, "%s", fault);
	int rc = runner_fault_target_pid(it, &pid, err);
	if (rc != CEP_OK)
		return rc;
	if (pid <= 0 && cg == NULL)
		return CEP_OK;
	if (pid > 0 && cg != NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: both pid and "
		    "cgroup given, expected at most one target",
		    fault);
	rc = cep_target_resolve(pid, cg, t, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "%s", fault);
	return CEP_OK;
}

void runner_fault_target_text(const cep_target *t, char *buf, size_t len)
{
	if (t == NULL) {
		snprintf(buf, len, "on the runner's host");
		return;
	}
	const char *cg = cep_target_cgroup(t);
	if (cep_target_pid(t) == 0 && strstr(cg, "/cep-node-") != NULL)
		snprintf(buf, len, "on node %s in cgroup %.300s",
		    getenv("CEP_NODE_NAME") ? getenv("CEP_NODE_NAME") : "?",
		    cg);
	else if (cep_target_pid(t) > 0)
		snprintf(buf, len, "in the cgroups of pid %d (%.200s%s)",
		    (int)cep_target_pid(t), cg[0] ? cg : "v1 only",
		    cep_target_nv1(t) > 0 ? " + v1" : "");
	else
		snprintf(buf, len, "in cgroup %.300s", cg);
}

void runner_fault_target_undo(const cep_target *t, json_t *undo)
{
	if (t == NULL || undo == NULL)
		return;
	json_object_set_new(undo, "target", json_string(cep_target_name(t)));
	json_object_set_new(undo, "cgroup", json_string(cep_target_cgroup(t)));
	json_object_set_new(undo, "cgroup_ino",
	    json_integer((json_int_t)cep_target_cgroup_ino(t)));
}

typedef struct gated {
	int gate[2];
	void (*body)(const void *);
	const void *arg;
} gated;

/* Child: wait for the parent's go (it has moved us by then); EOF means
 * the parent gave up on us. Async-signal-safe calls only. */
static void gated_body(const void *arg)
{
	const gated *g = arg;
	char c;
	close(g->gate[1]);
	ssize_t n;
	do
		n = read(g->gate[0], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(1);
	close(g->gate[0]);
	g->body(g->arg);
}

int runner_fault_spawn_in(const cep_target *t, const char *comm,
    void (*body)(const void *), const void *arg, pid_t *pid, cep_err *err)
{
	if (t == NULL)
		return runner_fault_spawn_worker(comm, body, arg, pid, err);
	gated g = {.body = body, .arg = arg};
	if (pipe2(g.gate, O_CLOEXEC) != 0)
		return cep_err_errno(err, errno, "pipe for a fault worker");
	int rc = runner_fault_spawn_worker(comm, gated_body, &g, pid, err);
	close(g.gate[0]);
	if (rc == CEP_OK) {
		rc = cep_target_join(t, *pid, err);
		if (rc == CEP_OK && write(g.gate[1], "g", 1) != 1)
			rc = cep_err_errno(err, errno,
			    "starting a fault worker");
		if (rc != CEP_OK)
			runner_fault_kill_workers(pid, 1, NULL);
	}
	close(g.gate[1]);
	return rc;
}

bool runner_fault_path_ok(const char *path)
{
	if (path == NULL || path[0] != '/')
		return false;
	for (const char *s = path; *s != '\0';) {
		while (*s == '/')
			s++;
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
	}
	return true;
}

int runner_fault_hog_describe(const cep_exp_item *it, const char *fault,
    const char *comm, const char *what, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	cep_target *t;
	int rc = runner_fault_target_open(it, fault, &t, err);
	if (rc != CEP_OK)
		return rc;
	char where[400];
	runner_fault_target_text(t, where, sizeof(where));
	snprintf(target, tlen, "%s %s", what, where);
	*undo = json_pack("{s:i, s:s}", "runner_pid", (json_int_t)getpid(),
	    "comm", comm);
	runner_fault_target_undo(t, *undo);
	cep_target_free(t);
	return CEP_OK;
}
