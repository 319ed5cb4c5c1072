#!/usr/bin/env python3
"""appliance_test.py - cep as installed, under a real systemd (issue 9).

    appliance_test.py --work DIR [--deb CEP_DEB] [--rpm CEP_RPM]

Host side of the appliance test (tests/appliance/README.md):

1. the packages: --deb/--rpm or $CEP_DEB/$CEP_RPM; else `scripts/package`
   (the paths it prints: dist/cep_*.deb, dist/cep-*.rpm);
2. a Debian 12 root made with debootstrap, cached as DIR/base-<key>.tar
   (key: the package list, which includes the .deb's Depends so that
   `apt-get install ./cep.deb` inside needs no download);
3. three roots, each booted once with `systemd-nspawn -b` under `timeout`:
   "deb" (the .deb installed with apt), "clone" (a copy of "deb" made
   after installing and before any boot: a cloned VM image) and "rpm"
   (the RPM installed with `rpm --root`);
4. in each, cep-apptest.service (checks.sh) runs the checks after boot,
   writes one line per check and powers off; here the lines are read,
   the host-side checks added (two-cas, control-plane), every line printed
   and the summary "N passed, M failed". Exit 0 only if nothing failed.

Not root: exit 77, which ctest reports as not run (SKIP_RETURN_CODE).
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
SUITE, MIRROR = "bookworm", os.environ.get("CEP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# what the checks use inside besides cep's own dependencies
BASE_PKGS = ["systemd", "systemd-sysv", "dbus", "nftables", "iproute2", "procps", "openssl",
             "util-linux", "libcap2-bin"]
EXPECTED = {"deb": ["services", "status", "host-run", "capeff", "security", "ca-key",
                    "stop-during-run", "restart", "ldd"],
            "rpm": ["rpm-root"],
            "clone": ["cp-daemons", "cp-run"]}
BOOT_TIMEOUT = {"deb": 420, "rpm": 180, "clone": 240}
# where a first boot may put the CA certificate, in order (installed layout)
CA_CERTS = ["var/lib/cep-signer/ca.crt", "var/lib/cep/pki/ca.crt", "etc/cep/ca.crt",
            "etc/cep/relay/ca.crt"]


def log(msg):
    print("appliance: " + msg, flush=True)


def run(cmd, timeout, **kw):
    """Runs cmd; raises with its output's tail if it fails or times out."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s: timed out after %ds" % (" ".join(cmd[:4]), timeout))
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d:\n%s" % (" ".join(cmd[:6]), p.returncode, out[-3000:]))
    return out


# ---- packages ----------------------------------------------------------------------------
def newest(pattern):
    found = [f for f in glob.glob(pattern) if not f.endswith(".src.rpm")]
    return max(found, key=os.path.getmtime) if found else None


def packages(args):
    deb = args.deb or os.environ.get("CEP_DEB")
    rpm = args.rpm or os.environ.get("CEP_RPM")
    if deb and rpm:
        return os.path.abspath(deb), os.path.abspath(rpm), "given"
    pkg = os.path.join(SRC, "scripts", "package")
    if not os.path.exists(pkg):
        raise RuntimeError("no packages: give --deb/--rpm ($CEP_DEB/$CEP_RPM) or add scripts/package")
    log("building the packages: scripts/package")
    # with rpmlint and lintian (seconds): a package with a lint error
    # fails here, so CI holds the "0 errors" (docs/packaging.md)
    cmd = [pkg] if os.access(pkg, os.X_OK) else ["sh", pkg]
    out = run(cmd, 1800, cwd=SRC)
    # the paths it prints, else the newest in dist/
    printed = [w for w in out.split() if os.path.isfile(os.path.join(SRC, w))]
    pdeb = [w for w in printed if re.match(r"cep_[^_]+_[^_]+\.deb$", os.path.basename(w))]
    prpm = [w for w in printed if re.match(r"cep-[0-9][^/]*\.rpm$", os.path.basename(w))
            and not w.endswith(".src.rpm")]
    d = os.path.join(SRC, "dist")
    deb = deb or (os.path.join(SRC, pdeb[-1]) if pdeb else newest(d + "/cep_*.deb"))
    rpm = rpm or (os.path.join(SRC, prpm[-1]) if prpm else newest(d + "/cep-*.rpm"))
    how = "scripts/package"
    if not deb or not rpm:
        raise RuntimeError("no package found (deb %s, rpm %s)" % (deb, rpm))
    return deb, rpm, how


def deb_depends(deb):
    """The .deb's Depends as package names (first alternative, no versions)."""
    text = run(["dpkg-deb", "-f", deb, "Depends", "Pre-Depends"], 60)
    names = set()
    for line in text.splitlines():
        line = line.split(":", 1)[1] if ":" in line and line.split(":", 1)[0] in (
            "Depends", "Pre-Depends") else line
        for dep in line.split(","):
            name = dep.split("|")[0].split("(")[0].strip().split(":")[0]
            if name:
                names.add(name)
    return names


# ---- roots -------------------------------------------------------------------------------
def base_tar(work, deb, extra=()):
    """The cached debootstrap root as a tar; extra: packages beyond
    BASE_PKGS and the .deb's Depends (the VM image's kernel, boot loader:
    packaging/image/mkroot.py), which give it a key of its own."""
    pkgs = sorted(set(BASE_PKGS) | deb_depends(deb) | set(extra))
    key = hashlib.sha256(("%s %s %s" % (SUITE, MIRROR, " ".join(pkgs))).encode()).hexdigest()[:12]
    tar = os.path.join(work, "base-%s.tar" % key)
    if os.path.exists(tar):
        return tar
    for old in glob.glob(os.path.join(work, "base-*.tar")):
        os.unlink(old)
    tmp = os.path.join(work, "base-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log("debootstrap %s (%d packages) -> %s" % (SUITE, len(pkgs), tar))
    t0 = time.monotonic()
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(pkgs), SUITE, tmp, MIRROR], 900)
    # every boot gets its own machine id, as a cloned image does
    with open(os.path.join(tmp, "etc", "machine-id"), "w"):
        pass
    run(["tar", "-C", tmp, "--numeric-owner", "--xattrs", "-cf", tar + ".part", "."], 300)
    os.rename(tar + ".part", tar)
    shutil.rmtree(tmp)
    log("base root cached in %.0fs" % (time.monotonic() - t0))
    return tar


def fresh_root(work, name, tar):
    root = os.path.join(work, "roots", "cep-apptest-" + name)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-xf", tar], 300)
    return root


def nspawn(root, *args):
    return ["systemd-nspawn", "-q", "-D", root, "--register=no", "--keep-unit", *args]


def nspawn_cmd(root, seconds, *args):
    """A command in the root (not booted), bounded: timeout stops nspawn
    with SIGTERM, which takes the container down with it."""
    return ["timeout", "-k", "10", str(seconds), *nspawn(root, *args)]


def install_deb(root, deb):
    shutil.copy(deb, os.path.join(root, "root", "cep.deb"))
    # no network: every dependency is in the base root already
    run(nspawn_cmd(root, 300, "--private-network", "-E", "DEBIAN_FRONTEND=noninteractive",
                   "apt-get", "install", "-y", "-q", "--no-install-recommends", "/root/cep.deb"), 330)
    os.unlink(os.path.join(root, "root", "cep.deb"))


def install_rpm(root, rpm):
    # Debian's rpm tool on the host writes the root's own rpm database.
    # --nodeps: the RPM's Requires (libc.so.6, libnng.so.1, systemd, ...)
    # are met by the Debian packages of the same base root (the .deb's
    # runtime libraries, systemd, nftables), which dpkg knows and rpm's
    # database does not. Its scriptlets run chrooted into the root.
    db = ["--root", root, "--dbpath", "/var/lib/rpm"]
    run(["rpm", *db, "--initdb"], 60)
    run(["rpm", *db, "-i", "--nodeps", rpm], 300)


def add_checks(root, mode, cp=None):
    lib = os.path.join(root, "usr", "local", "lib", "cep-apptest")
    os.makedirs(lib, exist_ok=True)
    shutil.copy(os.path.join(HERE, "checks.sh"), lib)
    os.chmod(os.path.join(lib, "checks.sh"), 0o755)
    units = os.path.join(root, "etc", "systemd", "system")
    shutil.copy(os.path.join(HERE, "cep-apptest.service"), units)
    wants = os.path.join(units, "multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    link = os.path.join(wants, "cep-apptest.service")
    if not os.path.lexists(link):
        os.symlink("/etc/systemd/system/cep-apptest.service", link)
    conf = os.path.join(root, "etc", "cep-apptest")
    os.makedirs(conf, exist_ok=True)
    with open(os.path.join(conf, "mode"), "w") as f:
        f.write(mode + "\n")
    if cp is not None:
        os.makedirs(os.path.join(conf, "cp"), exist_ok=True)
        shutil.copy(cp.pki["ca"], os.path.join(conf, "cp", "ca.crt"))
        with open(os.path.join(conf, "cp", "token"), "w") as f:
            f.write(CP_TOKEN + "\n")
        os.chmod(os.path.join(conf, "cp", "token"), 0o600)  # as an operator keeps it
        with open(os.path.join(conf, "cp", "url"), "w") as f:
            f.write("https://127.0.0.1:%d\n" % cp.port)
        with open(os.path.join(conf, "cp", "ports"), "w") as f:
            f.write("%d %d %d\n" % free_ports(3))


def free_ports(n):
    """n loopback ports free now (the clone root shares the host network)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return tuple(s.getsockname()[1] for s in socks)
    finally:
        for s in socks:
            s.close()


# ---- boots -------------------------------------------------------------------------------
class Boot:
    def __init__(self, name, root, work, private_network=True):
        self.name, self.root = name, root
        self.log = os.path.join(work, "boot-%s.log" % name)
        self.private_network = private_network
        self.rc = None
        self.seconds = 0.0
        self.error = None

    def out(self, f):
        return os.path.join(self.root, "var", "lib", "cep-apptest", f)

    def run(self):
        # --private-network: the container gets its own network namespace
        # (loopback only) and, with it, CAP_NET_ADMIN there, which nftables
        # and `ip netns add` inside need, without power over the host's
        # network. The "clone" root shares the host network instead to
        # reach the control plane on the host's 127.0.0.1.
        net = ["--private-network"] if self.private_network else []
        cmd = ["timeout", "-k", "15", str(BOOT_TIMEOUT[self.name]),
               *nspawn(self.root, "-b", *net)]
        t0 = time.monotonic()
        with open(self.log, "wb") as f:
            self.rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        self.seconds = time.monotonic() - t0

    def results(self):
        """[(ok, name, text)] from the root's results file, a FAIL for each
        expected check the boot did not get to."""
        lines = []
        try:
            with open(self.out("results")) as f:
                lines = [l.rstrip("\n") for l in f if l.strip()]
        except OSError:
            pass
        got, out = set(), []
        for l in lines:
            verdict, _, rest = l.partition(" ")
            name = rest.split(":", 1)[0]
            got.add(name)
            out.append((verdict == "PASS", name, l))
        why = self.error or ("boot exit %s after %.0fs%s" % (
            self.rc, self.seconds, " (timed out)" if self.rc in (124, 137) else ""))
        for name in EXPECTED[self.name]:
            if name not in got:
                out.append((False, name, "FAIL %s: no result from the %s root: %s; see %s"
                            % (name, self.name, why, self.log)))
        return out

    def data(self):
        d = {}
        try:
            with open(self.out("data")) as f:
                for l in f:
                    k, _, v = l.rstrip("\n").partition("=")
                    d[k] = v
        except OSError:
            pass
        return d

    def diagnostics(self):
        text = "---- %s root (boot exit %s, %.0fs): %s\n" % (self.name, self.rc, self.seconds, self.root)
        for f, n in (("journal", 60), ("log", 40)):
            try:
                with open(self.out(f), errors="replace") as fh:
                    text += "-- %s (last %d lines)\n" % (f, n) + "".join(fh.readlines()[-n:])
            except OSError:
                text += "-- no %s\n" % f
        try:
            with open(self.log, errors="replace") as fh:
                text += "-- console (last 15 lines)\n" + "".join(fh.readlines()[-15:])
        except OSError:
            pass
        return text


# ---- control plane -----------------------------------------------------------------------
CP_TOKEN = "t-apptest-" + os.urandom(6).hex()


def start_plane(work):
    sys.path.insert(0, os.path.join(SRC, "tests", "controlplane"))
    from cp_harness import ControlPlane, make_pki  # the reference plane, as the e2e tests start it
    d = os.path.join(work, "cp")
    shutil.rmtree(d, ignore_errors=True)
    pki = make_pki(os.path.join(d, "pki"))
    return ControlPlane(os.path.join(d, "plane"), pki, tokens=[CP_TOKEN]).start(heartbeat_ms=1000)


def admin_get(cp, path):
    with urllib.request.urlopen(cp.admin_url + path, timeout=10) as r:
        return json.loads(r.read())


def watch_plane(boot, cp, verdict):
    """While the clone root runs: once it names its run (data cp_run_id),
    wait for the plane to hold that run's events and the appliance's
    registration, then tell the root (host-done) it may power off."""
    deadline = time.monotonic() + BOOT_TIMEOUT["clone"]
    run_id = None
    while time.monotonic() < deadline and boot.rc is None:
        d = boot.data()
        if "cp_run_id" in d:
            run_id = d["cp_run_id"]
            break
        time.sleep(0.5)
    if not run_id:
        verdict.append("FAIL control-plane: the clone root named no run (see cp-run)")
    else:
        name, n, reg = boot.data().get("appliance", "?"), 0, False
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                reg = any(a.get("name") == name for a in admin_get(cp, "/admin/appliances")["appliances"])
                n = len(admin_get(cp, "/admin/events?run_id=" + run_id).get("events", []))
            except (OSError, ValueError, KeyError) as e:
                log("plane admin: %s" % e)
            if reg and n > 0:
                break
            time.sleep(1)
        if reg and n > 0:
            verdict.append("PASS control-plane: appliance %s registered, %d events of run %s reached the plane"
                           % (name, n, run_id))
        else:
            verdict.append("FAIL control-plane: appliance %s registered: %s, events of run %s at the plane: %d"
                           " (plane log %s)" % (name, reg, run_id, n, os.path.join(cp.dir, "cp.log")))
    try:
        with open(boot.out("host-done"), "w") as f:
            f.write("done\n")
    except OSError:
        pass


def fingerprint(root):
    for rel in CA_CERTS:
        p = os.path.join(root, rel)
        if os.path.exists(p):
            out = run(["openssl", "x509", "-in", p, "-noout", "-fingerprint", "-sha256"], 30)
            return out.strip().split("=", 1)[-1], "/" + rel
    return None, None


def two_cas(a, b):
    fa, pa = fingerprint(a.root)
    fb, pb = fingerprint(b.root)
    if fa is None or fb is None:
        return "FAIL two-cas: no CA certificate after first boot (%s: %s, %s: %s; looked at %s)" % (
            a.name, pa, b.name, pb, ", ".join(CA_CERTS))
    if fa == fb:
        return "FAIL two-cas: the %s root and its clone have the same CA %s (%s): created at install time" % (
            a.name, fa, pa)
    return "PASS two-cas: %s %s, clone %s" % (a.name, fa[:23], fb[:23])


# ---- main --------------------------------------------------------------------------------
def prepare(args):
    deb, rpm, how = packages(args)
    log("packages (%s): %s %s" % (how, deb, rpm))
    tar = base_tar(args.work, deb)
    deb_root = fresh_root(args.work, "deb", tar)
    install_deb(deb_root, deb)
    # the clone: the installed root copied before its first boot
    clone_root = os.path.join(args.work, "roots", "cep-apptest-clone")
    shutil.rmtree(clone_root, ignore_errors=True)
    run(["cp", "-a", "--reflink=auto", deb_root, clone_root], 300)
    rpm_root = fresh_root(args.work, "rpm", tar)
    install_rpm(rpm_root, rpm)
    return deb_root, clone_root, rpm_root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="cache and roots (the build directory's appliance/)")
    ap.add_argument("--deb")
    ap.add_argument("--rpm")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("appliance test: NOT RUN: needs root (debootstrap, systemd-nspawn)")
        return 77
    for tool in ("debootstrap", "systemd-nspawn", "rpm", "dpkg-deb", "openssl", "timeout"):
        if shutil.which(tool) is None:
            print("FAIL setup: %s missing (scripts/deps.sh installs it)\n0 passed, 1 failed" % tool)
            return 1
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    t0 = time.monotonic()
    try:
        deb_root, clone_root, rpm_root = prepare(args)
    except RuntimeError as e:
        print("FAIL setup: %s\n0 passed, 1 failed" % e)
        return 1
    boots = {"deb": Boot("deb", deb_root, args.work),
             "rpm": Boot("rpm", rpm_root, args.work),
             "clone": Boot("clone", clone_root, args.work, private_network=False)}
    cp, cp_verdict = None, []
    try:
        cp = start_plane(args.work)
        add_checks(clone_root, "cp", cp)
    except (RuntimeError, OSError) as e:
        boots["clone"].error = "control plane not started: %s" % e
        cp_verdict.append("FAIL control-plane: the reference plane did not start: %s" % e)
    add_checks(deb_root, "main")
    add_checks(rpm_root, "rpm")
    # two at a time: the main root alone, the short ones one after the other
    log("booting (deb: up to %ds; rpm then clone alongside)" % BOOT_TIMEOUT["deb"])
    main_t = threading.Thread(target=boots["deb"].run)
    main_t.start()
    boots["rpm"].run()
    if cp is not None:
        w = threading.Thread(target=watch_plane, args=(boots["clone"], cp, cp_verdict))
        w.start()
        boots["clone"].run()
        w.join()
        cp.stop()
    main_t.join()

    lines = []
    for b in boots.values():
        lines += b.results()
    lines += [(l.startswith("PASS"), "control-plane", l) for l in cp_verdict]
    if not cp_verdict:
        lines.append((False, "control-plane", "FAIL control-plane: not checked"))
    tc = two_cas(boots["deb"], boots["clone"])
    lines.append((tc.startswith("PASS"), "two-cas", tc))
    for _, _, text in lines:
        print(text)
    failed = sum(1 for ok, _, _ in lines if not ok)
    if failed:
        for b in boots.values():
            if any(not ok for ok, _, _ in b.results()):
                print(b.diagnostics())
    log("took %.0fs" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (len(lines) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
