/*
 * kube_rbac.h - the Kubernetes permissions cep needs, exactly: the
 * delegate's (pods and secrets in a run's namespace, the verbs it uses)
 * and the runner's (what each fault and probe type uses). One table used
 * by `cepctl rbac` (manifests), `cepctl check` (SelfSubjectAccessReview
 * per verb) and the runner (refuses to start a fault its account lacks).
 */
#ifndef CEP_KUBE_RBAC_H
#define CEP_KUBE_RBAC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "kube.h"

typedef struct cep_kube_perm {
	const char *group;    /* "" core, "apps", "policy" */
	const char *resource; /* "pods", "deployments" */
	const char *sub;      /* NULL or "scale", "eviction" */
	const char *verb;
	bool cluster; /* cluster-scoped (nodes): ClusterRole */
} cep_kube_perm;

/* The review of p in ns (NULL for a cluster-scoped p), for cep_kube_can_i. */
cep_kube_access cep_kube_perm_access(const cep_kube_perm *p, const char *ns);

/* The delegate's permissions in a run namespace. NULL-terminated by
 * verb == NULL. */
const cep_kube_perm *cep_kube_rbac_delegate(void);
/* A fault or probe type's permissions (runner side); NULL for a type that
 * needs none (host faults) - an unknown type is INVALID_ARGUMENT. */
int cep_kube_rbac_for_type(const char *type, const cep_kube_perm **perms,
    cep_err *err);

/* What the delegate needs to undo a type's fault itself when the runner
 * died (restore + read back): NULL for a type without an undo. */
const cep_kube_perm *cep_kube_rbac_undo_for_type(const char *type);

/*
 * Manifests for `cepctl rbac`: a YAML stream (---) of ServiceAccount, Role
 * and RoleBinding for the delegate (who: "delegate": its own verbs plus
 * the undo verbs of the given types) or the runner ("runner", with the
 * fault/probe types), plus a ClusterRole(+Binding)
 * only when a type needs cluster-scoped resources (node-cordon).
 * *yaml is malloc'd.
 */
int cep_kube_rbac_manifests(const char *who, const char *sa_name,
    const char *ns, const char *const *types, size_t ntypes, char **yaml,
    cep_err *err);

/* Checks each permission with SelfSubjectAccessReview; *missing gets one
 * line per denied verb ("create pods in shop: denied (reason)"), malloc'd,
 * "" if none. CEP_OK when the reviews could be made (whatever they said). */
int cep_kube_rbac_check(cep_kube *k, const cep_kube_perm *perms, const char *ns,
    char **missing, size_t *nmissing, cep_err *err);

#endif
