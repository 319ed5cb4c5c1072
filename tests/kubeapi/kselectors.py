"""kselectors.py - label and field selectors as kube-apiserver parses them.

Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`,
`!a`, comma separated (AND). Field selectors: `f=v`, `f==v`, `f!=v`; the set of
supported fields depends on the resource (metadata.name and metadata.namespace
everywhere; pods add spec.nodeName, status.phase, ...). A parse error or an
unsupported field raises ValueError with the real server's wording; the server
turns it into a 400 BadRequest Status.
"""
import re

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Fields each resource supports in fieldSelector, besides metadata.name/namespace.
FIELDS = {
    ("", "pods"): {
        "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
        "spec.restartPolicy": lambda o: o.get("spec", {}).get("restartPolicy", ""),
        "spec.schedulerName": lambda o: o.get("spec", {}).get("schedulerName", ""),
        "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName", ""),
        "status.phase": lambda o: o.get("status", {}).get("phase", ""),
        "status.podIP": lambda o: o.get("status", {}).get("podIP", ""),
        "status.nominatedNodeName": lambda o: o.get("status", {}).get("nominatedNodeName", ""),
    },
    ("", "secrets"): {"type": lambda o: o.get("type", "")},
    ("", "nodes"): {"spec.unschedulable": lambda o: "true" if o.get("spec", {}).get("unschedulable") else "false"},
    ("", "namespaces"): {"status.phase": lambda o: o.get("status", {}).get("phase", "")},
    ("", "events"): {
        "involvedObject.kind": lambda o: o.get("involvedObject", {}).get("kind", ""),
        "involvedObject.name": lambda o: o.get("involvedObject", {}).get("name", ""),
        "involvedObject.namespace": lambda o: o.get("involvedObject", {}).get("namespace", ""),
        "involvedObject.uid": lambda o: o.get("involvedObject", {}).get("uid", ""),
        "reason": lambda o: o.get("reason", ""),
        "type": lambda o: o.get("type", ""),
    },
    ("apps", "replicasets"): {"status.replicas": lambda o: str(o.get("status", {}).get("replicas", 0))},
}


def _tokenize(s):
    """Split a label selector on top-level commas (not inside parentheses)."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    if depth != 0:
        raise ValueError("unable to parse requirement: found '(', expected: ')'")
    return [p.strip() for p in parts if p.strip()]


def _check_key(k):
    if not _KEY.match(k) or len(k.split("/")[-1]) > 63:
        raise ValueError("unable to parse requirement: <nil>: Invalid value: \"%s\": name part must "
                         "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                         "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                         "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')" % k)


def _check_value(v):
    if not _VALUE.match(v) or len(v) > 63:
        raise ValueError("unable to parse requirement: values[0][%s]: Invalid value: \"%s\": a valid label "
                         "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                         "and must start and end with an alphanumeric character" % (v, v))


def parse_labels(s):
    """Parse a label selector into a list of (key, op, values)."""
    reqs = []
    if s is None:
        return reqs
    for part in _tokenize(s):
        m = re.match(r"^([^\s!=(),]+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            key, op = m.group(1), m.group(2)
            vals = [v.strip() for v in m.group(3).split(",")]
            _check_key(key)
            for v in vals:
                _check_value(v)
            reqs.append((key, op, set(vals)))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key)
            reqs.append((key, "!exists", None))
            continue
        m = re.match(r"^([^\s!=]+)\s*(==|!=|=)\s*(.*)$", part)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3).strip()
            _check_key(key)
            _check_value(val)
            reqs.append((key, "!=" if op == "!=" else "=", {val}))
            continue
        if re.match(r"^[^\s!=(),]+$", part):
            _check_key(part)
            reqs.append((part, "exists", None))
            continue
        raise ValueError("unable to parse requirement: found '%s', expected: identifier" % part)
    return reqs


def match_labels(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        if op == "=" and (not has or labels[key] not in vals):
            return False
        if op == "in" and (not has or labels[key] not in vals):
            return False
        if op in ("!=", "notin") and has and labels[key] in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def parse_fields(s, gr):
    """Parse a field selector for resource gr into [(getter, op, value)]."""
    reqs = []
    if not s:
        return reqs
    extra = FIELDS.get(gr, {})
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+)(==|!=|=)(.*)$", part)
        if not m:
            raise ValueError("invalid selector: '%s'; can't understand '%s'" % (s, part))
        field, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field == "metadata.name":
            getter = lambda o: o.get("metadata", {}).get("name", "")
        elif field == "metadata.namespace":
            getter = lambda o: o.get("metadata", {}).get("namespace", "")
        elif field in extra:
            getter = extra[field]
        else:
            raise ValueError("field label not supported: %s" % field)
        reqs.append((getter, "!=" if op == "!=" else "=", val))
    return reqs


def match_fields(reqs, obj):
    for getter, op, val in reqs:
        got = getter(obj)
        if (op == "=") != (got == val):
            return False
    return True


def valid_label_key(k):
    return bool(_KEY.match(k)) and len(k.split("/")[-1]) <= 63 and len(k) <= 316


def valid_label_value(v):
    return isinstance(v, str) and len(v) <= 63 and bool(_VALUE.match(v))


def match_label_selector(selector, labels):
    """metav1.LabelSelector {matchLabels, matchExpressions} against labels.
    An empty selector matches everything; None matches nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True
