/*
 * kube_pod.c - the runner Pod and its Secret as JSON (see kube_pod.h).
 *
 * Why the pod looks the way it does (docs/kubernetes.md has the whole
 * object):
 * - restartPolicy Never: a runner that ended must not come back and act
 *   again; its end is the run's end.
 * - activeDeadlineSeconds = time to the identity's expiry: if the delegate
 *   dies and nobody cleans up, the cluster itself stops the runner no later
 *   than the moment its certificate would be refused anyway.
 * - non-root (65532), read-only root filesystem, no privilege escalation,
 *   every capability dropped, RuntimeDefault seccomp: the runner acts on
 *   the cluster through the API only; it needs none of these.
 * - a runner for node-level faults on a pod target is the exception: it
 *   must run on the target's node (nodeName), see the node's processes
 *   (hostPID) to find the container's, and hold the capabilities its
 *   faults need - as uid 0, because Kubernetes grants added capabilities
 *   to root only (no ambient capabilities for other users). Every other
 *   capability stays dropped; privileged is never set.
 * - the identity comes from the Secret, mounted read-only with mode 0400;
 *   the Secret is owned by the pod so the cluster collects it with the pod.
 * - connector labels and annotations are applied first, cep's own labels
 *   last, so a connector cannot relabel a runner out of cep's collection.
 */
#define _GNU_SOURCE
#include "kube_pod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int delegate_kpod_name(const char *run_id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "cep-runner-%s", run_id);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int delegate_kpod_cleanup_name(const char *run_id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "cep-cleanup-%s", run_id);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int delegate_kpod_selector(const char *appliance, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s=cep,%s=%s", CEP_KPOD_MANAGED_BY,
	    CEP_KPOD_APPLIANCE, appliance);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 (Secret data), malloc'd. */
static char *base64(const char *in, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)in;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* Sets data[key] = base64(val); wipes the intermediate copy. false: no
 * memory. */
static bool put_b64(json_t *data, const char *key, const char *val)
{
	size_t n = strlen(val);
	char *enc = base64(val, n);
	if (enc == NULL)
		return false;
	bool set = json_object_set_new(data, key, json_string(enc)) == 0;
	explicit_bzero(enc, strlen(enc));
	free(enc);
	return set;
}

/* Connector labels, then cep's (which win). */
static json_t *labels(const cep_connector *c, const cep_kpod *p)
{
	json_t *l = json_object();
	if (l == NULL)
		return NULL;
	if (c != NULL && json_is_object(c->labels))
		json_object_update(l, c->labels);
	json_object_set_new(l, CEP_KPOD_MANAGED_BY, json_string("cep"));
	json_object_set_new(l, CEP_KPOD_RUN_ID, json_string(p->run_id));
	json_object_set_new(l, CEP_KPOD_APPLIANCE, json_string(p->appliance));
	return l;
}

static json_t *metadata(const cep_connector *c, const cep_kpod *p)
{
	json_t *m = json_pack("{s:s, s:s, s:o}", "name", p->name, "namespace",
	    p->ns, "labels", labels(c, p));
	if (m != NULL && c != NULL && json_is_object(c->annotations) &&
	    json_object_size(c->annotations) > 0)
		json_object_set(m, "annotations", c->annotations);
	return m;
}

static json_t *env_var(const char *name, const char *value)
{
	return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static void add_proxy(json_t *env, const char *upper, const char *lower,
    const char *val)
{
	if (val[0] == '\0')
		return;
	json_array_append_new(env, env_var(upper, val));
	json_array_append_new(env, env_var(lower, val));
}

int delegate_kpod_targets(const cep_exp *e, cep_exec_pods *out, cep_err *err)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; e != NULL && i < cep_exp_nfaults(e); i++) {
		const cep_exp_item *it = cep_exp_fault(e, i);
		const char *pod = cep_exp_str(it, "pod");
		const char *node = cep_exp_str(it, "node");
		const char *nsel = cep_exp_str(it, "nodeSelector");
		bool on = node != NULL || nsel != NULL;
		if ((node != NULL &&
		        ((out->node[0] && strcmp(node, out->node) != 0) ||
		            out->node_sel[0])) ||
		    (nsel != NULL &&
		        ((out->node_sel[0] &&
		             strcmp(nsel, out->node_sel) != 0) ||
		            out->node[0])))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "node targets %s%s and %s%s: one runner runs on one "
			    "node, expected one experiment per node",
			    out->node[0] ? "" : "nodeSelector ",
			    out->node[0] ? out->node : out->node_sel,
			    node ? "" : "nodeSelector ", node ? node : nsel);
		const char *path = cep_exp_str(it, "path");
		bool io = strcmp(cep_exp_item_type(it), "io-stress") == 0;
		if (on && io && out->nodefs[0] != '\0' &&
		    strcmp(out->nodefs, path ? path : "/tmp") != 0)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "io-stress on node %s: two paths (%s, %s), expected "
			    "one directory of the node per run",
			    node ? node : nsel, out->nodefs, path);
		if (on && io)
			snprintf(out->nodefs, sizeof(out->nodefs), "%s",
			    path ? path : "/tmp");
		if (node != NULL)
			snprintf(out->node, sizeof(out->node), "%s", node);
		if (nsel != NULL)
			snprintf(out->node_sel, sizeof(out->node_sel), "%s",
			    nsel);
		if (on)
			out->caps |= delegate_kpod_caps_for(cep_exp_item_type(
			                                        it),
			    &out->cgroupfs);
		const char *sel = cep_exp_str(it, "labelSelector");
		const cep_exp_type_spec *ts = cep_exp_fault_spec(
		    cep_exp_item_type(it));
		if (pod == NULL &&
		    (sel == NULL || ts == NULL || !ts->pod_target))
			continue; /* (pod-delete has a selector too) */
		const char *ctr = cep_exp_str(it, "container");
		out->caps |= delegate_kpod_caps_for(cep_exp_item_type(it),
		    &out->cgroupfs);
		size_t j = 0;
		while (j < out->n &&
		    (strcmp(out->pod[j], pod ? pod : "") != 0 ||
		        strcmp(out->selector[j], pod ? "" : sel) != 0 ||
		        strcmp(out->container[j], ctr ? ctr : "") != 0))
			j++;
		int64_t cnt = pod ? 0 : cep_exp_int(it, "count"),
		        pct = pod ? 0 : cep_exp_int(it, "percentage");
		if (j < out->n) {
			if (cnt > out->count[j])
				out->count[j] = cnt;
			if (pct > out->percent[j])
				out->percent[j] = pct;
			continue;
		}
		if (out->n == CEP_EXEC_MAX_PODS)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "more than "
			    "%d pod targets in one run",
			    CEP_EXEC_MAX_PODS);
		snprintf(out->pod[j], sizeof(out->pod[j]), "%s",
		    pod ? pod : "");
		snprintf(out->selector[j], sizeof(out->selector[j]), "%s",
		    pod ? "" : sel);
		snprintf(out->container[j], sizeof(out->container[j]), "%s",
		    ctr ? ctr : "");
		out->count[j] = cnt;
		out->percent[j] = pct;
		out->n++;
	}
	/* the scheduler chooses the node: nothing says the pods are on it */
	if (out->node_sel[0] != '\0' && out->n > 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "a hog on a node chosen by nodeSelector %s and pod targets "
		    "in one run: one runner runs on one node, expected one "
		    "experiment for the node and one for the pods",
		    out->node_sel);
	return CEP_OK;
}

static bool on_node(const cep_kpod *p)
{
	return (p->node != NULL && p->node[0] != '\0') ||
	    (p->node_selector != NULL && p->node_selector[0] != '\0');
}

/* "k=v,k2=v2" as a nodeSelector map; NULL when malformed (validated
 * with the experiment, so only a bug or no memory gets here). */
static json_t *node_selector_map(const char *s)
{
	json_t *m = json_object();
	char k[320], v[64];
	while (m != NULL && *s != '\0') {
		s = cep_exp_node_label_next(s, k, sizeof(k), v, sizeof(v));
		if (s == NULL ||
		    json_object_set_new(m, k, json_string(v)) != 0) {
			json_decref(m);
			return NULL;
		}
	}
	return m;
}

static json_t *container_env(const cep_connector *c, const cep_kpod *p)
{
	json_t *env = json_array();
	if (env == NULL)
		return NULL;
	json_array_append_new(env, env_var("CEP_RUN_ID", p->run_id));
	json_array_append_new(env,
	    env_var("CEP_IDENTITY_DIR", CEP_KPOD_IDENTITY_DIR));
	/* From the Secret, like the identity: one source of truth. (A
	 * cleanup runner dials nothing.) */
	if (!p->cleanup)
		json_array_append_new(env,
		    json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "CEP_RELAY",
		        "valueFrom", "secretKeyRef", "name", p->name, "key",
		        "relay"));
	add_proxy(env, "HTTP_PROXY", "http_proxy", c->http_proxy);
	add_proxy(env, "HTTPS_PROXY", "https_proxy", c->https_proxy);
	add_proxy(env, "NO_PROXY", "no_proxy", c->no_proxy);
	if (!p->cleanup && p->cp_url != NULL && p->cp_url[0] != '\0') {
		json_array_append_new(env,
		    json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "CEP_CP_URL",
		        "valueFrom", "secretKeyRef", "name", p->name, "key",
		        "cp-url"));
		if (p->cp_ca_pem != NULL && p->cp_ca_pem[0] != '\0')
			json_array_append_new(env,
			    env_var("CEP_CP_CA_FILE",
			        CEP_KPOD_IDENTITY_DIR "/cp-ca.crt"));
		const char *px = p->cp_proxy != NULL && p->cp_proxy[0] != '\0' ?
		    p->cp_proxy :
		    c->https_proxy;
		if (px[0] != '\0')
			json_array_append_new(env, env_var("CEP_CP_PROXY", px));
	}
	/* the runner checks a pod target is still on its own node */
	if (on_node(p))
		json_array_append_new(env,
		    json_pack("{s:s, s:{s:{s:s}}}", "name", "CEP_NODE_NAME",
		        "valueFrom", "fieldRef", "fieldPath", "spec.nodeName"));
	return env;
}

static void set_quantity(json_t *obj, const char *key, const char *val)
{
	if (val[0] != '\0')
		json_object_set_new(obj, key, json_string(val));
}

static json_t *resources(const cep_connector *c)
{
	json_t *req = json_object(), *lim = json_object();
	set_quantity(req, "cpu", c->cpu_request);
	set_quantity(req, "memory", c->mem_request);
	set_quantity(lim, "cpu", c->cpu_limit);
	set_quantity(lim, "memory", c->mem_limit);
	json_t *r = json_object();
	if (json_object_size(req) > 0)
		json_object_set(r, "requests", req);
	if (json_object_size(lim) > 0)
		json_object_set(r, "limits", lim);
	json_decref(req);
	json_decref(lim);
	return r;
}

const char *delegate_kpod_cap_name(unsigned bit)
{
	return cep_caps_name(bit);
}

/* The table and why each capability: lib/proc/caps.c. */
unsigned delegate_kpod_caps_for(const char *type, bool *cgroupfs)
{
	unsigned caps = 0;
	return cep_caps_for(type, CEP_CAPS_POD, &caps, cgroupfs, NULL) ==
	        CEP_OK ?
	    caps :
	    0;
}

static json_t *container_security(const cep_kpod *p)
{
	if (!on_node(p))
		return json_pack(
		    "{s:b, s:i, s:i, s:b, s:b, s:{s:[s]}, s:{s:s}}",
		    "runAsNonRoot", 1, "runAsUser", CEP_KPOD_UID, "runAsGroup",
		    CEP_KPOD_UID, "readOnlyRootFilesystem", 1,
		    "allowPrivilegeEscalation", 0, "capabilities", "drop",
		    "ALL", "seccompProfile", "type", "RuntimeDefault");
	json_t *add = json_array();
	for (unsigned b = 1; b != 0 && delegate_kpod_cap_name(b) != NULL;
	     b <<= 1)
		if (p->caps & b)
			json_array_append_new(add,
			    json_string(delegate_kpod_cap_name(b)));
	return json_pack("{s:b, s:i, s:i, s:b, s:b, s:b, s:{s:[s], s:o}, "
	                 "s:{s:s}}",
	    "runAsNonRoot", 0, "runAsUser", 0, "runAsGroup", 0, "privileged", 0,
	    "readOnlyRootFilesystem", 1, "allowPrivilegeEscalation", 0,
	    "capabilities", "drop", "ALL", "add", add, "seccompProfile", "type",
	    "RuntimeDefault");
}

static json_t *container(const cep_connector *c, const cep_kpod *p)
{
	json_t *ct = json_pack("{s:s, s:s, s:o, s:o, s:o, s:[{s:s, s:s, s:b}]}",
	    "name", "runner", "image", c->image, "env", container_env(c, p),
	    "resources", resources(c), "securityContext", container_security(p),
	    "volumeMounts", "name", "identity", "mountPath",
	    CEP_KPOD_IDENTITY_DIR, "readOnly", 1);
	if (ct == NULL)
		return NULL;
	if (on_node(p) && p->cgroupfs)
		json_array_append_new(json_object_get(ct, "volumeMounts"),
		    json_pack("{s:s, s:s}", "name", "cgroupfs", "mountPath",
		        "/sys/fs/cgroup"));
	if (on_node(p) && p->nodefs != NULL && p->nodefs[0] != '\0')
		json_array_append_new(json_object_get(ct, "volumeMounts"),
		    json_pack("{s:s, s:s}", "name", "nodefs", "mountPath",
		        CEP_KPOD_NODEFS));
	if (c->pull_policy[0] != '\0')
		json_object_set_new(ct, "imagePullPolicy",
		    json_string(c->pull_policy));
	if (p->cleanup) {
		json_object_set_new(ct, "args",
		    json_pack("[s, s, s, s]", "--cleanup",
		        CEP_KPOD_CLEANUP_FILE, "--report",
		        CEP_KPOD_TERMINATION_LOG));
		json_object_set_new(ct, "terminationMessagePath",
		    json_string(CEP_KPOD_TERMINATION_LOG));
		json_object_set_new(ct, "terminationMessagePolicy",
		    json_string("File"));
	} else if (p->server_name != NULL && p->server_name[0] != '\0') {
		json_object_set_new(ct, "args",
		    json_pack("[s, s]", "--server-name", p->server_name));
	}
	return ct;
}

/* imagePullSecrets: [{name: x}]; a connector may hold plain names. */
static json_t *pull_secrets(const cep_connector *c)
{
	json_t *out = json_array(), *v;
	size_t i;
	if (out == NULL || !json_is_array(c->pull_secrets))
		return out;
	json_array_foreach(c->pull_secrets, i, v)
	{
		if (json_is_string(v))
			json_array_append_new(out,
			    json_pack("{s:s}", "name", json_string_value(v)));
		else if (json_is_object(v))
			json_array_append(out, v);
	}
	return out;
}

static void set_if_nonempty(json_t *obj, const char *key, json_t *v)
{
	if ((json_is_object(v) && json_object_size(v) > 0) ||
	    (json_is_array(v) && json_array_size(v) > 0))
		json_object_set(obj, key, v);
}

static json_t *pod_spec(const cep_connector *c, const cep_kpod *p)
{
	json_t *spec =
	    json_pack("{s:s, s:I, s:b, s:[o], s:[{s:s, s:{s:s, s:i}}],"
	              " s:{s:b, s:i, s:i, s:i, s:{s:s}}}",
	        "restartPolicy", "Never", "activeDeadlineSeconds",
	        (json_int_t)p->deadline_s, "automountServiceAccountToken", 1,
	        "containers", container(c, p), "volumes", "name", "identity",
	        "secret", "secretName", p->name, "defaultMode", 0400,
	        "securityContext", "runAsNonRoot", 1, "runAsUser", CEP_KPOD_UID,
	        "runAsGroup", CEP_KPOD_UID, "fsGroup", CEP_KPOD_UID,
	        "seccompProfile", "type", "RuntimeDefault");
	if (spec == NULL)
		return NULL;
	if (on_node(p)) {
		if (p->node != NULL && p->node[0] != '\0')
			json_object_set_new(spec, "nodeName",
			    json_string(p->node));
		else if (json_object_set_new(spec, "nodeSelector",
		             node_selector_map(p->node_selector)) != 0) {
			json_decref(spec);
			return NULL;
		}
		json_object_set_new(spec, "hostPID", json_true());
		json_t *sc = json_object_get(spec, "securityContext");
		json_object_set_new(sc, "runAsNonRoot", json_false());
		json_object_set_new(sc, "runAsUser", json_integer(0));
		json_object_set_new(sc, "runAsGroup", json_integer(0));
		/* root reads its 0400 identity as is; fsGroup would make the
		 * key group-readable and owned by the runner's own uid */
		json_object_del(sc, "fsGroup");
		if (p->cgroupfs)
			json_array_append_new(json_object_get(spec, "volumes"),
			    json_pack("{s:s, s:{s:s, s:s}}", "name", "cgroupfs",
			        "hostPath", "path", "/sys/fs/cgroup", "type",
			        "Directory"));
		if (p->nodefs != NULL && p->nodefs[0] != '\0')
			json_array_append_new(json_object_get(spec, "volumes"),
			    json_pack("{s:s, s:{s:s, s:s}}", "name", "nodefs",
			        "hostPath", "path", p->nodefs, "type",
			        "Directory"));
	}
	if (c->service_account[0] != '\0')
		json_object_set_new(spec, "serviceAccountName",
		    json_string(c->service_account));
	/* nodeName (or the hog's own nodeSelector) places it; the
	 * connector's nodeSelector, which the target's node may lack, would
	 * only make the kubelet refuse the pod */
	if (!on_node(p))
		set_if_nonempty(spec, "nodeSelector", c->node_selector);
	set_if_nonempty(spec, "tolerations", c->tolerations);
	json_t *ps = pull_secrets(c);
	set_if_nonempty(spec, "imagePullSecrets", ps);
	json_decref(ps);
	return spec;
}

json_t *delegate_kpod_pod(const cep_connector *c, const cep_kpod *p)
{
	if (c == NULL || p->name == NULL || p->ns == NULL ||
	    p->run_id == NULL || p->appliance == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind",
	    "Pod", "metadata", metadata(c, p), "spec", pod_spec(c, p));
}

/* An immutable Secret holding data (taken), owned by the pod pod_uid so
 * that the cluster collects it with the pod. */
static json_t *owned_secret(const cep_connector *c, const cep_kpod *p,
    const char *pod_uid, json_t *data)
{
	json_t *meta = metadata(c, p);
	json_t *owner = json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion",
	    "v1", "kind", "Pod", "name", p->name, "uid", pod_uid,
	    "blockOwnerDeletion", 0);
	if (meta == NULL || owner == NULL) {
		json_decref(data);
		json_decref(meta);
		json_decref(owner);
		return NULL;
	}
	json_object_set_new(meta, "ownerReferences", owner);
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "apiVersion", "v1",
	    "kind", "Secret", "type", "Opaque", "metadata", meta, "data", data,
	    "immutable", 1);
}

json_t *delegate_kpod_secret(const cep_connector *c, const cep_kpod *p,
    const char *pod_uid, const char *ca, const char *cert, const char *key)
{
	json_t *data = json_object();
	if (data == NULL)
		return NULL;
	bool ok = put_b64(data, "ca.crt", ca);
	ok = put_b64(data, "runner.crt", cert) && ok;
	ok = put_b64(data, "runner.key", key) && ok;
	ok = put_b64(data, "relay", p->relay) && ok;
	if (p->server_name != NULL && p->server_name[0] != '\0')
		ok = put_b64(data, "server-name", p->server_name) && ok;
	if (p->cp_url != NULL && p->cp_url[0] != '\0') {
		ok = put_b64(data, "cp-url", p->cp_url) && ok;
		if (p->cp_ca_pem != NULL && p->cp_ca_pem[0] != '\0')
			ok = put_b64(data, "cp-ca.crt", p->cp_ca_pem) && ok;
	}
	if (!ok) {
		json_decref(data);
		return NULL;
	}
	return owned_secret(c, p, pod_uid, data);
}

json_t *delegate_kpod_cleanup_secret(const cep_connector *c, const cep_kpod *p,
    const char *pod_uid, const char *recs_json)
{
	json_t *data = json_object();
	if (data == NULL || !put_b64(data, "cleanup.json", recs_json)) {
		json_decref(data);
		return NULL;
	}
	return owned_secret(c, p, pod_uid, data);
}

bool delegate_kpod_placement(const json_t *pod, char *node, size_t len,
    unsigned *caps, bool *cgroupfs)
{
	const json_t *spec = json_object_get(pod, "spec");
	const char *n = json_string_value(json_object_get(spec, "nodeName"));
	if (!json_is_true(json_object_get(spec, "hostPID")) || n == NULL ||
	    n[0] == '\0' || strlen(n) >= len)
		return false;
	unsigned bits = 0;
	const json_t
	    *add = json_object_get(
	        json_object_get(
	            json_object_get(json_array_get(json_object_get(spec,
	                                               "containers"),
	                                0),
	                "securityContext"),
	            "capabilities"),
	        "add"),
	    *v;
	size_t i;
	json_array_foreach(add, i, v) for (unsigned b = 1;
	                                   delegate_kpod_cap_name(b) != NULL;
	                                   b <<= 1) if (json_is_string(v) &&
	    strcmp(json_string_value(v), delegate_kpod_cap_name(b)) == 0)
	    bits |= b;
	bool cg = false;
	json_array_foreach(json_object_get(spec, "volumes"), i, v) cg = cg ||
	    (json_is_string(json_object_get(v, "name")) &&
	        strcmp(json_string_value(json_object_get(v, "name")),
	            "cgroupfs") == 0);
	snprintf(node, len, "%s", n);
	*caps = bits;
	*cgroupfs = cg;
	return true;
}
