"""store.py - the object store of the test API server (what etcd + the
registry do in kube-apiserver).

One global resourceVersion; objects keyed by (group, plural) then (ns, name);
defaulting and validation on create/update (422 Invalid with causes, 400 for
type errors, checked against the OpenAPI documents); 409 on duplicates and
stale updates; graceful pod deletion and ownerReference garbage collection;
an event log that watches replay from a resourceVersion (410 once compacted);
subscribers called in order from one dispatcher thread, without the lock.
"""
import base64
import copy
import datetime
import json
import queue
import random
import re
import threading
import time
import uuid

import kinds
import kselectors as sel

# (group, plural) -> kind, version, namespaced, short names, subresources, validated
RESOURCES = {
    ("", "pods"): ("Pod", "v1", True, ["po"], ["status", "eviction", "log"]),
    ("", "secrets"): ("Secret", "v1", True, [], []),
    ("", "configmaps"): ("ConfigMap", "v1", True, ["cm"], []),
    ("", "serviceaccounts"): ("ServiceAccount", "v1", True, ["sa"], []),
    ("", "services"): ("Service", "v1", True, ["svc"], ["status"]),
    ("", "events"): ("Event", "v1", True, ["ev"], []),
    ("", "namespaces"): ("Namespace", "v1", False, ["ns"], ["status"]),
    ("", "nodes"): ("Node", "v1", False, ["no"], ["status"]),
    ("apps", "deployments"): ("Deployment", "v1", True, ["deploy"], ["scale", "status"]),
    ("apps", "replicasets"): ("ReplicaSet", "v1", True, ["rs"], ["scale", "status"]),
    ("coordination.k8s.io", "leases"): ("Lease", "v1", True, [], []),
    ("networking.k8s.io", "networkpolicies"): ("NetworkPolicy", "v1", True, ["netpol"], []),
    ("policy", "poddisruptionbudgets"): ("PodDisruptionBudget", "v1", True, ["pdb"], ["status"]),
    ("rbac.authorization.k8s.io", "roles"): ("Role", "v1", True, [], []),
    ("rbac.authorization.k8s.io", "rolebindings"): ("RoleBinding", "v1", True, [], []),
    ("rbac.authorization.k8s.io", "clusterroles"): ("ClusterRole", "v1", False, [], []),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): ("ClusterRoleBinding", "v1", False, [], []),
}
STATUS_SUBRESOURCE = {gr for gr, v in RESOURCES.items() if "status" in v[4]}
GENERATION = {("apps", "deployments"), ("apps", "replicasets"), ("policy", "poddisruptionbudgets")}
LOG_KEEP = 20000
_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of generateName suffixes (no vowels, no 0/1/3)

_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUB_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_LVAL_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
             "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
             "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
_LKEY_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
             "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
             "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


class ApiError(Exception):
    """An error the server answers with a Status object."""

    def __init__(self, code, reason, message, details=None, retry_after=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.retry_after = details, retry_after

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason}
        if self.details:
            st["details"] = self.details
        st["code"] = self.code
        if not self.reason:
            del st["reason"]
        return st


def now_iso(offset=0.0):
    t = datetime.datetime.fromtimestamp(time.time() + offset, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def qualified(gr):
    return gr[1] + ("." + gr[0] if gr[0] else "")


def details(gr, name):
    d = {"name": name}
    if gr[0]:
        d["group"] = gr[0]
    d["kind"] = gr[1]
    return d


def not_found(gr, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(gr), name), details(gr, name))


def conflict(gr, name, why="the object has been modified; please apply your changes to the latest "
                           "version and try again"):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (qualified(gr), name, why), details(gr, name))


def invalid(gr, name, causes):
    kind = RESOURCES[gr][0] if gr in RESOURCES else gr[1]
    msgs = ["%s: %s" % (c["field"], c["message"]) for c in causes]
    text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    d = {"name": name}
    if gr[0]:
        d["group"] = gr[0]
    d["kind"] = kind
    d["causes"] = causes
    return ApiError(422, "Invalid", '%s.%s "%s" is invalid: %s' % (kind, gr[0], name, text) if gr[0]
                    else '%s "%s" is invalid: %s' % (kind, name, text), d)


def encode_continue(rv, key):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_continue(tok):
    try:
        d = json.loads(base64.b64decode(tok, validate=True))
        return int(d["rv"]), d["start"].rstrip("\x00")
    except Exception:
        raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data")


class Store:
    def __init__(self, schemas=None):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.schemas = schemas
        self._objs = {gr: {} for gr in RESOURCES}
        self._rv = 1
        self._log, self._log_rv = [], []  # (rv, type, gr, obj) in rv order
        self.compacted = 0               # watches / continues at or below this rv are too old
        self._owners = {}                # owner uid -> set of (gr, ns, name)
        self._subs = []
        self._q = queue.Queue()
        self._closed = False
        threading.Thread(target=self._dispatch, name="store-dispatch", daemon=True).start()

    # ---- public API -----------------------------------------------------
    def rv(self):
        with self.lock:
            return self._rv

    def subscribe(self, fn):
        with self.lock:
            self._subs.append(fn)

    def close(self):
        self._closed = True
        self._q.put(None)
        with self.cond:
            self.cond.notify_all()

    def create(self, gr, ns, obj, dry_run=False):
        """dry_run: every check and default of a create, nothing stored (?dryRun=All)."""
        obj = copy.deepcopy(obj)
        kind, version, namespaced = self._meta(gr)
        md = obj.setdefault("metadata", {})
        if md is None:
            md = obj["metadata"] = {}
        _check_meta(kind, version, md)
        obj["kind"], obj["apiVersion"] = kind, (gr[0] + "/" + version if gr[0] else version)
        with self.lock:
            if namespaced:
                ns = ns or md.get("namespace") or "default"
                if md.get("namespace") not in (None, "", ns):
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                                   "the namespace sent on the request")
                md["namespace"] = ns
                if ("", ns) not in self._objs[("", "namespaces")]:
                    raise not_found(("", "namespaces"), ns)
                nso = self._objs[("", "namespaces")].get(("", ns))
                if nso and nso.get("metadata", {}).get("deletionTimestamp"):
                    raise ApiError(403, "Forbidden", 'unable to create new content in namespace %s because it '
                                   'is being terminated' % ns, {"name": md.get("name", ""), "kind": gr[1]})
            else:
                md.pop("namespace", None)
                ns = ""
            if not md.get("name") and md.get("generateName"):
                gen = md["generateName"][:58]
                while True:
                    name = gen + "".join(random.choice(_ALNUM) for _ in range(5))
                    if (ns, name) not in self._objs[gr]:
                        break
                md["name"] = name
            if gr in STATUS_SUBRESOURCE and gr not in (("", "nodes"), ("", "namespaces")):
                obj.pop("status", None)  # PrepareForCreate: clients cannot set status on create
            self._default(gr, obj)
            self._validate(gr, obj)
            name = md["name"]
            if (ns, name) in self._objs[gr]:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (qualified(gr), name),
                               details(gr, name))
            for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                md.pop(k, None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_iso()
            if gr in GENERATION:
                md["generation"] = 1
            if dry_run:
                return _canonical(obj)
            return copy.deepcopy(self._put(gr, ns, obj, "ADDED"))

    def get(self, gr, ns, name):
        self._meta(gr)
        with self.lock:
            o = self._objs[gr].get((ns or "", name))
            if o is None:
                raise not_found(gr, name)
            return copy.deepcopy(o)

    def list(self, gr, ns=None, label_selector=None, field_selector=None, limit=0, cont=None):
        """-> (items, rv) ; with limit: -> (items, rv, continue, remaining) via list_page."""
        items, rv, _, _ = self.list_page(gr, ns, label_selector, field_selector, limit, cont)
        return items, rv

    def list_page(self, gr, ns=None, label_selector=None, field_selector=None, limit=0, cont=None):
        self._meta(gr)
        lsel = sel.parse_labels(label_selector) if isinstance(label_selector, str) else label_selector or []
        fsel = sel.parse_fields(field_selector, gr) if isinstance(field_selector, str) else field_selector or []
        with self.lock:
            start = None
            rv = self._rv
            if cont:
                crv, start = decode_continue(cont)
                if crv <= self.compacted:
                    raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without the continue "
                                   "parameter, or use the continue token in this response to retrieve the "
                                   "remainder of the results. Continuing with the provided token results in an "
                                   "inconsistent list - objects that were created, modified, or deleted between "
                                   "the time the first chunk was returned and now may show up in the list.")
                rv = crv
            objs = self._objs[gr]
            keys = sorted(k for k in objs if ns in (None, "") or k[0] == ns)
            out, last, remaining = [], None, 0
            for k in keys:
                skey = k[0] + "/" + k[1]
                if start is not None and skey <= start:
                    continue
                o = objs[k]
                if not sel.match_labels(lsel, o.get("metadata", {}).get("labels")):
                    continue
                if not sel.match_fields(fsel, o):
                    continue
                if limit and len(out) >= limit:
                    remaining += 1
                    continue
                out.append(copy.deepcopy(o))
                last = skey
            token = encode_continue(rv, last) if limit and remaining else ""
            return out, str(rv), token, remaining

    def update(self, gr, ns, obj, _status=False, dry_run=False):
        obj = copy.deepcopy(obj)
        kind, version, namespaced = self._meta(gr)
        ns = ns if namespaced else ""
        md = obj.get("metadata") or {}
        _check_meta(kind, version, md)
        name = md.get("name", "")
        with self.lock:
            old = self._objs[gr].get((ns, name))
            if old is None:
                raise not_found(gr, name)
            want = md.get("resourceVersion")
            if want and want != old["metadata"]["resourceVersion"]:
                raise conflict(gr, name)
            if md.get("uid") and md["uid"] != old["metadata"]["uid"]:
                raise conflict(gr, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (md["uid"], old["metadata"]["uid"]))
            if _status:
                new = copy.deepcopy(old)
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                new = obj
                new["kind"], new["apiVersion"] = old["kind"], old["apiVersion"]
                nmd = new.setdefault("metadata", {})
                for k in ("uid", "creationTimestamp", "namespace", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                    if k in old["metadata"]:
                        nmd[k] = old["metadata"][k]
                    else:
                        nmd.pop(k, None)
                if gr in STATUS_SUBRESOURCE:
                    if "status" in old:
                        new["status"] = old["status"]
                    else:
                        new.pop("status", None)
                self._default(gr, new)
            self._validate(gr, new, old)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return copy.deepcopy(old)
            if gr in GENERATION and new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if dry_run:
                return _canonical(copy.deepcopy(new))
            nmd = new["metadata"]
            if nmd.get("deletionTimestamp") and not nmd.get("finalizers") and not self._graceful_pod(gr, new):
                self._remove(gr, ns, name, new)
                return copy.deepcopy(new)
            return copy.deepcopy(self._put(gr, ns, new, "MODIFIED"))

    def update_status(self, gr, ns, obj, dry_run=False):
        return self.update(gr, ns, obj, _status=True, dry_run=dry_run)

    def delete(self, gr, ns, name, grace_seconds=None, propagation=None, preconditions=None):
        _, _, namespaced = self._meta(gr)
        ns = ns if namespaced else ""
        with self.lock:
            o = self._objs[gr].get((ns, name))
            if o is None:
                raise not_found(gr, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != o["metadata"]["uid"]:
                raise conflict(gr, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (pre["uid"], o["metadata"]["uid"]))
            if pre.get("resourceVersion") and pre["resourceVersion"] != o["metadata"]["resourceVersion"]:
                raise conflict(gr, name, "Precondition failed: ResourceVersion in precondition: %s, "
                               "ResourceVersion in object meta: %s" % (pre["resourceVersion"],
                                                                       o["metadata"]["resourceVersion"]))
            if propagation not in (None, "Background", "Foreground", "Orphan"):
                raise invalid(gr, name, [{"reason": "FieldValueNotSupported", "field": "propagationPolicy",
                                          "message": 'Unsupported value: "%s": supported values: "Foreground", '
                                          '"Background", "Orphan", "nil"' % propagation}])
            if propagation == "Orphan":
                self._orphan(o["metadata"]["uid"])
            elif propagation == "Foreground":
                self._gc(o["metadata"]["uid"], "Foreground")
            if gr == ("", "namespaces"):
                return self._delete_namespace(name)
            md = o["metadata"]
            if gr == ("", "pods") and o.get("spec", {}).get("nodeName"):
                if grace_seconds is None:
                    grace_seconds = md.get("deletionGracePeriodSeconds",
                                           o["spec"].get("terminationGracePeriodSeconds", 30))
                phase = o.get("status", {}).get("phase")
                if grace_seconds > 0 and phase not in ("Succeeded", "Failed"):
                    if md.get("deletionTimestamp") and md.get("deletionGracePeriodSeconds", 0) <= grace_seconds:
                        return copy.deepcopy(o)
                    new = copy.deepcopy(o)
                    new["metadata"]["deletionTimestamp"] = now_iso(grace_seconds)
                    new["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
                    return copy.deepcopy(self._put(gr, ns, new, "MODIFIED"))
            if md.get("finalizers"):
                if md.get("deletionTimestamp"):
                    return copy.deepcopy(o)
                new = copy.deepcopy(o)
                new["metadata"]["deletionTimestamp"] = now_iso()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return copy.deepcopy(self._put(gr, ns, new, "MODIFIED"))
            return self._remove(gr, ns, name, o)

    def finalize_delete(self, gr, ns, name):
        with self.lock:
            o = self._objs[gr].get((ns or "", name))
            if o is None:
                raise not_found(gr, name)
            return self._remove(gr, ns or "", name, o)

    def compact(self):
        with self.cond:
            self.compacted = self._rv
            self._log, self._log_rv = [], []
            self.cond.notify_all()

    def events_since(self, rv):
        """Events with resourceVersion > rv (call with the lock held);
        ApiError 410 if rv is older than what the log still has."""
        if rv < self.compacted or (self._log and rv < self._log[0][0] - 1 and rv < self._rv):
            oldest = self._log[0][0] if self._log else self._rv
            raise ApiError(410, "Expired", "too old resource version: %d (%d)" % (rv, oldest))
        import bisect
        i = bisect.bisect_right(self._log_rv, rv)
        return self._log[i:]

    # ---- internals --------------------------------------------------------
    def _meta(self, gr):
        r = RESOURCES.get(gr)
        if r is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return r[0], r[1], r[2]

    def _schedule(self, podspec=None):
        """First Ready node not cordoned and without a NoSchedule or
        NoExecute taint the pod does not tolerate, by name (node-1
        normally); node-1 if no node fits (a real scheduler would leave the
        pod Pending). A pod's spec.nodeSelector is honoured as the real
        scheduler does: only nodes carrying every one of those labels, and
        None (the pod stays Pending, unbound) when no node does."""
        tols = (podspec or {}).get("tolerations") or []
        want = (podspec or {}).get("nodeSelector") or {}
        nodes = [(name, n) for (_, name), n in sorted(self._objs[("", "nodes")].items())
                 if all(((n.get("metadata") or {}).get("labels") or {}).get(k) == v
                        for k, v in want.items())]
        if want and not nodes:
            return None
        for name, n in nodes:
            spec = n.get("spec", {})
            if spec.get("unschedulable"):
                continue
            if all(_tolerated(t, tols) for t in spec.get("taints") or []
                   if t.get("effect") in ("NoSchedule", "NoExecute")):
                return name
        return nodes[0][0] if want else "node-1"

    def _graceful_pod(self, gr, o):
        return gr == ("", "pods") and o.get("spec", {}).get("nodeName") and \
            o["metadata"].get("deletionGracePeriodSeconds", 0) > 0

    def _put(self, gr, ns, obj, etype):
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        obj = _canonical(obj)
        name = obj["metadata"]["name"]
        old = self._objs[gr].get((ns, name))
        if old:
            self._index_owners(gr, ns, old, False)
        self._objs[gr][(ns, name)] = obj
        self._index_owners(gr, ns, obj, True)
        self._event(etype, gr, obj, old)
        return obj

    def _event(self, etype, gr, obj, old=None):
        """Log entries are (rv, type, gr, object, previous object or None):
        watches with selectors need the previous state to turn an update that
        leaves (enters) the selection into DELETED (ADDED), as the watch cache does."""
        snap = copy.deepcopy(obj)
        self._log.append((self._rv, etype, gr, snap, old))
        self._log_rv.append(self._rv)
        if len(self._log) > 2 * LOG_KEEP:
            self._log, self._log_rv = self._log[-LOG_KEEP:], self._log_rv[-LOG_KEEP:]
        self._q.put((etype, gr, snap))
        self.cond.notify_all()

    def _remove(self, gr, ns, name, o):
        self._objs[gr].pop((ns, name), None)
        self._index_owners(gr, ns, o, False)
        self._rv += 1
        o = copy.deepcopy(o)
        o["metadata"]["resourceVersion"] = str(self._rv)
        self._event("DELETED", gr, o)
        self._gc(o["metadata"]["uid"], "Background")
        return o

    def _index_owners(self, gr, ns, obj, add):
        for ref in obj.get("metadata", {}).get("ownerReferences") or []:
            s = self._owners.setdefault(ref.get("uid"), set())
            if add:
                s.add((gr, ns, obj["metadata"]["name"]))
            else:
                s.discard((gr, ns, obj["metadata"]["name"]))

    def _gc(self, uid, mode):
        """Delete dependents of a removed owner (garbage collector)."""
        for gr, ns, name in sorted(self._owners.pop(uid, set())):
            o = self._objs[gr].get((ns, name))
            if o is None:
                continue
            refs = [r for r in o["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            owners_alive = any(self._uid_exists(r.get("uid")) for r in refs)
            if owners_alive:
                new = copy.deepcopy(o)
                new["metadata"]["ownerReferences"] = refs
                self._put(gr, ns, new, "MODIFIED")
                continue
            try:
                self.delete(gr, ns, name, propagation="Foreground" if mode == "Foreground" else None)
            except ApiError:
                pass

    def _uid_exists(self, uid):
        for objs in self._objs.values():
            for o in objs.values():
                if o["metadata"].get("uid") == uid:
                    return True
        return False

    def _orphan(self, uid):
        for gr, ns, name in sorted(self._owners.pop(uid, set())):
            o = self._objs[gr].get((ns, name))
            if o is not None:
                new = copy.deepcopy(o)
                new["metadata"]["ownerReferences"] = [r for r in new["metadata"].get("ownerReferences") or []
                                                      if r.get("uid") != uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self._put(gr, ns, new, "MODIFIED")

    def _delete_namespace(self, name):
        gr = ("", "namespaces")
        for rgr, (_, _, namespaced, _, _) in RESOURCES.items():
            if namespaced:
                for (ns, n), o in list(self._objs[rgr].items()):
                    if ns == name:
                        self._remove(rgr, ns, n, o)
        o = self._objs[gr][("", name)]
        return self._remove(gr, "", name, o)

    def _dispatch(self):
        while True:
            item = self._q.get()
            if item is None or self._closed:
                return
            for fn in list(self._subs):
                try:
                    fn(*item)
                except Exception:  # a subscriber's bug must not stop the others
                    import traceback
                    traceback.print_exc()

    # ---- defaulting and validation -----------------------------------------
    def _default(self, gr, obj):
        spec = obj.get("spec")
        if gr == ("", "pods") and isinstance(spec, dict):
            _default_podspec(spec)
            if not spec.get("nodeName"):  # the scheduler: bound at creation
                node = self._schedule(spec)
                if node is not None:
                    spec["nodeName"] = node
            st = obj.setdefault("status", {})
            if isinstance(st, dict):
                st.setdefault("phase", "Pending")
                st.setdefault("qosClass", _qos(spec))
        elif gr in (("apps", "deployments"), ("apps", "replicasets")) and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            if gr[1] == "deployments":
                spec.setdefault("strategy", {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("progressDeadlineSeconds", 600)
            tmpl = spec.get("template")
            if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
                _default_podspec(tmpl["spec"])
        elif gr == ("", "secrets"):
            obj.setdefault("type", "Opaque")
        elif gr in kinds.KINDS:
            used = {o.get("spec", {}).get("clusterIP") for o in self._objs[("", "services")].values()}
            kinds.default(gr, obj, used)
        elif gr == ("", "namespaces"):
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")

    def _validate(self, gr, obj, old=None):
        md = obj.get("metadata") or {}
        name = md.get("name") or ""
        causes = []
        if self.schemas is not None:
            decode, req, _ = self.schemas.validate(obj)
            if decode:
                raise ApiError(400, "BadRequest", '%s in version "%s" cannot be handled as a %s: %s'
                               % (obj["kind"], obj["apiVersion"].split("/")[-1], obj["kind"], decode[0]))
            causes.extend(req)
        if not name:
            causes.insert(0, {"reason": "FieldValueRequired", "field": "metadata.name",
                              "message": "Required value: name or generateName is required"})
        elif gr == ("", "namespaces") and not (_DNS1123_LABEL.match(name) and len(name) <= 63):
            causes.insert(0, _bad("metadata.name", name, _LABEL_MSG))
        elif gr != ("", "namespaces") and not (_DNS1123_SUB.match(name) and len(name) <= 253):
            causes.insert(0, _bad("metadata.name", name, _SUB_MSG))
        for field in ("labels", "annotations"):
            m = md.get(field)
            if m is not None and not isinstance(m, dict):
                continue
            for k, v in (m or {}).items():
                if not sel.valid_label_key(k):
                    causes.append(_bad("metadata.%s" % field, k, _LKEY_MSG))
                elif field == "labels" and not sel.valid_label_value(v):
                    causes.append(_bad("metadata.labels", v, _LVAL_MSG))
        if gr == ("", "pods"):
            _validate_pod(obj, causes, old)
        elif gr in kinds.KINDS or gr[0] == "rbac.authorization.k8s.io":
            kinds.validate(gr, obj, causes, old)
        elif gr in (("apps", "deployments"), ("apps", "replicasets")):
            _validate_workload(obj, causes)
        if causes:
            raise invalid(gr, name, causes)


_META_ORDER = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
               "ownerReferences", "finalizers", "managedFields"]


def _canonical(obj):
    """Key order of the Go serializer: kind, apiVersion, metadata (fields in
    ObjectMeta order), the rest, status last."""
    md = obj["metadata"]
    meta = {k: md[k] for k in _META_ORDER if k in md}
    meta.update((k, v) for k, v in md.items() if k not in meta)
    out = {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "metadata": meta}
    out.update((k, v) for k, v in obj.items() if k not in out and k != "status")
    if "status" in obj:
        out["status"] = obj["status"]
    return out


def _check_meta(kind, version, md):
    """metadata must decode as ObjectMeta before anything reads it."""
    bad = None
    if not isinstance(md, dict):
        bad = ("metadata", md, "v1.ObjectMeta")
    else:
        for k in ("name", "generateName", "namespace", "resourceVersion", "uid"):
            if md.get(k) is not None and not isinstance(md[k], str):
                bad = ("metadata." + k, md[k], "string")
        for k in ("labels", "annotations"):
            if md.get(k) is not None and (not isinstance(md[k], dict) or
                                          not all(isinstance(v, str) for v in md[k].values())):
                bad = ("metadata." + k, md[k], "map[string]string")
        if md.get("ownerReferences") is not None and (not isinstance(md["ownerReferences"], list) or
                                                      not all(isinstance(r, dict) for r in md["ownerReferences"])):
            bad = ("metadata.ownerReferences", md["ownerReferences"], "[]v1.OwnerReference")
    if bad:
        got = {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(bad[1]), "number")
        raise ApiError(400, "BadRequest", '%s in version "%s" cannot be handled as a %s: json: cannot unmarshal %s '
                       'into Go struct field %s.%s of type %s' % (kind, version, kind, got, kind, bad[0], bad[2]))


def _bad(field, value, msg):
    return {"reason": "FieldValueInvalid", "field": field,
            "message": "Invalid value: %s: %s" % (json.dumps(value), msg)}


def _default_podspec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        img = c.get("image") or ""
        latest = ":" not in img.rsplit("/", 1)[-1] or img.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest and "@" not in img else "IfNotPresent")


def _tolerated(taint, tolerations):
    """Does one of the pod's tolerations match the taint (the scheduler's
    rule: operator Exists matches any value, Equal (the default) the same
    value; an empty key with Exists matches every taint; an empty effect
    every effect)?"""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if op == "Exists" and (not t.get("key") or t["key"] == taint.get("key")):
            return True
        if op == "Equal" and t.get("key") == taint.get("key") and \
                (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _qos(spec):
    res = [c.get("resources") or {} for c in spec.get("containers") or [] if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    if all(r.get("limits") and all(r.get("requests", r["limits"]).get(k) == v for k, v in r["limits"].items())
           and set(r["limits"]) >= {"cpu", "memory"} for r in res):
        return "Guaranteed"
    return "Burstable"


def _validate_pod(obj, causes, old):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append({"reason": "FieldValueRequired", "field": "spec.containers", "message": "Required value"})
        return
    cs = spec.get("containers")
    if not cs:
        causes.append({"reason": "FieldValueRequired", "field": "spec.containers", "message": "Required value"})
    names = set()
    for i, c in enumerate(cs or []):
        if not isinstance(c, dict):
            continue
        n = c.get("name") or ""
        if n and not (_DNS1123_LABEL.match(n) and len(n) <= 63):
            causes.append(_bad("spec.containers[%d].name" % i, n, _LABEL_MSG))
        elif n in names:
            causes.append({"reason": "FieldValueDuplicate", "field": "spec.containers[%d].name" % i,
                           "message": "Duplicate value: %s" % json.dumps(n)})
        names.add(n)
        if not c.get("image") and (old is None or True):
            causes.append({"reason": "FieldValueRequired", "field": "spec.containers[%d].image" % i,
                           "message": "Required value"})
    rp = spec.get("restartPolicy")
    if rp not in ("Always", "OnFailure", "Never"):
        causes.append({"reason": "FieldValueNotSupported", "field": "spec.restartPolicy",
                       "message": 'Unsupported value: %s: supported values: "Always", "OnFailure", "Never"'
                       % json.dumps(rp)})
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and ads <= 0:
        causes.append(_bad("spec.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"))
    if old is not None:
        ospec = dict(old.get("spec") or {})
        nspec = dict(spec)
        for k in ("activeDeadlineSeconds", "tolerations"):
            ospec.pop(k, None)
            nspec.pop(k, None)
        oc = [dict(c, image=None) for c in ospec.pop("containers", []) or []]
        nc = [dict(c, image=None) for c in nspec.pop("containers", []) or []]
        if ospec != nspec or oc != nc:
            causes.append({"reason": "FieldValueForbidden", "field": "spec",
                           "message": "Forbidden: pod updates may not change fields other than "
                           "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                           "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                           "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                           "was previously negative)"})


def _validate_workload(obj, causes):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    r = spec.get("replicas")
    if isinstance(r, int) and r < 0:
        causes.append(_bad("spec.replicas", r, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not selector:
        causes.append({"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"})
        return
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    ml = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in ml.items()):
        causes.append(_bad("spec.template.metadata.labels", labels,
                           "`selector` does not match template `labels`"))
    tspec = (spec.get("template") or {}).get("spec")
    if isinstance(tspec, dict):
        sub = []
        _validate_pod({"spec": tspec}, sub, None)
        for c in sub:
            c["field"] = "spec.template." + c["field"]
            causes.append(c)
