"""auth.py - bearer-token authentication and rule-based authorization.

Users come from the --users JSON file (see README.md): name, token, rules
{namespaces, groups, resources, verbs}; "*" matches anything, and
namespaces ["*"] also covers cluster-scoped resources and all-namespace
requests. Service-account users need no token in the file: the kubelet mints
one per pod (mint_token). /_test/expire-token and /_test/revoke change the
answers at run time. Messages are worded as kube-apiserver's RBAC words them.
"""
import json
import secrets
import threading

ADMIN_RULES = [{"namespaces": ["*"], "groups": ["*"], "resources": ["*"], "verbs": ["*"]}]
# What every authenticated user may do (system:basic-user, system:discovery).
_ALWAYS = {("authorization.k8s.io", "selfsubjectaccessreviews"),
           ("authorization.k8s.io", "selfsubjectrulesreviews")}


class Auth:
    def __init__(self, users_file=None):
        self.lock = threading.Lock()
        self.rules = {}      # user -> list of rules
        self.tokens = {}     # token -> user
        self.expired = set()  # tokens that now get 401
        self.revoked = []    # (user, ns, group, resource, verb)
        if users_file:
            with open(users_file) as f:
                users = json.load(f).get("users", [])
        else:
            users = [{"name": "admin", "token": "t-admin", "rules": ADMIN_RULES}]
        for u in users:
            self.rules[u["name"]] = u.get("rules", [])
            if u.get("token"):
                self.tokens[u["token"]] = u["name"]
        if "admin" not in self.rules:
            self.rules["admin"] = ADMIN_RULES
        if not any(v == "admin" for v in self.tokens.values()):
            self.tokens[secrets.token_hex(16)] = "admin"

    def users_with_tokens(self):
        """-> {user: token} for the users of the file (first token of each)."""
        out = {}
        with self.lock:
            for tok, user in self.tokens.items():
                out.setdefault(user, tok)
        return out

    def token(self, user):
        return self.users_with_tokens().get(user)

    def mint_token(self, username):
        tok = "sa-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[tok] = username
            self.rules.setdefault(username, [])
        return tok

    def authenticate(self, header):
        """-> user name, "system:anonymous" without a token, None for a bad one (401)."""
        if not header:
            return "system:anonymous"
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        tok = parts[1].strip()
        with self.lock:
            if tok in self.expired:
                return None
            return self.tokens.get(tok)

    def expire(self, user):
        with self.lock:
            for tok, u in self.tokens.items():
                if u == user:
                    self.expired.add(tok)

    def revoke(self, user, ns, group, resource, verb):
        with self.lock:
            self.revoked.append((user, ns or "*", group if group is not None else "*", resource, verb))

    def authorize(self, user, verb, group, resource, sub, ns):
        """-> (allowed, reason). ns "" or None = cluster scope / all namespaces."""
        res = resource + ("/" + sub if sub else "")
        if (group, resource) in _ALWAYS and verb == "create":
            return True, "allowed for every authenticated user"
        with self.lock:
            rules = list(self.rules.get(user, []))
            for (u, rns, rg, rr, rv) in self.revoked:
                if u == user and rns in ("*", ns) and rg in ("*", group) and rr in ("*", res) and rv in ("*", verb):
                    return False, ""
        for r in rules:
            nss = r.get("namespaces", [])
            if "*" not in nss and (not ns or ns not in nss):
                continue
            if not _has(r.get("groups", []), group):
                continue
            if not _has(r.get("resources", []), res) and not ("*/" + sub in r.get("resources", []) if sub else False):
                continue
            if not _has(r.get("verbs", []), verb):
                continue
            return True, "allowed by test rules"
        return False, ""

    def rules_for(self, user, ns):
        """SelfSubjectRulesReview: resourceRules that apply in ns."""
        with self.lock:
            rules = list(self.rules.get(user, []))
        out = [{"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}]
        for r in rules:
            nss = r.get("namespaces", [])
            if "*" in nss or ns in nss:
                out.append({"verbs": list(r.get("verbs", [])), "apiGroups": list(r.get("groups", [])),
                            "resources": list(r.get("resources", []))})
        return out


def _has(lst, v):
    return "*" in lst or v in lst


def forbidden_message(user, verb, group, resource, sub, ns, name):
    res = resource + ("/" + sub if sub else "")
    qual = resource + ("." + group if group else "")
    who = '%s "%s"' % (qual, name) if name else qual
    scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
    return '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        who, user, verb, res, group, scope)
