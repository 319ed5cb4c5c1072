"""controllers.py - Deployment and ReplicaSet controllers of the test server.

Deployment -> ReplicaSet (name = deployment + "-" + pod-template-hash, computed
as the real controller does: FNV-32a of the template, SafeEncodeString'd) ->
Pods (generateName "<rs>-"). Both controllers keep status the way
kube-controller-manager does (observedGeneration, replicas, ready/available/
updated replicas, Available and Progressing conditions). A RollingUpdate
honours maxSurge/maxUnavailable; Recreate scales the old ReplicaSets to zero
first. Terminating pods do not count as replicas, so a deleted pod is replaced
at once (readyReplicas dips, then recovers). Deleting a Deployment is left to
the store's garbage collector (ownerReferences).

One worker thread; store events feed a de-duplicating queue; a timer re-queues
a ReplicaSet while pods wait out minReadySeconds.
"""
import calendar
import copy
import heapq
import json
import math
import queue
import sys
import threading
import time
import traceback

from kubelet import Recorder
from store import ApiError

PODS, RS, DEPLOY = ("", "pods"), ("apps", "replicasets"), ("apps", "deployments")
HASH = "pod-template-hash"
REV = "deployment.kubernetes.io/revision"
ALNUM = "bcdfghjklmnpqrstvwxz2456789"


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_iso(s):
    try:
        return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return 0


def template_hash(tmpl, collision=None):
    h = 0x811c9dc5
    data = json.dumps(tmpl, sort_keys=True, separators=(",", ":"))
    if collision:
        data += str(collision)
    for b in data.encode():
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return "".join(ALNUM[ord(ch) % len(ALNUM)] for ch in str(h))


def selector_matches(sel, labels):
    labels = labels or {}
    if not sel:
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def controller_of(obj):
    for r in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if r.get("controller"):
            return r
    return None


def pod_ready(p):
    for c in (p.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True", parse_iso(c.get("lastTransitionTime"))
    return False, 0


def active(p):
    return not p["metadata"].get("deletionTimestamp") and \
        (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def resolve(v, total, up):
    if isinstance(v, str) and v.endswith("%"):
        x = int(v[:-1]) * total / 100.0
        return int(math.ceil(x) if up else math.floor(x))
    return int(v or 0)


def set_condition(conds, typ, status, reason, message, keep_transition=False):
    """SetDeploymentCondition: unchanged status+reason is a no-op, else move to the end."""
    cur = next((c for c in conds if c["type"] == typ), None)
    if cur and cur["status"] == status and cur["reason"] == reason and not keep_transition:
        return conds
    t = now_iso()
    new = {"type": typ, "status": status, "lastUpdateTime": t,
           "lastTransitionTime": cur["lastTransitionTime"] if cur and cur["status"] == status else t,
           "reason": reason, "message": message}
    if cur and cur == dict(new, lastUpdateTime=cur["lastUpdateTime"]):
        return conds
    return [c for c in conds if c["type"] != typ] + [new]


class Controllers:
    def __init__(self, store):
        self.store = store
        self.q = queue.Queue()
        self.pending = set()
        self.timers = []
        self.thread = None
        self.rs_events = Recorder(store, "replicaset-controller")
        self.d_events = Recorder(store, "deployment-controller")

    def start(self):
        self.store.subscribe(self._on_event)
        self.thread = threading.Thread(target=self._run, name="controllers", daemon=True)
        self.thread.start()
        for gr, kind in ((DEPLOY, "deploy"), (RS, "rs")):
            for o in self.store.list(gr)[0]:
                self._enqueue(kind, o["metadata"]["namespace"], o["metadata"]["name"])

    def stop(self):
        self.q.put(None)
        if self.thread:
            self.thread.join(10)

    def _enqueue(self, kind, ns, name):
        key = (kind, ns, name)
        if key not in self.pending:
            self.pending.add(key)
            self.q.put(key)

    def _on_event(self, etype, gr, obj):
        md = obj.get("metadata") or {}
        ns = md.get("namespace")
        ref = controller_of(obj)
        if gr == PODS and ref and ref.get("kind") == "ReplicaSet":
            self._enqueue("rs", ns, ref.get("name"))
        elif gr == RS:
            self._enqueue("rs", ns, md.get("name"))
            if ref and ref.get("kind") == "Deployment":
                self._enqueue("deploy", ns, ref.get("name"))
        elif gr == DEPLOY:
            self._enqueue("deploy", ns, md.get("name"))

    def _run(self):
        while True:
            timeout = 1.0
            if self.timers:
                timeout = max(0.0, min(1.0, self.timers[0][0] - time.monotonic()))
            try:
                key = self.q.get(timeout=timeout)
            except queue.Empty:
                key = ()
            if key is None:
                return
            while self.timers and self.timers[0][0] <= time.monotonic():
                self._enqueue(*heapq.heappop(self.timers)[1])
            if not key:
                continue
            self.pending.discard(key)
            try:
                (self._sync_rs if key[0] == "rs" else self._sync_deploy)(key[1], key[2])
            except ApiError as e:
                if e.code == 409:   # stale object: try again with the latest
                    self._enqueue(*key)
            except Exception:
                traceback.print_exc(file=sys.stderr)

    # ---- ReplicaSet --------------------------------------------------------
    def _owned(self, gr, ns, owner):
        return [o for o in self.store.list(gr, ns)[0]
                if (controller_of(o) or {}).get("uid") == owner["metadata"]["uid"]]

    def _sync_rs(self, ns, name):
        try:
            rs = self.store.get(RS, ns, name)
        except ApiError:
            return
        pods = self._owned(PODS, ns, rs)
        live = [p for p in pods if active(p)]
        want = rs["spec"].get("replicas", 1)
        if not rs["metadata"].get("deletionTimestamp"):
            if len(live) < want:
                for _ in range(want - len(live)):
                    p = self.store.create(PODS, ns, self._new_pod(rs))
                    live.append(p)
                    self.rs_events(rs, "Normal", "SuccessfulCreate", "Created pod: " + p["metadata"]["name"])
            elif len(live) > want:
                live.sort(key=self._delete_rank)
                for p in live[:len(live) - want]:
                    try:
                        self.store.delete(PODS, ns, p["metadata"]["name"])
                        self.rs_events(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + p["metadata"]["name"])
                    except ApiError:
                        pass
                live = live[len(live) - want:]
        self._rs_status(rs, live)

    @staticmethod
    def _delete_rank(p):
        """Pods deleted first on scale down: unscheduled, pending, not ready, newest."""
        phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get((p.get("status") or {}).get("phase"), 0)
        ready, since = pod_ready(p)
        return (1 if p["spec"].get("nodeName") else 0, phase, 1 if ready else 0,
                -since, -parse_iso(p["metadata"].get("creationTimestamp")))

    def _new_pod(self, rs):
        t = copy.deepcopy(rs["spec"].get("template") or {})
        md = t.get("metadata") or {}
        pmd = {"generateName": rs["metadata"]["name"] + "-", "namespace": rs["metadata"]["namespace"]}
        for k in ("labels", "annotations", "finalizers"):
            if md.get(k):
                pmd[k] = md[k]
        pmd["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                                   "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pmd, "spec": t.get("spec") or {}}

    def _rs_status(self, rs, live):
        min_ready = rs["spec"].get("minReadySeconds", 0) or 0
        tl = (rs["spec"].get("template") or {}).get("metadata", {}).get("labels") or {}
        ready = available = labeled = 0
        now = time.time()
        for p in live:
            ok, since = pod_ready(p)
            labeled += all((p["metadata"].get("labels") or {}).get(k) == v for k, v in tl.items())
            if ok:
                ready += 1
                if since + min_ready <= now:
                    available += 1
                else:
                    heapq.heappush(self.timers, (time.monotonic() + since + min_ready - now + 0.05,
                                                 ("rs", rs["metadata"]["namespace"], rs["metadata"]["name"])))
        st = {"replicas": len(live)}
        if labeled:
            st["fullyLabeledReplicas"] = labeled
        if ready:
            st["readyReplicas"] = ready
        if available:
            st["availableReplicas"] = available
        st["observedGeneration"] = rs["metadata"].get("generation", 1)
        if st != rs.get("status"):
            rs["status"] = st
            self.store.update_status(RS, rs["metadata"]["namespace"], rs)

    # ---- Deployment --------------------------------------------------------
    def _sync_deploy(self, ns, name):
        try:
            d = self.store.get(DEPLOY, ns, name)
        except ApiError:
            return
        if d["metadata"].get("deletionTimestamp"):
            return
        spec = d["spec"]
        rses = self._owned(RS, ns, d)
        new, created = self._new_rs(d, rses)
        if new is None:
            return
        if not created:
            rses = [r for r in rses if r["metadata"]["uid"] != new["metadata"]["uid"]]
        else:
            rses = [r for r in rses if r["metadata"]["name"] != new["metadata"]["name"]]
        old = rses
        if not spec.get("paused"):
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                self._recreate(d, new, old)
            else:
                self._rolling(d, new, old)
            self._cleanup(d, old)
        self._deploy_status(d, new, old, created)

    def _new_rs(self, d, rses):
        tmpl = d["spec"].get("template") or {}
        for r in rses:
            t = copy.deepcopy(r["spec"].get("template") or {})
            (t.get("metadata") or {}).get("labels", {}).pop(HASH, None)
            if t == tmpl:
                return r, False
        coll = (d.get("status") or {}).get("collisionCount")
        h = template_hash(tmpl, coll)
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        revs = [int((r["metadata"].get("annotations") or {}).get(REV, "0") or 0) for r in rses]
        rev = str(max(revs + [0]) + 1)
        t = copy.deepcopy(tmpl)
        t.setdefault("metadata", {}).setdefault("labels", {})[HASH] = h
        sel = copy.deepcopy(d["spec"].get("selector") or {})
        sel.setdefault("matchLabels", {})[HASH] = h
        replicas = d["spec"].get("replicas", 1)
        if any(r["spec"].get("replicas") for r in rses):
            replicas = 0   # a rollout: _rolling/_recreate scale it up
        surge = self._surge(d)
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "%s-%s" % (name, h), "namespace": ns,
                           "labels": dict((tmpl.get("metadata") or {}).get("labels") or {}, **{HASH: h}),
                           "annotations": {"deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
                                           "deployment.kubernetes.io/max-replicas": str(d["spec"].get("replicas", 1) + surge),
                                           REV: rev},
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                                "uid": d["metadata"]["uid"], "controller": True,
                                                "blockOwnerDeletion": True}]},
              "spec": {"replicas": replicas, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                       "selector": sel, "template": t}}
        try:
            rs = self.store.create(RS, ns, rs)
        except ApiError as e:
            if e.code != 409:
                raise
            st = dict(d.get("status") or {}, collisionCount=(coll or 0) + 1)
            d["status"] = st
            self.store.update_status(DEPLOY, ns, d)
            return None, False
        if replicas:
            self.d_events(d, "Normal", "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d"
                          % (rs["metadata"]["name"], replicas))
        anns = d["metadata"].setdefault("annotations", {})
        if anns.get(REV) != rev:
            anns[REV] = rev
            d = self.store.update(DEPLOY, ns, d)
        return rs, True

    def _surge(self, d):
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        return resolve(ru.get("maxSurge", "25%"), d["spec"].get("replicas", 1), True)

    def _scale(self, rs, n, d=None):
        old = rs["spec"].get("replicas", 0)
        if old == n:
            return rs
        rs["spec"]["replicas"] = n
        rs = self.store.update(RS, rs["metadata"]["namespace"], rs)
        if d is not None:
            self.d_events(d, "Normal", "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d"
                          % ("up" if n > old else "down", rs["metadata"]["name"], old, n))
        return rs

    def _rolling(self, d, new, old):
        want = d["spec"].get("replicas", 1)
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = resolve(ru.get("maxSurge", "25%"), want, True)
        unavail = resolve(ru.get("maxUnavailable", "25%"), want, False)
        if surge == 0 and unavail == 0:
            unavail = 1
        live_old = [r for r in old if r["spec"].get("replicas")]
        if not live_old:
            self._scale(new, want, d)
            return
        total = sum(r["spec"].get("replicas", 0) for r in old) + new["spec"].get("replicas", 0)
        if new["spec"].get("replicas", 0) < want and total < want + surge:
            new = self._scale(new, min(want, new["spec"].get("replicas", 0) + want + surge - total), d)
            total = sum(r["spec"].get("replicas", 0) for r in old) + new["spec"]["replicas"]
        min_avail = want - unavail
        new_unavail = new["spec"]["replicas"] - (new.get("status") or {}).get("availableReplicas", 0)
        budget = total - min_avail - new_unavail
        # first the unhealthy old pods (removing them costs no availability) ...
        for r in sorted(live_old, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            cur = r["spec"]["replicas"]
            unhealthy = cur - (r.get("status") or {}).get("availableReplicas", 0)
            step = min(max(unhealthy, 0), max(budget, 0))
            if step:
                r.update(self._scale(r, cur - step, d))
                budget -= step
        # ... then available ones, keeping minAvailable
        avail = sum((r.get("status") or {}).get("availableReplicas", 0) for r in old + [new])
        down = avail - min_avail
        for r in sorted(live_old, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            cur = r["spec"]["replicas"]
            step = min(cur, max(down, 0))
            if step:
                self._scale(r, cur - step, d)
                down -= step

    def _recreate(self, d, new, old):
        for r in old:
            self._scale(r, 0, d)
        if any((r.get("status") or {}).get("replicas") for r in old):
            return
        self._scale(new, d["spec"].get("replicas", 1), d)

    def _cleanup(self, d, old):
        limit = d["spec"].get("revisionHistoryLimit", 10)
        dead = [r for r in old if not r["spec"].get("replicas") and not (r.get("status") or {}).get("replicas")]
        dead.sort(key=lambda r: int((r["metadata"].get("annotations") or {}).get(REV, "0") or 0))
        for r in dead[:max(0, len(dead) - limit)]:
            try:
                self.store.delete(RS, r["metadata"]["namespace"], r["metadata"]["name"])
            except ApiError:
                pass

    def _deploy_status(self, d, new, old, created):
        want = d["spec"].get("replicas", 1)
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        unavail = 0 if (d["spec"].get("strategy") or {}).get("type") == "Recreate" else \
            resolve(ru.get("maxUnavailable", "25%"), want, False)
        all_rs = [new] + old
        sts = [r.get("status") or {} for r in all_rs]
        ns = d["metadata"]["namespace"]
        # pick up the latest status of the RSes we may just have scaled
        fresh = []
        for r in all_rs:
            try:
                fresh.append(self.store.get(RS, ns, r["metadata"]["name"]).get("status") or {})
            except ApiError:
                fresh.append({})
        sts = fresh or sts
        replicas = sum(s.get("replicas", 0) for s in sts)
        ready = sum(s.get("readyReplicas", 0) for s in sts)
        available = sum(s.get("availableReplicas", 0) for s in sts)
        updated = sts[0].get("replicas", 0)
        old_st = d.get("status") or {}
        st = {"observedGeneration": d["metadata"].get("generation", 1)}
        if replicas:
            st["replicas"] = replicas
        if updated:
            st["updatedReplicas"] = updated
        if ready:
            st["readyReplicas"] = ready
        if available:
            st["availableReplicas"] = available
        if want - available > 0:
            st["unavailableReplicas"] = want - available
        conds = list(old_st.get("conditions") or [])
        rsname = new["metadata"]["name"]
        if available >= want - unavail:
            conds = set_condition(conds, "Available", "True", "MinimumReplicasAvailable",
                                  "Deployment has minimum availability.")
        else:
            conds = set_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.")
        if created:
            conds = set_condition(conds, "Progressing", "True", "NewReplicaSetCreated",
                                  'Created new replica set "%s"' % rsname)
        elif updated == want and available == want and replicas == want:
            conds = set_condition(conds, "Progressing", "True", "NewReplicaSetAvailable",
                                  'ReplicaSet "%s" has successfully progressed.' % rsname)
        elif (old_st.get("replicas"), old_st.get("updatedReplicas"), old_st.get("readyReplicas"),
              old_st.get("availableReplicas")) != (st.get("replicas"), st.get("updatedReplicas"),
                                                   st.get("readyReplicas"), st.get("availableReplicas")) \
                or not any(c["type"] == "Progressing" for c in conds):
            conds = set_condition(conds, "Progressing", "True", "ReplicaSetUpdated",
                                  'ReplicaSet "%s" is progressing.' % rsname, keep_transition=True)
        st["conditions"] = conds
        if old_st.get("collisionCount") is not None:
            st["collisionCount"] = old_st["collisionCount"]
        if st != old_st:
            cur = self.store.get(DEPLOY, ns, d["metadata"]["name"])
            cur["status"] = st
            self.store.update_status(DEPLOY, ns, cur)
