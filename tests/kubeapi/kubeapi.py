#!/usr/bin/env python3
"""kubeapi.py - start the faithful Kubernetes API test server (see README.md).

    python3 tests/kubeapi/kubeapi.py --dir DIR [--port 0] [--users FILE]
        [--namespace NS ...] [--nodes 3] [--exec-image IMAGE=PATH ...]
        [--pod-netns IMAGE ...]
        [--openapi DIR] [--latency-ms N] [--image-archive REPO=PATH ...]

Makes a fresh CA and server certificate with the openssl CLI, starts the
store, auth, HTTPS server, kubelet and controllers, writes the kubeconfigs,
tokens.json, port, and finally `ready`. SIGTERM stops the pods it started and
exits 0.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from auth import Auth  # noqa: E402
import openapi_gen  # noqa: E402
from openapi_check import Schemas  # noqa: E402
from server import Api, Server  # noqa: E402
from store import ApiError, Store, now_iso  # noqa: E402


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit("kubeapi: openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace")))


def make_certs(d):
    """CA + server certificate (SANs 127.0.0.1 and localhost), EC P-256."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7",
             "-subj", "/CN=kubeapi-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver",
             cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "7",
             "-extfile", "server.ext", "-out", "server.crt", cwd=d)
    for name in ("server.csr", "server.ext"):
        os.unlink(os.path.join(d, name))
    os.chmod(os.path.join(d, "ca.key"), 0o600)
    os.chmod(os.path.join(d, "server.key"), 0o600)


def kubeconfig_text(port, ca_path, user, token, namespace="default"):
    return ("apiVersion: v1\nkind: Config\nclusters:\n- name: kubeapi\n  cluster:\n"
            "    server: https://127.0.0.1:%d\n    certificate-authority: %s\n"
            "users:\n- name: %s\n  user:\n    token: %s\n"
            "contexts:\n- name: kubeapi\n  context:\n    cluster: kubeapi\n    user: %s\n    namespace: %s\n"
            "current-context: kubeapi\n" % (port, ca_path, json.dumps(user), token, json.dumps(user), namespace))


def _write(path, text, mode=0o644):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def node_object(name):
    t = now_iso()
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64"}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status",
                                       "lastHeartbeatTime": t, "lastTransitionTime": t}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                     {"type": "Hostname", "address": name}],
                       "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "nodeInfo": {"machineID": name, "systemUUID": name, "bootID": name,
                                    "kernelVersion": os.uname().release, "osImage": "kubeapi test node",
                                    "containerRuntimeVersion": "kubeapi://1", "kubeletVersion": "v1.32.0",
                                    "kubeProxyVersion": "v1.32.0", "operatingSystem": "linux",
                                    "architecture": "amd64"}}}


class Opts:
    """What the kubelet gets: dir, port, ca_path, exec_images, nodes."""


def _default_sa(store):
    def on_event(etype, gr, obj):
        if etype == "ADDED" and gr == ("", "namespaces"):
            try:
                store.create(("", "serviceaccounts"), obj["metadata"]["name"],
                             {"metadata": {"name": "default"}})
            except ApiError:
                pass
    return on_event


def load_schemas(args):
    """The OpenAPI documents objects are checked against: (dir, Schemas), or
    (dir, None) with --openapi-optional when they are missing (the demo, run
    from a plain clone: they live outside the repository). Without it a
    missing folder ends the server with one line, not a traceback."""
    default = os.path.join(HERE, "..", "..", "..", "shared", "k8s-openapi")
    openapi_dir = os.path.abspath(args.openapi or default)
    if not os.path.isdir(openapi_dir) or not any(n.endswith("_openapi.json") for n in os.listdir(openapi_dir)):
        shown = args.openapi or "../shared/k8s-openapi"
        if not args.openapi_optional:
            sys.exit("kubeapi: %s: no OpenAPI documents (*_openapi.json) there; pass --openapi DIR "
                     "(or --openapi-optional to run without schema checks)" % openapi_dir)
        print("kubeapi: schema checks off: %s not found" % shown, file=sys.stderr, flush=True)
        _write(os.path.join(os.path.abspath(args.dir), "notice"), "schema checks off: %s not found\n" % shown)
        return openapi_dir, None
    schemas = Schemas(openapi_dir)
    # the groups without a shared document (coordination, rbac, networking)
    openapi_gen.install(schemas, os.path.join(os.path.dirname(openapi_dir), "k8s-fixtures", "proto"))
    return openapi_dir, schemas


def build(args):
    d = os.path.abspath(args.dir)
    os.makedirs(os.path.join(d, "pods"), exist_ok=True)
    for stale in ("ready", "port", "notice"):
        if os.path.exists(os.path.join(d, stale)):
            os.unlink(os.path.join(d, stale))
    make_certs(d)
    openapi_dir, schemas = load_schemas(args)
    store = Store(schemas)
    store.subscribe(_default_sa(store))
    auth = Auth(args.users)
    for ns in ["default", "kube-system"] + list(args.namespace or []):
        try:
            store.create(("", "namespaces"), "", {"metadata": {"name": ns}})
        except ApiError as e:
            if e.code != 409:
                raise
    for i in range(1, args.nodes + 1):
        store.create(("", "nodes"), "", node_object("node-%d" % i))
    api = Api(store, auth, schemas, openapi_dir, pod_log_dir=os.path.join(d, "pods"), latency_ms=args.latency_ms)
    server = Server(api, os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    port = server.start(args.port)
    ca = os.path.join(d, "ca.crt")
    tokens = auth.users_with_tokens()
    for user, tok in tokens.items():
        _write(os.path.join(d, "kubeconfig-" + user), kubeconfig_text(port, ca, user, tok), 0o600)
    _write(os.path.join(d, "kubeconfig"), kubeconfig_text(port, ca, "admin", tokens["admin"]), 0o600)
    _write(os.path.join(d, "tokens.json"), json.dumps(tokens, indent=2) + "\n", 0o600)
    _write(os.path.join(d, "port"), "%d\n" % port)

    import controllers
    import kubelet
    opts = Opts()
    opts.dir, opts.port, opts.ca_path = d, port, ca
    opts.exec_images = dict(x.split("=", 1) for x in args.exec_image or [])
    opts.image_archives = dict(x.split("=", 1) for x in args.image_archive or [])
    opts.pod_netns = set(args.pod_netns or [])
    opts.nodes = ["node-%d" % i for i in range(1, args.nodes + 1)]
    k = kubelet.Kubelet(store, auth, opts)
    c = controllers.Controllers(store)
    k.start()
    c.start()
    return d, server, k, c


def main(argv=None):
    p = argparse.ArgumentParser(description="faithful Kubernetes API test server")
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--users")
    p.add_argument("--namespace", action="append")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--exec-image", action="append")
    p.add_argument("--image-archive", action="append", metavar="REPO=PATH",
                   help="pods of REPO@sha256:DIGEST or REPO:TAG run from the OCI archive PATH")
    p.add_argument("--pod-netns", action="append", metavar="IMAGE",
                   help="pods running IMAGE get their own network namespace")
    p.add_argument("--openapi", metavar="DIR",
                   help="the OpenAPI v3 documents (default ../shared/k8s-openapi beside the repository)")
    p.add_argument("--openapi-optional", action="store_true",
                   help="run without schema checks when the documents are missing (the demo)")
    p.add_argument("--latency-ms", type=int, default=0)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    d, server, k, c = build(args)
    _write(os.path.join(d, "ready"), "%d\n" % os.getpid())
    while not stop.wait(3600):
        pass
    for part in (c, k):
        try:
            part.stop()
        except Exception as e:  # stopping must go on: the pods must die
            print("kubeapi: stop: %s" % e, file=sys.stderr)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
