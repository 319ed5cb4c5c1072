"""The secrets scan finds what it claims to: a key and tokens planted in
logs and binary files in each form it looks for, a key file of a wider
mode; and stays silent on a clean tree. Python 3 standard library +
the openssl CLI."""
import base64
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

import secrets_scan


class ScanFinds(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="cep-scan-")
        os.makedirs(os.path.join(self.d, "pki"))
        os.makedirs(os.path.join(self.d, "log"))
        self.key = os.path.join(self.d, "pki", "ca.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-out", self.key], check=True,
                       capture_output=True)
        os.chmod(self.key, 0o600)
        with open(self.key, "rb") as f:
            self.pem = f.read()
        self.priv = secrets_scan.key_numbers(self.pem)[0]
        self.token = "plain-token-" + os.urandom(6).hex()
        with open(os.path.join(self.d, "token"), "w") as f:
            f.write(self.token + "\n")
        os.chmod(os.path.join(self.d, "token"), 0o600)
        self.log("relay.log", b"level=info msg=\"started\"\n")

    def tearDown(self):
        shutil.rmtree(self.d)

    def log(self, name, data):
        with open(os.path.join(self.d, "log", name), "ab") as f:
            f.write(data)

    def hits(self):
        return secrets_scan.scan([self.d], key_dirs=[self.d])

    def test_clean_tree_has_no_hit(self):
        res = self.hits()
        self.assertEqual(res["hits"], [])
        self.assertEqual(res["bad_modes"], [])
        self.assertEqual(res["modes"], 2)
        self.assertGreaterEqual(res["secrets"], 2)

    def test_each_form_is_found(self):
        forms = {
            "pem line": self.pem.splitlines()[1],
            "raw bytes": b"\x00\x01" + self.priv + b"\xff",
            "hex": b"key=" + self.priv.hex().encode(),
            "HEX": self.priv.hex().upper().encode(),
            "colons": ":".join(f"{b:02x}" for b in self.priv).encode(),
            "base64": base64.b64encode(self.priv),
            "base64url": base64.urlsafe_b64encode(self.priv),
            "token": b"Authorization: Bearer " + self.token.encode(),
            "token in url": ("GET /x?t=" + urllib.parse.quote(self.token + "/")).encode(),
            "sa pattern": b"sa-" + b"0" * 32,
            "pem header": b"-----BEGIN PRIVATE KEY-----",
        }
        for what, data in forms.items():
            with self.subTest(what):
                self.log("leak.log", data)
                self.assertEqual(len(self.hits()["hits"]), 1, what)
                os.unlink(os.path.join(self.d, "log", "leak.log"))

    @unittest.skipUnless(os.geteuid() == 0, "chown needs root")
    def test_key_of_another_user_than_the_homes_is_refused(self):
        os.chown(self.key, 65534, -1)
        bad = self.hits()["bad_modes"]
        self.assertEqual(len(bad), 1)
        self.assertIn("ca.key: mode 0600 uid 65534", bad[0])
        os.chown(self.d, 65534, -1)        # a home of nobody's: its keys are nobody's
        os.chown(os.path.join(self.d, "token"), 65534, -1)
        self.assertEqual(self.hits()["bad_modes"], [])

    def test_wide_key_mode_is_refused(self):
        os.chmod(self.key, 0o640)
        bad = self.hits()["bad_modes"]
        self.assertEqual(len(bad), 1)
        self.assertIn("ca.key: mode 0640", bad[0])


if __name__ == "__main__":
    unittest.main()
