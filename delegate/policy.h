/*
 * policy.h - the blast-radius policy (config.h: cep_policy) applied to an
 * experiment before anything is created.
 */
#ifndef CEP_POLICY_H
#define CEP_POLICY_H

#include <stddef.h>

#include "config.h"
#include "connector.h"
#include "err.h"
#include "exp.h"
#include "hostview.h"
#include "netns.h"

/* CEP_OK, or FAILED_PRECONDITION with "policy: ..." naming the rule and
 * its config key. active_runs: runs not yet final. */
int delegate_policy_check(const cep_policy *p, const cep_exp *e,
    size_t active_runs, cep_err *err);
/* The same with the appliance's connectors (cs may be NULL: none), which
 * kubernetes targets need: the connector must exist and allow the
 * namespace (cep_connector_ns_allowed), and policy.namespaces.deny must
 * not match it. */
int delegate_policy_check_conn(const cep_policy *p, const cep_connectors *cs,
    const cep_exp *e, size_t active_runs, cep_err *err);
/* The same with the facts about the host (pids, namespaces, filesystems)
 * from hv (hostview.h; NULL: the direct view). The messages do not depend
 * on the view; when it cannot be asked the fault is refused, naming why. */
int delegate_policy_check_host(const cep_policy *p, const cep_connectors *cs,
    cep_hostview *hv, const cep_exp *e, size_t active_runs, cep_err *err);

/* policy.maxConcurrentRuns alone: the delegate checks the experiment
 * (host facts may take a call to cep-launcher) without its lock, then
 * this again under the lock, so that two submissions cannot both take
 * the last slot. */
int delegate_policy_check_active(const cep_policy *p, size_t active_runs,
    cep_err *err);

/* The network-namespace rule alone, for a resolved identity: pid 1's
 * (the host's) and the appliance's own only while
 * policy.network.allowHostNetns is true. fault and type name the fault
 * in the message. */
int delegate_policy_check_netns_id(const cep_policy *p, const char *fault,
    const char *type, const cep_netns_id *id, cep_err *err);

#endif
