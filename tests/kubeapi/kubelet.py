"""kubelet.py - the kubelet of the Kubernetes API test server.

Drives every pod bound to one of our nodes (the store binds at creation):
status (phase, conditions, containerStatuses, IPs, startTime) the way the real
kubelet (v1.33) writes it, activeDeadlineSeconds, restarts with CrashLoopBackOff,
graceful deletion (SIGTERM, SIGKILL after the grace period, then the object
is removed with store.finalize_delete).

Containers whose image is in opts.exec_images run as real processes through
podproc.py (private mount/pid/uts namespaces, see there); their volumes are
materialized under DIR/kubelet/pods/<uid>/volumes/ with the real kubelet's
atomic-writer layout (key -> ..data/key) and bind-mounted at the mountPaths.
Containers whose image resolves to an --image-archive run the same way, from
the image's unpacked root filesystem (ociimage.py): Entrypoint/Cmd/Env/User
of the image config, chrooted. Other containers are simulated: Running and
Ready after 100-300 ms.

One worker thread does everything (so the processes' PDEATHSIG, which follows
the thread that forked them, only fires when the kubelet itself goes away);
store events, process exits and timers reach it through one queue.
"""
import base64
import hashlib
import heapq
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

import imagepull
import ociimage
import sandbox
from store import ApiError

PODS, SECRETS, CONFIGMAPS, EVENTS = ("", "pods"), ("", "secrets"), ("", "configmaps"), ("", "events")
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
PODPROC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "podproc.py")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEADLINE_MSG = "Pod was active on the node longer than the specified deadline"
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def log(msg):
    sys.stderr.write("kubelet: %s\n" % msg)
    sys.stderr.flush()


def normalize_image(img):
    """busybox -> docker.io/library/busybox:latest, as the runtime reports it."""
    name = img
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def image_id(img):
    n = normalize_image(img)
    repo = n.split("@")[0].rsplit(":", 1)[0] if ":" in n.rsplit("/", 1)[-1] else n.split("@")[0]
    return "%s@sha256:%s" % (repo, hashlib.sha256(n.encode()).hexdigest())


class Recorder:
    """core/v1 Events as client-go's recorder writes them (repeats bump count)."""

    def __init__(self, store, component, host=None):
        self.store, self.component, self.host = store, component, host
        self.seen = {}

    def __call__(self, obj, etype, reason, message, field_path=None):
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        key = (md.get("uid"), reason, message, field_path)
        t = now_iso()
        try:
            name = self.seen.get(key)
            if name:
                ev = self.store.get(EVENTS, ns, name)
                ev["count"] = ev.get("count", 1) + 1
                ev["lastTimestamp"] = t
                self.store.update(EVENTS, ns, ev)
                return
            name = "%s.%x" % (md.get("name"), time.time_ns())
            ref = {"kind": obj.get("kind"), "namespace": ns, "name": md.get("name"), "uid": md.get("uid"),
                   "apiVersion": obj.get("apiVersion"), "resourceVersion": md.get("resourceVersion")}
            if field_path:
                ref["fieldPath"] = field_path
            src = {"component": self.component}
            if self.host:
                src["host"] = self.host
            self.store.create(EVENTS, ns, {
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                "involvedObject": ref, "reason": reason, "message": message, "source": src,
                "firstTimestamp": t, "lastTimestamp": t, "count": 1, "type": etype, "eventTime": None,
                "reportingComponent": self.component, "reportingInstance": self.host or ""})
            if len(self.seen) > 5000:
                self.seen.clear()
            self.seen[key] = name
        except ApiError:
            self.seen.pop(key, None)   # events are best effort, as in the real recorder


class ConfigError(Exception):
    """A missing Secret/ConfigMap/key: reason is the container's waiting reason."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason, self.message = reason, message


class Container:
    def __init__(self, spec, init=False):
        self.spec, self.name, self.init = spec, spec.get("name", ""), init
        self.image = spec.get("image", "")
        self.proc = None          # Popen of podproc while it runs
        self.state = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state = {}
        self.restarts = 0
        self.started_at = None
        self.container_id = None
        self.backoff = 0.0        # next back-off delay
        self.restart_at = None    # monotonic time of the next start
        self.ready_at = None      # simulated containers: when they become Running
        self.state_dir = None
        self.cgroups = []         # this run's cgroup dirs (sandbox.py)
        self.old_cgroups = []     # earlier runs', removed once empty
        self.cur_backoff = 0.0
        self.backoff_reported = False

    @property
    def running(self):
        return "running" in self.state

    @property
    def terminated(self):
        return "terminated" in self.state


class PodRT:
    def __init__(self, pod, kubelet):
        md = pod["metadata"]
        self.ns, self.name, self.uid = md["namespace"], md["name"], md["uid"]
        self.dir = os.path.join(kubelet.opts.dir, "kubelet", "pods", self.uid)
        spec = pod.get("spec") or {}
        self.inits = [Container(c, True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c) for c in spec.get("containers") or []]
        self.start_time = now_iso()
        self.start_mono = time.monotonic()
        self.prepared = False      # volumes set up ("sandbox" ready)
        self.config_error = None   # ConfigError while volumes cannot be set up
        self.terminating = False
        self.kill_at = None
        self.sim_done_at = None
        self.final = False         # terminal phase written
        self.reason = self.message = None
        self.vol_hash = {}
        self.pod_ip = None
        self.token = None
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.exec = any(kubelet.runs(c.image) for c in self.all())
        # the pod sandbox's network namespace (sandbox.py), made at the
        # first container start, kept across restarts, ended with the pod
        self.wants_netns = self.exec and not spec.get("hostNetwork") and \
            any(c.image in getattr(kubelet.opts, "pod_netns", ()) for c in self.all())
        self.netns = None
        self.host_pid = bool(spec.get("hostPID"))

    def all(self):
        return self.inits + self.containers


class Kubelet:
    def __init__(self, store, auth, opts):
        self.store, self.auth, self.opts = store, auth, opts
        self.q = queue.Queue()
        self.timers = []
        self.timer_slots = set()
        self.pods = {}           # (ns, name) -> PodRT
        self.ip_next = {}
        self._stop = False
        self.thread = None
        self.recorders = {n: Recorder(store, "kubelet", n) for n in opts.nodes}
        self.scheduler = Recorder(store, "default-scheduler")
        self.archives = ociimage.Archives(getattr(opts, "image_archives", {}),
                                          os.path.join(opts.dir, "images"))

    def runs(self, image):
        """True if containers of image run as processes (not simulated)."""
        return image in self.opts.exec_images or self.archives.archive(image) is not None

    def _exec(self, image):
        """A host path (--exec-image), an ociimage.Image, or None (simulated)."""
        return self.opts.exec_images.get(image) or self.archives.image(image)

    def _event(self, pod, etype, reason, message, c=None):
        rec = self.recorders.get((pod.get("spec") or {}).get("nodeName"))
        if rec:
            fp = None if c is None else "spec.%s{%s}" % ("initContainers" if c.init else "containers", c.name)
            rec(pod, etype, reason, message, fp)

    # ---- lifecycle -------------------------------------------------------
    def start(self):
        os.makedirs(os.path.join(self.opts.dir, "pods"), exist_ok=True)
        os.makedirs(os.path.join(self.opts.dir, "kubelet", "pods"), mode=0o700, exist_ok=True)
        self.store.subscribe(self._on_event)
        self.thread = threading.Thread(target=self._run, name="kubelet", daemon=True)
        self.thread.start()
        pods, _ = self.store.list(PODS)
        for p in pods:
            self.q.put(("sync", p["metadata"]["namespace"], p["metadata"]["name"]))

    def stop(self):
        self._stop = True
        self.q.put(("stop",))
        if self.thread:
            self.thread.join(30)

    def _on_event(self, etype, gr, obj):
        md = obj.get("metadata") or {}
        if gr == PODS:
            self.q.put(("sync", md.get("namespace"), md.get("name")))
        elif gr in (SECRETS, CONFIGMAPS):
            self.q.put(("config", md.get("namespace")))

    def _run(self):
        while True:
            timeout = 1.0
            if self.timers:
                timeout = max(0.0, min(1.0, self.timers[0][0] - time.monotonic()))
            try:
                item = self.q.get(timeout=timeout)
            except queue.Empty:
                item = None
            try:
                if item and item[0] == "stop":
                    self._kill_everything()
                    return
                now = time.monotonic()
                while self.timers and self.timers[0][0] <= now:
                    _, key, slot = heapq.heappop(self.timers)
                    self.timer_slots.discard(slot)
                    self._sync(*key)
                if item:
                    self._handle(item)
            except Exception:  # one bad pod must not stop the kubelet (and kill every pod)
                traceback.print_exc()

    def _handle(self, item):
        if item[0] == "sync":
            self._sync(item[1], item[2])
        elif item[0] == "config":
            for key in [k for k in self.pods if k[0] == item[1]]:
                self._sync(*key)
        elif item[0] == "exit":
            _, key, uid, c, rc = item
            rt = self.pods.get(key)
            if rt and rt.uid == uid:
                self._container_exited(rt, c, rc)
            self._sync(*key)

    def _at(self, when, key):
        slot = (round(when, 1), key)
        if slot in self.timer_slots:
            return
        self.timer_slots.add(slot)
        heapq.heappush(self.timers, (when, key, slot))

    # ---- the pod sync loop -------------------------------------------------
    def _sync(self, ns, name):
        key = (ns, name)
        try:
            pod = self.store.get(PODS, ns, name)
        except ApiError:
            pod = None
        rt = self.pods.get(key)
        if rt and (pod is None or pod["metadata"]["uid"] != rt.uid):
            self._teardown(rt, force=True)   # force-deleted or replaced
            rt = None
        if pod is None:
            return
        spec, md = pod.get("spec") or {}, pod["metadata"]
        if spec.get("nodeName") not in self.opts.nodes:
            return
        if rt is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not md.get("deletionTimestamp"):
                return
            rt = self.pods[key] = PodRT(pod, self)
            rt.pod_ip = self._alloc_ip(pod)
            self.scheduler(pod, "Normal", "Scheduled", "Successfully assigned %s/%s to %s"
                           % (ns, name, spec["nodeName"]))
        if md.get("deletionTimestamp"):
            self._terminate(rt, pod)
            return
        if rt.final:
            return
        ads = spec.get("activeDeadlineSeconds")
        if isinstance(ads, int) and not rt.terminating:
            if time.monotonic() - rt.start_mono >= ads:
                rt.reason, rt.message = "DeadlineExceeded", DEADLINE_MSG
                rt.terminating = True
                self._event(pod, "Normal", "DeadlineExceeded", DEADLINE_MSG)
                for c in rt.all():
                    self._kill(c, signal.SIGKILL)
                    self._stop_sim(c, 137, "Error")
            else:
                self._at(rt.start_mono + ads, key)
        if rt.terminating:
            if not any(c.proc for c in rt.all()):
                rt.final = True
            self._write_status(rt, pod)
            return
        self._prepare(rt, pod)
        if rt.prepared:
            self._run_containers(rt, pod)
        self._write_status(rt, pod)

    def _terminate(self, rt, pod):
        """Graceful deletion: SIGTERM, SIGKILL after the grace period, then remove."""
        md = pod["metadata"]
        grace = md.get("deletionGracePeriodSeconds", 30) or 0
        now = time.monotonic()
        kill_at = now + grace
        if not rt.terminating or rt.kill_at is None:
            rt.terminating = True
            for c in rt.all():
                if c.proc or c.running:
                    self._event(pod, "Normal", "Killing", "Stopping container %s" % c.name, c)
                self._kill(c, signal.SIGTERM)
            rt.sim_done_at = now + random.uniform(0.05, 0.2)
            self._at(rt.sim_done_at, (rt.ns, rt.name))
        if rt.kill_at is None or kill_at < rt.kill_at:
            rt.kill_at = kill_at
            self._at(kill_at, (rt.ns, rt.name))
        if now >= rt.kill_at:
            for c in rt.all():
                self._kill(c, signal.SIGKILL)
        if any(c.proc for c in rt.all()) or now < rt.sim_done_at:
            return
        for c in rt.all():
            if c.running:
                self._stop_sim(c, 0, "Completed")
        rt.final = True
        self._write_status(rt, pod)
        try:
            self.store.finalize_delete(PODS, rt.ns, rt.name)
        except ApiError:
            pass
        self._teardown(rt, force=False)

    def _teardown(self, rt, force):
        for c in rt.all():
            self._kill(c, signal.SIGKILL)
        for c in rt.all():
            if c.proc:
                try:
                    c.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        self._end_sandbox(rt)
        self.pods.pop((rt.ns, rt.name), None)
        shutil.rmtree(rt.dir, ignore_errors=True)

    def _end_sandbox(self, rt):
        """What a runtime removes with the pod: processes left in its
        containers' cgroups (hostPID pods have no pid namespace to end
        them), the cgroups, the network namespace."""
        for c in rt.all():
            sandbox.kill_cgroup(c.cgroups + c.old_cgroups)
        deadline = time.monotonic() + 2
        for c in rt.all():
            dirs = c.cgroups + c.old_cgroups
            while any(os.path.isdir(d) for d in dirs) and time.monotonic() < deadline:
                sandbox.remove_cgroups(dirs)
                time.sleep(0.05)
        if rt.netns is not None:
            rt.netns.close()
            rt.netns = None

    def _kill_everything(self):
        for rt in list(self.pods.values()):
            for c in rt.all():
                self._kill(c, signal.SIGKILL)
        for rt in list(self.pods.values()):
            for c in rt.all():
                if c.proc:
                    try:
                        c.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        c.proc.kill()
                        c.proc.wait()
            self._end_sandbox(rt)

    def _alloc_ip(self, pod):
        spec = pod.get("spec") or {}
        if spec.get("hostNetwork") or any(self.runs(c.get("image", ""))
                                           for c in spec.get("containers") or []):
            return "127.0.0.1"
        idx = self.opts.nodes.index(spec["nodeName"])
        n = self.ip_next.get(idx, 2)
        self.ip_next[idx] = 2 if n >= 254 else n + 1
        return "10.244.%d.%d" % (idx, n)

    def _host_ip(self, pod):
        node = (pod.get("spec") or {}).get("nodeName")
        try:
            n = self.store.get(("", "nodes"), "", node)
            for a in (n.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP":
                    return a.get("address")
        except ApiError:
            pass
        return "172.18.0.%d" % (self.opts.nodes.index(node) + 2)

    # ---- volumes and env -----------------------------------------------------
    def _secret(self, ns, name, optional, reason, what):
        try:
            s = self.store.get(SECRETS, ns, name)
        except ApiError:
            if optional:
                return None
            raise ConfigError(reason, 'secret "%s" not found' % name if what == "env" else
                              'MountVolume.SetUp failed for volume "%s" : secret "%s" not found' % (what, name))
        out = {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
        # the API server folds stringData into data; accept it should a store not do so
        out.update({k: str(v).encode() for k, v in (s.get("stringData") or {}).items()})
        return out

    def _configmap(self, ns, name, optional, reason, what):
        if name == "kube-root-ca.crt":
            with open(self.opts.ca_path, "rb") as f:
                return {"ca.crt": f.read()}
        try:
            cm = self.store.get(CONFIGMAPS, ns, name)
        except ApiError:
            if optional:
                return None
            raise ConfigError(reason, 'configmap "%s" not found' % name if what == "env" else
                              'MountVolume.SetUp failed for volume "%s" : configmap "%s" not found' % (what, name))
        out = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return out

    def _field(self, pod, rt, path):
        md, spec = pod["metadata"], pod.get("spec") or {}
        simple = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
                  "metadata.uid": md.get("uid"), "spec.nodeName": spec.get("nodeName"),
                  "spec.serviceAccountName": spec.get("serviceAccountName"),
                  "status.podIP": rt.pod_ip, "status.podIPs": rt.pod_ip,
                  "status.hostIP": self._host_ip(pod), "status.hostIPs": self._host_ip(pod)}
        if path in simple:
            return simple[path] or ""
        for prefix, d in (("metadata.labels", md.get("labels")), ("metadata.annotations", md.get("annotations"))):
            if path == prefix:
                return "\n".join('%s="%s"' % (k, v) for k, v in sorted((d or {}).items()))
            if path.startswith(prefix + "['") and path.endswith("']"):
                return (d or {}).get(path[len(prefix) + 2:-2], "")
        return ""

    def _items(self, data, items, default_mode, optional, kind, name, vol):
        """Select the keys a volume projects: [(path, bytes, mode)]."""
        if data is None:
            return []
        if not items:
            return [(k, v, default_mode) for k, v in sorted(data.items())]
        out = []
        for it in items:
            if it.get("key") not in data:
                if optional:
                    continue
                raise ConfigError("ContainerCreating", 'MountVolume.SetUp failed for volume "%s" : '
                                  "references non-existent %s key: %s" % (vol, kind, it.get("key")))
            out.append((it.get("path") or it["key"], data[it["key"]], it.get("mode", default_mode)))
        return out

    def _volume_files(self, pod, rt, vol):
        """-> list of (path, bytes, mode) or None for a plain directory volume."""
        ns, name = rt.ns, vol.get("name", "")
        if "secret" in vol:
            v = vol["secret"]
            data = self._secret(ns, v.get("secretName", ""), v.get("optional"), "ContainerCreating", name)
            return self._items(data, v.get("items"), v.get("defaultMode", 0o644), v.get("optional"),
                               "secret", v.get("secretName"), name)
        if "configMap" in vol:
            v = vol["configMap"]
            data = self._configmap(ns, v.get("name", ""), v.get("optional"), "ContainerCreating", name)
            return self._items(data, v.get("items"), v.get("defaultMode", 0o644), v.get("optional"),
                               "configmap", v.get("name"), name)
        if "downwardAPI" in vol:
            v = vol["downwardAPI"]
            return [(it.get("path"), self._field(pod, rt, (it.get("fieldRef") or {}).get("fieldPath", "")).encode(),
                     it.get("mode", v.get("defaultMode", 0o644))) for it in v.get("items") or []]
        if "projected" in vol:
            v, out = vol["projected"], []
            mode = v.get("defaultMode", 0o644)
            for src in v.get("sources") or []:
                if "serviceAccountToken" in src:
                    tok = self._token(pod) if rt.exec else b""
                    out.append((src["serviceAccountToken"].get("path", "token"), tok, mode))
                for k in ("secret", "configMap", "downwardAPI"):
                    if k in src:
                        sub = dict(src[k], defaultMode=mode)
                        out += self._volume_files(pod, rt, {"name": name, k: sub}) or []
            return out
        return None

    def _token(self, pod):
        """One token per pod (minted when first needed), like a bound SA token."""
        rt = self.pods.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if rt and rt.token:
            return rt.token
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        tok = self.auth.mint_token("system:serviceaccount:%s:%s" % (pod["metadata"]["namespace"], sa)).encode()
        if rt:
            rt.token = tok
        return tok

    def _write_atomic(self, d, files, fsgroup):
        """The kubelet's atomic writer: d/..TS/<files>, d/..data -> ..TS, d/<top> -> ..data/<top>."""
        os.makedirs(d, 0o755, exist_ok=True)
        os.chmod(d, 0o755)
        ts = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(random.randint(0, 1 << 30))
        tsdir = os.path.join(d, ts)
        os.mkdir(tsdir, 0o755)
        for path, data, mode in files:
            p = os.path.join(tsdir, os.path.normpath(path).lstrip("/"))
            os.makedirs(os.path.dirname(p), 0o755, exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
            if fsgroup is not None:
                os.chown(p, 0, fsgroup)
                mode |= 0o440
            os.chmod(p, mode)
        old = os.readlink(os.path.join(d, "..data")) if os.path.islink(os.path.join(d, "..data")) else None
        os.symlink(ts, os.path.join(d, "..data_tmp"))
        os.rename(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
        tops = {os.path.normpath(p).lstrip("/").split("/")[0] for p, _, _ in files}
        for t in tops:
            if not os.path.lexists(os.path.join(d, t)):
                os.symlink(os.path.join("..data", t), os.path.join(d, t))
        for e in os.listdir(d):
            if not e.startswith("..") and e not in tops:
                os.unlink(os.path.join(d, e))
        if old:
            shutil.rmtree(os.path.join(d, old), ignore_errors=True)

    def _prepare(self, rt, pod):
        """Set the pod's volumes up (again when Secrets change); ConfigError -> stays Pending."""
        spec = pod.get("spec") or {}
        fsgroup = (spec.get("securityContext") or {}).get("fsGroup")
        try:
            vols = {}
            for vol in spec.get("volumes") or []:
                files = self._volume_files(pod, rt, vol)
                vols[vol.get("name")] = files
            if not rt.exec:
                vols = {}   # simulated containers: the references are checked, nothing is written
            for vname, files in vols.items():
                d = os.path.join(rt.dir, "volumes", vname)
                if files is None:
                    os.makedirs(d, 0o777, exist_ok=True)
                    os.chmod(d, 0o777)
                    continue
                h = hashlib.sha256(repr([(p, b, m) for p, b, m in files if p != "token"]).encode()).hexdigest()
                if rt.vol_hash.get(vname) != h:
                    self._write_atomic(d, files, fsgroup)
                    rt.vol_hash[vname] = h
            if rt.exec and "sa" not in rt.vol_hash and not self._has_sa_mount(spec) and self._automount(pod):
                with open(self.opts.ca_path, "rb") as f:
                    ca = f.read()
                self._write_atomic(os.path.join(rt.dir, "volumes", "..serviceaccount"),
                                   [("token", self._token(pod), 0o644), ("ca.crt", ca, 0o644),
                                    ("namespace", rt.ns.encode(), 0o644)], fsgroup)
                rt.vol_hash["sa"] = "1"
        except ConfigError as e:
            rt.config_error = e
            self._event(pod, "Warning", "FailedMount", e.message)
            if not rt.prepared:
                self._at(time.monotonic() + 2.0, (rt.ns, rt.name))
            return
        rt.config_error = None
        rt.prepared = True

    def _automount(self, pod):
        """The pod's automountServiceAccountToken, else its ServiceAccount's, else true."""
        spec = pod.get("spec") or {}
        if spec.get("automountServiceAccountToken") is not None:
            return bool(spec["automountServiceAccountToken"])
        try:
            sa = self.store.get(("", "serviceaccounts"), pod["metadata"]["namespace"],
                                spec.get("serviceAccountName") or "default")
            return sa.get("automountServiceAccountToken") is not False
        except ApiError:
            return True

    @staticmethod
    def _has_sa_mount(spec):
        return any(m.get("mountPath", "").rstrip("/") == SA_PATH
                   for c in spec.get("containers") or [] for m in c.get("volumeMounts") or [])

    def _env(self, pod, rt, c):
        """The container's environment, as the kubelet builds it (ConfigError on a missing ref)."""
        spec, ns = pod.get("spec") or {}, rt.ns
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": rt.name}
        svc = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.opts.port),
               "KUBERNETES_SERVICE_PORT_HTTPS": str(self.opts.port),
               "KUBERNETES_PORT": "tcp://127.0.0.1:%s" % self.opts.port,
               "KUBERNETES_PORT_%s_TCP" % self.opts.port: "tcp://127.0.0.1:%s" % self.opts.port,
               "KUBERNETES_PORT_%s_TCP_PROTO" % self.opts.port: "tcp",
               "KUBERNETES_PORT_%s_TCP_PORT" % self.opts.port: str(self.opts.port),
               "KUBERNETES_PORT_%s_TCP_ADDR" % self.opts.port: "127.0.0.1"}
        env.update(svc)
        for ef in c.spec.get("envFrom") or []:
            pre = ef.get("prefix", "")
            if "secretRef" in ef:
                r = ef["secretRef"]
                data = self._secret(ns, r.get("name", ""), r.get("optional"), "CreateContainerConfigError", "env")
            else:
                r = ef.get("configMapRef") or {}
                data = self._configmap(ns, r.get("name", ""), r.get("optional"), "CreateContainerConfigError", "env")
            for k, v in (data or {}).items():
                env[pre + k] = v.decode(errors="replace")
        for e in c.spec.get("env") or []:
            name = e.get("name", "")
            if "value" in e or "valueFrom" not in e:
                env[name] = expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            if "secretKeyRef" in vf or "configMapKeyRef" in vf:
                kind = "secretKeyRef" if "secretKeyRef" in vf else "configMapKeyRef"
                r = vf[kind]
                get = self._secret if kind == "secretKeyRef" else self._configmap
                data = get(ns, r.get("name", ""), r.get("optional"), "CreateContainerConfigError", "env")
                if data is None:
                    continue
                if r.get("key") not in data:
                    if r.get("optional"):
                        continue
                    raise ConfigError("CreateContainerConfigError", "couldn't find key %s in %s %s/%s" % (
                        r.get("key"), "Secret" if kind == "secretKeyRef" else "ConfigMap", ns, r.get("name")))
                env[name] = data[r["key"]].decode(errors="replace")
            elif "fieldRef" in vf:
                env[name] = self._field(pod, rt, vf["fieldRef"].get("fieldPath", ""))
            else:
                env[name] = ""
        return env

    def _mounts(self, pod, rt, c):
        spec = pod.get("spec") or {}
        vols = {v.get("name"): v for v in spec.get("volumes") or []}
        out = []
        for m in c.spec.get("volumeMounts") or []:
            v = vols.get(m.get("name"), {})
            if "hostPath" in v:
                src = v["hostPath"].get("path", "")
                if not os.path.exists(src):
                    raise ConfigError("ContainerCreating", 'MountVolume.SetUp failed for volume "%s" : hostPath '
                                      'type check failed: %s does not exist' % (m.get("name"), src))
            else:
                src = os.path.join(rt.dir, "volumes", m.get("name", ""))
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
            api = any(k in v for k in ("secret", "configMap", "downwardAPI", "projected"))
            out.append({"src": src, "dst": m.get("mountPath", ""), "ro": bool(m.get("readOnly")) or api})
        if not self._has_sa_mount(spec) and "sa" in rt.vol_hash:
            out.append({"src": os.path.join(rt.dir, "volumes", "..serviceaccount"), "dst": SA_PATH, "ro": True})
        return out

    # ---- containers ----------------------------------------------------------------
    def _run_containers(self, rt, pod):
        for c in rt.inits:
            if c.ready_at:
                if time.monotonic() < c.ready_at:
                    return
                c.ready_at = None      # a simulated init container just completes
                self._set_running(c)
                self._stop_sim(c, 0, "Completed")
            if c.terminated and c.state["terminated"]["exitCode"] == 0:
                continue
            if not (c.proc or c.running) and (not c.terminated or self._restartable(pod, c)):
                self._maybe_start(rt, pod, c)
            return   # init containers run one after another
        for c in rt.containers:
            if c.ready_at:
                if time.monotonic() >= c.ready_at:
                    c.ready_at = None
                    self._set_running(c)
            elif not (c.proc or c.running) and (not c.terminated or self._restartable(pod, c)):
                self._maybe_start(rt, pod, c)

    def _restartable(self, pod, c):
        pol = (pod.get("spec") or {}).get("restartPolicy", "Always")
        code = c.state["terminated"]["exitCode"]
        return pol == "Always" and not c.init or (pol in ("Always", "OnFailure") and code != 0)

    def _maybe_start(self, rt, pod, c):
        now = time.monotonic()
        if c.restart_at and now < c.restart_at:
            self._at(c.restart_at, (rt.ns, rt.name))
            if not c.backoff_reported:
                c.backoff_reported = True
                self._event(pod, "Warning", "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)"
                            % (c.name, rt.name, rt.ns, rt.uid), c)
            return
        c.backoff_reported = False
        if imagepull.blocked(self, rt, pod, c, normalize_image(c.image)):
            return
        path = self._exec(c.image)
        try:
            env = self._env(pod, rt, c)
            for k, v in (path.env.items() if isinstance(path, ociimage.Image) else ()):
                env.setdefault(k, v)   # the image's Env under the pod's
            mounts = self._mounts(pod, rt, c) if path else []
        except ConfigError as e:
            c.state = {"waiting": {"reason": e.reason, "message": e.message}}
            self._event(pod, "Warning", "Failed", "Error: " + e.message, c)
            self._at(now + 2.0, (rt.ns, rt.name))
            return
        if c.terminated:
            c.last_state = {"terminated": c.state["terminated"]}
            c.restarts += 1
        c.restart_at = None
        c.container_id = "containerd://" + hashlib.sha256(os.urandom(16)).hexdigest()
        self._event(pod, "Normal", "Pulled", 'Container image "%s" already present on machine' % c.image, c)
        self._event(pod, "Normal", "Created", "Created container: %s" % c.name, c)
        self._event(pod, "Normal", "Started", "Started container %s" % c.name, c)
        if not path:
            c.state = {"waiting": {"reason": "ContainerCreating"}}
            c.ready_at = now + random.uniform(0.1, 0.3)
            self._at(c.ready_at, (rt.ns, rt.name))
            return
        self._spawn(rt, pod, c, path, env, mounts)

    def _spawn(self, rt, pod, c, path, env, mounts):
        spec = pod.get("spec") or {}
        psc, csc = spec.get("securityContext") or {}, c.spec.get("securityContext") or {}
        img = path if isinstance(path, ociimage.Image) else None
        uid = csc.get("runAsUser", psc.get("runAsUser", img.uid if img else None))
        gid = csc.get("runAsGroup", psc.get("runAsGroup", img.gid if img else None))
        groups = list(psc.get("supplementalGroups") or [])
        if psc.get("fsGroup") is not None:
            groups.append(psc["fsGroup"])
        argv = [expand(a, env) for a in (c.spec.get("command") or (img.entrypoint if img else [path]))] + \
               [expand(a, env) for a in c.spec.get("args") or (img.cmd if img and not
                                                               c.spec.get("command") else [])]
        if uid not in (None, 0):
            env.setdefault("HOME", "/")
        else:
            env.setdefault("HOME", "/root")
        if rt.wants_netns and rt.netns is None:
            rt.netns = sandbox.NetnsHolder()
        c.old_cgroups += c.cgroups
        sandbox.remove_cgroups(c.old_cgroups)
        c.cgroups = sandbox.container_cgroups(rt.uid, c.container_id)
        c.state_dir = os.path.join(rt.dir, "containers", c.name, str(c.restarts))
        os.makedirs(c.state_dir, 0o700, exist_ok=True)
        # terminationMessagePath: a file of ours, read into
        # state.terminated.message when the container ends
        tlog = os.path.join(c.state_dir, "termination-log")
        open(tlog, "w").close()
        os.chmod(tlog, 0o666)
        mounts = mounts + [{"src": tlog, "dst": c.spec.get("terminationMessagePath") or
                            "/dev/termination-log", "ro": False}]
        stage = os.path.join(rt.dir, "stage", c.name, str(c.restarts))
        os.makedirs(stage, 0o700, exist_ok=True)
        spec_path = os.path.join(c.state_dir, "spec.json")
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"argv": argv, "env": env, "uid": uid, "gid": gid, "rootfs": img.rootfs if img else None,
                       "cwd": c.spec.get("workingDir") or (img.workdir if img else "/"),
                       "groups": groups, "hostname": rt.name, "mounts": mounts, "state": c.state_dir,
                       "stage": stage, "cgroups": c.cgroups, "host_pid": rt.host_pid,
                       "netns": rt.netns.path if rt.netns else None}, f)
        logf = open(os.path.join(self.opts.dir, "pods", "%s_%s.log" % (rt.ns, rt.name)), "ab")
        try:
            c.proc = subprocess.Popen([sys.executable, "-I", PODPROC, spec_path, str(os.getpid())],
                                      stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                      start_new_session=True, close_fds=True)
        finally:
            logf.close()
        self._set_running(c)
        proc, key, uid_ = c.proc, (rt.ns, rt.name), rt.uid
        threading.Thread(target=lambda: self.q.put(("exit", key, uid_, c, proc.wait())),
                         name="kubelet-wait", daemon=True).start()

    def _set_running(self, c):
        c.started_at = now_iso()
        c.state = {"running": {"startedAt": c.started_at}}

    def _container_exited(self, rt, c, rc):
        c.proc = None
        code = rc if rc >= 0 else 128 - rc
        err = None
        try:
            with open(os.path.join(c.state_dir, "start-error")) as f:
                err = f.read()
        except OSError:
            pass
        term = {"exitCode": code}
        if err:
            term.update(exitCode=128, reason="StartError", message=err)
        else:
            term["reason"] = "Completed" if code == 0 else "Error"
            try:
                with open(os.path.join(c.state_dir, "termination-log"), "rb") as f:
                    msg = f.read(4096).decode("utf-8", "replace")
                if msg:
                    term["message"] = msg
            except OSError:
                pass
        term.update(startedAt=c.started_at or now_iso(), finishedAt=now_iso(), containerID=c.container_id)
        c.state = {"terminated": term}
        pol = rt.restart_policy
        if not rt.terminating and (pol == "Always" and not c.init or pol != "Never" and term["exitCode"] != 0):
            # CrashLoopBackOff: the first restart is immediate, then 10s, 20s, ... 5m.
            c.restart_at = time.monotonic() + c.backoff
            c.cur_backoff = c.backoff
            c.backoff = BACKOFF_START if not c.backoff else min(BACKOFF_MAX, c.backoff * 2)

    def _stop_sim(self, c, code, reason):
        if c.proc is None and (c.running or c.ready_at):
            c.ready_at = None
            c.state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": c.started_at or now_iso(),
                                      "finishedAt": now_iso(), "containerID": c.container_id}}

    def _kill(self, c, sig):
        p = c.proc
        if p is None or p.returncode is not None:
            return
        target = p.pid
        if sig == signal.SIGKILL and c.state_dir:
            # Kill the pod's pid-namespace init: the kernel kills the whole
            # namespace and podproc reaps it, so nothing is left as a zombie.
            try:
                with open(os.path.join(c.state_dir, "init.pid")) as f:
                    ipid = int(f.read())
                with open("/proc/%d/stat" % ipid) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == p.pid:
                        target = ipid
            except (OSError, ValueError, IndexError):
                pass
        try:
            os.kill(target, sig)
        except OSError:
            pass

    # ---- status --------------------------------------------------------------------
    def _cstatus(self, pod, rt, c, phase):
        path = self.runs(c.image)
        state = c.state
        if "terminated" in state and c.restart_at and not rt.terminating and phase == "Running":
            if c.restart_at > time.monotonic() + 0.5:
                state = {"waiting": {"reason": "CrashLoopBackOff",
                                     "message": "back-off %s restarting failed container=%s pod=%s_%s(%s)"
                                     % (duration(c.cur_backoff), c.name, rt.name, rt.ns, rt.uid)}}
        last = c.last_state
        if "waiting" in state and "terminated" in c.state:
            last = {"terminated": c.state["terminated"]}
        ready = "running" in state and not rt.terminating and not c.init
        st = {"name": c.name, "state": state, "lastState": last, "ready": ready, "restartCount": c.restarts,
              "image": normalize_image(c.image),
              "imageID": self._image_id(c.image)}
        if c.container_id and "waiting" not in state or ("waiting" in state and c.restarts):
            st["containerID"] = c.container_id
        st["started"] = "running" in state
        mounts = [{"name": m.get("name"), "mountPath": m.get("mountPath")} |
                  ({"readOnly": True, "recursiveReadOnly": "Disabled"} if m.get("readOnly") else {})
                  for m in c.spec.get("volumeMounts") or []]
        if path and "sa" in rt.vol_hash and not self._has_sa_mount(pod.get("spec") or {}):
            mounts.append({"name": "kube-api-access", "mountPath": SA_PATH, "readOnly": True,
                           "recursiveReadOnly": "Disabled"})
        if mounts:
            st["volumeMounts"] = mounts
        return st

    def _image_id(self, image):
        if imagepull.unpullable(image) or self.archives.pull_error(image):
            return ""
        img = self.archives.image(image)
        return img.image_id(ociimage.split_ref(image)[0]) if img else image_id(image)

    def _phase(self, pod, rt):
        if rt.reason == "DeadlineExceeded":
            return "Failed"
        pol = (pod.get("spec") or {}).get("restartPolicy", "Always")
        if any(not (c.terminated and c.state["terminated"]["exitCode"] == 0) for c in rt.inits):
            failed = any(c.terminated and c.state["terminated"]["exitCode"] != 0 for c in rt.inits)
            return "Failed" if failed and (pol == "Never" or rt.final) else "Pending"
        running = waiting = stopped = succeeded = 0
        for c in rt.containers:
            if c.running:
                running += 1
            elif c.terminated:
                stopped += 1
                succeeded += c.state["terminated"]["exitCode"] == 0
            elif c.last_state:
                stopped += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if rt.final or pol == "Never":
            return "Succeeded" if stopped == succeeded else "Failed"
        if pol == "OnFailure" and stopped == succeeded:
            return "Succeeded"
        return "Running"

    def _conditions(self, pod, rt, phase, cstats):
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        t = now_iso()

        def cond(typ, ok, reason=None, message=None):
            o = old.get(typ)
            status = "True" if ok else "False"
            c = {"type": typ, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": o["lastTransitionTime"] if o and o.get("status") == status else t}
            if reason:
                c["reason"] = reason
            if message:
                c["message"] = message
            return c
        done = phase in ("Succeeded", "Failed")
        unready = [s["name"] for s in cstats if not s["ready"]]
        ready = not unready and not done
        rreason = "PodCompleted" if done else ("ContainersNotReady" if unready else None)
        rmsg = None if done or not unready else "containers with unready status: [%s]" % " ".join(unready)
        uninit = [c.name for c in rt.inits if not (c.terminated and c.state["terminated"]["exitCode"] == 0)]
        init_ok = not uninit
        return [cond("PodReadyToStartContainers", rt.prepared and not (done and not any(c.proc for c in rt.all()))),
                cond("Initialized", init_ok, None if init_ok else "ContainersNotInitialized",
                     None if init_ok else "containers with incomplete status: [%s]" % " ".join(uninit)),
                cond("Ready", ready, rreason, rmsg),
                cond("ContainersReady", ready, rreason, rmsg),
                cond("PodScheduled", True)]

    def _write_status(self, rt, pod):
        if not rt.prepared and rt.config_error:
            for c in rt.all():
                if "waiting" in c.state:
                    c.state = {"waiting": {"reason": "ContainerCreating"}}
        phase = self._phase(pod, rt)
        cstats = [self._cstatus(pod, rt, c, phase) for c in rt.containers]
        istats = [self._cstatus(pod, rt, c, phase) for c in rt.inits]
        old = pod.get("status") or {}
        st = {"phase": phase, "conditions": self._conditions(pod, rt, phase, cstats)}
        if rt.reason:
            st["message"], st["reason"] = rt.message, rt.reason
        hip = self._host_ip(pod)
        st["hostIP"], st["hostIPs"] = hip, [{"ip": hip}]
        if rt.prepared:
            st["podIP"], st["podIPs"] = rt.pod_ip, [{"ip": rt.pod_ip}]
        st["startTime"] = old.get("startTime") or rt.start_time
        if istats:
            st["initContainerStatuses"] = istats
        st["containerStatuses"] = cstats
        st["qosClass"] = old.get("qosClass", "BestEffort")
        if st == old:
            return
        with self.store.lock:
            try:
                cur = self.store.get(PODS, rt.ns, rt.name)
                if cur["metadata"]["uid"] != rt.uid:
                    return
                cur["status"] = st
                self.store.update_status(PODS, rt.ns, cur)
            except ApiError as e:
                log("status of %s/%s: %s" % (rt.ns, rt.name, e))


def expand(s, env):
    """Kubernetes $(VAR) expansion: defined vars are replaced, $$ escapes, others stay."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "$" and i + 1 < len(s):
            if s[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if s[i + 1] == "(":
                j = s.find(")", i + 2)
                if j > 0:
                    name = s[i + 2:j]
                    out.append(env[name] if name in env else s[i:j + 1])
                    i = j + 1
                    continue
        out.append(s[i])
        i += 1
    return "".join(out)


def duration(sec):
    """Go's time.Duration formatting for whole seconds: 10s, 1m20s, 5m0s."""
    sec = int(sec)
    return "%dm%ds" % (sec // 60, sec % 60) if sec >= 60 else "%ds" % sec
