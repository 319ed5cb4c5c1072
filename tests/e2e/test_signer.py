"""privsep.signer in a home: cep-signer holds the CA key, the delegate has
each runner's identity signed by it and never opens ca.key.

The proof is stronger than a look at open files: once cep-signer has
loaded the key, ca.key leaves the home altogether; relay, delegate and a
host experiment with a cpu-hog then run to Pass, and while the runner -
having proved its identity to the relay - hogs the CPU, the delegate has
no descriptor or mapping of any ca.key.
"""
import os
import unittest

from cep_e2e import BIN, Appliance, experiment, pids_by_comm, wait_until

HOG = [{"name": "burn", "type": "cpu-hog", "workers": 1, "load": 30, "duration": "4s"}]


def ca_key_refs(pid):
    """Paths naming ca.key among pid's open files and memory mappings."""
    refs = []
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if "ca.key" in target:
            refs.append(target)
    with open(f"/proc/{pid}/maps") as f:
        refs += [l.strip() for l in f if "ca.key" in l]
    return refs


class SignerInAHome(unittest.TestCase):
    def setUp(self):
        self.app = Appliance("signer")
        self.sock = os.path.join(self.app.home, "run", "signer.sock")
        with open(os.path.join(self.app.home, "config", "cep.yaml"), "a") as f:
            f.write(f"privsep:\n  signer: ipc://{self.sock}\n")

    def tearDown(self):
        self.app.close()

    def test_run_passes_with_the_ca_key_only_in_the_signer(self):
        app = self.app
        signer = app.start("signer")
        self.assertTrue(wait_until(lambda: os.path.exists(self.sock), 15, 0.05),
                        "cep-signer did not listen\n" + app.logs())
        key = os.path.join(app.home, "pki", "ca.key")
        away = os.path.join(app.home, "ca.key.signer-only")
        os.rename(key, away)
        app.start_all()
        delegate = app.procs["delegate"].pid
        self.assertEqual(ca_key_refs(delegate), [])

        path = app.write("hog.yaml", experiment("signed-hog", duration="5s", faults=HOG))
        p = app.run_async(path)
        run = app.wait_run(lambda r: r["state"] in ("RUNNING", "PASSED", "FAILED", "ERROR"), 30)
        self.assertIsNotNone(run, app.logs())
        run_id = run["run_id"]
        # the runner proved its identity (the relay hands out assignments
        # only then) and its fault is working
        self.assertTrue(wait_until(lambda: pids_by_comm("cep-cpu-hog", run_id), 20, 0.05),
                        "no cpu-hog of the run\n" + app.logs())
        self.assertEqual(ca_key_refs(delegate), [])
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, out + err + app.logs())
        self.assertIn("verdict: Pass", out)

        # the identity came from cep-signer, under this appliance's CA
        logs = app.logs()
        self.assertIn("signer cep-signer", logs)
        self.assertRegex(logs, rf"run={run_id} msg=\"signed runner identity "
                               rf"cep://e2e/local/host/{run_id}")
        ident = os.path.join(app.home, "state", "runs", run_id, "identity", "ca.crt")
        if os.path.exists(ident):   # cleaned up with the run, or kept
            with open(ident) as a, open(os.path.join(app.home, "pki", "ca.crt")) as b:
                self.assertEqual(a.read(), b.read())
        self.assertIsNone(signer.poll(), "cep-signer died\n" + logs)

    def test_delegate_does_not_start_without_its_signer(self):
        app = self.app
        # no cep-signer: the delegate must not fall back to the key file
        p = app.start("delegate")
        try:
            rc = p.wait(40)
        except Exception:   # noqa: BLE001 - still running is the failure
            p.kill()
            p.wait()
            self.fail("the delegate runs without its signer\n" + app.logs())
        app.procs.pop("delegate", None)
        self.assertNotEqual(rc, 0)
        self.assertIn("cep-signer at ipc://", app.logs())

    def test_signer_refuses_a_home_without_privsep(self):
        app = self.app
        path = os.path.join(app.home, "config", "cep.yaml")
        with open(path) as f:
            text = f.read().split("privsep:")[0]
        with open(path, "w") as f:
            f.write(text)
        p = app.start("signer")
        rc = p.wait(20)
        app.procs.pop("signer", None)
        self.assertEqual(rc, 1)
        self.assertIn("nothing for cep-signer to serve", app.logs())

    def test_version_and_help(self):
        import subprocess
        r = subprocess.run([os.path.join(BIN, "cep-signer"), "--version"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^cep-signer \d+\.\d+")
        r = subprocess.run([os.path.join(BIN, "cep-signer"), "--help"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--allow-uid", r.stdout)
        r = subprocess.run([os.path.join(BIN, "cep-signer"), "--allow-uid", "x"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
