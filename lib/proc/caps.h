/*
 * caps.h - the one per-fault capability table (docs/privsep.md).
 *
 * Privileged work happens only in runner processes that get exactly the
 * Linux capabilities their faults need. This table says which: the
 * Kubernetes executor gives them to a runner Pod placed on a pod target's
 * node (delegate/kube_pod.c), the launcher to a host runner it starts
 * (launcher/), and to the cleanup runners of both. A fault type the table
 * does not know is refused, never run with "some" capabilities.
 *
 * The bits are the project's own (small, stable, testable); cep_caps_name
 * and cep_caps_linux map each to the Kubernetes name and the CAP_ number.
 */
#ifndef CEP_CAPS_H
#define CEP_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

enum {
	CEP_CAP_NET_ADMIN = 1 << 0,    /* nftables, tc, NFQUEUE, SO_MARK */
	CEP_CAP_NET_RAW = 1 << 1,      /* the NFQUEUE worker's raw sockets */
	CEP_CAP_SYS_ADMIN = 1 << 2,    /* setns into a network namespace */
	CEP_CAP_SYS_PTRACE = 1 << 3,   /* /proc/PID/ns/ *, /proc/PID/root of
					 * another user's process */
	CEP_CAP_DAC_OVERRIDE = 1 << 4, /* files and cgroups of other users */
	CEP_CAP_KILL = 1 << 5,         /* signals to other users' processes */
};
#define CEP_CAP_ALL 0x3fu

/* Where the runner acts. POD: a runner Pod on a pod target's node (the
 * kubernetes executor); HOST: a runner on the appliance (the launcher). */
enum cep_caps_where { CEP_CAPS_POD, CEP_CAPS_HOST };

/*
 * The capabilities fault type needs where. CEP_OK and *caps (0 for a
 * fault that acts through the Kubernetes API only); NOT_FOUND for a type
 * the table does not know (err names it), and for a type that cannot run
 * there (process-kill on a pod target). *cgroupfs (may be NULL) is set,
 * never cleared: on a pod target the type moves workers into the target's
 * cgroup (the node's cgroupfs is mounted).
 */
int cep_caps_for(const char *type, enum cep_caps_where where, unsigned *caps,
    bool *cgroupfs, cep_err *err);

/* The union over types[n]; the first unknown type refuses them all. */
int cep_caps_union(const char *const *types, size_t n,
    enum cep_caps_where where, unsigned *caps, cep_err *err);

/* A cleanup runner's (`cep-runner --cleanup`) for one undo mechanism of
 * lib/undo/undo.h that leaves state on a node (nftables, tc-qdisc, disk-fill):
 * what its undo touches. NOT_FOUND for any other mechanism. */
int cep_caps_for_mechanism(const char *mechanism, unsigned *caps, cep_err *err);

/* "NET_ADMIN", ... for one bit; NULL for anything else. */
const char *cep_caps_name(unsigned bit);
/* CAP_NET_ADMIN, ... (linux/capability.h) for one bit; -1 otherwise. */
int cep_caps_linux(unsigned bit);
/* The Linux capability set of caps as a 64-bit mask (bit CAP_x set), as
 * /proc/PID/status shows it in CapEff. */
uint64_t cep_caps_linux_mask(unsigned caps);
/* "NET_ADMIN,SYS_ADMIN" (no spaces; "" for none) into buf. */
void cep_caps_text(unsigned caps, char *buf, size_t len);

#endif
