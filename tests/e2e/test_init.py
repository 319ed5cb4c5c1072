"""`cepctl init` in a home: a CA is never replaced silently. A second init
refuses (exit 2, naming --force); --force makes a new CA and a new relay
certificate signed by it and says so; --first-boot does nothing where a CA
exists and everything where none does."""
import os
import shutil
import subprocess
import tempfile
import unittest

from cep_e2e import BIN


def cepctl(home, *args):
    return subprocess.run([os.path.join(BIN, "cepctl"), "--home", home, "init", *args],
                          capture_output=True, text=True, timeout=60)


def read(path):
    with open(path) as f:
        return f.read()


def issuer_matches(home):
    """Whether relay.crt verifies against the home's CA (openssl)."""
    pki = os.path.join(home, "pki")
    r = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(pki, "ca.crt"),
                        os.path.join(pki, "relay.crt")], capture_output=True, text=True)
    return r.returncode == 0


class Init(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cep-init-")
        self.home = os.path.join(self.tmp, "home")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_second_init_refuses_and_keeps_the_ca(self):
        r = cepctl(self.home, "--appliance", "a1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"created a new CA \(SHA-256 [0-9A-F:]{95}\)")
        key = read(os.path.join(self.home, "pki", "ca.key"))
        r = cepctl(self.home)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("already holds a CA", r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(read(os.path.join(self.home, "pki", "ca.key")), key)

    @unittest.skipIf(shutil.which("openssl") is None, "needs openssl")
    def test_force_replaces_ca_and_relay_cert(self):
        self.assertEqual(cepctl(self.home).returncode, 0)
        pki = os.path.join(self.home, "pki")
        old_ca, old_relay = read(os.path.join(pki, "ca.crt")), read(os.path.join(pki, "relay.crt"))
        r = cepctl(self.home, "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("replaced the CA", r.stdout)
        self.assertIn("a new relay certificate", r.stdout)
        self.assertIn("no longer trusted", r.stdout)
        self.assertNotEqual(read(os.path.join(pki, "ca.crt")), old_ca)
        self.assertNotEqual(read(os.path.join(pki, "relay.crt")), old_relay)
        self.assertTrue(issuer_matches(self.home))
        self.assertEqual(os.stat(os.path.join(pki, "ca.key")).st_mode & 0o777, 0o600)

    def test_first_boot_once(self):
        r = cepctl(self.home, "--first-boot", "--appliance", "fb")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        self.assertRegex(lines[0], r"^first boot: created a new CA .*a default cep.yaml$")
        self.assertIn("appliance: fb", read(os.path.join(self.home, "config", "cep.yaml")))
        ca = read(os.path.join(self.home, "pki", "ca.crt"))
        r = cepctl(self.home, "--first-boot")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("has a CA already", r.stdout)
        self.assertEqual(read(os.path.join(self.home, "pki", "ca.crt")), ca)
        r = cepctl(self.home, "--first-boot", "--force")
        self.assertEqual(r.returncode, 2)
        self.assertIn("never replaces a CA", r.stderr)

    def test_two_homes_two_cas(self):
        other = os.path.join(self.tmp, "other")
        a, b = cepctl(self.home, "--first-boot"), cepctl(other, "--first-boot")
        fp = [l.split("SHA-256 ")[1].split(")")[0] for l in (a.stdout, b.stdout)]
        self.assertNotEqual(fp[0], fp[1])


if __name__ == "__main__":
    unittest.main()
