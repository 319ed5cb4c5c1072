"""The installed (FHS) layout, as the package lays it out: `cepctl init` run
as root gives the CA key to cep-signer alone (/var/lib/cep-signer), its
certificate to everyone (/etc/cep/ca.crt) and the relay its own folder
(/etc/cep/relay, root:cep, key root:root 0600); cep-relay - running as its
own user, its key handed over as a systemd credential the way
LoadCredential=cep:/etc/cep/relay does - starts from it, and neither relay
nor delegate can read the CA key nor the relay key file itself.
`cepctl init --first-boot` does the same once and nothing after; without
the package's users, init fails loudly and writes no CA. The package's
default /etc/cep/cep.yaml gets the settings of the flags (comments kept);
a conflicting control-plane URL is refused before the token is copied, and
the same URL with a new token rotates the credential and leaves cep.yaml
as it is.

Runs in a private mount namespace: /etc is an overlay whose writes (the
users, /etc/cep) vanish with the test, /var/lib and /run are fresh tmpfs.
Needs root (CI is root).
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from cep_e2e import BIN, free_port

SCRIPT = r"""
set -eu
mount -t overlay overlay -o lowerdir=/etc,upperdir="$T/up",workdir="$T/work" /etc
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /run
groupadd -r cep
useradd -r -g cep -M -d /var/lib/cep -s /usr/sbin/nologin cep-delegate
useradd -r -g cep -M -d /nonexistent -s /usr/sbin/nologin cep-relay
# what packaging's tmpfiles.d and the units' State/RuntimeDirectory do
mkdir -p /etc/cep /var/lib/cep /run/cep
# the package's conffile
"$BIN/cepctl" _default-config > /etc/cep/cep.yaml
chown cep-delegate:cep /var/lib/cep /run/cep
chmod 0700 /var/lib/cep
chmod 0770 /run/cep
init() {
    "$BIN/cepctl" init --relay-listen "tls+tcp://127.0.0.1:$PORT" \
        --relay-advertise "tls+tcp://127.0.0.1:$PORT" --relay-metrics "" \
        --delegate-metrics "" "$@"
}
# no cep-signer user yet: a loud failure, and no CA left behind
if init 2>"$T/nousers.err"; then echo "NOUSERS ok"; else echo "NOUSERS failed"; fi
cat "$T/nousers.err"
if [ -e /var/lib/cep-signer/ca.key ]; then echo "NOUSERS left a CA"; fi
useradd -r -U -M -d /var/lib/cep-signer -s /usr/sbin/nologin cep-signer
usermod -a -G cep-signer cep-delegate
printf 'cp-secret-token\n' > "$T/token"
chmod 0644 "$T/token"
init --first-boot --replace-config-keys --control-plane https://127.0.0.1:9/ \
    --control-plane-token "$T/token"
grep -q 'tokenFile: /etc/cep/credentials/cp-token' /etc/cep/cep.yaml && echo "CONFIG names the credential"
grep -q '^#controlPlane:' /etc/cep/cep.yaml && echo "CONFIG comments kept"
init --first-boot
if "$BIN/cepctl" init 2>"$T/again.err"; then echo "AGAIN ok"; else echo "AGAIN refused"; fi
cat "$T/again.err"
printf 'rotated-token\n' > "$T/token2"
if init --control-plane https://127.0.0.1:10/ --control-plane-token "$T/token2" 2>"$T/conflict.err"
then echo "CONFLICT ok"; else echo "CONFLICT refused"; fi
cat "$T/conflict.err"
grep -q cp-secret-token /etc/cep/credentials/cp-token && echo "TOKEN kept"
cp /etc/cep/cep.yaml "$T/cep.yaml.before"
init --control-plane https://127.0.0.1:9/ --control-plane-token "$T/token2"
grep -q rotated-token /etc/cep/credentials/cp-token && echo "TOKEN rotated"
cmp -s /etc/cep/cep.yaml "$T/cep.yaml.before" && echo "CONFIG unchanged"
for f in /var/lib/cep /var/lib/cep-signer /var/lib/cep-signer/ca.key /var/lib/cep-signer/ca.crt \
         /etc/cep/ca.crt /etc/cep/relay \
         /etc/cep/relay/relay.key /etc/cep/relay/relay.crt /etc/cep/relay/ca.crt \
         /etc/cep/credentials /etc/cep/credentials/cp-token; do
    echo "STAT $(stat -c '%U %G %a' "$f") $f"
done
cmp -s /etc/cep/ca.crt /var/lib/cep-signer/ca.crt && echo "CACRT same"
for u in cep-relay cep-delegate; do
    if setpriv --reuid $u --regid cep --init-groups cat /var/lib/cep-signer/ca.key >/dev/null 2>&1
    then echo "CAKEY $u readable"; else echo "CAKEY $u denied"; fi
done
if setpriv --reuid cep-signer --regid cep-signer --init-groups cat /var/lib/cep-signer/ca.key >/dev/null 2>&1
then echo "CAKEY cep-signer readable"; fi
if setpriv --reuid cep-relay --regid cep --init-groups cat /etc/cep/relay/relay.key >/dev/null 2>&1
then echo "RELAYKEY readable"; else echo "RELAYKEY denied"; fi
# what systemd does for LoadCredential=cep:/etc/cep/relay and
# LoadCredential=cep-shared:/etc/cep/credentials (lib/base/cred.h)
mkdir -p /run/credentials/cep-relay.service
for f in /etc/cep/relay/*; do
    install -o cep-relay -m 0400 "$f" "/run/credentials/cep-relay.service/cep_${f##*/}"
done
for f in /etc/cep/credentials/*; do
    install -o cep-relay -m 0400 "$f" "/run/credentials/cep-relay.service/cep-shared_${f##*/}"
done
chown cep-relay /run/credentials/cep-relay.service
chmod 0500 /run/credentials/cep-relay.service
CREDENTIALS_DIRECTORY=/run/credentials/cep-relay.service \
setpriv --reuid cep-relay --regid cep --init-groups "$BIN/cep-relay" >"$T/relay.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && [ ! -S /run/cep/relay.sock ]; do sleep 0.1; i=$((i+1)); done
if kill -0 $pid 2>/dev/null && [ -S /run/cep/relay.sock ]; then echo "RELAY up"; else echo "RELAY down"; fi
kill $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
"""


class FhsInstall(unittest.TestCase):
    def setUp(self):
        self.t = tempfile.mkdtemp(prefix="cep-fhs-")
        os.makedirs(os.path.join(self.t, "up"))
        os.makedirs(os.path.join(self.t, "work"))

    def tearDown(self):
        shutil.rmtree(self.t, ignore_errors=True)

    def test_init_owners_and_relay_as_its_user(self):
        env = dict(os.environ, T=self.t, BIN=BIN, PORT=str(free_port()))
        env.pop("CEP_HOME", None)
        r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            "sh", "-c", SCRIPT], env=env, capture_output=True,
                           text=True, timeout=120)
        log = ""
        try:
            with open(os.path.join(self.t, "relay.log")) as fh:
                log = fh.read()
        except OSError:
            pass
        out = r.stdout + r.stderr + "\nrelay log:\n" + log
        self.assertEqual(r.returncode, 0, out)
        stats = {l.split()[-1]: l.split()[1:4] for l in r.stdout.splitlines()
                 if l.startswith("STAT ")}
        want = {
            "/var/lib/cep": ["cep-delegate", "cep", "700"],
            "/var/lib/cep-signer": ["cep-signer", "cep-signer", "700"],
            "/var/lib/cep-signer/ca.key": ["cep-signer", "cep-signer", "600"],
            "/var/lib/cep-signer/ca.crt": ["cep-signer", "cep-signer", "644"],
            "/etc/cep/ca.crt": ["root", "root", "644"],
            "/etc/cep/relay": ["root", "cep", "750"],
            "/etc/cep/relay/relay.key": ["root", "root", "600"],
            "/etc/cep/relay/relay.crt": ["root", "cep", "644"],
            "/etc/cep/relay/ca.crt": ["root", "cep", "644"],
            "/etc/cep/credentials": ["root", "root", "700"],
            "/etc/cep/credentials/cp-token": ["root", "root", "600"],
        }
        for path, w in want.items():
            self.assertEqual(stats.get(path), w, f"{path}\n{out}")
        self.assertIn("NOUSERS failed", r.stdout, out)
        self.assertIn("users of the installed layout do not exist (missing: user cep-signer)",
                      r.stdout + r.stderr, out)
        self.assertNotIn("NOUSERS left a CA", r.stdout, out)
        # first boot: one line of what it did, then nothing
        self.assertRegex(r.stdout, r"first boot: created a new CA \(SHA-256 [0-9A-F:]{95}\) "
                         r"in /var/lib/cep-signer, a new relay certificate in /etc/cep/relay")
        self.assertIn("first boot: this machine has a CA already", r.stdout, out)
        self.assertIn("AGAIN refused", r.stdout, out)
        self.assertIn("Use --force", r.stdout + r.stderr, out)
        self.assertIn("CACRT same", r.stdout, out)
        self.assertIn("CAKEY cep-relay denied", r.stdout, out)
        self.assertIn("CAKEY cep-delegate denied", r.stdout, out)
        self.assertIn("CAKEY cep-signer readable", r.stdout, out)
        self.assertIn("RELAYKEY denied", r.stdout, out)
        self.assertIn("CONFIG names the credential", r.stdout, out)
        self.assertIn("CONFIG comments kept", r.stdout, out)
        self.assertRegex(r.stdout, r"cep.yaml: added controlPlane.url, controlPlane.tokenFile; "
                         r"replaced relay.listen, relay.advertise, relay.metrics, "
                         r"delegate.metrics \(/etc/cep/cep.yaml\)")
        self.assertIn("CONFLICT refused", r.stdout, out)
        self.assertRegex(r.stdout + r.stderr, r"/etc/cep/cep.yaml:\d+:3: controlPlane.url is", out)
        self.assertIn("TOKEN kept", r.stdout, out)
        self.assertIn("TOKEN rotated", r.stdout, out)
        self.assertIn("CONFIG unchanged", r.stdout, out)
        self.assertIn("cep.yaml: unchanged", r.stdout, out)
        self.assertIn("systemctl restart cep-relay cep-delegate", r.stdout, out)
        self.assertIn("RELAY up", r.stdout, out)


if __name__ == "__main__":
    unittest.main()
