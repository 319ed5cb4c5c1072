"""psa.py - Pod Security admission, level "restricted" (and "baseline"'s part
of it), as the built-in PodSecurity plugin applies it from the namespace's
labels pod-security.kubernetes.io/{enforce,warn}: a Pod that violates the
enforced level is refused (403), a Pod or a workload (Deployment, ReplicaSet)
whose template violates the warn level gets a Warning header. Messages are
the plugin's (k8s.io/pod-security-admission/policy). "privileged" and no
label mean no checks.
"""

_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
            "projected", "secret"}
_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}


def _containers(spec):
    return [c for k in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(k) or [] if isinstance(c, dict)]


def _baseline(spec, cs):
    out = []
    hosts = [k + "=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        out.append("host namespaces (%s)" % ", ".join(hosts))
    priv = [c["name"] for c in cs if (c.get("securityContext") or {}).get("privileged")]
    if priv:
        out.append("privileged (%s must not set securityContext.privileged=true)" % _who(priv))
    hp = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if hp:
        out.append("hostPath volumes (%s)" % ", ".join('volume "%s"' % n for n in hp))
    ports = ["%d" % p["hostPort"] for c in cs for p in c.get("ports") or [] if p.get("hostPort")]
    if ports:
        out.append("hostPort (uses hostPort %s)" % ", ".join(ports))
    return out


def _restricted(spec, cs):
    out = []
    psc = spec.get("securityContext") or {}
    sc = [(c.get("name"), c.get("securityContext") or {}) for c in cs]
    bad = [n for n, s in sc if s.get("allowPrivilegeEscalation") is not False]
    if bad:
        out.append("allowPrivilegeEscalation != false (%s must set securityContext.allowPrivilegeEscalation="
                   "false)" % _who(bad))
    bad = [n for n, s in sc if "ALL" not in ((s.get("capabilities") or {}).get("drop") or [])]
    added = [n for n, s in sc if set((s.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}]
    if bad:
        out.append('unrestricted capabilities (%s must set securityContext.capabilities.drop=["ALL"])' % _who(bad))
    if added:
        out.append('unrestricted capabilities (%s must not add capabilities other than "NET_BIND_SERVICE")'
                   % _who(added))
    types = [(v.get("name"), k) for v in spec.get("volumes") or [] for k in v if k != "name" and k not in _VOLUMES]
    if types:
        out.append("restricted volume types (%s)" % ", ".join('volume "%s" uses restricted volume type "%s"' % t
                                                             for t in types))
    bad = [n for n, s in sc if s.get("runAsNonRoot") is False or
           (s.get("runAsNonRoot") is None and psc.get("runAsNonRoot") is not True)]
    if bad or psc.get("runAsNonRoot") is False:
        out.append("runAsNonRoot != true (pod or %s must set securityContext.runAsNonRoot=true)" % _who(bad))
    if psc.get("runAsUser") == 0 or any(s.get("runAsUser") == 0 for _, s in sc):
        out.append("runAsUser=0 (pod and containers must not set runAsUser=0)")
    ok = ("RuntimeDefault", "Localhost")
    pod_ok = (psc.get("seccompProfile") or {}).get("type") in ok
    bad = [n for n, s in sc if (s.get("seccompProfile") or {}).get("type") not in ok and
           not (pod_ok and "seccompProfile" not in s)]
    if bad:
        out.append('seccompProfile (pod or %s must set securityContext.seccompProfile.type to "RuntimeDefault" '
                   'or "Localhost")' % _who(bad))
    return out


def _who(names):
    names = [n or "" for n in names]
    if len(names) == 1:
        return 'container "%s"' % names[0]
    return "containers %s" % ", ".join('"%s"' % n for n in names)


def violations(level, podspec):
    """The level's violated checks for a pod spec, in the plugin's order."""
    lv = _LEVELS.get(level, 0)
    if lv == 0 or not isinstance(podspec, dict):
        return []
    cs = _containers(podspec)
    return _baseline(podspec, cs) + (_restricted(podspec, cs) if lv >= 2 else [])


def _podspec(gr, obj):
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if gr == ("", "pods"):
        return spec
    if gr in (("apps", "deployments"), ("apps", "replicasets")):
        return (spec.get("template") or {}).get("spec")
    return None


def admit(ns_labels, gr, obj):
    """-> (refusal message or None, warning text or None) for a create or update."""
    spec = _podspec(gr, obj)
    if spec is None:
        return None, None
    refusal = warning = None
    enforce = ns_labels.get("pod-security.kubernetes.io/enforce", "")
    if gr == ("", "pods"):
        v = violations(enforce, spec)
        if v:
            refusal = 'violates PodSecurity "%s:latest": %s' % (enforce, ", ".join(v))
    warn = ns_labels.get("pod-security.kubernetes.io/warn", "")
    v = violations(warn, spec)
    if v and refusal is None:
        warning = 'would violate PodSecurity "%s:latest": %s' % (warn, ", ".join(v))
    return refusal, warning
