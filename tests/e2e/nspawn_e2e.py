"""nspawn_e2e - boots this machine's own root under systemd-nspawn for the
tests of cep's units (test_signer_systemd.py, test_inspect_systemd.py).

`systemd-nspawn --volatile=yes` gives a tmpfs root with the host's /usr,
so nothing of the host changes; the build's binaries are layered over
/usr/bin, and the units, sysusers and tmpfiles files of appliance/systemd
are bound in. A test's CHECK script runs once as cep-check.service after
the units it names, writes what it saw under /out and powers the machine
off. Needs root, systemd-nspawn and systemd (can_boot).
"""
import os
import shutil
import subprocess
import tempfile

from cep_e2e import BIN, SRC

UNITS = os.path.join(SRC, "appliance", "systemd")
PROGRAMS = ("cep-signer", "cepctl", "cep-delegate", "cep-relay", "cep-runner",
            "cep-launcher")


def can_boot():
    return (os.geteuid() == 0 and shutil.which("systemd-nspawn") is not None
            and os.path.exists("/usr/lib/systemd/systemd"))


def all_units():
    return sorted(u for u in os.listdir(UNITS) if u.endswith(".service"))


def boot(check, machine, units, after, wants, outputs=("result.txt",),
         private_network=False, timeout=300):
    """Boots with the units of appliance/systemd named in units and check
    (a shell script) as cep-check.service, ordered after `after` and
    wanted with `wants`. Returns (res, why): the files named in outputs
    that the machine wrote under /out, each after a "--- name" line, and
    res followed by the tail of the boot's output (for assert messages)."""
    t = tempfile.mkdtemp(prefix=machine + "-")
    try:
        bindir, out = os.path.join(t, "bin"), os.path.join(t, "out")
        os.makedirs(bindir)
        os.makedirs(out)
        for b in PROGRAMS:
            shutil.copy2(os.path.join(BIN, b), bindir)
        script, unit = os.path.join(t, "check.sh"), os.path.join(t, "cep-check.service")
        with open(script, "w") as f:
            f.write(check)
        os.chmod(script, 0o755)
        with open(unit, "w") as f:
            f.write(f"[Unit]\nAfter={' '.join(after)} multi-user.target\n"
                    "[Service]\nType=oneshot\nExecStart=/check.sh\n")
        binds = [f"{script}:/check.sh", f"{unit}:/etc/systemd/system/cep-check.service",
                 f"{UNITS}/cep.sysusers:/etc/sysusers.d/cep.conf",
                 f"{UNITS}/cep.tmpfiles:/etc/tmpfiles.d/cep.conf"]
        binds += [f"{UNITS}/{u}:/etc/systemd/system/{u}" for u in units]
        cmd = ["systemd-nspawn", "-q", "-D", "/", "--volatile=yes", "--register=no",
               "--keep-unit", "-M", machine, f"--overlay-ro=/usr/bin:{bindir}:/usr/bin",
               f"--bind={out}:/out"] + [f"--bind-ro={b}" for b in binds]
        args = ["systemd.firstboot=off"]
        if private_network:
            # a private network (network faults need CAP_NET_ADMIN, which
            # nspawn grants only there) is never "online": do not wait 2
            # min for it
            cmd.append("--private-network")
            args += ["systemd.mask=systemd-networkd-wait-online.service",
                     "systemd.mask=NetworkManager-wait-online.service"]
        args += [f"systemd.wants={u}" for u in list(wants) + ["cep-check.service"]]
        done = subprocess.run(cmd + ["-b", "--"] + args, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        res = ""
        for name in outputs:
            p = os.path.join(out, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    res += f"--- {name}\n" + f.read()
        return res, res + "\n--- boot\n" + done.stdout[-4000:] + done.stderr[-2000:]
    finally:
        shutil.rmtree(t, ignore_errors=True)
