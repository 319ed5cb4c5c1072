#!/usr/bin/env python3
"""secrets_scan.py - no secret of the tests in any log, journal, spool or report (issue 13, item 5).

    tests/campaign/secrets_scan.py DIR... [--key-dir HOME]... [--find-homes] [--remove]

Under the given directories, the *sources* of secrets are found by name:
private keys (*.key, *.pem holding a private key, kubelet volume files),
token files (tokens, token, tokens.json, users.json) and kubeconfigs
(kubeconfig*: token, client-key-data). Every other regular file (logs,
journals, spool segments, the plane's store, pod logs, reports) is scanned,
as bytes, for every secret in every form it could leak in:

- a private key: each line of its PEM body, its DER in hex, and its private
  numbers (EC/Ed25519 `priv`, RSA exponent and primes, as `openssl pkey
  -text` prints them) raw, in hex (plain, upper, colon-separated) and base64
  (standard and URL-safe);
- a token: as is, URL-encoded (a token in a URL), and in base64;
- by pattern, whatever the source: a PEM private-key header, and the marked
  test tokens (`sa-<32 hex>` of the Kubernetes test server, `t-admin-`,
  `t-deleg-`, `t-campaign-`).

With --key-dir, every *.key and token file under it (what the appliance
writes) must be mode 0600 or stricter and owned by the user running the
daemons (the home's owner); --find-homes takes every appliance home under the
DIRs (a folder with config/cep.yaml) as a --key-dir. --remove deletes the
DIRs afterwards (ctest secrets_scan_e2e: the homes the e2e tests kept,
CEP_E2E_KEEP_DIR). Prints what it checked; exits 1 on any hit or mode.
The campaign (run.py) also hands it the runner identities it saw during
the runs (IdentityWatch): they are removed at cleanup, so they could not
be found by name afterwards.
"""
import base64
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import urllib.parse

PATTERNS = [(re.compile(p), what) for p, what in (
    (rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a PEM private key"),
    (rb"\bsa-[0-9a-f]{32}\b", "a Kubernetes service-account token"),
    (rb"\bt-(?:admin|deleg)-[0-9a-f]{16}\b", "a Kubernetes user token"),
    (rb"\bt-(?:campaign|cp)-[0-9a-f]{24}\b", "the control plane token"),
)]
TOKEN_FILES = ("tokens", "token", "tokens.json", "users.json")
PEM_KEY = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----(.*?)-----END", re.S)


def is_source(path):
    """A file that holds a secret by design (read for its secrets, not scanned)."""
    base = os.path.basename(path)
    if "/volumes/" in path:          # a pod's mounted Secret / token (the kubelet's)
        return base.endswith(".key") or base == "token"
    # ca.key.signer-only: the signer's copy of the CA key (signer/)
    return base.endswith((".key", ".pem", ".key.signer-only")) or base in TOKEN_FILES or \
        base.startswith("kubeconfig")


def third_party(path):
    """A file of an OCI image's unpacked root (the runner image's libraries,
    libssh2 or GnuTLS among them, hold "BEGIN ... PRIVATE KEY" as parser
    strings): searched for the tests' secrets, not for key-like patterns."""
    return "/images/" in path and "/rootfs/" in path


def key_numbers(pem):
    """The private numbers of a PEM key, as bytes (openssl pkey -text)."""
    r = subprocess.run(["openssl", "pkey", "-noout", "-text"], input=pem, capture_output=True)
    out, cur = [], None
    for line in r.stdout.decode(errors="replace").splitlines():
        s = line.strip()
        if re.fullmatch(r"(priv|privateExponent|prime1|prime2):", s):
            cur = []
            out.append(cur)
        elif cur is not None and re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2})*:?", s):
            cur.append(s.rstrip(":"))
        else:
            cur = None
    nums = [bytes.fromhex("".join(c).replace(":", "")) for c in out if c]
    return [n[1:] if len(n) > 1 and n[0] == 0 else n for n in nums]


def key_forms(pem):
    """[(form name, bytes)] a key could leak as."""
    forms = []
    for m in PEM_KEY.finditer(pem):
        body = m.group(2)
        forms += [("PEM body line", ln.strip()) for ln in body.splitlines() if len(ln.strip()) >= 32]
        try:
            der = base64.b64decode(b"".join(body.split()))
            forms += [("DER hex", der.hex().encode()), ("DER hex", der.hex().upper().encode())]
        except ValueError:
            pass
    for n in key_numbers(pem):
        if len(n) < 16:
            continue
        forms += [("raw private bytes", n), ("private hex", n.hex().encode()),
                  ("private HEX", n.hex().upper().encode()),
                  ("private hex:colons", ":".join(f"{b:02x}" for b in n).encode()),
                  ("private base64", base64.b64encode(n).rstrip(b"=")),
                  ("private base64url", base64.urlsafe_b64encode(n).rstrip(b"="))]
    return forms


def token_forms(tok):
    t = tok.encode()
    return [("token", t), ("token URL-encoded", urllib.parse.quote(tok, safe="").encode()),
            ("token base64", base64.b64encode(t).rstrip(b"="))]


def tokens_in(path, data):
    """Tokens held by a token file or kubeconfig."""
    base = os.path.basename(path)
    text = data.decode(errors="replace")
    if base.endswith(".json"):
        found = []

        def walk(x, key=None):
            if isinstance(x, dict):
                for k, v in x.items():
                    walk(v, k)
            elif isinstance(x, list):
                for v in x:
                    walk(v, key)
            elif isinstance(x, str) and (key == "token" or base == "tokens.json"):
                found.append(x)
        try:
            walk(json.loads(text))
        except ValueError:
            pass
        return found
    if base.startswith("kubeconfig"):
        return [m.group(1).strip("\"'") for m in re.finditer(r"(?m)^\s*token:\s*(\S+)", text)]
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def kubeconfig_keys(data):
    out = []
    for m in re.finditer(rb"(?m)^\s*client-key-data:\s*(\S+)", data):
        try:
            out.append(base64.b64decode(m.group(1)))
        except ValueError:
            pass
    return out


def walk_files(dirs):
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    yield p


def collect(dirs, extra):
    """-> (secrets [(label, [(form, bytes)])], sources [path])"""
    secrets, sources = [], []
    for label, data in extra:
        if PEM_KEY.search(data):
            secrets.append((label, key_forms(data)))
        elif data.strip():
            secrets.append((label, token_forms(data.decode(errors="replace").strip())))
    for p in walk_files(dirs):
        if not is_source(p):
            continue
        sources.append(p)
        with open(p, "rb") as f:
            data = f.read()
        pems = [data] if PEM_KEY.search(data) else []
        pems += kubeconfig_keys(data) if os.path.basename(p).startswith("kubeconfig") else []
        for pem in pems:
            secrets.append((f"key in {p}", key_forms(pem)))
        if not pems or os.path.basename(p).startswith("kubeconfig"):
            for tok in tokens_in(p, data):
                if len(tok) >= 8:
                    secrets.append((f"token in {p}", token_forms(tok)))
    return secrets, sources


def check_modes(key_dirs, seen_modes):
    """Key and token files the appliance writes: 0600 or stricter, owned by
    the user the daemons run as, who owns the home (root, or e.g. nobody
    when the tests drop them to it)."""
    owner = {os.path.abspath(d): os.stat(d).st_uid for d in key_dirs}

    def want(p):
        return next((u for d, u in owner.items() if p.startswith(d + os.sep)), os.geteuid())
    bad, checked = [], dict(seen_modes)
    for p in walk_files(key_dirs):
        base = os.path.basename(p)
        if base.endswith(".key") or "token" in base:
            st = os.stat(p)
            checked[p] = (stat.S_IMODE(st.st_mode), st.st_uid)
    for p, (mode, uid) in sorted(checked.items()):
        if mode & 0o077 or uid != want(p):
            bad.append(f"{p}: mode {mode:04o} uid {uid} (want 0600 or stricter, "
                       f"uid {want(p)}, the home's owner)")
    return len(checked), bad


def scan(dirs, extra=(), key_dirs=(), modes=None):
    secrets, sources = collect(dirs, extra)
    hits, scanned, size = [], 0, 0
    for p in walk_files(dirs):
        if is_source(p):
            continue
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        scanned += 1
        size += len(data)
        for label, forms in secrets:
            for form, b in forms:
                if b and b in data:
                    hits.append(f"{p}: {label} ({form})")
                    break
        for rx, what in PATTERNS:
            if not third_party(p) and rx.search(data):
                hits.append(f"{p}: {what} (pattern)")
    nmodes, bad_modes = check_modes(key_dirs, modes or {})
    return {"files": scanned, "bytes": size, "secrets": len(secrets), "sources": len(sources),
            "forms": sum(len(f) for _, f in secrets), "hits": hits, "modes": nmodes,
            "bad_modes": bad_modes}


def report(res):
    print(f"secrets scan: {res['files']} files ({res['bytes']} bytes) scanned for "
          f"{res['secrets']} secrets in {res['forms']} forms (from {res['sources']} source files and "
          f"the runner identities seen) + {len(PATTERNS)} patterns: {len(res['hits'])} hits; "
          f"{res['modes']} key/token files checked for mode 0600 and owner: "
          f"{len(res['bad_modes'])} wrong")
    for h in res["hits"] + res["bad_modes"]:
        print("  " + h)
    return len(res["hits"]) + len(res["bad_modes"])


class IdentityWatch:
    """Copies, while runs are live, the runner identities the delegate writes
    (HOME/state/runs/*/identity/) and what the Kubernetes test server's
    kubelet mounts (kubelet/pods/*/volumes/), and records each key file's
    mode and owner: both are removed when the run ends."""

    def __init__(self, home, extra_globs=()):
        self.ours = os.path.join(home, "state", "runs", "*", "identity", "*")
        self.globs = [self.ours] + list(extra_globs)
        self.seen, self.mode = {}, {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.wait(0.05):
            for g in self.globs:
                for p in glob.glob(g, recursive=True):
                    if p in self.seen or not os.path.isfile(p) or \
                            not (p.endswith(".key") or os.path.basename(p) == "token"):
                        continue
                    try:
                        st = os.stat(p)
                        with open(p, "rb") as f:
                            self.seen[p] = f.read()
                    except OSError:
                        continue
                    if g == self.ours and p.endswith(".key"):
                        # the appliance's own file; a pod's volume has the
                        # mode its spec asks the kubelet for
                        self.mode[p] = (stat.S_IMODE(st.st_mode), st.st_uid)

    def stop(self):
        self.stopping.set()
        self.thread.join()

    def secrets(self):
        return [(f"runner identity {p}", d) for p, d in self.seen.items() if d.strip()]

    def modes(self):
        return dict(self.mode)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--key-dir", action="append", default=[])
    ap.add_argument("--find-homes", action="store_true")
    ap.add_argument("--remove", action="store_true")
    a = ap.parse_args(argv)
    dirs = [d for d in a.dirs if os.path.isdir(d)]
    if not dirs:
        print(f"secrets scan: none of {a.dirs} exists: nothing to scan (not run)")
        return 77
    homes = list(a.key_dir)
    if a.find_homes:
        homes += [root for d in dirs for root, _, _ in os.walk(d)
                  if os.path.isfile(os.path.join(root, "config", "cep.yaml"))]
        print(f"secrets scan: {len(homes)} appliance homes under {dirs}")
    bad = report(scan(dirs, key_dirs=homes))
    if a.remove:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
