"""targets - what the campaign's faults act on, and what a fault may leave.

HostTargets is a network namespace pair joined by a veth (network faults),
a test cgroup with a sleeping process in it (cpu-hog, io-stress), and a
small tmpfs (disk-fill). leftovers() lists, read from outside cep (nft,
tc, /proc, the filesystem), every trace of a fault that is still there;
scrub() removes them so that the next round starts clean. The kill -9
end-to-end tests (tests/e2e/test_*faults_kill9.py) check the same marks
for one fault at a time.
"""
import json
import os
import re
import signal
import subprocess
import tempfile

from cep_e2e import cgroup2_root, procs, remove_cgroup, target_cgroup, wait_until

WORKERS = ("cep-cpu-hog", "cep-mem-hog", "cep-io-stress", "cep-netq", "cep-dns")


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class HostTargets:
    def __init__(self, tag):
        n = os.getpid() % 100000
        self.ns, self.peer = f"cep{tag}{n}a", f"cep{tag}{n}b"
        self.cg = self.fs = self.io = self.sleeper = None
        try:
            self._netns()
            root = cgroup2_root()
            if root is None:
                raise RuntimeError("no cgroup v2 hierarchy")
            self.cg, self.sleeper = target_cgroup(root, "campaign")
            self.fs = tempfile.mkdtemp(prefix="cep-campaign-fill-")
            sh("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", self.fs)
            self.io = tempfile.mkdtemp(prefix="cep-campaign-io-")
        except BaseException:
            self.close()
            raise

    def _netns(self):
        self._del_netns()
        sh("ip", "netns", "add", self.ns)
        sh("ip", "netns", "add", self.peer)
        sh("ip", "-n", self.ns, "link", "add", "va", "type", "veth", "peer", "name", "vb",
           "netns", self.peer)
        sh("ip", "-n", self.ns, "addr", "add", "10.201.41.1/24", "dev", "va")
        sh("ip", "-n", self.peer, "addr", "add", "10.201.41.2/24", "dev", "vb")
        for ns, dev in ((self.ns, "va"), (self.peer, "vb")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def _del_netns(self):
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "netns", "del", self.peer, check=False)

    # -- the faults a host run may carry ------------------------------------
    def faults(self):
        """Every host fault the campaign draws from (YAML items as dicts)."""
        ns, rel = self.ns, self.cg.split("/sys/fs/cgroup/", 1)[1]
        return [
            {"name": "loss", "type": "network-loss", "netns": ns, "percent": 30},
            {"name": "cut", "type": "network-partition", "netns": ns,
             "cidrs": ["10.201.41.128/25"], "action": "reject"},
            {"name": "lat", "type": "network-latency", "netns": ns, "delay": "30ms",
             "direction": "both"},
            {"name": "bw", "type": "network-bandwidth", "netns": ns, "kbps": 800},
            {"name": "cpu", "type": "cpu-hog", "cgroup": rel, "workers": 1, "load": 30},
            {"name": "fill", "type": "disk-fill", "path": self.fs, "percent": 60},
            {"name": "io", "type": "io-stress", "cgroup": rel, "path": self.io,
             "workers": 1, "fileMiB": 2, "writeKiB": 128},
        ]

    # -- what a fault leaves, seen from outside cep ---------------------------
    def nft_tables(self):
        r = sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "tables")
        doc = json.loads(r.stdout) if r.stdout.strip() else {"nftables": []}
        return [x["table"]["name"] for x in doc["nftables"]
                if "table" in x and x["table"]["name"].startswith("cep_")]

    def qdiscs(self):
        """Root qdiscs with a cep handle (ce00+n): bandwidth's tbf, netem."""
        r = sh("ip", "netns", "exec", self.ns, "tc", "qdisc", "show")
        return [ln for ln in r.stdout.splitlines() if re.match(r"qdisc \S+ ce[0-9a-f]{2}:", ln)]

    def fill_files(self):
        return [n for n in os.listdir(self.fs) if n.startswith(".cep-fill-")]

    def io_files(self):
        return os.listdir(self.io)

    def cgroup_strays(self):
        """Processes in the target cgroup other than its sleeper (a hog left)."""
        with open(os.path.join(self.cg, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split() if int(p) != self.sleeper.pid]

    def workers(self, mine):
        """Fault workers whose command line `mine` claims: other tests on the
        machine may run their own."""
        return [p for p, (c, cmd) in procs().items() if c in WORKERS and mine(cmd)]

    def leftovers(self, runner_pids, mine):
        """{kind: [what]} of every fault trace still there; runner_pids: the
        appliance's live runners (a runner of an ended run is a leftover)."""
        workers = self.workers(mine)
        out = {"nft tables": self.nft_tables(), "qdiscs": self.qdiscs(),
               "fill files": self.fill_files(), "io files": self.io_files(),
               "cgroup hogs": self.cgroup_strays(), "worker processes": workers,
               "runner processes": list(runner_pids)}
        return {k: v for k, v in out.items() if v}

    def scrub(self, mine):
        """Remove every trace (after it was counted)."""
        for t in self.nft_tables():
            sh("ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", t, check=False)
            sh("ip", "netns", "exec", self.ns, "nft", "delete", "table", "ip", t, check=False)
        for dev in ("va", "lo"):
            sh("ip", "netns", "exec", self.ns, "tc", "qdisc", "del", "dev", dev, "root",
               check=False)
        for n in self.fill_files():
            os.unlink(os.path.join(self.fs, n))
        for n in self.io_files():
            os.unlink(os.path.join(self.io, n))
        for p in self.cgroup_strays() + self.workers(mine):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def close(self):
        if self.sleeper is not None:
            self.sleeper.kill()
            self.sleeper.wait()
        if self.fs:
            sh("umount", "-l", self.fs, check=False)
            os.rmdir(self.fs)
        if self.io:
            for n in os.listdir(self.io):
                os.unlink(os.path.join(self.io, n))
            os.rmdir(self.io)
        if self.cg and os.path.isdir(self.cg):
            wait_until(lambda: not self.cgroup_strays(), 5)
            remove_cgroup(self.cg)
        self._del_netns()
