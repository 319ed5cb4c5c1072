/*
 * exp_schema.c - the fault and probe types an experiment may use, as data.
 *
 * Each type lists its parameters: kind, bounds, default, allowed values.
 * exp.c interprets this table (parsing, defaults, messages); runners and
 * the delegate read the validated values by key. To add a fault type
 * add a params array and one line in fault_types[] (with .target when
 * the type only works on one kind of target) - nothing else in the model
 * changes. Keep the docs
 * in docs/experiments.md in step with this file.
 */
#include <stddef.h>
#include <string.h>

#include "exp.h"

#define SEC 1000
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
/* the duration parser's own limit: "no upper bound" in messages */
#define UNBOUNDED (366LL * 24 * HOUR)

static const char *const signals[] = {"SIGKILL", "SIGTERM", "SIGINT", "SIGHUP",
    "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT", NULL};
static const char *const probe_modes[] = {"start-of-test", "end-of-test",
    "edge", "continuous", "on-chaos", NULL};
static const char *const http_methods[] = {"GET", "HEAD", "POST", NULL};

/* The tables below are laid out by hand, several fields a line:
 * clang-format 14 puts every designated initializer of a wrapped entry on
 * a line of its own, which would triple them. */
/* clang-format off */

/* ---- faults ---- */

static const cep_exp_param_spec process_kill[] = {
	{.key = "process", .kind = CEP_PARAM_STRING, .min = 1, .max = 255,
	    .doc = "glob on the process name (/proc/PID/comm)"},
	{.key = "pid", .kind = CEP_PARAM_INT, .min = 2, .max = 4194304,
	    .doc = "one process id"},
	{.key = "cgroup", .kind = CEP_PARAM_STRING, .min = 1, .max = 1024,
	    .format = CEP_FMT_CGROUP,
	    .doc = "every process of a cgroup v2 (absolute under "
		   "/sys/fs/cgroup, or relative to it)"},
	{.key = "signal", .kind = CEP_PARAM_STRING, .def = "SIGKILL", .max = 16,
	    .allowed = signals, .doc = "signal sent each round"},
	{.key = "interval", .kind = CEP_PARAM_DURATION, .def = "1s",
	    .min = 100, .max = 24 * HOUR, .doc = "time between rounds"},
	{.key = "count", .kind = CEP_PARAM_INT, .def = "1", .min = 1,
	    .max = 10000,
	    .doc = "kill rounds; each signals every matching process"},
	{0},
};
static const char *const process_kill_one_of[] = {"process", "pid", "cgroup",
    NULL};

#define POD_TARGET_PARAMS \
	{.key = "pod", .kind = CEP_PARAM_STRING, .min = 1, .max = 253, \
	    .format = CEP_FMT_SUBDOMAIN, \
	    .doc = "kubernetes targets: the pod (in the run's namespace) " \
		   "whose container the fault acts on; the runner is placed " \
		   "on its node"}, \
	{.key = "container", .kind = CEP_PARAM_STRING, .min = 1, .max = 63, \
	    .format = CEP_FMT_NAME, \
	    .doc = "kubernetes targets: the container of each pod (default: " \
		   "the pod's only container)"}, \
	{.key = "labelSelector", .kind = CEP_PARAM_STRING, .min = 1, \
	    .max = 1024, \
	    .doc = "kubernetes targets, instead of pod: label selector of " \
		   "the pods (\"app=web,tier!=db\"); the fault acts on " \
		   "count or percentage of the matching Running pods, chosen " \
		   "at random at injection"}, \
	{.key = "count", .kind = CEP_PARAM_INT, .min = 1, .max = 1000, \
	    .doc = "with labelSelector: pods chosen (capped by the policy)"}, \
	{.key = "percentage", .kind = CEP_PARAM_PERCENT, .min = 1, \
	    .max = 100, \
	    .doc = "with labelSelector: share of the matching Running pods " \
		   "chosen, rounded up (capped by the policy)"}

/* Optional host target of the resource faults: at most one of these
 * (checked by the runner; one_of here would make one mandatory). */
#define HOST_TARGET_PARAMS(what) \
	POD_TARGET_PARAMS, \
	{.key = "pid", .kind = CEP_PARAM_INT, .min = 2, .max = 4194304, \
	    .doc = "target process: " what " in its cgroup (v2, and v1 " \
		   "cpu/memory/blkio on hybrid hosts)"}, \
	{.key = "cgroup", .kind = CEP_PARAM_STRING, .min = 1, .max = 1024, \
	    .format = CEP_FMT_CGROUP, \
	    .doc = "target cgroup v2 (under the v2 root, or relative to " \
		   "it): " what " in it"}

/* A node-level hog on a kubernetes node rather than a pod: the runner is
 * placed on the node and its workers run in a cgroup of the node's own
 * that the fault creates and removes (docs/kubernetes.md, "Node
 * targets"). Not with pod. */
#define NODE_TARGET_PARAM \
	{.key = "node", .kind = CEP_PARAM_STRING, .min = 1, .max = 253, \
	    .format = CEP_FMT_SUBDOMAIN, \
	    .doc = "kubernetes targets: the node the workers run on, in a " \
		   "cgroup of their own under the node's root (not with pod)"}, \
	{.key = "nodeSelector", .kind = CEP_PARAM_STRING, .min = 3, \
	    .max = 1024, \
	    .doc = "kubernetes targets, instead of node: labels key=value[," \
		   "key=value...] of the nodes one is chosen from, by the " \
		   "cluster's scheduler placing the runner"}

/* container-kill (kubernetes only): the container's processes are
 * signalled in rounds; its kubelet restarts it. */
static const cep_exp_param_spec container_kill[] = {
	POD_TARGET_PARAMS,
	{.key = "signal", .kind = CEP_PARAM_STRING, .def = "SIGKILL", .max = 16,
	    .allowed = signals,
	    .doc = "signal sent to every process of the container each round"},
	{.key = "interval", .kind = CEP_PARAM_DURATION, .def = "10s",
	    .min = 1000, .max = 24 * HOUR,
	    .doc = "time between rounds, from injection until the chaos "
		   "phase ends"},
	{0},
};

static const cep_exp_param_spec cpu_hog[] = {
	HOST_TARGET_PARAMS("the workers run"),
	NODE_TARGET_PARAM,
	{.key = "workers", .kind = CEP_PARAM_INT, .def = "1", .min = 1,
	    .max = 256, .doc = "busy worker processes"},
	{.key = "load", .kind = CEP_PARAM_PERCENT, .def = "100", .min = 1,
	    .max = 100, .doc = "share of one CPU each worker keeps busy"},
	{.key = "duration", .kind = CEP_PARAM_DURATION,
	    .flags = CEP_PARAM_RUN_DURATION, .min = 1, .max = UNBOUNDED,
	    .doc = "how long the hog runs (default and upper bound: "
		   "spec.duration)"},
	{0},
};

static const cep_exp_param_spec memory_hog[] = {
	HOST_TARGET_PARAMS("the memory is charged"),
	NODE_TARGET_PARAM,
	{.key = "mib", .kind = CEP_PARAM_INT, .flags = CEP_PARAM_REQUIRED,
	    .min = 1, .max = 65536, .doc = "MiB to allocate and touch"},
	{.key = "duration", .kind = CEP_PARAM_DURATION,
	    .flags = CEP_PARAM_RUN_DURATION, .min = 1, .max = UNBOUNDED,
	    .doc = "how long the memory is held (default and upper bound: "
		   "spec.duration)"},
	{0},
};

static const cep_exp_param_spec io_stress[] = {
	HOST_TARGET_PARAMS("the workers run and their I/O is accounted"),
	NODE_TARGET_PARAM,
	{.key = "workers", .kind = CEP_PARAM_INT, .def = "1", .min = 1,
	    .max = 64, .doc = "writer processes"},
	{.key = "path", .kind = CEP_PARAM_STRING, .def = "/tmp", .min = 1,
	    .max = 1024, .doc = "directory written to, as the target sees it "
				"(its mount namespace with pid)"},
	{.key = "writeKiB", .kind = CEP_PARAM_INT, .def = "1024", .min = 4,
	    .max = 65536, .doc = "size of each write"},
	{.key = "fileMiB", .kind = CEP_PARAM_INT, .def = "64", .min = 1,
	    .max = 4096, .doc = "each worker rewrites an unlinked file of "
				"this size, syncing after each pass"},
	{.key = "duration", .kind = CEP_PARAM_DURATION,
	    .flags = CEP_PARAM_RUN_DURATION, .min = 1, .max = UNBOUNDED,
	    .doc = "how long the writers run (default and upper bound: "
		   "spec.duration)"},
	{0},
};

static const cep_exp_param_spec disk_fill[] = {
	POD_TARGET_PARAMS,
	{.key = "path", .kind = CEP_PARAM_STRING, .flags = CEP_PARAM_REQUIRED,
	    .min = 1, .max = 1024,
	    .doc = "absolute directory on the filesystem to fill"},
	{.key = "percent", .kind = CEP_PARAM_PERCENT, .min = 1, .max = 100,
	    .doc = "fill until the filesystem is this full (blocks not "
		   "available to users)"},
	{.key = "mib", .kind = CEP_PARAM_INT, .min = 1, .max = 16777216,
	    .doc = "MiB to add (capped at the free space)"},
	{.key = "pid", .kind = CEP_PARAM_INT, .min = 2, .max = 4194304,
	    .doc = "target process: path is in its mount namespace"},
	{.key = "duration", .kind = CEP_PARAM_DURATION,
	    .flags = CEP_PARAM_RUN_DURATION, .min = 1, .max = UNBOUNDED,
	    .doc = "how long the fill file stays (default and upper bound: "
		   "spec.duration)"},
	{0},
};
static const char *const disk_fill_one_of[] = {"percent", "mib", NULL};

/* Network faults (docs/faults-network.md): the target is a network
 * namespace, given by a process in it or by name/path; filters narrow the
 * traffic the fault applies to. */
static const char *const net_directions[] = {"egress", "ingress", "both",
    NULL};
static const char *const net_actions[] = {"drop", "reject", NULL};
static const char *const dns_errors[] = {"nxdomain", "servfail", "timeout",
    NULL};
#define NET_TARGET_PARAMS \
	POD_TARGET_PARAMS, \
	{.key = "pid", .kind = CEP_PARAM_INT, .min = 2, .max = 4194304, \
	    .doc = "a process whose network namespace is the target"}, \
	{.key = "netns", .kind = CEP_PARAM_STRING, .min = 1, .max = 1024, \
	    .doc = "network namespace: a name under /run/netns or an " \
		   "absolute path (/proc/PID/ns/net, a bind mount)"}, \
	{.key = "duration", .kind = CEP_PARAM_DURATION, \
	    .flags = CEP_PARAM_RUN_DURATION, .min = 1, .max = UNBOUNDED, \
	    .doc = "how long the fault lasts (default and upper bound: " \
		   "spec.duration)"}
#define NET_FILTER_PARAMS(dir) \
	{.key = "direction", .kind = CEP_PARAM_STRING, .def = dir, .max = 8, \
	    .allowed = net_directions, \
	    .doc = "egress (sent by the namespace), ingress (received) or " \
		   "both"}, \
	{.key = "ports", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 32, \
	    .doc = "only TCP/UDP traffic to or from these ports (\"53\", " \
		   "\"8000-8080\"); default every packet"}
static const char *const net_one_of[] = {"pid", "netns", "pod",
    "labelSelector", NULL};

static const cep_exp_param_spec network_loss[] = {
	NET_TARGET_PARAMS,
	NET_FILTER_PARAMS("egress"),
	{.key = "percent", .kind = CEP_PARAM_PERCENT,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 100,
	    .doc = "share of matching packets dropped (random per packet)"},
	{.key = "cidrs", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 64,
	    .doc = "only traffic to (egress) or from (ingress) these "
		   "addresses (\"10.0.0.0/8\", \"fd00::/64\"); default all"},
	{0},
};

static const cep_exp_param_spec network_partition[] = {
	NET_TARGET_PARAMS,
	NET_FILTER_PARAMS("both"),
	{.key = "cidrs", .kind = CEP_PARAM_STRLIST,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 64,
	    .doc = "peers cut off: traffic to (egress) or from (ingress) "
		   "these addresses"},
	{.key = "action", .kind = CEP_PARAM_STRING, .def = "drop", .max = 8,
	    .allowed = net_actions,
	    .doc = "drop silently, or reject (ICMP unreachable / TCP reset)"},
	{0},
};

static const cep_exp_param_spec network_latency[] = {
	NET_TARGET_PARAMS,
	NET_FILTER_PARAMS("egress"),
	{.key = "delay", .kind = CEP_PARAM_DURATION,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 10 * SEC,
	    .doc = "delay added to each matching packet"},
	{.key = "jitter", .kind = CEP_PARAM_DURATION, .def = "0ms", .min = 0,
	    .max = 10 * SEC,
	    .doc = "uniform spread around delay (delay +- jitter, >= 0)"},
	{.key = "cidrs", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 64,
	    .doc = "only traffic to (egress) or from (ingress) these "
		   "addresses; default all"},
	{0},
};

static const cep_exp_param_spec network_bandwidth[] = {
	NET_TARGET_PARAMS,
	NET_FILTER_PARAMS("egress"),
	{.key = "kbps", .kind = CEP_PARAM_INT, .flags = CEP_PARAM_REQUIRED,
	    .min = 8, .max = 100000000,
	    .doc = "rate limit in kilobits per second; traffic over it is "
		   "dropped"},
	{.key = "burstKiB", .kind = CEP_PARAM_INT, .def = "32", .min = 1,
	    .max = 1048576, .doc = "burst allowed above the rate"},
	{.key = "cidrs", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 64,
	    .doc = "only traffic to (egress) or from (ingress) these "
		   "addresses; default all"},
	{0},
};

static const cep_exp_param_spec network_corrupt[] = {
	NET_TARGET_PARAMS,
	NET_FILTER_PARAMS("egress"),
	{.key = "percent", .kind = CEP_PARAM_PERCENT,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 100,
	    .doc = "share of matching packets with one bit flipped after the "
		   "transport header (random per packet); receivers drop them "
		   "on the checksum"},
	{.key = "cidrs", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 64,
	    .doc = "only traffic to (egress) or from (ingress) these "
		   "addresses; default all"},
	{0},
};

/* Egress only: the copies are sent from inside the namespace. */
static const char *const net_egress_only[] = {"egress", NULL};
static const cep_exp_param_spec network_duplicate[] = {
	NET_TARGET_PARAMS,
	{.key = "direction", .kind = CEP_PARAM_STRING, .def = "egress",
	    .max = 8, .allowed = net_egress_only,
	    .doc = "egress only (packets the namespace sends are duplicated)"},
	{.key = "ports", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 32,
	    .doc = "only TCP/UDP traffic to or from these ports (\"53\", "
		   "\"8000-8080\"); default every packet"},
	{.key = "percent", .kind = CEP_PARAM_PERCENT,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 100,
	    .doc = "share of matching packets sent twice (random per packet)"},
	{.key = "cidrs", .kind = CEP_PARAM_STRLIST, .min = 1, .max = 64,
	    .doc = "only traffic to these addresses; default all"},
	{0},
};

static const cep_exp_param_spec dns_error[] = {
	NET_TARGET_PARAMS,
	{.key = "names", .kind = CEP_PARAM_STRLIST,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 64,
	    .doc = "names that fail: exact (\"db.example.com\") or "
		   "\"*.suffix\" (every name below suffix)"},
	{.key = "error", .kind = CEP_PARAM_STRING, .def = "nxdomain", .max = 10,
	    .allowed = dns_errors,
	    .doc = "answer NXDOMAIN or SERVFAIL, or drop the query (timeout)"},
	{.key = "upstream", .kind = CEP_PARAM_STRING, .min = 2, .max = 64,
	    .doc = "resolver other names are forwarded to (IPv4 or IPv6 "
		   "address); default the first nameserver in /etc/resolv.conf"},
	{0},
};


/* Kubernetes faults (docs/faults-kubernetes.md): they act through the
 * API with the runner's service account, only in the run's namespace
 * (spec.target.namespace, never a parameter) and on at most
 * policy.kubernetes.maxTargets objects. */
#define KUBE_DURATION_PARAM(what) \
	{.key = "duration", .kind = CEP_PARAM_DURATION, \
	    .flags = CEP_PARAM_RUN_DURATION, .min = 1, .max = UNBOUNDED, \
	    .doc = "how long " what " (default and upper bound: " \
		   "spec.duration)"}

static const cep_exp_param_spec pod_delete[] = {
	{.key = "labelSelector", .kind = CEP_PARAM_STRING,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 1024,
	    .doc = "label selector of the pods (\"app=web,tier!=db\")"},
	{.key = "count", .kind = CEP_PARAM_INT, .min = 1, .max = 1000,
	    .doc = "pods deleted each round (capped by the policy)"},
	{.key = "percentage", .kind = CEP_PARAM_PERCENT, .min = 1, .max = 100,
	    .doc = "share of the matching Running pods deleted each round, "
		   "rounded up"},
	{.key = "interval", .kind = CEP_PARAM_DURATION, .min = 1000,
	    .max = 24 * HOUR,
	    .doc = "repeat a round this often while chaos lasts (default: "
		   "one round)"},
	{.key = "gracePeriod", .kind = CEP_PARAM_DURATION, .min = 0,
	    .max = HOUR,
	    .doc = "termination grace period (whole seconds; default the "
		   "pod's own)"},
	{.key = "force", .kind = CEP_PARAM_BOOL, .def = "false",
	    .doc = "delete at once (grace period 0); not with gracePeriod"},
	{0},
};
static const char *const pod_delete_one_of[] = {"count", "percentage",
    NULL};

static const cep_exp_param_spec deployment_scale[] = {
	{.key = "deployment", .kind = CEP_PARAM_STRING, .min = 1, .max = 253,
	    .doc = "the Deployment's name, in the run's namespace"},
	{.key = "labelSelector", .kind = CEP_PARAM_STRING, .min = 1,
	    .max = 1024,
	    .doc = "Deployments by label selector (capped by the policy)"},
	{.key = "replicas", .kind = CEP_PARAM_INT, .flags = CEP_PARAM_REQUIRED,
	    .min = 0, .max = 1000, .doc = "replicas during the fault; the "
					  "original is restored"},
	KUBE_DURATION_PARAM("the scale lasts"),
	{0},
};

static const char *const deployment_scale_one_of[] = {"deployment",
    "labelSelector", NULL};

static const cep_exp_param_spec node_cordon[] = {
	{.key = "node", .kind = CEP_PARAM_STRING, .min = 1, .max = 253,
	    .doc = "one node by name"},
	{.key = "nodeSelector", .kind = CEP_PARAM_STRING, .min = 1,
	    .max = 1024, .doc = "label selector of nodes (capped by the "
				"policy)"},
	KUBE_DURATION_PARAM("the nodes stay cordoned"),
	{0},
};
static const char *const node_cordon_one_of[] = {"node", "nodeSelector",
    NULL};

/* node-taint, node-drain: Litmus's NODE_LABEL acts on one node */
#define NODE_COUNT_PARAM \
	{.key = "count", .kind = CEP_PARAM_INT, .min = 1, .max = 1000, \
	    .doc = "nodeSelector: at most this many of the matching " \
		   "nodes, first by name (the policy caps them too)"}

static const char *const taint_effects[] = {"NoSchedule", "PreferNoSchedule",
    "NoExecute", NULL};
static const cep_exp_param_spec node_taint[] = {
	{.key = "node", .kind = CEP_PARAM_STRING, .min = 1, .max = 253,
	    .doc = "one node by name"},
	{.key = "nodeSelector", .kind = CEP_PARAM_STRING, .min = 1,
	    .max = 1024, .doc = "label selector of nodes (capped by the "
				"policy)"},
	{.key = "key", .kind = CEP_PARAM_STRING, .flags = CEP_PARAM_REQUIRED,
	    .min = 1, .max = 316,
	    .doc = "the taint's key (a label key: [prefix/]name)"},
	NODE_COUNT_PARAM,
	{.key = "value", .kind = CEP_PARAM_STRING, .max = 63,
	    .doc = "the taint's value"},
	{.key = "effect", .kind = CEP_PARAM_STRING, .def = "NoSchedule",
	    .max = 16, .allowed = taint_effects,
	    .doc = "NoSchedule, PreferNoSchedule or NoExecute"},
	KUBE_DURATION_PARAM("the nodes stay tainted"),
	{0},
};

static const cep_exp_param_spec node_drain[] = {
	{.key = "node", .kind = CEP_PARAM_STRING, .min = 1, .max = 253,
	    .doc = "one node by name"},
	{.key = "nodeSelector", .kind = CEP_PARAM_STRING, .min = 1,
	    .max = 1024, .doc = "label selector of nodes (capped by the "
				"policy)"},
	NODE_COUNT_PARAM,
	KUBE_DURATION_PARAM("the nodes stay cordoned (evictions refused by a "
			    "disruption budget are tried again until then)"),
	{0},
};

static const cep_exp_type_spec fault_types[] = {
	{.type = "process-kill", .params = process_kill,
	    .one_of = process_kill_one_of,
	    .target = "host",
	    .doc = "signal processes of the target host, in rounds"},
	{.type = "cpu-hog", .params = cpu_hog,
	    .pod_target = true,
	    .doc = "keep CPUs busy for the fault's duration"},
	{.type = "memory-hog", .params = memory_hog,
	    .pod_target = true,
	    .doc = "allocate and hold memory for the fault's duration"},
	{.type = "io-stress", .params = io_stress,
	    .pod_target = true,
	    .doc = "write and sync files for the fault's duration"},
	{.type = "disk-fill", .params = disk_fill, .one_of = disk_fill_one_of,
	    .pod_target = true,
	    .doc = "fill a filesystem to a percentage or by MiB"},
	{.type = "network-loss", .params = network_loss, .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "drop a share of a network namespace's packets"},
	{.type = "network-partition", .params = network_partition,
	    .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "cut a network namespace off from addresses"},
	{.type = "network-latency", .params = network_latency,
	    .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "delay a network namespace's packets"},
	{.type = "network-bandwidth", .params = network_bandwidth,
	    .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "police a network namespace's traffic to a rate"},
	{.type = "network-corrupt", .params = network_corrupt,
	    .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "corrupt a share of a network namespace's packets"},
	{.type = "network-duplicate", .params = network_duplicate,
	    .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "send a share of a network namespace's packets twice"},
	{.type = "dns-error", .params = dns_error, .one_of = net_one_of,
	    .pod_target = true,
	    .doc = "make chosen DNS names fail for one network namespace"},
	{.type = "pod-delete", .params = pod_delete,
	    .one_of = pod_delete_one_of, .target = "kubernetes",
	    .doc = "delete Running pods chosen at random by label selector"},
	{.type = "deployment-scale", .params = deployment_scale,
	    .one_of = deployment_scale_one_of, .target = "kubernetes",
	    .doc = "scale a Deployment, restoring its replicas afterwards"},
	{.type = "node-cordon", .params = node_cordon,
	    .one_of = node_cordon_one_of, .target = "kubernetes",
	    .doc = "mark nodes unschedulable, restoring each as it was"},
	{.type = "node-drain", .params = node_drain,
	    .one_of = node_cordon_one_of, .target = "kubernetes",
	    .doc = "cordon nodes and evict their pods, uncordoning after"},
	{.type = "node-taint", .params = node_taint,
	    .one_of = node_cordon_one_of, .target = "kubernetes",
	    .doc = "taint nodes, removing exactly that taint afterwards"},
	{.type = "container-kill", .params = container_kill,
	    .pod_target = true, .target = "kubernetes",
	    .doc = "signal a pod's container's processes in rounds; the "
		   "kubelet restarts it"},
};

/* ---- probes ---- */

static const cep_exp_param_spec probe_common[] = {
	{.key = "mode", .kind = CEP_PARAM_STRING, .flags = CEP_PARAM_REQUIRED,
	    .max = 16, .allowed = probe_modes,
	    .doc = "when the probe runs"},
	{.key = "timeout", .kind = CEP_PARAM_DURATION, .def = "2s", .min = 1,
	    .max = 10 * MIN, .doc = "time limit of one try"},
	{.key = "interval", .kind = CEP_PARAM_DURATION, .def = "1s", .min = 50,
	    .max = HOUR, .doc = "time between checks (continuous, on-chaos) "
				"and between tries"},
	{.key = "attempts", .kind = CEP_PARAM_INT, .def = "1", .min = 1,
	    .max = 20, .doc = "tries within one check before it counts as "
			      "failed"},
	{.key = "initialDelay", .kind = CEP_PARAM_DURATION, .def = "0s",
	    .min = 0, .max = HOUR, .doc = "wait before the first check"},
	{.key = "stopOnFailure", .kind = CEP_PARAM_BOOL, .def = "false",
	    .doc = "a failed check ends the chaos phase (revert at once)"},
	{.key = "weight", .kind = CEP_PARAM_NUMBER, .def = "1", .min = 0,
	    .max = 1000, .flags = CEP_PARAM_MIN_EXCLUSIVE,
	    .doc = "weight in the resilience score"},
	{.key = "minSuccess", .kind = CEP_PARAM_PERCENT, .def = "100",
	    .min = 0, .max = 100,
	    .doc = "continuous, on-chaos: share of checks that must pass"},
	{0},
};

static const cep_exp_param_spec http_probe[] = {
	{.key = "url", .kind = CEP_PARAM_STRING, .flags = CEP_PARAM_REQUIRED,
	    .max = 2048, .format = CEP_FMT_HTTP_URL,
	    .doc = "http:// or https:// URL"},
	{.key = "method", .kind = CEP_PARAM_STRING, .def = "GET", .max = 8,
	    .allowed = http_methods, .doc = "request method"},
	{.key = "body", .kind = CEP_PARAM_STRING, .max = 65536,
	    .when_key = "method", .when_val = "POST",
	    .doc = "request body (POST only)"},
	{.key = "expectStatus", .kind = CEP_PARAM_INT, .def = "200",
	    .min = 100, .max = 599, .doc = "expected HTTP status"},
	{.key = "bodyMatch", .kind = CEP_PARAM_STRING, .min = 1, .max = 4096,
	    .doc = "substring the response body must contain"},
	{.key = "latencyBudget", .kind = CEP_PARAM_DURATION, .min = 1,
	    .max = 10 * MIN,
	    .doc = "a slower answer counts as failed"},
	{0},
};

static const cep_exp_param_spec cmd_probe[] = {
	{.key = "command", .kind = CEP_PARAM_STRLIST,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 256,
	    .doc = "argv: program and arguments, no shell"},
	{.key = "expectExit", .kind = CEP_PARAM_INT, .def = "0", .min = 0,
	    .max = 255, .doc = "expected exit status"},
	{.key = "outputMatch", .kind = CEP_PARAM_STRING, .min = 1, .max = 4096,
	    .doc = "substring stdout must contain"},
	{0},
};


static const char *const k8s_resources[] = {"pods", "deployments", "nodes",
    NULL};
static const char *const k8s_checks[] = {"present", "absent", "field",
    NULL};
static const cep_exp_param_spec k8s_probe[] = {
	{.key = "resource", .kind = CEP_PARAM_STRING,
	    .flags = CEP_PARAM_REQUIRED, .max = 16, .allowed = k8s_resources,
	    .doc = "resource type, looked up in the run's namespace"},
	{.key = "objectName", .kind = CEP_PARAM_STRING, .min = 1, .max = 253,
	    .doc = "one object by name"},
	{.key = "labelSelector", .kind = CEP_PARAM_STRING, .min = 1,
	    .max = 1024, .doc = "objects by label selector"},
	{.key = "check", .kind = CEP_PARAM_STRING, .def = "present", .max = 8,
	    .allowed = k8s_checks,
	    .doc = "present, absent, or field (a field's value)"},
	{.key = "field", .kind = CEP_PARAM_STRING, .min = 1, .max = 256,
	    .when_key = "check", .when_val = "field",
	    .doc = "dotted JSON path such as status.readyReplicas"},
	{.key = "equals", .kind = CEP_PARAM_STRING, .max = 256,
	    .when_key = "check", .when_val = "field",
	    .doc = "the field's value as text (numbers as integers)"},
	{.key = "atLeast", .kind = CEP_PARAM_INT, .min = -1000000000,
	    .max = 1000000000, .when_key = "check", .when_val = "field",
	    .doc = "the field is a number at least this"},
	{0},
};
static const char *const k8s_one_of[] = {"objectName", "labelSelector",
    NULL};

/* Bounds of a prometheus threshold: far beyond any sensible metric, and
 * exact as doubles. */
#define PROM_LIMIT 1000000000000000LL
static const cep_exp_param_spec prometheus_probe[] = {
	{.key = "url", .kind = CEP_PARAM_STRING, .flags = CEP_PARAM_REQUIRED,
	    .max = 2048, .format = CEP_FMT_HTTP_URL,
	    .doc = "Prometheus base URL (http:// or https://); the probe "
		   "asks its /api/v1/query"},
	{.key = "query", .kind = CEP_PARAM_STRING,
	    .flags = CEP_PARAM_REQUIRED, .min = 1, .max = 4096,
	    .doc = "PromQL; must give one sample (a one-series instant "
		   "vector or a scalar)"},
	{.key = "below", .kind = CEP_PARAM_NUMBER, .min = -PROM_LIMIT,
	    .max = PROM_LIMIT, .doc = "passes when value < this"},
	{.key = "atMost", .kind = CEP_PARAM_NUMBER, .min = -PROM_LIMIT,
	    .max = PROM_LIMIT, .doc = "passes when value <= this"},
	{.key = "above", .kind = CEP_PARAM_NUMBER, .min = -PROM_LIMIT,
	    .max = PROM_LIMIT, .doc = "passes when value > this"},
	{.key = "atLeast", .kind = CEP_PARAM_NUMBER, .min = -PROM_LIMIT,
	    .max = PROM_LIMIT, .doc = "passes when value >= this"},
	{.key = "equals", .kind = CEP_PARAM_NUMBER, .min = -PROM_LIMIT,
	    .max = PROM_LIMIT, .doc = "passes when value == this"},
	{0},
};
static const char *const prometheus_one_of[] = {"below", "atMost", "above",
    "atLeast", "equals", NULL};

static const cep_exp_type_spec probe_types[] = {
	{.type = "http", .params = http_probe,
	    .doc = "an HTTP request and its answer"},
	{.type = "cmd", .params = cmd_probe,
	    .doc = "a command run by the runner, without a shell"},
	{.type = "k8s", .params = k8s_probe, .one_of = k8s_one_of,
	    .target = "kubernetes",
	    .doc = "a Kubernetes object present, absent, or a field's value"},
	{.type = "prometheus", .params = prometheus_probe,
	    .one_of = prometheus_one_of,
	    .doc = "a PromQL query's value compared with a threshold"},
};

/* clang-format on */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const cep_exp_type_spec *find(const cep_exp_type_spec *t, size_t n,
    const char *type)
{
	for (size_t i = 0; type != NULL && i < n; i++) {
		if (strcmp(t[i].type, type) == 0)
			return &t[i];
	}
	return NULL;
}

const cep_exp_type_spec *cep_exp_fault_spec(const char *type)
{
	return find(fault_types, NELEM(fault_types), type);
}

const cep_exp_type_spec *cep_exp_probe_spec(const char *type)
{
	return find(probe_types, NELEM(probe_types), type);
}

const cep_exp_param_spec *cep_exp_probe_common(void)
{
	return probe_common;
}

/* Names in table order, for messages and docs; the asserts keep them in
 * step with the tables above. */
static const char *const fault_names[] = {"process-kill", "cpu-hog",
    "memory-hog", "io-stress", "disk-fill", "network-loss", "network-partition",
    "network-latency", "network-bandwidth", "network-corrupt",
    "network-duplicate", "dns-error", "pod-delete", "deployment-scale",
    "node-cordon", "node-drain", "node-taint", "container-kill", NULL};
static const char *const probe_names[] = {"http", "cmd", "k8s", "prometheus",
    NULL};
_Static_assert(NELEM(fault_names) == NELEM(fault_types) + 1, "fault names");
_Static_assert(NELEM(probe_names) == NELEM(probe_types) + 1, "probe names");

const char *const *cep_exp_fault_types(void)
{
	return fault_names;
}

const char *const *cep_exp_probe_types(void)
{
	return probe_names;
}
