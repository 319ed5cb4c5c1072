"""openapi_gen.py - OpenAPI v3 documents for the API groups ../shared/k8s-openapi
does not hold (coordination.k8s.io, rbac.authorization.k8s.io, networking.k8s.io).

kube-apiserver serves a document for every group; kubectl reads it before it
sends a write (`apply`, `create -f`: does the PATCH operation of this kind take
`fieldValidation`? if the group has no document, kubectl refuses to validate).
The real documents are not in the shared folder, so these are generated from
the kinds' protobuf messages: ../shared/k8s-fixtures/proto/<group>.generated.proto
(real upstream files) for coordination and rbac, and NETWORKING below for
NetworkPolicy (written from upstream's k8s.io/api networking/v1/generated.proto,
which is not in the shared folder). The protobuf field names are the JSON
names, so the schemas give the same checks as the real documents do: JSON
types (400), unknown fields (fieldValidation=Strict), and the `required`
lists of REQUIRED (as the upstream OpenAPI has them; proto2 cannot say it).
Not generated: descriptions, enums, list-map keys (no strategic merge patch
of these kinds needs them in the tests).
"""
import json

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_INTSTR = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"

# networking.k8s.io/v1 NetworkPolicy, as pb.Protos parses a message:
# (label o|r|m, type, json name, field number)
NETWORKING = {
    "k8s.io.api.networking.v1.NetworkPolicy": [
        ("o", _META + "ObjectMeta", "metadata", 1), ("o", "k8s.io.api.networking.v1.NetworkPolicySpec", "spec", 2)],
    "k8s.io.api.networking.v1.NetworkPolicySpec": [
        ("o", _META + "LabelSelector", "podSelector", 1),
        ("r", "k8s.io.api.networking.v1.NetworkPolicyIngressRule", "ingress", 2),
        ("r", "k8s.io.api.networking.v1.NetworkPolicyEgressRule", "egress", 3),
        ("r", "string", "policyTypes", 4)],
    "k8s.io.api.networking.v1.NetworkPolicyIngressRule": [
        ("r", "k8s.io.api.networking.v1.NetworkPolicyPort", "ports", 1),
        ("r", "k8s.io.api.networking.v1.NetworkPolicyPeer", "from", 2)],
    "k8s.io.api.networking.v1.NetworkPolicyEgressRule": [
        ("r", "k8s.io.api.networking.v1.NetworkPolicyPort", "ports", 1),
        ("r", "k8s.io.api.networking.v1.NetworkPolicyPeer", "to", 2)],
    "k8s.io.api.networking.v1.NetworkPolicyPeer": [
        ("o", _META + "LabelSelector", "podSelector", 1), ("o", _META + "LabelSelector", "namespaceSelector", 2),
        ("o", "k8s.io.api.networking.v1.IPBlock", "ipBlock", 3)],
    "k8s.io.api.networking.v1.NetworkPolicyPort": [
        ("o", "string", "protocol", 1), ("o", _INTSTR, "port", 2), ("o", "int32", "endPort", 3)],
    "k8s.io.api.networking.v1.IPBlock": [("o", "string", "cidr", 1), ("r", "string", "except", 2)],
}

# group -> (proto package, [(kind, plural, namespaced)])
GROUPS = {
    "coordination.k8s.io": ("k8s.io.api.coordination.v1", [("Lease", "leases", True)]),
    "rbac.authorization.k8s.io": ("k8s.io.api.rbac.v1", [
        ("Role", "roles", True), ("RoleBinding", "rolebindings", True),
        ("ClusterRole", "clusterroles", False), ("ClusterRoleBinding", "clusterrolebindings", False)]),
    "networking.k8s.io": ("k8s.io.api.networking.v1", [("NetworkPolicy", "networkpolicies", True)]),
}

REQUIRED = {
    "io.k8s.api.rbac.v1.PolicyRule": ["verbs"],
    "io.k8s.api.rbac.v1.RoleRef": ["apiGroup", "kind", "name"],
    "io.k8s.api.rbac.v1.Subject": ["kind", "name"],
    "io.k8s.api.rbac.v1.RoleBinding": ["roleRef"],
    "io.k8s.api.rbac.v1.ClusterRoleBinding": ["roleRef"],
    "io.k8s.api.networking.v1.IPBlock": ["cidr"],
}

# what /apis/networking.k8s.io/v1 lists of what the server serves
NETWORKING_DISCOVERY = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "networking.k8s.io/v1",
    "resources": [{"name": "networkpolicies", "singularName": "networkpolicy", "namespaced": True,
                   "kind": "NetworkPolicy", "shortNames": ["netpol"],
                   "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}],
}

_SCALARS = {"string": {"type": "string"}, "bytes": {"type": "string", "format": "byte"},
            "bool": {"type": "boolean"}, "int32": {"type": "integer", "format": "int32"},
            "int64": {"type": "integer", "format": "int64"}, "double": {"type": "number", "format": "double"}}


def _cname(mtype):
    """k8s.io.api.rbac.v1.Role -> io.k8s.api.rbac.v1.Role (the OpenAPI component name)."""
    return "io.k8s." + mtype[len("k8s.io."):]


def _type(ftype):
    if ftype in _SCALARS:
        return dict(_SCALARS[ftype])
    return {"allOf": [{"$ref": "#/components/schemas/" + _cname(ftype)}]}


def _components(msgs, pkg, kinds, group, out):
    todo = ["%s.%s" % (pkg, k) for k, _, _ in kinds]
    while todo:
        m = todo.pop()
        name = _cname(m)
        if name in out:
            continue
        props = {}
        for label, ftype, fname, _ in msgs[m]:
            t = _type(ftype)
            if label == "r":
                t = {"type": "array", "items": t}
            elif label == "m":
                t = {"type": "object", "additionalProperties": t}
            props[fname] = t
            if ftype.startswith(pkg + "."):
                todo.append(ftype)
        s = {"type": "object", "properties": props}
        kind = m[len(pkg) + 1:]
        if any(k == kind for k, _, _ in kinds):
            props["apiVersion"] = {"type": "string"}
            props["kind"] = {"type": "string"}
            s["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": "v1"}]
        if name in REQUIRED:
            s["required"] = REQUIRED[name]
        out[name] = s


def _param(name, typ="string"):
    return {"in": "query", "name": name, "schema": {"type": typ, "uniqueItems": True}}


def _paths(group, kinds):
    paths = {}
    for kind, plural, namespaced in kinds:
        gvk = {"group": group, "kind": kind, "version": "v1"}
        base = "/apis/%s/v1/%s%s" % (group, "namespaces/{namespace}/" if namespaced else "", plural)
        ref = {"$ref": "#/components/schemas/" + _cname("%s.%s" % (GROUPS[group][0], kind))}
        body = {"content": {"*/*": {"schema": ref}}, "required": True}
        write = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]

        def op(action, params, with_body=False):
            o = {"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params,
                 "responses": {"200": {"content": {"application/json": {"schema": ref}}}}}
            if with_body:
                o["requestBody"] = body
            return o
        paths[base] = {"get": op("list", []), "post": op("post", write, True)}
        paths[base + "/{name}"] = {"get": op("get", []), "put": op("put", write, True),
                                   "patch": op("patch", write + [_param("force", "boolean")], True),
                                   "delete": op("delete", [_param("dryRun")])}
    return paths


def documents(protos):
    """-> {"apis/<group>/v1": document dict} for GROUPS; protos is a pb.Protos
    (the shared generated.proto files) or None (then only networking)."""
    msgs = dict(protos.msgs) if protos is not None else {}
    msgs.update(NETWORKING)
    docs = {}
    for group, (pkg, kinds) in GROUPS.items():
        if "%s.%s" % (pkg, kinds[0][0]) not in msgs:
            continue
        comps = {}
        _components(msgs, pkg, kinds, group, comps)
        docs["apis/%s/v1" % group] = {
            "openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": _paths(group, kinds), "components": {"schemas": comps}}
    return docs


def encode(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _refs(node, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str):
            out.add(r.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def install(schemas, proto_dir):
    """Generates the documents and adds them to schemas (a openapi_check.Schemas),
    each completed with the shared components it refers to (ObjectMeta, Time...),
    so that it is whole as served."""
    import os
    import pb
    protos = pb.Protos(proto_dir) if os.path.isdir(proto_dir) else None
    for key, doc in documents(protos).items():
        comps = doc["components"]["schemas"]
        todo = set()
        _refs(comps, todo)
        while todo:
            name = todo.pop()
            if name in comps or name not in schemas.schemas:
                continue
            comps[name] = schemas.schemas[name]
            _refs(comps[name], todo)
        schemas.add(key, encode(doc))
