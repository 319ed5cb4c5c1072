"""kinds.py - defaulting and validation of Service, NetworkPolicy, Lease and
the RBAC kinds, as the real registry's strategies do it (pkg/apis/*/validation
and the defaulters), with the real messages; the JSON types and unknown fields
are the OpenAPI schemas' (openapi_check.py, openapi_gen.py).

What a jump cluster's manifests use (deploy/kubernetes/) is covered; what is
not checked: Service ipFamilies against the cluster's families, healthCheckNodePort,
NetworkPolicy namespace/pod selector syntax beyond what the schema says.
"""
import ipaddress
import json
import random

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_SVC_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
# what default() and validate() cover beyond RBAC (validated, never defaulted)
KINDS = {("", "services"), ("networking.k8s.io", "networkpolicies"), ("coordination.k8s.io", "leases")}


def _bad(field, value, msg):
    return {"reason": "FieldValueInvalid", "field": field,
            "message": "Invalid value: %s: %s" % (json.dumps(value), msg)}


def _required(field, msg=""):
    return {"reason": "FieldValueRequired", "field": field, "message": "Required value" + (": " + msg if msg else "")}


def _unsupported(field, value, allowed):
    return {"reason": "FieldValueNotSupported", "field": field,
            "message": "Unsupported value: %s: supported values: %s"
            % (json.dumps(value), ", ".join('"%s"' % a for a in allowed))}


def _forbidden(field, msg):
    return {"reason": "FieldValueForbidden", "field": field, "message": "Forbidden: " + msg}


# ---- defaulting ------------------------------------------------------------
def default(gr, obj, used_ips=()):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if gr == ("", "services"):
        _default_service(spec, used_ips)
    elif gr == ("networking.k8s.io", "networkpolicies"):
        spec.setdefault("podSelector", {})
        for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
            for p in (rule or {}).get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
        if "policyTypes" not in spec:
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _default_service(spec, used_ips):
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] == "ExternalName":
        return
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                p["nodePort"] = random.randint(30000, 32767)
    if not spec.get("clusterIP"):
        hosts = SERVICE_CIDR.num_addresses - 2
        while True:
            ip = str(SERVICE_CIDR.network_address + random.randint(10, hosts))
            if ip not in used_ips:
                break
        spec["clusterIP"] = ip
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


# ---- validation ---------------------------------------------------------------
def validate(gr, obj, causes, old=None):
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if gr == ("", "services"):
        _service(spec, causes, old)
    elif gr == ("networking.k8s.io", "networkpolicies"):
        _netpol(spec, causes)
    elif gr == ("coordination.k8s.io", "leases"):
        _lease(spec, causes)
    elif gr[0] == "rbac.authorization.k8s.io":
        _rbac(gr, obj, causes, old)


def _cidr(field, v, causes):
    try:
        ipaddress.ip_network(v, strict=True)
    except (ValueError, TypeError):
        causes.append(_bad(field, v, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))


def _port(field, v, causes):
    if isinstance(v, int) and not 1 <= v <= 65535:
        causes.append(_bad(field, v, "must be between 1 and 65535, inclusive"))


def _service(spec, causes, old):
    t = spec.get("type", "ClusterIP")
    if t not in _SVC_TYPES:
        causes.append(_unsupported("spec.type", t, _SVC_TYPES))
        return
    ports = spec.get("ports") or []
    if t != "ExternalName" and not ports:
        causes.append(_required("spec.ports"))
    names = set()
    for i, p in enumerate(ports):
        f = "spec.ports[%d]" % i
        name = p.get("name", "")
        if len(ports) > 1 and not name:
            causes.append(_required(f + ".name"))
        elif name in names:
            causes.append({"reason": "FieldValueDuplicate", "field": f + ".name",
                           "message": "Duplicate value: %s" % json.dumps(name)})
        names.add(name)
        _port(f + ".port", p.get("port"), causes)
        if p.get("protocol", "TCP") not in _PROTOCOLS:
            causes.append(_unsupported(f + ".protocol", p.get("protocol"), _PROTOCOLS))
        if isinstance(p.get("targetPort"), int):
            _port(f + ".targetPort", p["targetPort"], causes)
    etp = spec.get("externalTrafficPolicy")
    if etp and t not in ("NodePort", "LoadBalancer"):
        causes.append(_bad("spec.externalTrafficPolicy", etp, "may only be set when `type` is 'NodePort' "
                           "or 'LoadBalancer'"))
    elif etp and etp not in ("Cluster", "Local"):
        causes.append(_unsupported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    if spec.get("loadBalancerSourceRanges") and t != "LoadBalancer":
        causes.append(_forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is "
                                 "'LoadBalancer'"))
    for i, r in enumerate(spec.get("loadBalancerSourceRanges") or []):
        _cidr("spec.loadBalancerSourceRanges[%d]" % i, r, causes)
    if old is not None and old.get("spec", {}).get("clusterIP") not in (None, spec.get("clusterIP")):
        causes.append(_bad("spec.clusterIP", spec.get("clusterIP"), "field is immutable"))


def _netpol(spec, causes):
    for i, t in enumerate(spec.get("policyTypes") or []):
        if t not in ("Ingress", "Egress"):
            causes.append(_unsupported("spec.policyTypes[%d]" % i, t, ["Egress", "Ingress"]))
    for kind, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(kind) or []):
            f = "spec.%s[%d]" % (kind, i)
            for j, p in enumerate((rule or {}).get("ports") or []):
                pf = "%s.ports[%d]" % (f, j)
                if p.get("protocol", "TCP") not in _PROTOCOLS:
                    causes.append(_unsupported(pf + ".protocol", p.get("protocol"), _PROTOCOLS))
                _port(pf + ".port", p.get("port"), causes)
                if "endPort" in p and not isinstance(p.get("port"), int):
                    causes.append(_required(pf + ".port", "When endPort is specified, port must be specified"))
            for j, peer in enumerate((rule or {}).get(peers) or []):
                _peer("%s.%s[%d]" % (f, peers, j), peer or {}, causes)


def _peer(f, peer, causes):
    n = sum(1 for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None)
    if n == 0:
        causes.append(_required(f, "must specify a peer"))
    elif peer.get("ipBlock") is not None and n > 1:
        causes.append(_forbidden(f, "may not specify more than 1 peer"))
    b = peer.get("ipBlock")
    if isinstance(b, dict) and b.get("cidr"):
        _cidr(f + ".ipBlock.cidr", b["cidr"], causes)
        for k, e in enumerate(b.get("except") or []):
            _cidr("%s.ipBlock.except[%d]" % (f, k), e, causes)


def _lease(spec, causes):
    d = spec.get("leaseDurationSeconds")
    if isinstance(d, int) and d <= 0:
        causes.append(_bad("spec.leaseDurationSeconds", d, "must be greater than 0"))
    t = spec.get("leaseTransitions")
    if isinstance(t, int) and t < 0:
        causes.append(_bad("spec.leaseTransitions", t, "must be greater than or equal to 0"))


def _rbac(gr, obj, causes, old):
    if gr[1] in ("roles", "clusterroles"):
        for i, r in enumerate(obj.get("rules") or []):
            f = "rules[%d]" % i
            if not r.get("verbs"):
                causes.append(_required(f + ".verbs", "verbs must contain at least one value"))
            if r.get("nonResourceURLs"):
                if gr[1] == "roles":
                    causes.append(_bad(f + ".nonResourceURLs", r["nonResourceURLs"],
                                       "namespaced rules cannot apply to non-resource URLs"))
                continue
            if not r.get("apiGroups"):
                causes.append(_required(f + ".apiGroups", "resource rules must supply at least one api group"))
            if not r.get("resources"):
                causes.append(_required(f + ".resources", "resource rules must supply at least one resource"))
        return
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        causes.append(_unsupported("roleRef.apiGroup", ref.get("apiGroup"), ["rbac.authorization.k8s.io"]))
    kinds = ["Role", "ClusterRole"] if gr[1] == "rolebindings" else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        causes.append(_unsupported("roleRef.kind", ref.get("kind"), kinds))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        causes.append(_bad("roleRef", ref, "cannot change roleRef"))
    for i, s in enumerate(obj.get("subjects") or []):
        f = "subjects[%d]" % i
        k = s.get("kind")
        if k not in ("ServiceAccount", "User", "Group"):
            causes.append(_unsupported(f + ".kind", k, ["ServiceAccount", "User", "Group"]))
        elif k == "ServiceAccount":
            if s.get("apiGroup"):
                causes.append(_unsupported(f + ".apiGroup", s["apiGroup"], [""]))
            if gr[1] == "clusterrolebindings" and not s.get("namespace"):
                causes.append(_required(f + ".namespace"))
        elif s.get("apiGroup") != "rbac.authorization.k8s.io":
            causes.append(_unsupported(f + ".apiGroup", s.get("apiGroup"), ["rbac.authorization.k8s.io"]))
