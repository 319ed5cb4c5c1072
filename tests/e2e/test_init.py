"""`cepctl init` in a home: a CA is never replaced silently. A second init
refuses (exit 2, naming --force); --force makes a new CA and a new relay
certificate signed by it and says so; --first-boot does nothing where a CA
exists and everything where none does.

Settings given for an existing cep.yaml (the package's default file, or an
operator's) are added to it where it lacks them, comments intact; the same
value again changes nothing; another value is refused (exit 2, file:line:col)
unless --replace-config-keys; a result that would not load is never written
(docs/configuration.md, "An existing cep.yaml")."""
import os
import re
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


def default_config():
    r = subprocess.run([os.path.join(BIN, "cepctl"), "_default-config"],
                       capture_output=True, text=True, timeout=60, check=True)
    return r.stdout


class ExistingConfig(unittest.TestCase):
    """A home made by --first-boot, its cep.yaml then replaced by the
    package's default file, as an installed appliance has it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cep-init-cfg-")
        self.home = os.path.join(self.tmp, "home")
        r = cepctl(self.home, "--first-boot", "--relay-metrics", "", "--delegate-metrics", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.cfg = os.path.join(self.home, "config", "cep.yaml")
        self.default = default_config()
        with open(self.cfg, "w") as f:
            f.write(self.default)
        self.token = os.path.join(self.tmp, "plane.token")
        with open(self.token, "w") as f:
            f.write("secret\n")
        os.chmod(self.token, 0o600)
        self.ca = read(os.path.join(self.home, "pki", "ca.crt"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def plane(self, url="https://plane.example.net:8443", *more):
        return cepctl(self.home, "--control-plane", url, "--control-plane-token", self.token,
                      "--control-plane-proxy", "http://proxy.site:3128", *more)

    def test_control_plane_added_after_the_comments(self):
        r = self.plane()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cep.yaml: added controlPlane.url, controlPlane.tokenFile, "
                      "controlPlane.proxy", r.stdout)
        self.assertIn("restart cep-relay and cep-delegate", r.stdout)
        self.assertIn("kept the CA", r.stdout)
        self.assertEqual(read(os.path.join(self.home, "pki", "ca.crt")), self.ca)
        text = read(self.cfg)
        # every line of the default file, comments included, unchanged and first
        self.assertTrue(text.startswith(self.default), text)
        self.assertEqual(text[len(self.default):],
                         "controlPlane:\n  url: https://plane.example.net:8443\n"
                         f"  tokenFile: {os.path.realpath(self.token)}\n"
                         "  proxy: http://proxy.site:3128\n")
        # it loads (init loads it again) with these values: the same again is no change
        st = os.stat(self.cfg)
        r = self.plane()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cep.yaml: unchanged", r.stdout)
        self.assertNotIn("restart", r.stdout)
        self.assertEqual(read(self.cfg), text)
        self.assertEqual(os.stat(self.cfg).st_ino, st.st_ino)

    def test_conflict_names_file_line_col_and_writes_nothing(self):
        self.assertEqual(self.plane().returncode, 0)
        before = read(self.cfg)
        r = self.plane("https://other.example.net")
        self.assertEqual(r.returncode, 2, r.stdout)
        m = re.search(re.escape(self.cfg) + r":(\d+):(\d+): controlPlane.url is "
                      r"\"https://plane.example.net:8443\" here, not \"https://other.example.net\"",
                      r.stderr)
        self.assertIsNotNone(m, r.stderr)
        line, col = int(m.group(1)), int(m.group(2))
        self.assertEqual(before.splitlines()[line - 1][col - 1:], "url: https://plane.example.net:8443")
        self.assertIn("--replace-config-keys", r.stderr)
        self.assertEqual(read(self.cfg), before)

    def test_replace_config_keys(self):
        r = cepctl(self.home, "--relay-advertise", "tls+tcp://10.0.0.5:7443")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertRegex(r.stderr, re.escape(self.cfg) + r":\d+:3: relay.advertise")
        self.assertEqual(read(self.cfg), self.default)
        r = cepctl(self.home, "--relay-advertise", "tls+tcp://10.0.0.5:7443",
                   "--replace-config-keys")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cep.yaml: replaced relay.advertise", r.stdout)
        want = self.default.replace("advertise: tls+tcp://127.0.0.1:7443",
                                    "advertise: tls+tcp://10.0.0.5:7443")
        self.assertNotEqual(want, self.default)
        self.assertEqual(read(self.cfg), want)

    def test_appliance_on_an_existing_file(self):
        os.chmod(self.cfg, 0o640)
        r = cepctl(self.home, "--appliance", "lab-7")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cep.yaml: added appliance", r.stdout)
        self.assertEqual(read(self.cfg), self.default + "appliance: lab-7\n")
        self.assertEqual(os.stat(self.cfg).st_mode & 0o777, 0o640)
        r = cepctl(self.home, "--appliance", "lab-8")
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{self.cfg}:{self.default.count(chr(10)) + 1}:1: appliance is", r.stderr)

    def test_a_file_that_would_not_load_is_never_written(self):
        with open(self.cfg, "a") as f:
            f.write("controlPlane:\n  url: https://plane.example.net:8443\n"
                    "  clientCert: c.crt\n  clientKey: c.key\n")
        before = read(self.cfg)
        r = self.plane()
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("not written", r.stderr)
        self.assertIn("tokenFile and clientCert exclude each other", r.stderr)
        self.assertEqual(read(self.cfg), before)
        self.assertEqual([f for f in os.listdir(os.path.dirname(self.cfg)) if "cepctl-" in f], [])
        # an invalid proxy: refused by the loader, nothing written
        r = cepctl(self.home, "--control-plane-proxy", "ftp://proxy")
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"not written: .* would not load: .*controlPlane.proxy")
        self.assertEqual(read(self.cfg), before)


if __name__ == "__main__":
    unittest.main()
