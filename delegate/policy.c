/*
 * policy.c - the blast-radius policy, checked at Submit before anything is
 * created. Each refusal is FAILED_PRECONDITION, starts with "policy: ",
 * names the rule and the cep.yaml key an operator would change, so that a
 * refusal is never a mystery. docs/delegate.md lists every message.
 * What the rules need to know about the host (a pid's command name, a
 * namespace, a filesystem's size) comes from a host view (hostview.h):
 * read directly, or asked of cep-launcher when the delegate cannot see.
 */
#define _GNU_SOURCE
#include "policy.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostview.h"
#include "netns.h"
#include "err.h"

/* Parameters that name a host target, checked against the target lists. */
static const char *const target_keys[] = {"process", "cgroup", NULL};

static const char *match_any(const char (*pats)[128], size_t n,
    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], name, 0) == 0)
			return pats[i];
	return NULL;
}

/* A denied pattern the target could reach. The target may itself be a
 * glob ("process: demo-*"): it is refused when it matches the deny pattern
 * as text too, so "*" cannot slip past a deny of "sshd". */
static const char *denied_by(const cep_policy *p, const char *name)
{
	const char *hit = match_any(p->deny, p->n_deny, name);
	for (size_t i = 0; hit == NULL && i < p->n_deny; i++)
		if (fnmatch(name, p->deny[i], 0) == 0)
			hit = p->deny[i];
	return hit;
}

/* "2h", "30m", "1m30s", "1s500ms": the shortest form, as an operator
 * writes it in cep.yaml. */
static void fmt_duration(int64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < 4 && off < len; i++) {
		int64_t n = ms / units[i].ms;
		ms %= units[i].ms;
		if (n > 0) {
			int w = snprintf(buf + off, len - off, "%lld%s",
			    (long long)n, units[i].u);
			off += w > 0 ? (size_t)w : 0;
		}
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "0s");
}

/* A cgroup as policy patterns see it: relative to /sys/fs/cgroup, without
 * a leading slash ("system.slice/nginx.service"), however it was written. */
static const char *cgroup_rel(const char *cg)
{
	static const char root[] = "/sys/fs/cgroup";
	if (strncmp(cg, root, sizeof(root) - 1) == 0)
		cg += sizeof(root) - 1;
	while (*cg == '/')
		cg++;
	/* hybrid hosts: the v2 tree is mounted at /sys/fs/cgroup/unified */
	if (strncmp(cg, "unified/", 8) == 0)
		cg += 8;
	return cg;
}

static int check_target(const cep_policy *p, const char *fault,
    const char *what, const char *name, cep_err *err)
{
	if (strcmp(what, "cgroup") == 0)
		name = cgroup_rel(name);
	const char *hit = denied_by(p, name);
	if (hit != NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets %s \"%s\", denied by "
		    "policy.targets.deny \"%s\"",
		    fault, what, name, hit);
	if (p->n_allow > 0 && match_any(p->allow, p->n_allow, name) == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets %s \"%s\", not allowed by "
		    "policy.targets.allow",
		    fault, what, name);
	return CEP_OK;
}

/* A pid target: never init, never the appliance itself, and its command
 * name must pass the same lists as a process name would. */
static int check_pid(const cep_policy *p, cep_hostview *hv, const char *fault,
    int64_t pid, cep_err *err)
{
	char comm[64];
	cep_err e = {0};
	int rv;
	if (pid <= 1)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets pid %lld (init), never allowed",
		    fault, (long long)pid);
	if (pid == (int64_t)getpid() || pid == (int64_t)getppid())
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets pid %lld, the appliance's own "
		    "process",
		    fault, (long long)pid);
	if ((rv = delegate_hostview_comm(hv, pid, comm, sizeof(comm), &e)) ==
	    CEP_NOT_FOUND)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets pid %lld: no such process",
		    fault, (long long)pid);
	if (rv != CEP_OK)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets pid %lld: cannot check it: %s",
		    fault, (long long)pid, e.msg);
	if (strncmp(comm, "cep-", 4) == 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" targets pid %lld (%s), the appliance's "
		    "own process",
		    fault, (long long)pid, comm);
	char what[64];
	snprintf(what, sizeof(what), "pid %lld, process", (long long)pid);
	return check_target(p, fault, what, comm, err);
}

static int check_limits(const cep_policy *p, const cep_exp_item *it,
    const char *fault, cep_err *err)
{
	if (cep_exp_has(it, "mib") &&
	    strcmp(cep_exp_item_type(it), "disk-fill") != 0 &&
	    cep_exp_int(it, "mib") > p->max_memory_mib)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" (%s) asks mib %lld, exceeds "
		    "policy.maxMemoryMiB %d",
		    fault, cep_exp_item_type(it),
		    (long long)cep_exp_int(it, "mib"), p->max_memory_mib);
	if (cep_exp_has(it, "workers") &&
	    cep_exp_int(it, "workers") > p->max_cpu_workers)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" (%s) asks workers %lld, exceeds "
		    "policy.maxCpuWorkers %d",
		    fault, cep_exp_item_type(it),
		    (long long)cep_exp_int(it, "workers"), p->max_cpu_workers);
	return CEP_OK;
}

/* The filesystem the fill would land in, as its runner will reach it:
 * under the pid's root when it has one. A failure is named with the
 * directory as /proc shows it, whichever view read it. */
static int fill_fs_error(const cep_exp_item *it, const char *fault,
    const char *why, cep_err *err)
{
	char dir[4200];
	const char *path = cep_exp_str(it, "path");
	if (cep_exp_has(it, "pid"))
		snprintf(dir, sizeof(dir), "/proc/%lld/root%s",
		    (long long)cep_exp_int(it, "pid"), path);
	else
		snprintf(dir, sizeof(dir), "%s", path);
	return cep_err_set(err, CEP_FAILED_PRECONDITION,
	    "policy: fault \"%s\" (disk-fill): cannot check %.300s "
	    "against policy.maxDiskFillPercent: %s",
	    fault, dir, why);
}

/* No fill beyond policy.maxDiskFillPercent (a mib fill is checked
 * against the space free now). */
static int check_fill_share(const cep_policy *p, const cep_exp_item *it,
    const char *fault, const cep_hostview_fs *fs, cep_err *err)
{
	const char *path = cep_exp_str(it, "path");
	double used = (double)(fs->blocks - fs->bavail) * (double)fs->frsize;
	double total = (double)fs->blocks * (double)fs->frsize;
	double pct = cep_exp_has(it, "percent") ?
	    (double)cep_exp_int(it, "percent") :
	    100.0 * (used + (double)cep_exp_int(it, "mib") * 1048576.0) / total;
	if (pct > (double)p->max_disk_fill_percent)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" would fill %s to %.0f%%, exceeds "
		    "policy.maxDiskFillPercent %d",
		    fault, path, pct, p->max_disk_fill_percent);
	return CEP_OK;
}

/* No system directory (policy.diskFillDeny, also after resolving
 * symlinks on the host, as the host view sees them), then the share. */
static int check_disk_fill(const cep_policy *p, cep_hostview *hv,
    const cep_exp_item *it, const char *fault, cep_err *err)
{
	const char *path = cep_exp_str(it, "path");
	if (path == NULL)
		return CEP_OK; /* the schema requires it */
	cep_hostview_fs *fs = malloc(sizeof(*fs));
	if (fs == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	cep_err e = {0};
	int64_t pid = cep_exp_has(it, "pid") ? cep_exp_int(it, "pid") : 0;
	int rv = delegate_hostview_fs_of(hv, pid, path, fs, &e);
	if (rv == CEP_OK && fs->blocks == 0)
		rv = cep_err_set(&e, CEP_FAILED_PRECONDITION,
		    "no blocks (not "
		    "a disk filesystem)");
	const char *hit = match_any(p->fill_deny, p->n_fill_deny, path);
	if (hit == NULL && fs->real[0] != '\0')
		hit = match_any(p->fill_deny, p->n_fill_deny, fs->real);
	if (hit != NULL)
		rv = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" fills %s, denied by "
		    "policy.diskFillDeny \"%s\"",
		    fault, path, hit);
	else if (rv != CEP_OK)
		rv = fill_fs_error(it, fault, e.msg, err);
	else
		rv = check_fill_share(p, it, fault, fs, err);
	free(fs);
	return rv;
}

/* The namespace rule for a resolved identity (policy.h). The host's is
 * pid 1's and the appliance's own: on the host they are one, and where
 * pid 1's cannot be read (a root without ptrace over init) the
 * appliance's own is all that is known of it. */
static int netns_rule(const cep_policy *p, const char *fault, const char *type,
    bool is_host, cep_err *err)
{
	if (!is_host || p->allow_host_netns)
		return CEP_OK;
	return cep_err_set(err, CEP_FAILED_PRECONDITION,
	    "policy: fault \"%s\" (%s) targets the host's network namespace "
	    "(pid 1's or the appliance's own), refused while "
	    "policy.network.allowHostNetns is false",
	    fault, type);
}

int delegate_policy_check_netns_id(const cep_policy *p, const char *fault,
    const char *type, const cep_netns_id *id, cep_err *err)
{
	return netns_rule(p, fault, type, cep_netns_is_host(id), err);
}

/* Network faults (docs/faults-network.md): the host's network namespace
 * (and the appliance's own) only with policy.network.allowHostNetns - a
 * partition there could cut the appliance off from its runners. The
 * namespace is resolved as the runner will resolve it (lib/target/netns.c); a
 * target that does not resolve now is refused here (a pid must exist at
 * submission, check_pid), and the runner checks again when it injects. */
static int check_netns(const cep_policy *p, cep_hostview *hv,
    const cep_exp_item *it, const char *fault, cep_err *err)
{
	const char *type = cep_exp_item_type(it);
	if (strncmp(type, "network-", 8) != 0 && strcmp(type, "dns-error") != 0)
		return CEP_OK;
	cep_netns_id id;
	bool is_host = false;
	cep_err e = {0};
	int64_t pid = cep_exp_has(it, "pid") ? cep_exp_int(it, "pid") : 0;
	const char *ns = cep_exp_has(it, "netns") ? cep_exp_str(it, "netns") :
	                                            NULL;
	if (delegate_hostview_netns(hv, pid, ns, &id, &is_host, &e) != CEP_OK)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: fault \"%s\" (%s): target network namespace: %s",
		    fault, type, e.msg);
	return netns_rule(p, fault, type, is_host, err);
}

static int check_fault(const cep_policy *p, cep_hostview *hv,
    const cep_exp_item *it, cep_err *err)
{
	const char *fault = cep_exp_item_name(it);
	int rv = check_limits(p, it, fault, err);
	if (rv == CEP_OK)
		rv = check_netns(p, hv, it, fault, err);
	if (rv == CEP_OK && strcmp(cep_exp_item_type(it), "disk-fill") == 0)
		rv = check_disk_fill(p, hv, it, fault, err);
	if (rv != CEP_OK)
		return rv;
	for (size_t k = 0; target_keys[k] != NULL; k++) {
		const char *name = cep_exp_str(it, target_keys[k]);
		if (name != NULL && cep_exp_has(it, target_keys[k]) &&
		    (rv = check_target(p, fault, target_keys[k], name, err)))
			return rv;
	}
	if (cep_exp_has(it, "pid"))
		return check_pid(p, hv, fault, cep_exp_int(it, "pid"), err);
	return CEP_OK;
}

/* Kubernetes targets: cep.yaml's policy.namespaces.deny, then the
 * connector (it must exist and allow the namespace; kube-system and the
 * appliance's namespace only when listed by name). All before any object
 * exists in any cluster. */
static int check_kubernetes(const cep_policy *p, const cep_connectors *cs,
    const cep_exp *e, cep_err *err)
{
	const char *ns = cep_exp_namespace(e) ? cep_exp_namespace(e) : "";
	const char *name = cep_exp_connector(e) ? cep_exp_connector(e) : "";
	const char *hit = match_any(p->ns_deny, p->n_ns_deny, ns);
	if (hit != NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: namespace \"%s\" denied by policy.namespaces.deny "
		    "\"%s\"",
		    ns, hit);
	const cep_connector *c = cs ? cep_connector_list_find(cs, name) : NULL;
	if (c == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: no connector \"%s\" for kubernetes targets "
		    "(connectors.d/%s.yaml does not exist; %zu connector(s) "
		    "configured)",
		    name, name, cs ? cep_connector_list_count(cs) : 0);
	char why[300] = "";
	if (!cep_connector_ns_allowed(c, ns, why, sizeof(why)))
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: namespace \"%s\" not allowed by connector \"%s\" "
		    "(%s, key namespaces): %s",
		    ns, name, c->file, why);
	return CEP_OK;
}

int delegate_policy_check_active(const cep_policy *p, size_t active_runs,
    cep_err *err)
{
	if (active_runs >=
	    (size_t)(p->max_concurrent_runs < 0 ? 0 : p->max_concurrent_runs))
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: %zu runs active, policy.maxConcurrentRuns is %d",
		    active_runs, p->max_concurrent_runs);
	return CEP_OK;
}

int delegate_policy_check(const cep_policy *p, const cep_exp *e,
    size_t active_runs, cep_err *err)
{
	return delegate_policy_check_conn(p, NULL, e, active_runs, err);
}

int delegate_policy_check_conn(const cep_policy *p, const cep_connectors *cs,
    const cep_exp *e, size_t active_runs, cep_err *err)
{
	return delegate_policy_check_host(p, cs, NULL, e, active_runs, err);
}

int delegate_policy_check_host(const cep_policy *p, const cep_connectors *cs,
    cep_hostview *hv, const cep_exp *e, size_t active_runs, cep_err *err)
{
	if (hv == NULL)
		hv = delegate_hostview_direct();
	const char *kind = cep_exp_target_kind(e);
	bool kube = kind != NULL && strcmp(kind, "kubernetes") == 0;
	int rv;
	if (kube && (rv = check_kubernetes(p, cs, e, err)) != CEP_OK)
		return rv;
	if (cep_exp_duration_ms(e) > p->max_duration_ms) {
		char have[32], max[32];
		fmt_duration(cep_exp_duration_ms(e), have, sizeof(have));
		fmt_duration(p->max_duration_ms, max, sizeof(max));
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "policy: duration %s exceeds policy.maxDuration %s", have,
		    max);
	}
	if ((rv = delegate_policy_check_active(p, active_runs, err)) != CEP_OK)
		return rv;
	/* Host-fault rules (processes, cgroups, pids, network namespaces,
	 * disk) are about the appliance's host; a kubernetes runner acts
	 * through the API in its namespace only. */
	for (size_t i = 0; !kube && i < cep_exp_nfaults(e); i++) {
		rv = check_fault(p, hv, cep_exp_fault(e, i), err);
		if (rv != CEP_OK)
			return rv;
	}
	/* ...except a hog on a node: it burns the node's own resources,
	 * outside every pod's limits, so the host hogs' caps apply */
	for (size_t i = 0; kube && i < cep_exp_nfaults(e); i++) {
		const cep_exp_item *it = cep_exp_fault(e, i);
		if ((cep_exp_has(it, "node") ||
		        cep_exp_has(it, "nodeSelector")) &&
		    (rv = check_limits(p, it, cep_exp_item_name(it), err)) !=
		        CEP_OK)
			return rv;
	}
	return CEP_OK;
}
