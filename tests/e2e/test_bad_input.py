"""Bad input gets a clear error; the daemons keep serving and no journal is
damaged."""
import os
import socket
import ssl
import unittest

from cep_e2e import Appliance, experiment, wait_until


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Appliance("bad")
        cls.app.start_all()
        exp = experiment("baseline", duration="1s", probes=[
            {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
        r = cls.app.cepctl("run", cls.app.write("base.yaml", exp), "--output", "json")
        assert r.returncode == 0, r.stderr + cls.app.logs()

    @classmethod
    def tearDownClass(cls):
        cls.app.close()

    def assert_still_serving(self, run_one=False):
        # nng 1.5's ipc listener can be wedged by a peer that hangs up in the
        # handshake; the server re-creates it within seconds (lib/rpc/rpc_guard.c)
        r = wait_until(lambda: (lambda x: x if x.returncode == 0 else None)(
            self.app.cepctl("status")), 15, 0.2)
        self.assertTrue(r, "the delegate did not serve again")
        runs = self.app.runs()
        self.assertTrue(any(x["name"] == "baseline" and x["state"] == "PASSED" for x in runs))
        if run_one:
            # a runner still gets through the relay's port, and the journal
            # of the earlier run is untouched
            exp = experiment("after-garbage", duration="1s", probes=[
                {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
            r = self.app.cepctl("run", self.app.write("after.yaml", exp), "--output", "json")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.app.logs())
            base = next(x for x in self.app.runs() if x["name"] == "baseline")
            r = self.app.cepctl("show", base["run_id"])
            self.assertIn("verdict: Pass", r.stdout)

    def test_malformed_yaml_has_position(self):
        path = self.app.write("broken.yaml", "apiVersion: cep.io/v1\nkind: [Experiment\n")
        r = self.app.cepctl("validate", path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"broken\.yaml:\d+:\d+: ")
        r = self.app.cepctl("run", path)
        self.assertEqual(r.returncode, 2)
        self.assert_still_serving()

    def test_unknown_fault_type(self):
        exp = experiment("bad-type", faults=[{"name": "x", "type": "cpu-hogg"}])
        r = self.app.cepctl("validate", self.app.write("t.yaml", exp))
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown fault type "cpu-hogg"', r.stdout)
        self.assertRegex(r.stdout, r"t\.yaml:\d+:\d+: ")

    def test_duration_outside_policy_is_refused(self):
        exp = experiment("too-long", duration="10h", probes=[
            {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
        before = len(os.listdir(os.path.join(self.app.home, "state", "runs")))
        r = self.app.cepctl("run", self.app.write("long.yaml", exp))
        self.assertEqual(r.returncode, 2)
        self.assertIn("maxDuration", r.stderr)
        after = len(os.listdir(os.path.join(self.app.home, "state", "runs")))
        self.assertEqual(before, after, "a refused run must create nothing")
        self.assert_still_serving()

    def test_garbage_on_every_socket(self):
        # the relay's runner port: a truncated TLS handshake, then plain garbage
        for payload in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/1.0\r\n\r\n",
                        os.urandom(4096)):
            with socket.create_connection(("127.0.0.1", self.app.port), timeout=5) as s:
                try:
                    s.sendall(payload)
                except OSError:
                    pass  # the relay may hang up first: that is its right
        # the ipc sockets: SP handshake garbage and a raw oversize header
        for sock in ("admin.sock", "relay.sock", "delegate.sock"):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(os.path.join(self.app.home, "run", sock))
                try:
                    s.sendall(b"\x00SP\x00\x00\x30\x00\x00" + b"\x01" + (2**40).to_bytes(8, "big"))
                    s.sendall(os.urandom(512))
                except OSError:
                    pass  # refused mid-way: fine
        # a TLS client without a certificate gets nowhere but breaks nothing
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", self.app.port), timeout=5) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
                    s.recv(16)
        except (OSError, ssl.SSLError):
            pass
        self.assert_still_serving(run_one=True)


if __name__ == "__main__":
    unittest.main()
