"""Privilege has one home: host runners started by cep-launcher.

A home with `privsep.launcher` set runs cep-relay, cep-launcher (as root)
and cep-delegate. A host experiment with a network-loss fault on a test
network namespace and a cpu-hog on a test cgroup:

- passes, and while it runs the runner's /proc/PID/status shows exactly
  the capabilities of those faults (lib/proc/caps.c, host column) in CapEff,
  CapPrm, CapBnd and CapAmb, and NoNewPrivs 1;
- after `kill -9` of the runner while its nftables table is in the
  namespace, the launcher's cleanup runner (with the capabilities of the
  record's mechanism) removes it - the delegate, which has no undo for
  nftables, logs it as undone by the cleanup runner - and no process of
  the run is left.

Needs root (namespaces, cgroups, capabilities). When not root it is
reported as skipped, not passed (tests/CMakeLists.txt: SKIP_REGULAR_EXPRESSION).
"""
import json
import os
import signal
import subprocess
import time
import unittest

from cep_e2e import (Appliance, cgroup2_root, experiment, pids_of_run, procs, remove_cgroup,
                     target_cgroup, wait_until)

FINAL = ("PASSED", "FAILED", "ABORTED", "ERROR")
# linux/capability.h
CAP = {"DAC_OVERRIDE": 1, "KILL": 5, "NET_ADMIN": 12, "NET_RAW": 13,
       "SYS_PTRACE": 19, "SYS_ADMIN": 21}


def mask(*names):
    m = 0
    for n in names:
        m |= 1 << CAP[n]
    return m


def status(pid):
    """Fields of /proc/PID/status, or {} once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
    except OSError:
        return {}


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class Launcher(unittest.TestCase):
    def setUp(self):
        root = cgroup2_root()
        self.assertIsNotNone(root, "no cgroup v2 hierarchy")
        n = os.getpid() % 100000
        self.ns = f"ceplx{n}"
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        self.cg, self.target = target_cgroup(root, "lx")
        self.rel = self.cg.split("/sys/fs/cgroup/", 1)[1]
        self.app = Appliance("launcher")
        self.url = f"ipc://{self.app.home}/run/launcher.sock"
        with open(os.path.join(self.app.home, "config", "cep.yaml"), "a") as f:
            f.write(f"privsep:\n  launcher: {self.url}\n")
        self.app.start("relay")
        self.app.start("launcher")
        self.app.start("delegate")
        self.app.wait_ready()

    def tearDown(self):
        self.app.close()
        self.target.kill()
        self.target.wait()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        remove_cgroup(self.cg)

    def tables(self):
        r = subprocess.run(["ip", "netns", "exec", self.ns, "nft", "-j", "list", "tables"],
                           capture_output=True, text=True, check=True)
        doc = json.loads(r.stdout) if r.stdout.strip() else {"nftables": []}
        return [x["table"]["name"] for x in doc["nftables"]
                if "table" in x and x["table"]["name"].startswith("cep_")]

    def log(self, name):
        with open(os.path.join(self.app.home, "log", f"{name}.log"), errors="replace") as f:
            return f.read()

    def runner(self):
        """The run's runner: a cep-runner whose identity lies in the
        launcher's directory of this home, and not one of the processes it
        forks (fault workers before they rename themselves, its short-lived
        namespace helpers): those carry the same name and command line, and
        once pids wrap around (pid_max 32768 on a busy machine) one of them
        comes first in /proc, then is gone when its status is read."""
        d = os.path.join(self.app.home, "run", "launcher") + "/"
        mine = [p for p, (comm, cmd) in procs().items()
                if comm == "cep-runner" and "--identity" in cmd and
                cmd[cmd.index("--identity") + 1].startswith(d)]
        for p in mine:
            ppid = status(p).get("PPid")
            if ppid is not None and int(ppid) not in mine:
                return p
        return None

    def test_runner_gets_exactly_its_faults_capabilities(self):
        faults = [
            {"name": "loss", "type": "network-loss", "netns": self.ns, "percent": 30},
            {"name": "cpu", "type": "cpu-hog", "cgroup": self.rel, "workers": 1, "load": 20},
        ]
        path = self.app.write("caps.yaml", experiment("caps", duration="4s", faults=faults))
        proc = self.app.run_async(path)
        pid = wait_until(self.runner, 20, 0.02)
        self.assertTrue(pid, "no runner started by the launcher\n" + self.app.logs())
        st = status(pid)
        want = mask("NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "DAC_OVERRIDE")
        self.assertEqual(int(st["CapEff"], 16), want, f"CapEff {st['CapEff']} != {want:016x}")
        self.assertEqual(int(st["CapPrm"], 16), want)
        self.assertEqual(int(st["CapBnd"], 16), want)
        self.assertEqual(int(st["CapAmb"], 16), want)
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        self.assertEqual(st["Uid"].split()[0], "0")
        self.assertTrue(wait_until(self.tables, 20, 0.05), "no table\n" + self.app.logs())
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, out + err + self.app.logs())
        run = self.app.wait_run(lambda r: r["name"] == "caps" and r["state"] in FINAL)
        self.assertEqual(run["state"], "PASSED", self.app.logs())
        self.assertEqual(self.tables(), [])
        self.assertFalse(pids_of_run(run["run_id"]))
        self.assertIn(f"run={run['run_id']} msg=\"runner started: pid {pid}, "
                      "capabilities NET_ADMIN,SYS_ADMIN,SYS_PTRACE,DAC_OVERRIDE",
                      self.log("launcher"))

    def test_kill9_runner_cleanup_runner_removes_the_table(self):
        faults = [{"name": "loss", "type": "network-loss", "netns": self.ns, "percent": 30}]
        path = self.app.write("kill.yaml", experiment("kill", duration="30s", deadman="2s",
                                                      faults=faults))
        proc = self.app.run_async(path)
        pid = wait_until(self.runner, 20, 0.02)
        self.assertTrue(pid, "no runner\n" + self.app.logs())
        self.assertTrue(wait_until(self.tables, 20, 0.02), "no table\n" + self.app.logs())
        os.kill(pid, signal.SIGKILL)
        run = self.app.wait_run(lambda r: r["name"] == "kill" and r["state"] in FINAL, 60)
        self.assertIsNotNone(run, "not final\n" + self.app.logs())
        proc.communicate(timeout=30)
        self.assertEqual(self.tables(), [], "the table was left\n" + self.app.logs())
        self.assertFalse(pids_of_run(run["run_id"]), "a process of the run is left")
        self.assertIn(f"run={run['run_id']} msg=\"fault loss undone by the cleanup runner",
                      self.log("delegate"), self.app.logs())
        lx = self.log("launcher")
        self.assertIn(f"run={run['run_id']} msg=\"cleanup runner started: pid ", lx)
        self.assertIn("capabilities NET_ADMIN,SYS_ADMIN,SYS_PTRACE", lx)
        self.assertNotIn("cleanup incomplete", run.get("reason", ""), self.app.logs())

    def test_launcher_killed_and_restarted_adopts_the_runner(self):
        """kill -9 of the launcher mid-run: the runner goes on, the new
        launcher finds it in /proc and the run still passes."""
        faults = [{"name": "loss", "type": "network-loss", "netns": self.ns, "percent": 30}]
        path = self.app.write("adopt.yaml", experiment("adopt", duration="5s", faults=faults))
        proc = self.app.run_async(path)
        pid = wait_until(self.runner, 20, 0.02)
        self.assertTrue(pid, "no runner\n" + self.app.logs())
        self.app.kill9("launcher")
        time.sleep(0.5)
        self.assertTrue(status(pid), "the runner died with its launcher")
        self.app.start("launcher")
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, out + err + self.app.logs())
        run = self.app.wait_run(lambda r: r["name"] == "adopt" and r["state"] in FINAL)
        self.assertEqual(run["state"], "PASSED", self.app.logs())
        self.assertIn(f"run={run['run_id']} msg=\"adopted runner pid {pid}", self.log("launcher"))
        self.assertEqual(self.tables(), [])
        self.assertFalse(pids_of_run(run["run_id"]))

    def test_launcher_sigterm_makes_runners_revert(self):
        """SIGTERM to the launcher: its runner gets SIGTERM, reverts (the
        table goes) and exits before the launcher does."""
        faults = [{"name": "loss", "type": "network-loss", "netns": self.ns, "percent": 30}]
        path = self.app.write("term.yaml", experiment("term", duration="30s", faults=faults))
        proc = self.app.run_async(path)
        pid = wait_until(self.runner, 20, 0.02)
        self.assertTrue(pid, "no runner\n" + self.app.logs())
        self.assertTrue(wait_until(self.tables, 20, 0.02), "no table\n" + self.app.logs())
        self.assertEqual(self.app.stop("launcher"), 0)
        self.assertFalse(status(pid), "the runner outlived the launcher's stop")
        self.assertEqual(self.tables(), [], "the runner did not revert\n" + self.app.logs())
        self.app.start("launcher")   # the delegate's undo needs it back
        run = self.app.wait_run(lambda r: r["name"] == "term" and r["state"] in FINAL, 60)
        self.assertIsNotNone(run, "not final\n" + self.app.logs())
        proc.communicate(timeout=30)
        self.assertIn(run["state"], ("ABORTED", "ERROR"))
        self.assertNotIn("cleanup incomplete", run.get("reason", ""), self.app.logs())
        self.assertFalse(pids_of_run(run["run_id"]))


NOBODY = 65534


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class UnprivilegedDelegate(unittest.TestCase):
    """The installed layout's split, in a home: relay and delegate run as
    an unprivileged user with no capability at all, the launcher as root
    serving that uid only (--allow-uid). A network fault still works,
    because only the runner holds the capabilities it needs. The policy
    checks targets the delegate's user cannot look at (a root process's
    namespace, a directory closed to it) with facts from the launcher."""

    def setUp(self):
        n = os.getpid() % 100000
        self.ns = f"ceplu{n}"
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        self.app = Appliance("launcher-nobody")
        url = f"ipc://{self.app.home}/run/launcher.sock"
        with open(os.path.join(self.app.home, "config", "cep.yaml"), "a") as f:
            f.write(f"privsep:\n  launcher: {url}\n")
        os.makedirs(os.path.join(self.app.home, "run"), exist_ok=True)
        for root, dirs, files in os.walk(self.app.home):
            for x in dirs + files:
                os.chown(os.path.join(root, x), NOBODY, NOBODY)
        os.chown(self.app.home, NOBODY, NOBODY)
        # runners hold no DAC_OVERRIDE here: their identities must not lie
        # in a home root cannot enter without it (as /run/cep-launcher)
        import tempfile
        self.runs = tempfile.mkdtemp(prefix="cep-launcher-runs-")
        self.start_as("relay", NOBODY)
        self.launcher = self.start_as("launcher", 0, "--allow-uid", str(NOBODY),
                                      "--runs", self.runs)
        self.start_as("delegate", NOBODY)
        self.app.wait_ready()
        # wait_ready asks the relay only: the launcher's socket and its
        # "launcher up" line may come later (a test read the socket first)
        self.assertTrue(wait_until(self.launcher_up, 20),
                        "the launcher did not come up\n" + self.app.logs())

    def launcher_up(self):
        with open(os.path.join(self.app.home, "log", "launcher.log"), errors="replace") as f:
            return "launcher up on " in f.read()

    def start_as(self, name, uid, *extra):
        from cep_e2e import BIN
        log = open(os.path.join(self.app.home, "log", f"{name}.log"), "ab")
        kw = {} if uid == 0 else {"user": uid, "group": uid, "extra_groups": []}
        p = subprocess.Popen([os.path.join(BIN, f"cep-{name}"), "--home", self.app.home,
                              *extra], stdout=log, stderr=log, stdin=subprocess.DEVNULL, **kw)
        log.close()
        self.app.procs[name] = p
        return p

    def tearDown(self):
        self.app.close()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        import shutil
        shutil.rmtree(self.runs, ignore_errors=True)

    def tables(self):
        r = subprocess.run(["ip", "netns", "exec", self.ns, "nft", "list", "tables"],
                           capture_output=True, text=True, check=True)
        return [l for l in r.stdout.splitlines() if " cep_" in l]

    def test_delegate_without_capabilities_runs_a_network_fault(self):
        d = status(self.app.procs["delegate"].pid)
        self.assertEqual(int(d["CapEff"], 16), 0, "the delegate holds a capability")
        self.assertEqual(int(d["CapPrm"], 16), 0)
        self.assertEqual(d["Uid"].split()[0], str(NOBODY))
        # the socket: the delegate's group only (the launcher's effective
        # gid), and the launcher serves its uid only
        import pwd
        st = os.stat(os.path.join(self.app.home, "run", "launcher.sock"))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777),
                         (0, pwd.getpwuid(NOBODY).pw_gid, 0o660))
        with open(os.path.join(self.app.home, "log", "launcher.log")) as f:
            self.assertIn(f"serving uid {NOBODY}", f.read())
        faults = [{"name": "loss", "type": "network-loss", "netns": self.ns, "percent": 30}]
        path = self.app.write("nobody.yaml", experiment("nobody", duration="3s", faults=faults))
        os.chmod(path, 0o644)
        proc = self.app.run_async(path)
        self.assertTrue(wait_until(self.tables, 20, 0.05), "no table\n" + self.app.logs())
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, out + err + self.app.logs())
        self.assertEqual(self.tables(), [])

    # -- the policy's host facts come from the launcher (Inspect) --------
    def as_nobody(self, *argv):
        """A command run as the delegate's user: its return code."""
        return subprocess.run(list(argv), user=NOBODY, group=NOBODY,
                              extra_groups=[], capture_output=True).returncode

    def root_process_in_ns(self, name):
        """A root process named name (a copy of sleep) in the test
        namespace; the delegate's user may not look into it."""
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="cep-inspect-bin-")
        self.addCleanup(shutil.rmtree, d, True)
        exe = os.path.join(d, name)
        shutil.copy(shutil.which("sleep"), exe)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, exe, "600"])
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)

        def named():
            try:
                with open(f"/proc/{p.pid}/comm") as f:
                    return f.read().strip() == name
            except OSError:
                return False
        self.assertTrue(wait_until(named, 10), "the target did not start")
        # the delegate's own eyes cannot resolve its namespace
        self.assertNotEqual(self.as_nobody("stat", "-L", f"/proc/{p.pid}/ns/net"), 0,
                            "the delegate's user can see the target's namespace")
        return p.pid

    def submit(self, name, faults, duration="3s"):
        path = self.app.write(f"{name}.yaml", experiment(name, duration=duration,
                                                          faults=faults))
        os.chmod(path, 0o644)
        return self.app.run_async(path)

    def test_policy_checks_a_root_pid_target_through_the_launcher(self):
        pid = self.root_process_in_ns("chaos-target")
        proc = self.submit("rootpid", [{"name": "loss", "type": "network-loss",
                                        "pid": pid, "percent": 30}])
        self.assertTrue(wait_until(self.tables, 20, 0.05), "no table\n" + self.app.logs())
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, out + err + self.app.logs())
        self.assertEqual(self.tables(), [])
        with open(os.path.join(self.app.home, "log", "delegate.log")) as f:
            self.assertIn("host facts launcher", f.read())

    def test_policy_refusal_named_through_the_launcher(self):
        """A root process named sshd (denied by the default policy): its
        namespace resolves (through the launcher), then its name is
        refused, in the policy's words."""
        pid = self.root_process_in_ns("sshd")
        proc = self.submit("denied", [{"name": "loss", "type": "network-loss",
                                       "pid": pid, "percent": 30}])
        out, err = proc.communicate(timeout=60)
        self.assertNotEqual(proc.returncode, 0, out)
        self.assertIn(f'policy: fault "loss" targets pid {pid}, process "sshd", '
                      'denied by policy.targets.deny "sshd"', out + err)
        self.assertEqual(self.tables(), [])

    def test_disk_fill_where_the_delegate_cannot_look(self):
        import shutil
        import tempfile
        hidden = tempfile.mkdtemp(prefix="cep-hidden-")    # 0700 root
        self.addCleanup(shutil.rmtree, hidden, True)
        target = os.path.join(hidden, "data")
        os.mkdir(target)
        self.assertNotEqual(self.as_nobody("stat", "-f", target), 0,
                            "the delegate's user can see the directory")
        # the share is measured (the launcher read the filesystem)...
        proc = self.submit("fullfill", [{"name": "fill", "type": "disk-fill",
                                         "path": target, "percent": 99}])
        out, err = proc.communicate(timeout=60)
        self.assertNotEqual(proc.returncode, 0, out)
        self.assertIn(f'policy: fault "fill" would fill {target} to 99%, exceeds '
                      'policy.maxDiskFillPercent 95', out + err)
        # ...a small fill passes and runs, and leaves nothing behind
        proc = self.submit("smallfill", [{"name": "fill", "type": "disk-fill",
                                          "path": target, "mib": 1}], duration="2s")
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, out + err + self.app.logs())
        self.assertEqual(os.listdir(target), [])


if __name__ == "__main__":
    unittest.main()
