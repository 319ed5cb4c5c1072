"""handlers.py - the resource verbs of the test API server (split from
server.py to keep files small): get, list (selectors, limit/continue), watch
(chunked newline-delimited JSON, bookmarks, 410 ERROR events), create, update,
patch (merge, strategic merge, JSON patch), delete (DeleteOptions),
deletecollection, and the subresources status, scale, eviction, log, plus the
authorization reviews.
"""
import json
import os
import select
import socket
import time

import kselectors as sel
import openapi_check
import pb
import psa
from store import RESOURCES, ApiError, details, invalid

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def dispatch(h, verb, r, q):
    if r["review"]:
        return _review(h, r)
    gr = (r["group"], r["resource"])
    sub = r["sub"]
    ns = r["ns"]
    if sub == "scale":
        return _scale(h, verb, gr, ns, r["name"], q)
    if sub == "eviction":
        if verb != "create":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        return _evict(h, gr, ns, r["name"])
    if sub == "log":
        return _log(h, gr, ns, r["name"], q)
    fn = {"get": _get, "list": _list, "watch": _watch, "create": _create, "update": _update,
          "patch": _patch, "delete": _delete, "deletecollection": _deletecollection}[verb]
    return fn(h, gr, ns, r["name"], sub, q)


def _emit(h, code, obj):
    h._send(code, obj)  # objects were validated when stored


def _get(h, gr, ns, name, sub, q):
    o = h.server.api.store.get(gr, ns, name)
    if wants_table(h) and not sub:
        return h._send(200, table(gr, [o], o["metadata"]["resourceVersion"]))
    _emit(h, 200, o)


def _int(q, key, default=0):
    v = q.get(key)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except ValueError:
        raise ApiError(400, "BadRequest", "%s: Invalid value: %s: must be an integer" % (key, json.dumps(v)))


def _selectors(gr, q):
    try:
        ls = sel.parse_labels(q.get("labelSelector") or None)
        fs = sel.parse_fields(q.get("fieldSelector") or "", gr)
    except ValueError as e:
        raise ApiError(400, "BadRequest", 'Unable to find "%s" that match label selector "%s", field selector '
                       '"%s": %s' % (_gvr(gr), q.get("labelSelector", ""), q.get("fieldSelector", ""), e))
    return ls, fs


def _gvr(gr):
    kind, version = RESOURCES[gr][0], RESOURCES[gr][1]
    return "%s/%s, Resource=%s" % (gr[0], version, gr[1])


def _list(h, gr, ns, name, sub, q):
    store = h.server.api.store
    ls, fs = _selectors(gr, q)
    limit = _int(q, "limit")
    items, rv, cont, remaining = store.list_page(gr, ns or None, ls, fs, limit, q.get("continue") or None)
    kind, version = RESOURCES[gr][0], RESOURCES[gr][1]
    if wants_table(h):
        return h._send(200, table(gr, items, rv, cont))
    for it in items:  # the real server omits kind/apiVersion in list items
        it.pop("kind", None)
        it.pop("apiVersion", None)
    md = {"resourceVersion": rv}
    if cont:
        md["continue"] = cont
        md["remainingItemCount"] = remaining
    h._send(200, {"kind": kind + "List", "apiVersion": (gr[0] + "/" if gr[0] else "") + version,
                  "metadata": md, "items": items})


class _Chunked:
    def __init__(self, h):
        self.h = h

    def write(self, obj):
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.h.wfile.flush()

    def end(self):
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()


def _watch(h, gr, ns, name, sub, q):
    api = h.server.api
    store = api.store
    ls, fs = _selectors(gr, q)
    if name:
            fs = fs + sel.parse_fields("metadata.name=" + name, gr)
    timeout = _int(q, "timeoutSeconds", 1800)
    bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
    rv_param = q.get("resourceVersion", "")
    kind, version = RESOURCES[gr][0], RESOURCES[gr][1]
    api_version = (gr[0] + "/" if gr[0] else "") + version

    def match(o):
        md = o.get("metadata", {})
        if ns and md.get("namespace") != ns:
            return False
        return sel.match_labels(ls, md.get("labels")) and sel.match_fields(fs, o)

    with store.lock:
        if rv_param in ("", "0"):
            initial, _ = store.list(gr, ns or None, ls, fs)
            last = store.rv()
            err = None
        else:
            try:
                last = int(rv_param)
            except ValueError:
                raise ApiError(400, "BadRequest", 'resourceVersion: Invalid value: "%s": must be an integer'
                               % rv_param)
            initial = []
            try:
                store.events_since(last)
                err = None
            except ApiError as e:
                err = e
    h.send_response(200)
    h.send_header("Cache-Control", "no-cache, private")
    h.send_header("Content-Type", "application/json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    out = _Chunked(h)
    if err is not None:
        out.write({"type": "ERROR", "object": err.status()})
        out.end()
        return
    for o in initial:
        out.write({"type": "ADDED", "object": o})
    deadline = time.monotonic() + timeout
    gen = api.drop_gen
    idle_since = time.monotonic()
    while True:
        with store.cond:
            try:
                evs = store.events_since(last)
            except ApiError as e:
                evs, err = [], e
            if not evs and err is None:
                store.cond.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                try:
                    evs = store.events_since(last)
                except ApiError as e:
                    err = e
            cur = store.rv()
        if not evs and _client_gone(h):
            h.close_connection = True
            return
        if api.drop_gen != gen or api.stopping:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if err is not None:
            out.write({"type": "ERROR", "object": err.status()})
            out.end()
            return
        for rv, etype, egr, obj, old in evs:
            last = rv
            if egr != gr:
                continue
            now_in = match(obj)
            was_in = old is not None and match(old)
            if etype == "MODIFIED" and now_in and not was_in:
                etype = "ADDED"
            elif etype == "MODIFIED" and was_in and not now_in:
                etype, now_in = "DELETED", True
            if now_in:
                out.write({"type": etype, "object": obj})
                idle_since = time.monotonic()
        if not evs:
            last = max(last, cur) if not evs else last
        if time.monotonic() >= deadline:
            out.end()
            return
        if bookmarks and time.monotonic() - idle_since >= 1.0:
            out.write({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                                                      "metadata": {"resourceVersion": str(last)}}})
            idle_since = time.monotonic()


def _client_gone(h):
    """A watch client never sends on its connection while reading the stream:
    readable means it closed (EOF or TLS close_notify), so the thread can end."""
    try:
        r, _, _ = select.select([h.connection], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


def _strict(h, obj, q):
    mode = q.get("fieldValidation", "")
    schemas = h.server.api.schemas
    if mode not in ("Strict", "Warn") or schemas is None:
        return {}
    _, _, unknown = schemas.validate(obj)
    unknown = [u for u in unknown if not u.startswith("metadata.managedFields")]
    if unknown and mode == "Strict":
        raise ApiError(400, "BadRequest", "strict decoding error: " +
                       ", ".join('unknown field "%s"' % u for u in unknown))
    if unknown:
        return {"Warning": ", ".join('299 - "unknown field \\"%s\\""' % u for u in unknown)}
    return {}


def _check_kind(gr, obj):
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the object provided is not a JSON object")
    kind, version = RESOURCES[gr][0], RESOURCES[gr][1]
    want = (gr[0] + "/" if gr[0] else "") + version
    if obj.get("apiVersion") not in (None, want) or obj.get("kind") not in (None, kind):
        raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API "
                       "version (%s)" % (obj.get("apiVersion"), want) if obj.get("apiVersion") != want else
                       "the kind in the data (%s) does not match the expected kind (%s)" % (obj.get("kind"), kind))


def _admit(h, gr, ns, obj, headers):
    """Pod Security admission (psa.py) from the namespace's labels: 403 or a Warning header."""
    ns = ns or (obj.get("metadata") or {}).get("namespace") or ""
    try:
        nso = h.server.api.store.get(("", "namespaces"), "", ns) if ns else None
    except ApiError:
        nso = None
    if nso is None:
        return headers
    refusal, warning = psa.admit(nso["metadata"].get("labels") or {}, gr, obj)
    name = (obj.get("metadata") or {}).get("name", "")
    if refusal:
        raise ApiError(403, "Forbidden", '%s "%s" is forbidden: %s' % (gr[1], name, refusal), details(gr, name))
    if warning:
        w = '299 - "%s"' % warning.replace('"', '\\"')
        headers = dict(headers, Warning=headers["Warning"] + ", " + w if headers.get("Warning") else w)
    return headers


def _dry_run(q):
    """?dryRun=All: every stage but storing; any other value is refused, as the real server does."""
    v = q.get("dryRun")
    if v in (None, ""):
        return False
    if v != "All":
        raise ApiError(400, "BadRequest", 'Invalid dryRun directive: "%s". Valid values: "All"' % v)
    return True


def _create(h, gr, ns, name, sub, q):
    if name or sub:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    obj = h._json_body()
    _check_kind(gr, obj)
    headers = _admit(h, gr, ns, obj, _strict(h, obj, q))
    created = h.server.api.store.create(gr, ns, obj, dry_run=_dry_run(q))
    h._send(201, created, headers=headers)


def _update(h, gr, ns, name, sub, q):
    store = h.server.api.store
    obj = h._json_body()
    _check_kind(gr, obj)
    md = obj.get("metadata") or {}
    if md.get("name") != name:
        raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                       % (md.get("name"), name))
    headers = _strict(h, obj, q)
    if not sub:
        headers = _admit(h, gr, ns, obj, headers)
    dry = _dry_run(q)
    if sub == "status":
        h._send(200, store.update_status(gr, ns, obj, dry_run=dry), headers=headers)
    else:
        h._send(200, store.update(gr, ns, obj, dry_run=dry), headers=headers)


def apply_patch(h, current, kind_av):
    ctype = h.headers.get("Content-Type", "").split(";")[0].strip()
    try:
        patch = json.loads(h._body() or b"null")
    except ValueError as e:
        raise ApiError(400, "BadRequest", "error decoding patch: %s" % e)
    if ctype == MERGE:
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "json: cannot unmarshal into map: the patch is not an object")
        return openapi_check.merge_patch(current, patch)
    if ctype == STRATEGIC:
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "unable to find api field in struct for the patch")
        schemas = h.server.api.schemas
        if schemas is None:
            return openapi_check.merge_patch(current, patch)
        return schemas.strategic_merge(current, patch, kind_av[1], kind_av[0])
    if ctype == JSONPATCH:
        try:
            return openapi_check.json_patch(current, patch)
        except ValueError as e:
            raise ApiError(422 if "test" in str(e) else 500, "Invalid" if "test" in str(e) else "InternalError",
                           str(e))
    raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted '
                   'media types include: application/json-patch+json, application/merge-patch+json, '
                   'application/apply-patch+yaml')


def _patch(h, gr, ns, name, sub, q):
    store = h.server.api.store
    for attempt in range(5):
        cur = store.get(gr, ns, name)
        kind_av = (cur["kind"], cur["apiVersion"])
        new = apply_patch(h, cur, kind_av)
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the patched object is not a JSON object")
        headers = _strict(h, new, q)
        if not sub:
            headers = _admit(h, gr, ns, new, headers)
        new_md = new.setdefault("metadata", {}) or {}
        pinned = new_md.get("resourceVersion") != cur["metadata"]["resourceVersion"]
        if not pinned:
            new_md["resourceVersion"] = cur["metadata"]["resourceVersion"]
        new_md["name"] = name
        new["kind"], new["apiVersion"] = kind_av
        try:
            dry = _dry_run(q)
            out = store.update_status(gr, ns, new, dry_run=dry) if sub == "status" else \
                store.update(gr, ns, new, dry_run=dry)
            return h._send(200, out, headers=headers)
        except ApiError as e:
            if e.code != 409 or pinned:
                raise
    raise ApiError(409, "Conflict", "too many conflicts while patching")


def _delete_options(h, q):
    opts = h._json_body(required=False)
    if not isinstance(opts, dict):
        raise ApiError(400, "BadRequest", "DeleteOptions must be a JSON object")
    grace = opts.get("gracePeriodSeconds")
    if q.get("gracePeriodSeconds") not in (None, ""):
        grace = _int(q, "gracePeriodSeconds")
    prop = q.get("propagationPolicy") or opts.get("propagationPolicy")
    if opts.get("orphanDependents") is True and not prop:
        prop = "Orphan"
    if grace is not None and grace < 0:
        grace = 0
    return grace, prop, opts.get("preconditions")


def _delete_response(h, gr, obj):
    if gr in (("", "pods"), ("", "namespaces")) or obj["metadata"].get("deletionTimestamp"):
        code = 202 if obj["metadata"].get("deletionTimestamp") and gr != ("", "pods") else 200
        return h._send(code, obj)
    d = details(gr, obj["metadata"]["name"])
    d["uid"] = obj["metadata"]["uid"]
    h._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})


def _delete(h, gr, ns, name, sub, q):
    if sub:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    grace, prop, pre = _delete_options(h, q)
    if _dry_run(q):  # what would go: the object as it is, nothing removed
        return _delete_response(h, gr, h.server.api.store.get(gr, ns, name))
    obj = h.server.api.store.delete(gr, ns, name, grace, prop, pre)
    _delete_response(h, gr, obj)


def _deletecollection(h, gr, ns, name, sub, q):
    store = h.server.api.store
    ls, fs = _selectors(gr, q)
    grace, prop, pre = _delete_options(h, q)
    items, rv = store.list(gr, ns or None, ls, fs)
    out = []
    for it in items:
        try:
            out.append(store.delete(gr, it["metadata"].get("namespace", ""), it["metadata"]["name"], grace, prop))
        except ApiError as e:
            if e.code != 404:
                raise
    kind, version = RESOURCES[gr][0], RESOURCES[gr][1]
    h._send(200, {"kind": kind + "List", "apiVersion": (gr[0] + "/" if gr[0] else "") + version,
                  "metadata": {"resourceVersion": str(store.rv())}, "items": out})


# ---- subresources --------------------------------------------------------------
def _to_scale(o):
    md = o["metadata"]
    match = (o.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": md["name"], "namespace": md.get("namespace", ""), "uid": md["uid"],
                         "resourceVersion": md["resourceVersion"], "creationTimestamp": md["creationTimestamp"]},
            "spec": {"replicas": o.get("spec", {}).get("replicas", 0)},
            "status": {"replicas": o.get("status", {}).get("replicas", 0),
                       "selector": ",".join("%s=%s" % kv for kv in sorted(match.items()))}}


def _scale(h, verb, gr, ns, name, q):
    store = h.server.api.store
    schemas = h.server.api.schemas
    for attempt in range(5):
        cur = store.get(gr, ns, name)
        scale = _to_scale(cur)
        if verb == "get":
            return h._send(200, scale)
        if verb == "update":
            new = h._json_body()
        elif verb == "patch":
            new = apply_patch(h, scale, ("Scale", "autoscaling/v1"))
        else:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                           "resource")
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the Scale is not a JSON object")
        new.setdefault("kind", "Scale")
        new.setdefault("apiVersion", "autoscaling/v1")
        if schemas is not None:
            decode, causes, _ = schemas.validate(new)
            if decode:
                raise ApiError(400, "BadRequest", 'Scale in version "v1" cannot be handled as a Scale: ' + decode[0])
        replicas = (new.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(("autoscaling", "Scale"), name, [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                           "message": "Invalid value: %s: must be greater than or equal to 0" % json.dumps(replicas)}])
        want_rv = (new.get("metadata") or {}).get("resourceVersion")
        pinned = verb == "update" and want_rv
        cur["spec"]["replicas"] = replicas
        cur["metadata"]["resourceVersion"] = want_rv if pinned else cur["metadata"]["resourceVersion"]
        try:
            out = store.update(gr, ns, cur)
            return h._send(200, _to_scale(out))
        except ApiError as e:
            if e.code != 409 or pinned:
                raise
    raise ApiError(409, "Conflict", "too many conflicts while scaling")


def _evict(h, gr, ns, name):
    store = h.server.api.store
    body = h._json_body(required=False)
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the Eviction is not a JSON object")
    if body.get("kind") not in (None, "Eviction"):
        raise ApiError(400, "BadRequest", "the kind in the data (%s) does not match the expected kind (Eviction)"
                       % body.get("kind"))
    if body.get("apiVersion") not in (None, "policy/v1", "policy/v1beta1"):
        raise ApiError(400, "BadRequest", "no kind \"Eviction\" is registered for version \"%s\""
                       % body.get("apiVersion"))
    if (body.get("metadata") or {}).get("name") not in (None, name):
        raise ApiError(400, "BadRequest", "name in URL does not match name in Eviction object")
    if (body.get("metadata") or {}).get("namespace") not in (None, ns):
        raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                       "namespace sent on the request")
    opts = body.get("deleteOptions") or {}
    _check_disruption_budgets(store, ns, store.get(gr, ns, name))
    store.delete(gr, ns, name, opts.get("gracePeriodSeconds"), opts.get("propagationPolicy"),
                 opts.get("preconditions"))
    h._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})


def _healthy(p):
    conds = (p.get("status") or {}).get("conditions") or []
    return not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") == "Running" and \
        any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _scaled(v, total, round_up):
    if isinstance(v, str) and v.endswith("%"):
        try:
            pct = int(v[:-1])
        except ValueError:
            return None
        n = pct * total
        return (n + 99) // 100 if round_up else n // 100
    return v if isinstance(v, int) else None


def _check_disruption_budgets(store, ns, pod):
    """What the eviction registry does with the PodDisruptionBudgets that
    select the pod (computed now rather than by a disruption controller)."""
    if not _healthy(pod):
        return  # evicting an unhealthy pod never costs the budget anything
    pdbs, _ = store.list(("policy", "poddisruptionbudgets"), ns)
    for pdb in pdbs:
        spec = pdb.get("spec") or {}
        if not sel.match_label_selector(spec.get("selector"), pod["metadata"].get("labels")):
            continue
        pods, _ = store.list(("", "pods"), ns)
        selected = [p for p in pods if sel.match_label_selector(spec.get("selector"), p["metadata"].get("labels"))]
        healthy = sum(1 for p in selected if _healthy(p))
        expected = len([p for p in selected if not p["metadata"].get("deletionTimestamp")])
        if spec.get("minAvailable") is not None:
            desired = _scaled(spec["minAvailable"], expected, True)
        elif spec.get("maxUnavailable") is not None:
            mu = _scaled(spec["maxUnavailable"], expected, True)
            desired = None if mu is None else max(0, expected - mu)
        else:
            continue
        if desired is not None and healthy - desired <= 0:
            raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                           {"causes": [{"reason": "DisruptionBudget",
                                        "message": "The disruption budget %s needs %d healthy pods and has %d "
                                                   "currently" % (pdb["metadata"]["name"], desired, healthy)}]})


def _log(h, gr, ns, name, q):
    api = h.server.api
    api.store.get(gr, ns, name)
    data = b""
    if api.pod_log_dir:
        p = os.path.join(api.pod_log_dir, "%s_%s.log" % (ns, name))
        if os.path.exists(p):
            with open(p, "rb") as f:
                data = f.read()
    tail = q.get("tailLines")
    if tail:
        n = _int(q, "tailLines")
        data = b"".join(data.splitlines(True)[-n:]) if n > 0 else b""
    h._send(200, data, "text/plain")


# ---- authorization reviews -----------------------------------------------------------
def _review(h, r):
    if h.command != "POST":
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    api = h.server.api
    obj = h._json_body()
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the review is not a JSON object")
    kinds = {"selfsubjectaccessreviews": "SelfSubjectAccessReview",
             "selfsubjectrulesreviews": "SelfSubjectRulesReview",
             "subjectaccessreviews": "SubjectAccessReview",
             "localsubjectaccessreviews": "LocalSubjectAccessReview"}
    kind = kinds[r["resource"]]
    spec = obj.get("spec") or {}
    for part in (spec, spec.get("resourceAttributes") if isinstance(spec, dict) else None,
                 spec.get("nonResourceAttributes") if isinstance(spec, dict) else None):
        if part is not None and (not isinstance(part, dict) or
                                 any(not isinstance(v, (str, dict, list)) for v in part.values())):
            raise ApiError(400, "BadRequest", '%s in version "v1" cannot be handled as a %s: json: cannot '
                           'unmarshal into Go struct field %s.spec' % (kind, kind, kind))
    out = {"kind": kind, "apiVersion": "authorization.k8s.io/v1", "metadata": {"creationTimestamp": None},
           "spec": spec}
    if kind == "SelfSubjectRulesReview":
        ns = spec.get("namespace", "")
        out["status"] = {"resourceRules": api.auth.rules_for(h.user, ns),
                         "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": [
                             "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/openapi", "/openapi/*",
                             "/version", "/version/"]}], "incomplete": False}
        return h._send(201, out)
    user = h.user if kind == "SelfSubjectAccessReview" else spec.get("user", "")
    ra = spec.get("resourceAttributes")
    if kind == "LocalSubjectAccessReview" and ra is not None and ra.get("namespace", r["ns"]) != r["ns"]:
        raise ApiError(400, "BadRequest", "spec.resourceAttributes.namespace must match namespace: %s" % r["ns"])
    if ra is not None:
        ok, reason = api.auth.authorize(user, ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                                        ra.get("subresource", ""), ra.get("namespace", ""))
    elif spec.get("nonResourceAttributes") is not None:
        ok, reason = True, "non-resource URLs are open to authenticated users"
    else:
        raise invalid(("authorization.k8s.io", kind), "", [
            {"reason": "FieldValueRequired", "field": "spec.resourceAttributes",
             "message": "Required value: exactly one of nonResourceAttributes or resourceAttributes must be "
                        "specified"}])
    out["status"] = {"allowed": ok}
    if reason:
        out["status"]["reason"] = reason
    accept = h.headers.get("Accept", "")
    if accept.startswith(pb.PROTOBUF) and kind == "SelfSubjectAccessReview":  # the real server prefers the first
        return h._send(201, pb.encode_ssar(out), pb.PROTOBUF)
    h._send(201, out)


# ---- Table (what `kubectl get` asks for with Accept: ...;as=Table) ------------------
def wants_table(h):
    accept = h.headers.get("Accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


def _age(ts):
    import calendar
    try:
        t = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return "<unknown>"
    s = max(0, int(time.time() - t))
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    hrs = m // 60
    if hrs < 8:
        return "%dh%dm" % (hrs, m % 60) if m % 60 else "%dh" % hrs
    if hrs < 48:
        return "%dh" % hrs
    return "%dd" % (hrs // 24)


def _pod_cells(o):
    st = o.get("status", {})
    cs = st.get("containerStatuses") or []
    n = len(o.get("spec", {}).get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    reason = st.get("reason") or st.get("phase", "")
    for c in cs:
        w = (c.get("state") or {}).get("waiting") or {}
        t = (c.get("state") or {}).get("terminated") or {}
        if w.get("reason"):
            reason = w["reason"]
        elif t.get("reason") and reason not in ("Running",):
            reason = t["reason"]
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return ["%d/%d" % (ready, n), reason, sum(c.get("restartCount", 0) for c in cs),
            st.get("podIP") or "<none>", o.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _node_cells(o):
    ready = [c for c in o.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"]
    s = "Ready" if ready and ready[0].get("status") == "True" else "NotReady"
    if o.get("spec", {}).get("unschedulable"):
        s += ",SchedulingDisabled"
    return [s, "<none>"]


_TABLES = {
    ("", "pods"): (["Ready", "Status", "Restarts", "*IP", "*Node", "*Nominated Node", "*Readiness Gates"],
                   ["string", "string", "integer", "string", "string", "string", "string"], _pod_cells),
    ("", "nodes"): (["Status", "Roles"], ["string", "string"], _node_cells),
    ("", "namespaces"): (["Status"], ["string"], lambda o: [o.get("status", {}).get("phase", "")]),
    ("", "configmaps"): (["Data"], ["integer"], lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})]),
    ("", "secrets"): (["Type", "Data"], ["string", "integer"],
                      lambda o: [o.get("type", ""), len(o.get("data") or {})]),
    ("apps", "deployments"): (["Ready", "Up-to-date", "Available"], ["string", "integer", "integer"],
                              lambda o: ["%d/%d" % (o.get("status", {}).get("readyReplicas", 0),
                                                    o.get("spec", {}).get("replicas", 0)),
                                         o.get("status", {}).get("updatedReplicas", 0),
                                         o.get("status", {}).get("availableReplicas", 0)]),
    ("apps", "replicasets"): (["Desired", "Current", "Ready"], ["integer", "integer", "integer"],
                              lambda o: [o.get("spec", {}).get("replicas", 0), o.get("status", {}).get("replicas", 0),
                                         o.get("status", {}).get("readyReplicas", 0)]),
}


def table(gr, objs, rv, cont=""):
    names, types, cells = _TABLES.get(gr, ([], [], lambda o: []))
    cols = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace."}]
    cols += [{"name": n.lstrip("*"), "type": t, "format": "", "description": n.lstrip("*"),
              "priority": 1 if n.startswith("*") else 0} for n, t in zip(names, types)]
    cols.insert(len([n for n in names if not n.startswith("*")]) + 1, {"name": "Age", "type": "string", "format": "", "priority": 0,
                 "description": "CreationTimestamp is a timestamp representing the server time when this object "
                                "was created."})
    rows = []
    for o in objs:
        md = o["metadata"]
        c = cells(o)
        k = len([n for n in names if not n.startswith("*")])
        rows.append({"cells": [md["name"]] + c[:k] + [_age(md.get("creationTimestamp"))] + c[k:],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}})
    meta = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": cols,
            "rows": rows}

