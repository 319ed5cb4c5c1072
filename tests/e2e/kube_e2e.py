"""kube_e2e - what the Kubernetes end-to-end tests share.

A KubeEnv is one Kubernetes API test server (tests/kubeapi, through
harness.KubeAPI) plus one appliance (cep_e2e.Appliance) whose connector
`testk` points at it. The server's kubelet runs the runner image as the real
cep-runner. What is in the cluster is checked with the real kubectl, run with
its own HOME (no discovery cache shared between tests). Python standard
library only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cep_e2e import BIN, SRC, Appliance, discard, procs, wait_until

sys.path.insert(0, os.path.join(SRC, "tests", "kubeapi"))
import harness  # noqa: E402  (tests/kubeapi, found through SRC)

NS = "shop"
OTHER_NS = "billing"          # exists in the cluster, not in the connector
IMAGE = "cep.io/runner:e2e"
SA = "cep-runner"
RUNNER_USER = f"system:serviceaccount:{NS}:{SA}"
CONNECTOR = "testk"
CEP_SELECTOR = "app.kubernetes.io/managed-by=cep"

# Exactly the delegate's verbs (lib/kube/kube_rbac.c, delegate_perms).
DELEGATE_PERMS = [("pods", v) for v in ("create", "get", "list", "watch", "delete")] + \
                 [("secrets", v) for v in ("create", "get", "list", "delete")]
# Exactly what pod-delete and the k8s probe need (lib/kube/kube_rbac.c).
RUNNER_RULES = [
    {"namespaces": [NS], "groups": [""], "resources": ["pods"],
     "verbs": ["get", "list", "delete"]},
    {"namespaces": [NS], "groups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list"]},
]


def kubectl_path():
    path = shutil.which("kubectl")
    if path is None:
        raise AssertionError("kubectl is missing: these tests check the cluster with the "
                             "real kubectl (install it; they do not skip)")
    return path


def users(delegate_drop=(), delegate_rules=None, runner_rules=None):
    """The users file: admin, the delegate (its verbs minus delegate_drop,
    pairs (resource, verb); or exactly delegate_rules, users-file rules)
    and the runner's service account (RUNNER_RULES, or runner_rules)."""
    drop = set(delegate_drop)
    rules = [{"namespaces": [NS], "groups": [""], "resources": [res], "verbs": [verb]}
             for res, verb in DELEGATE_PERMS if (res, verb) not in drop]
    if delegate_rules is not None:
        rules = delegate_rules
    return {"users": [
        {"name": "admin", "token": "t-admin-" + os.urandom(8).hex(),
         "rules": [{"namespaces": ["*"], "groups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"name": "cep-delegate", "token": "t-deleg-" + os.urandom(8).hex(), "rules": rules},
        {"name": RUNNER_USER, "rules": RUNNER_RULES if runner_rules is None else runner_rules},
    ]}


def _flow_list(text, where):
    """A YAML flow list of scalars as `cepctl rbac` prints them:
    [a, "b", ""] (plain or double-quoted, no commas inside)."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise AssertionError(f"cepctl rbac: {where}: not a flow list: {text!r}")
    out = []
    for item in text[1:-1].split(","):
        item = item.strip()
        if len(item) >= 2 and item[0] == item[-1] == '"':
            item = item[1:-1]
        out.append(item)
    return out


def rbac_rules(who="delegate", faults=(), ns=NS):
    """Users-file rules equal to what `cepctl rbac --who WHO --faults ...`
    prints: a Role's rules apply in ns, a ClusterRole's cluster-wide
    (namespaces ["*"] in the test server's users file). cepctl runs in a
    scratch home whose connector is only loaded, never contacted.
    Only the manifest shape cepctl emits is read (flow lists of scalars
    under `rules:`); anything else there fails the test."""
    tmp = tempfile.mkdtemp(prefix="cep-rbac-")
    try:
        home = os.path.join(tmp, "home")
        r = subprocess.run([os.path.join(BIN, "cepctl"), "--home", home, "init",
                            "--appliance", "e2e"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"cepctl init: {r.stdout}{r.stderr}")
        d = os.path.join(home, "config", "connectors.d")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{CONNECTOR}.yaml"), "w") as f:
            f.write(f"kubeconfig: {os.path.join(tmp, 'unused.kubeconfig')}\n"
                    f"namespaces: [{ns}]\nrunner: {{serviceAccount: {SA}, image: {IMAGE}}}\n")
        args = ["rbac", CONNECTOR, "--namespace", ns, "--who", who]
        if faults:
            args += ["--faults", ",".join(faults)]
        r = subprocess.run([os.path.join(BIN, "cepctl"), "--home", home, *args],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"cepctl {' '.join(args)}: {r.stdout}{r.stderr}")
        return _rules_of_manifests(r.stdout, ns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rules_of_manifests(text, ns):
    rules = []
    for doc in text.split("\n---"):
        lines = doc.splitlines()
        kind = next((ln.split(":", 1)[1].strip() for ln in lines
                     if ln.startswith("kind:")), None)
        if kind not in ("Role", "ClusterRole"):
            continue
        scope = [ns] if kind == "Role" else ["*"]
        start = lines.index("rules:") + 1
        cur = None
        for ln in lines[start:]:
            if not ln.startswith(("- ", "  ")):
                break
            if ln.startswith("- "):
                cur = {"namespaces": scope}
                rules.append(cur)
                ln = ln[2:]
            key, val = ln.strip().split(":", 1)
            name = {"apiGroups": "groups", "resources": "resources", "verbs": "verbs"}.get(key)
            if name is None or cur is None:
                raise AssertionError(f"cepctl rbac: unexpected rule line {ln!r}:\n{text}")
            cur[name] = _flow_list(val, key)
    for rule in rules:
        if set(rule) != {"namespaces", "groups", "resources", "verbs"}:
            raise AssertionError(f"cepctl rbac: incomplete rule {rule}:\n{text}")
    return rules


def k8s_experiment(name, ns=NS, duration="10s", deadman="10s", interval="2s",
                   count=1, probe=True, min_success=80):
    """pod-delete on app=web with a k8s probe on the deployment's ready
    replicas (by label: an item's `name` is its own name)."""
    text = f"""apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: {name}
spec:
  target:
    kind: kubernetes
    connector: {CONNECTOR}
    namespace: {ns}
  duration: {duration}
  deadman: {deadman}
  faults:
    - name: delete-web-pod
      type: pod-delete
      labelSelector: app=web
      count: {count}
      interval: {interval}
"""
    if probe:
        text += f"""  probes:
    - name: web-ready
      type: k8s
      mode: continuous
      resource: deployments
      labelSelector: app=web
      check: field
      field: status.readyReplicas
      atLeast: 2
      interval: 500ms
      attempts: 3
      minSuccess: {min_success}%
"""
    return text


class KubeEnv:
    def __init__(self, tag, delegate_drop=(), delegate_rules=None, runner_rules=None,
                 exec_images=None, pod_netns=(), image_archives=None, image=IMAGE,
                 launch="1m", app=None):
        harness.KUBECTL = kubectl_path()
        self.tmp = tempfile.mkdtemp(prefix=f"cep-{tag}-k-")
        self.users_file = os.path.join(self.tmp, "users.json")
        with open(self.users_file, "w") as f:
            json.dump(users(delegate_drop, delegate_rules, runner_rules), f)
        self.api = None
        self.app = None
        self.image, self.launch = image, launch   # the connector's runner.image, timeouts.launch
        try:
            self.api = harness.KubeAPI()
            self.api.start(os.path.join(self.tmp, "kube"), users=self.users_file,
                           namespaces=[NS, OTHER_NS],
                           exec_images={IMAGE: os.path.join(BIN, "cep-runner"),
                                        **(exec_images or {})},
                           pod_netns=pod_netns, image_archives=image_archives)
            self.dir, self.port = self.api.dir, self.api.port
            # app: an appliance made elsewhere (e.g. pointed at a control plane)
            self.app = app if app is not None else Appliance(tag)
            self._write_connector()
        except BaseException:
            self.close()
            raise

    def kubeconfig(self, user="admin"):
        return self.api.kubeconfig(user)

    def _write_connector(self):
        d = os.path.join(self.app.home, "config", "connectors.d")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{CONNECTOR}.yaml"), "w") as f:
            f.write(f"""kubeconfig: {self.kubeconfig("cep-delegate")}
namespaces: [{NS}]
runner:
  serviceAccount: {SA}
  image: {self.image}
  imagePullPolicy: IfNotPresent
timeouts: {{request: 10s, launch: {self.launch}}}
""")

    def stats(self):
        return self.api.control("stats")

    def faults(self, **body):
        return self.api.control("faults", body)

    def revoke(self, user, resource, verb, namespace=NS, group=""):
        return self.api.control("revoke", {"user": user, "namespace": namespace,
                                           "group": group, "resource": resource, "verb": verb})

    # -- kubectl ------------------------------------------------------------
    def kubectl(self, *args, user="admin", stdin=None, check=True, timeout=60):
        """The real kubectl (harness: its own HOME per server)."""
        r = self.api.kubectl(*args, user=user, input=stdin, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n"
                                 f"{r.stderr}")
        return r

    def kubectl_json(self, *args, **kw):
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    def cep_objects(self):
        """Every pod and secret carrying the cep label, in every namespace,
        as kubectl sees them."""
        return self.kubectl_json("get", "pods,secrets", "-A", "-l", CEP_SELECTOR)["items"]

    def runner_objects(self, run_id):
        """(pod, secret) of a run as kubectl sees them now (None if absent)."""
        items = self.kubectl_json("get", "pods,secrets", "-n", NS, "-l",
                                  f"cep.io/run-id={run_id}")["items"]
        pod = next((i for i in items if i.get("kind") == "Pod"), None)
        sec = next((i for i in items if i.get("kind") == "Secret"), None)
        return pod, sec

    def create_web(self, replicas=3):
        dep = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web",
                                                              "image": "nginx:1.27"}]}}}}
        self.kubectl("create", "-f", "-", stdin=json.dumps(dep))

        def ready():
            d = self.kubectl_json("get", "deployment", "web", "-n", NS)
            return d.get("status", {}).get("readyReplicas", 0) >= replicas
        if not wait_until(ready, 30, 0.3):
            raise AssertionError("deployment web did not get ready:\n" + self.logs())

    # -- runs ---------------------------------------------------------------
    def new_run_id(self, before, timeout=30):
        """The id of a run submitted after `before` (a set of run ids)."""
        run = wait_until(lambda: next((x for x in self.app.runs()
                                       if x["run_id"] not in before), None), timeout, 0.1)
        if run is None:
            raise AssertionError("no new run appeared:\n" + self.logs())
        return run["run_id"]

    def wait_runner_pod(self, run_id, phase=None, timeout=60):
        """Polls kubectl until the run's pod (and its Secret) exist, and,
        with phase, until the pod is in it. Returns (pod, secret)."""
        got = {}

        def seen():
            pod, sec = self.runner_objects(run_id)
            if pod is not None and sec is not None and \
                    (phase is None or pod.get("status", {}).get("phase") == phase):
                got["v"] = (pod, sec)
                return True
            return False
        if not wait_until(seen, timeout, 0.2):
            raise AssertionError(f"runner pod of {run_id} not seen"
                                 f"{' ' + phase if phase else ''}:\n" + self.logs())
        return got["v"]

    def runner_pids(self):
        """cep-runner processes this server's kubelet runs (their
        environment names its port): other tests' runners are not ours."""
        mark = f"KUBERNETES_SERVICE_PORT={self.port}".encode()
        out = []
        for pid, (comm, _) in procs().items():
            if comm != "cep-runner":
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        out.append(pid)
            except OSError:
                pass
        return out

    def wait_no_cep_objects(self, timeout=60):
        left = wait_until(lambda: not self.cep_objects(), timeout, 0.5)
        return left, self.cep_objects()

    def logs(self):
        out = [self.app.logs() if self.app else ""]
        for name in ("kubeapi.log", "log"):
            p = os.path.join(getattr(self, "dir", self.tmp), name)
            if os.path.isfile(p):
                with open(p, errors="replace") as f:
                    out.append(f"--- {name}\n" + f.read()[-4000:])
        pods = os.path.join(getattr(self, "dir", self.tmp), "pods")
        if os.path.isdir(pods):
            for f in sorted(os.listdir(pods))[-3:]:
                with open(os.path.join(pods, f), errors="replace") as fh:
                    out.append(f"--- pod {f}\n" + fh.read()[-3000:])
        return "\n".join(out)

    def close(self):
        if self.app is not None:
            self.app.close()
            self.app = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        discard(self.tmp)


def pod_is_non_root(pod):
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if not non_root or uid in (None, 0):
            return False
    return True


def run_cepctl_kube_demo(timeout=240, cmd=None, env=None):
    """cepctl demo --kubernetes (or CMD, with ENV), its temporary home (kept
    by the demo when it fails, for a look) inside a folder removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="cep-kdemo-")
    if env is None:
        env = dict(os.environ, CEP_KUBEAPI=os.path.join(SRC, "tests", "kubeapi", "kubeapi.py"))
    env = dict(env, TMPDIR=tmp)
    try:
        r = subprocess.run(cmd or [os.path.join(BIN, "cepctl"), "demo", "--kubernetes"],
                           capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:   # what the kept home says, for the failure message
            for root, _, files in os.walk(tmp):
                for f in sorted(files):
                    if f.endswith(".log"):
                        with open(os.path.join(root, f), errors="replace") as fh:
                            r.stderr += f"\n--- {f}\n" + fh.read()[-3000:]
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wait_proc(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"cepctl run did not end within {timeout}s\n{out}\n{err}")
    return p.returncode, out, err


def elapsed(t0):
    return time.monotonic() - t0
