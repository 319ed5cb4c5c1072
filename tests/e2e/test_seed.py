"""`cepctl seed DIR` in a home (docs/images.md, "The seed"): the seed's
cep.yaml fragment, appliance name and control plane land in cep.yaml, the
token and CA as root-only copies in config/credentials (never printed),
connectors and kubeconfigs in connectors.d (kubeconfigs 0600), ssh keys in
config/ssh; a CA is made on a machine without one and kept on one that has
it. A bad seed (unknown file, a cep.yaml that does not load, a symlink, a
token without a URL) changes nothing and says which file."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from cep_e2e import BIN

TOKEN = "t-seed-secret-123"


def seed(home, d):
    return subprocess.run([os.path.join(BIN, "cepctl"), "--home", home, "seed", d],
                          capture_output=True, text=True, timeout=60)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


class Seed(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cep-seed-")
        self.home = os.path.join(self.tmp, "home")
        self.d = os.path.join(self.tmp, "drive")
        write(os.path.join(self.d, "appliance"), "vm-a\n")
        write(os.path.join(self.d, "control-plane", "url"), "https://10.0.2.2:8443\n")
        write(os.path.join(self.d, "control-plane", "token"), TOKEN + "\n")
        write(os.path.join(self.d, "control-plane", "ca.crt"), "-----BEGIN CERTIFICATE-----\n")
        write(os.path.join(self.d, "cep.yaml"), "relay:\n  advertise: tls+tcp://10.0.0.5:7443\n")
        write(os.path.join(self.d, "connectors.d", "shop.yaml"), "kubeconfig: shop.kubeconfig\n")
        write(os.path.join(self.d, "connectors.d", "shop.kubeconfig"), "apiVersion: v1\n")
        write(os.path.join(self.d, "ssh", "authorized_keys"), "ssh-ed25519 AAAAC3Nz test\n")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cfg(self, *rel):
        return os.path.join(self.home, "config", *rel)

    def test_a_seed_configures_the_home_and_keeps_its_secrets_private(self):
        r = seed(self.home, self.d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(TOKEN, r.stdout + r.stderr)
        self.assertIn("created the CA", r.stdout)
        y = read(self.cfg("cep.yaml"))
        for want in ("advertise: tls+tcp://10.0.0.5:7443", "appliance: vm-a", "url: https://10.0.2.2:8443",
                     "tokenFile: " + self.cfg("credentials", "cp-token"),
                     "caFile: " + self.cfg("credentials", "cp-ca.crt")):
            self.assertIn(want, y)
        self.assertEqual(read(self.cfg("credentials", "cp-token")).strip(), TOKEN)
        self.assertEqual(stat.S_IMODE(os.stat(self.cfg("credentials")).st_mode), 0o700)
        for f in (("credentials", "cp-token"), ("credentials", "cp-ca.crt"), ("connectors.d", "shop.kubeconfig"),
                  ("ssh", "authorized_keys")):
            self.assertEqual(stat.S_IMODE(os.stat(self.cfg(*f)).st_mode), 0o600, f)
        self.assertEqual(stat.S_IMODE(os.stat(self.cfg("connectors.d", "shop.yaml")).st_mode), 0o644)
        self.assertTrue(os.path.exists(os.path.join(self.home, "pki", "ca.key")))
        # a second seed (a reboot before the record, a re-seed) keeps the CA
        ca = read(os.path.join(self.home, "pki", "ca.crt"))
        r = seed(self.home, self.d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("kept the CA", r.stdout)
        self.assertEqual(read(os.path.join(self.home, "pki", "ca.crt")), ca)

    def refused(self, why):
        r = seed(self.home, self.d)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn(why, r.stderr)
        self.assertFalse(os.path.exists(self.home), "a bad seed wrote into the home")

    def test_an_unknown_file_in_connectors_d_is_refused(self):
        write(os.path.join(self.d, "connectors.d", "notes.txt"), "x")
        self.refused("connectors.d/notes.txt: expected NAME.yaml")

    def test_a_cep_yaml_that_does_not_load_is_refused_with_its_line(self):
        write(os.path.join(self.d, "cep.yaml"), "relay:\n  bogus: 1\n")
        self.refused("cep.yaml:2:3: unknown key 'bogus'")

    def test_a_symlink_is_refused(self):
        os.unlink(os.path.join(self.d, "control-plane", "token"))
        os.symlink("/etc/shadow", os.path.join(self.d, "control-plane", "token"))
        self.refused("control-plane/token: not a regular file")

    def test_a_token_without_a_url_is_refused(self):
        os.unlink(os.path.join(self.d, "control-plane", "url"))
        self.refused("holds a token, CA or proxy but no url")

    def test_a_multi_line_appliance_name_is_refused(self):
        write(os.path.join(self.d, "appliance"), "vm-a\nvm-b\n")
        self.refused("appliance: expected one line")


if __name__ == "__main__":
    unittest.main()
