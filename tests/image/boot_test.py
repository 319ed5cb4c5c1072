#!/usr/bin/env python3
"""boot_test.py - the VM appliance image, booted (issue 11; docs/images.md).

    boot_test.py --work DIR [--image dist/cep-appliance.qcow2]

1. the image: --image, else $CEP_IMAGE, else dist/cep-appliance.qcow2
   (built with `scripts/package image` when missing);
2. the reference control plane (controlplane/cep_cp.py through
   tests/controlplane/cp_harness.py) on the host's 127.0.0.1 only, with a
   server certificate for 10.0.2.2, the host as QEMU's user-mode network
   shows it to a guest;
3. two instances of the one image, each a copy-on-write qcow2 overlay,
   each with its own seed drive (vfat, CEPSEED: appliance name, the
   plane's URL, token and CA), booted at once under QEMU with KVM, UEFI
   (OVMF), headless, serial console to WORK/console-N.log;
4. measured from QEMU's start: boot-to-ready (the console line of
   cep-console.service: systemd has started cep-relay and cep-delegate,
   both active) and seed-to-registered (the plane lists the appliance),
   then a host experiment queued at the plane per instance until its run
   is reported done and passed (seed-to-run);
5. the instances' machine-ids and CA fingerprints (console line, and the
   CA each registered at the plane) differ; the only listener off
   loopback is the relay's port 7443.

Prints PASS/FAIL lines, the times, "N passed, M failed"; exit 0 only if
none failed. Not root or no qemu-system-x86_64: exit 77 (ctest: not run).
No /dev/kvm: the image's root is booted with systemd-nspawn instead (said
so), with the same seed given as a folder and the plane on 127.0.0.1.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "controlplane"))
OVMF_CODE, OVMF_VARS = "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"
TOKEN = "t-image-" + os.urandom(6).hex()
HOST_FROM_GUEST = "10.0.2.2"  # QEMU user-mode networking: the host's loopback
# KVM / software emulation (TCG: where KVM is missing or does not run the
# firmware, e.g. some nested hosts), seconds
READY_TIMEOUT = {"kvm": 180, "tcg": 600}
RUN_TIMEOUT = 120
READY = re.compile(r"cep-ready: relay=(\S+) delegate=(\S+) machine-id=(\S*) ca-sha256=(\S+) "
                   r"firewall=(\S+) listen=(\S*) uptime=(\S+)s")
EXPERIMENT = """apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: %s
spec:
  target:
    kind: host
  duration: 4s
  faults:
    - name: burn
      type: cpu-hog
      workers: 1
      load: 30%%
      duration: 3s
"""


def log(msg):
    print("image: " + msg, flush=True)


def run(cmd, timeout=120, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d:\n%s" % (" ".join(cmd[:5]), p.returncode,
                                                  p.stdout.decode(errors="replace")[-2000:]))
    return p.stdout.decode(errors="replace")


def the_image(args):
    img = args.image or os.environ.get("CEP_IMAGE") or os.path.join(SRC, "dist", "cep-appliance.qcow2")
    if not os.path.exists(img):
        log("no %s: building it (scripts/package image --no-lint)" % img)
        run([os.path.join(SRC, "scripts", "package"), "image", "--no-lint"], 1800, cwd=SRC)
    return os.path.abspath(img)


# ---- the plane -----------------------------------------------------------------------------
def start_plane(work):
    from cp_harness import ControlPlane, make_pki
    from kubeapi import _openssl
    d = os.path.join(work, "cp")
    shutil.rmtree(d, ignore_errors=True)
    pki = make_pki(os.path.join(d, "pki"))
    # the plane's certificate for the address the guests dial
    with open(os.path.join(pki["dir"], "guest.ext"), "w") as f:
        f.write("subjectAltName=IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" % HOST_FROM_GUEST)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-new", *ec, "-keyout", "guest.key", "-out", "guest.csr", "-subj", "/CN=cep-cp",
             cwd=pki["dir"])
    _openssl("x509", "-req", "-in", "guest.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "7",
             "-days", "2", "-extfile", "guest.ext", "-out", "guest.crt", cwd=pki["dir"])
    pki["cert"], pki["key"] = os.path.join(pki["dir"], "guest.crt"), os.path.join(pki["dir"], "guest.key")
    return ControlPlane(os.path.join(d, "plane"), pki, tokens=[TOKEN]).start(heartbeat_ms=1000)


def admin(cp, path, body=None):
    req = urllib.request.Request(cp.admin_url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def pem_fingerprint(pem):
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


# ---- seeds and instances -----------------------------------------------------------------
def seed_dir(work, name, cp, host, ssh=False):
    d = os.path.join(work, "seed-" + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "control-plane"))
    files = {"appliance": name, "control-plane/url": "https://%s:%d" % (host, cp.port),
             "control-plane/token": TOKEN}
    for rel, text in files.items():
        with open(os.path.join(d, rel), "w") as f:
            f.write(text + "\n")
    shutil.copy(cp.pki["ca"], os.path.join(d, "control-plane", "ca.crt"))
    if ssh:  # this instance asks for sshd: a key of the test's own
        os.makedirs(os.path.join(d, "ssh"))
        key = os.path.join(work, "id-" + name)
        for f in (key, key + ".pub"):
            if os.path.exists(f):
                os.unlink(f)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        shutil.copy(key + ".pub", os.path.join(d, "ssh", "authorized_keys"))
    # a cep.yaml fragment: short long-polls, so a queued task is taken at once
    with open(os.path.join(d, "cep.yaml"), "w") as f:
        f.write("controlPlane:\n  pollWaitMs: 2000\n")
    return d


def seed_drive(work, name, d):
    """The seed as a drive: vfat labelled CEPSEED, made without mounting."""
    img = os.path.join(work, "seed-%s.img" % name)
    if os.path.exists(img):
        os.unlink(img)
    run(["mkfs.vfat", "-C", "-n", "CEPSEED", img, "2048"])
    run(["mcopy", "-s", "-i", img] + [os.path.join(d, e) for e in sorted(os.listdir(d))] + ["::/"])
    return img


class Instance:
    def __init__(self, name, work, image, seed):
        self.name, self.work = name, work
        self.console = os.path.join(work, "console-%s.log" % name)
        self.overlay = os.path.join(work, "disk-%s.qcow2" % name)
        self.vars = os.path.join(work, "vars-%s.fd" % name)
        for f in (self.overlay, self.console):
            if os.path.exists(f):
                os.unlink(f)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, self.overlay])
        shutil.copy(OVMF_VARS, self.vars)
        self.seed = seed
        self.ssh = False
        with socket.socket() as so:  # the host's port forwarded to the guest's 22
            so.bind(("127.0.0.1", 0))
            self.ssh_port = so.getsockname()[1]
        self.proc, self.t0 = None, None
        self.ready = self.registered = self.ran = None  # seconds after start
        self.facts = None

    def start(self, accel):
        cpu = ["-cpu", "host", "-smp", "2"] if accel == "kvm" else ["-smp", "1"]
        cmd = ["qemu-system-x86_64", "-machine", "q35,accel=" + accel, *cpu, "-m", "1024",
               "-nodefaults", "-display", "none", "-no-reboot",
               "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
               "-drive", "if=pflash,format=raw,unit=1,file=" + self.vars,
               "-drive", "if=virtio,format=qcow2,file=" + self.overlay,
               *(["-drive", "if=virtio,format=raw,readonly=on,file=" + self.seed] if self.seed else []),
               "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22" % self.ssh_port,
               "-device", "virtio-net-pci,netdev=n0",
               "-device", "virtio-rng-pci", "-serial", "file:" + self.console]
        self.t0 = time.monotonic()
        self.qlog = os.path.join(self.work, "qemu-%s.log" % self.name)
        with open(self.qlog, "wb") as out:
            self.proc = subprocess.Popen(["nice", "-n", "10"] + cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def poll_ready(self):
        if self.ready is None:
            m = READY.search(self.console_text())
            if m:
                self.ready = time.monotonic() - self.t0
                self.facts = dict(zip(("relay", "delegate", "machine_id", "ca", "firewall", "listen", "uptime"),
                                      m.groups()))
        return self.ready is not None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the checks ----------------------------------------------------------------------------
def wait_all(cp, insts, timeout):
    """Until every instance is ready and registered, one exits or timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        poll(cp, insts)
        if all(i.ready is not None and i.registered is not None for i in insts):
            return
        if any(i.proc.poll() is not None for i in insts):
            return
        time.sleep(0.25)


def plane_cas(cp):
    """{appliance: the CA PEM it registered}, from the plane's own store
    (the admin API leaves the PEMs out)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(cp.dir, "state", "cp.sqlite3"), uri=True)
    try:
        return {n: p for n, p in db.execute("SELECT name, ca_pem FROM appliances")}
    finally:
        db.close()


def poll(cp, insts):
    """Notes, per instance, when its console says ready and when the plane
    first lists it."""
    apps = {a["name"] for a in admin(cp, "/admin/appliances")["appliances"]}
    for i in insts:
        i.poll_ready()
        if i.registered is None and i.name in apps:
            i.registered = time.monotonic() - i.t0


def run_tasks(cp, insts):
    """One host experiment per instance, queued at the plane; -> lines."""
    ids = {admin(cp, "/admin/tasks", {"spec_yaml": EXPERIMENT % ("plane-task-" + i.name[-1]),
                                      "spec_name": "plane-task-" + i.name[-1]})["task_id"]: i for i in insts}
    end, done = time.monotonic() + RUN_TIMEOUT, {}
    while time.monotonic() < end and len(done) < len(ids):
        for t in admin(cp, "/admin/tasks")["tasks"]:
            if t["task_id"] in ids and t["task_id"] not in done and t.get("state") in ("done", "failed"):
                done[t["task_id"]] = t
                i = ids[t["task_id"]]
                i.ran = time.monotonic() - i.t0
        time.sleep(0.5)
    lines = []
    for tid, i in ids.items():
        t = done.get(tid)
        ok = t is not None and t.get("state") == "done" and t.get("verdict") == "Pass"
        lines.append("%s plane-run: task %s (%s): %s" % (
            "PASS" if ok else "FAIL", tid, "plane-task-" + i.name[-1],
            "taken by %s, run %s %s, verdict %s" % (t.get("appliance"), t.get("run_id"), t.get("state"),
                                                    t.get("verdict")) if t else
            "not done within %ds" % RUN_TIMEOUT))
    return lines


def ssh_banner(port):
    """What the guest's port 22 says through the firewall ("" = nothing)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as so:
            so.settimeout(8)
            return so.recv(64).decode(errors="replace").strip()
    except OSError:
        return ""


def check_instances(insts):
    lines = []
    for i in insts:
        f = i.facts
        if f is None:
            tail = "".join(i.console_text().splitlines(True)[-15:])
            lines.append("FAIL ready-%s: no cep-ready line on the console; console tail:\n%s"
                         % (i.name, tail))
            continue
        ok = f["relay"] == "active" and f["delegate"] == "active"
        lines.append("%s ready-%s: relay %s, delegate %s after %.1fs (guest uptime %ss)" % (
            "PASS" if ok else "FAIL", i.name, f["relay"], f["delegate"], i.ready, f["uptime"]))
        listen = set(x for x in f["listen"].split(",") if x)
        # the relay's port on any address, sshd's only if the seed asked;
        # besides, only networkd's DHCP client socket (UDP 68 bound to the
        # lease's address), no service
        # (sshd may start after the console line: the banner below is
        # what proves it runs)
        ports = (":7443", ":22") if i.ssh else (":7443",)
        ok = any(x.endswith(":7443") for x in listen) and all(
            x.endswith(ports) or re.match(r"10\.0\.2\.\d+%\w+:68$", x) for x in listen)
        lines.append("%s listen-%s: off-loopback sockets %s (allowed: %s, the DHCP client's :68); "
                     "nftables input policy %s" % ("PASS" if ok and f["firewall"] == "drop" else "FAIL", i.name,
                                                   sorted(listen), " ".join(ports) +
                                                   (" (seed asked for ssh)" if i.ssh else " (no ssh in the seed)"),
                                                   f["firewall"]))
        banner, end = ssh_banner(i.ssh_port), time.monotonic() + 30
        while i.ssh and not banner and time.monotonic() < end:
            time.sleep(2)
            banner = ssh_banner(i.ssh_port)
        ok = banner.startswith("SSH-2.0-") if i.ssh else banner == ""
        lines.append("%s ssh-%s: port 22 through the firewall (QEMU hostfwd) says %r; %s" % (
            "PASS" if ok else "FAIL", i.name, banner, "the seed asked for ssh" if i.ssh else "no ssh in the seed"))
        ok = i.registered is not None
        lines.append("%s registered-%s: %s" % ("PASS" if ok else "FAIL", i.name,
                                               "at %.1fs" % i.registered if ok else "never"))
        if ok:
            fp = pem_fingerprint(i.plane_ca) if i.plane_ca else "none"
            ok = fp == f["ca"]
            lines.append("%s plane-ca-%s: the CA registered at the plane is the console's %s" % (
                "PASS" if ok else "FAIL", i.name, fp[:23]))
    a, b = insts
    if a.facts and b.facts:
        ok = a.facts["machine_id"] and a.facts["machine_id"] != b.facts["machine_id"]
        lines.append("%s two-machine-ids: %s %s, %s %s" % ("PASS" if ok else "FAIL", a.name,
                                                            a.facts["machine_id"], b.name, b.facts["machine_id"]))
        ok = a.facts["ca"] != "none" and a.facts["ca"] != b.facts["ca"]
        lines.append("%s two-cas: %s %s, %s %s" % ("PASS" if ok else "FAIL", a.name, a.facts["ca"][:23],
                                                    b.name, b.facts["ca"][:23]))
    return lines


def kvm_works(work, image):
    """Whether KVM runs the image: its firmware and kernel start (the
    kernel's first console line within 30 s). On some nested hosts
    /dev/kvm exists but the firmware stops with "KVM internal error"."""
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    i = Instance("kvm-probe", work, image, os.devnull)
    i.seed = None
    i.start("kvm")
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and i.proc.poll() is None:
            if "Linux version" in i.console_text():
                return True, "the kernel started after %.1fs" % (time.monotonic() - i.t0)
            with open(i.qlog, errors="replace") as f:
                if "KVM internal error" in f.read():  # QEMU stops the guest, not itself
                    break
            time.sleep(0.3)
    finally:
        i.stop()
    with open(i.qlog, errors="replace") as f:
        why = f.read().strip().splitlines()
    return False, "the kernel did not start under KVM%s" % (": " + why[0] if why else " within 30s")


def qemu_boot(args, image, cp, accel):
    insts = []
    for name in ("vm-a", "vm-b"):
        # vm-b's seed asks for ssh, vm-a's does not
        d = seed_dir(args.work, name, cp, HOST_FROM_GUEST, ssh=name == "vm-b")
        insts.append(Instance(name, args.work, image, seed_drive(args.work, name, d)))
        insts[-1].ssh = name == "vm-b"
    log("booting %s and %s from %s (%s, UEFI, overlays)" % (insts[0].name, insts[1].name, image, accel))
    for i in insts:
        i.start(accel)
    try:
        wait_all(cp, insts, READY_TIMEOUT[accel])
        lines = run_tasks(cp, insts) if all(i.registered for i in insts) else \
            ["FAIL plane-run: not queued, an instance did not register"]
        cas = plane_cas(cp)
        for i in insts:
            i.plane_ca = cas.get(i.name) or ""
        lines = check_instances(insts) + lines
    finally:
        for i in insts:
            i.stop()
    return insts, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--image")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("image boot test: NOT RUN: needs root (the image build, loop devices)")
        return 77
    # QEMU, OVMF, mtools (idempotent apt, as scripts/package does for its own)
    subprocess.call([os.path.join(SRC, "scripts", "deps-image.sh")], stdin=subprocess.DEVNULL)
    if shutil.which("qemu-system-x86_64") is None or not os.path.exists(OVMF_CODE):
        print("image boot test: NOT RUN: no qemu-system-x86_64 or OVMF (scripts/deps-image.sh installs them)")
        return 77
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    t0 = time.monotonic()
    try:
        image = the_image(args)
        cp = start_plane(args.work)
    except (RuntimeError, OSError) as e:
        print("FAIL setup: %s\n0 passed, 1 failed" % e)
        return 1
    log("image %s, %d bytes; plane on 127.0.0.1:%d (guests: %s)" % (
        image, os.path.getsize(image), cp.port, HOST_FROM_GUEST))
    ok, why = kvm_works(args.work, image)
    accel = "kvm" if ok else "tcg"
    log("KVM: %s; booting with %s" % (why, "KVM" if ok else
        "QEMU's software emulation (TCG) instead: slower, the same image and firmware"))
    try:
        insts, lines = qemu_boot(args, image, cp, accel)
    finally:
        cp.stop()
    for l in lines:
        print(l)
    print("accelerator: %s" % accel)
    for i in insts:
        print("times %s: boot-to-ready %s, seed-to-registered %s, seed-to-run-reported %s (from QEMU start)"
              % (i.name, *("%.1fs" % x if x is not None else "-" for x in (i.ready, i.registered, i.ran))))
    failed = sum(1 for l in lines if l.startswith("FAIL"))
    log("took %.0fs" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (len(lines) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
