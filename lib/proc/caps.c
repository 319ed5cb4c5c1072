/*
 * caps.c - the per-fault capability table (see caps.h).
 *
 * Why each, on a pod target's node (the runner Pod, docs/faults.md):
 * nftables/tc/NFQUEUE need NET_ADMIN in the pod's netns, which the runner
 * enters with setns (SYS_ADMIN) through /proc/PID/ns/net of a process of
 * another user (SYS_PTRACE: ptrace access mode); the NFQUEUE worker sends
 * through raw sockets (NET_RAW). Hogs only read the target's cgroups and
 * mount namespace through /proc (SYS_PTRACE) and write the node's
 * cgroupfs (root owns it). io-stress and disk-fill write in the
 * container's filesystem through /proc/PID/root (SYS_PTRACE), into
 * directories of the app's user (DAC_OVERRIDE).
 *
 * On a host (the launcher, docs/faults-host.md): the same for network
 * faults (a named netns or a process's); hogs move workers into the
 * target's cgroup, which may be delegated to another user (systemd user
 * slices: DAC_OVERRIDE) and read /proc/PID/cgroup and ns/mnt
 * (SYS_PTRACE); process-kill signals processes of other users (KILL).
 */
#include "caps.h"

#include <linux/capability.h>
#include <stdio.h>
#include <string.h>

#define NET (CEP_CAP_NET_ADMIN | CEP_CAP_SYS_ADMIN | CEP_CAP_SYS_PTRACE)
#define NETQ (NET | CEP_CAP_NET_RAW)
#define FILES (CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE)
#define NONE_HERE 0x80000000u /* the type cannot run there */

static const struct {
	const char *type;
	unsigned pod, host;
	bool cgroupfs;
} table[] = {
    {"network-loss", NET, NET, false},
    {"network-partition", NET, NET, false},
    {"network-bandwidth", NET, NET, false},
    {"dns-error", NET, NET, false},
    {"network-latency", NETQ, NETQ, false},
    {"network-corrupt", NETQ, NETQ, false},
    {"network-duplicate", NETQ, NETQ, false},
    {"cpu-hog", CEP_CAP_SYS_PTRACE, FILES, true},
    {"memory-hog", CEP_CAP_SYS_PTRACE, FILES, true},
    {"io-stress", FILES, FILES, true},
    {"disk-fill", FILES, FILES, false},
    {"process-kill", NONE_HERE, CEP_CAP_KILL, false},
    /* the container's cgroup through /proc/PID (another user's) */
    {"container-kill", CEP_CAP_KILL | CEP_CAP_SYS_PTRACE, NONE_HERE, false},
    /* through the Kubernetes API, with the run's service account */
    {"pod-delete", 0, 0, false},
    {"deployment-scale", 0, 0, false},
    {"node-cordon", 0, 0, false},
    {"node-taint", 0, 0, false},
    {"node-drain", 0, 0, false},
};

static const struct {
	const char *mechanism;
	unsigned caps;
} mech_table[] = {
    {"nftables", NET}, /* the table, in the netns found by inode */
    {"tc-qdisc", NET},
    {"disk-fill", FILES}, /* the fill file, through /proc/PID/root */
};

static const struct {
	const char *name;
	int linux_cap;
} names[] = {
    {"NET_ADMIN", CAP_NET_ADMIN},
    {"NET_RAW", CAP_NET_RAW},
    {"SYS_ADMIN", CAP_SYS_ADMIN},
    {"SYS_PTRACE", CAP_SYS_PTRACE},
    {"DAC_OVERRIDE", CAP_DAC_OVERRIDE},
    {"KILL", CAP_KILL},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int cep_caps_for(const char *type, enum cep_caps_where where, unsigned *caps,
    bool *cgroupfs, cep_err *err)
{
	*caps = 0;
	for (size_t i = 0; type != NULL && i < N(table); i++) {
		if (strcmp(table[i].type, type) != 0)
			continue;
		unsigned c = where == CEP_CAPS_POD ? table[i].pod :
		                                     table[i].host;
		if (c == NONE_HERE)
			return cep_err_set(err, CEP_NOT_FOUND,
			    "fault type %s "
			    "cannot run on a %s",
			    type,
			    where == CEP_CAPS_POD ? "pod target" : "host");
		*caps = c;
		if (cgroupfs != NULL && where == CEP_CAPS_POD)
			*cgroupfs = *cgroupfs || table[i].cgroupfs;
		return CEP_OK;
	}
	return cep_err_set(err, CEP_NOT_FOUND,
	    "fault type \"%.64s\" is not "
	    "in the capability table",
	    type != NULL ? type : "");
}

int cep_caps_union(const char *const *types, size_t n,
    enum cep_caps_where where, unsigned *caps, cep_err *err)
{
	unsigned all = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned c;
		int rv = cep_caps_for(types[i], where, &c, NULL, err);
		if (rv != CEP_OK) {
			*caps = 0;
			return rv;
		}
		all |= c;
	}
	*caps = all;
	return CEP_OK;
}

int cep_caps_for_mechanism(const char *mechanism, unsigned *caps, cep_err *err)
{
	*caps = 0;
	for (size_t i = 0; mechanism != NULL && i < N(mech_table); i++)
		if (strcmp(mech_table[i].mechanism, mechanism) == 0) {
			*caps = mech_table[i].caps;
			return CEP_OK;
		}
	return cep_err_set(err, CEP_NOT_FOUND,
	    "mechanism \"%.64s\" is not "
	    "undone on a node",
	    mechanism != NULL ? mechanism : "");
}

const char *cep_caps_name(unsigned bit)
{
	for (size_t i = 0; i < N(names); i++)
		if (bit == 1u << i)
			return names[i].name;
	return NULL;
}

int cep_caps_linux(unsigned bit)
{
	for (size_t i = 0; i < N(names); i++)
		if (bit == 1u << i)
			return names[i].linux_cap;
	return -1;
}

uint64_t cep_caps_linux_mask(unsigned caps)
{
	uint64_t m = 0;
	for (size_t i = 0; i < N(names); i++)
		if (caps & (1u << i))
			m |= UINT64_C(1) << names[i].linux_cap;
	return m;
}

void cep_caps_text(unsigned caps, char *buf, size_t len)
{
	size_t used = 0;
	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < N(names) && used < len; i++)
		if (caps & (1u << i)) {
			int w = snprintf(buf + used, len - used, "%s%s",
			    used ? "," : "", names[i].name);
			if (w < 0)
				return;
			used += (size_t)w;
		}
}
