"""pb.py - the little protobuf kube-apiserver speaks for `kubectl auth can-i`.

kubectl >= 1.32 sends SelfSubjectAccessReview (and SelfSubjectRulesReview)
as application/vnd.kubernetes.protobuf: the 4 bytes "k8s\\x00", then a
runtime.Unknown {typeMeta{apiVersion=1,kind=2}=1, raw=2, contentEncoding=3,
contentType=4} whose raw holds the message (authorization/v1
generated.proto). We decode those into the same dict the JSON would give, and
encode the answer the same way when the client does not accept JSON.
"""

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _varint(buf, i):
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """-> list of (field number, wire type, value) of one message."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field %d" % num)
            v, i = bytes(buf[i:i + n]), i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.append((num, wt, v))
    return out


def _strings(buf, names):
    d = {}
    for num, wt, v in fields(buf):
        if wt == 2 and num in names:
            d[names[num]] = v.decode("utf-8")
    return d


def unwrap(body):
    """-> (apiVersion, kind, raw message bytes) of a k8s protobuf body."""
    if not body.startswith(MAGIC):
        raise ValueError("protobuf body without the k8s magic prefix")
    api_version = kind = ""
    raw = b""
    for num, wt, v in fields(body[len(MAGIC):]):
        if num == 1 and wt == 2:
            tm = _strings(v, {1: "apiVersion", 2: "kind"})
            api_version, kind = tm.get("apiVersion", ""), tm.get("kind", "")
        elif num == 2 and wt == 2:
            raw = v
    return api_version, kind, raw


_RA = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
_NRA = {1: "path", 2: "verb"}


def decode_review(body):
    """SelfSubjectAccessReview / SelfSubjectRulesReview protobuf -> JSON dict."""
    api_version, kind, raw = unwrap(body)
    obj = {"kind": kind, "apiVersion": api_version, "metadata": {}, "spec": {}}
    for num, wt, v in fields(raw):
        if num == 2 and wt == 2:
            for snum, swt, sv in fields(v):
                if swt != 2:
                    continue
                if kind == "SelfSubjectRulesReview" and snum == 1:
                    obj["spec"]["namespace"] = sv.decode("utf-8")
                elif snum == 1:
                    obj["spec"]["resourceAttributes"] = _strings(sv, _RA)
                elif snum == 2:
                    obj["spec"]["nonResourceAttributes"] = _strings(sv, _NRA)
    return obj


def _key(num, wt):
    return _enc_varint((num << 3) | wt)


def _enc_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(num, payload):
    return _key(num, 2) + _enc_varint(len(payload)) + payload


def _str(num, s):
    return _ld(num, s.encode("utf-8"))


def encode_ssar(obj):
    """SelfSubjectAccessReview JSON dict (with status) -> k8s protobuf body."""
    spec = b""
    ra = obj.get("spec", {}).get("resourceAttributes")
    if ra is not None:
        spec += _ld(1, b"".join(_str(n, ra[k]) for n, k in sorted(_RA.items()) if ra.get(k)))
    nra = obj.get("spec", {}).get("nonResourceAttributes")
    if nra is not None:
        spec += _ld(2, b"".join(_str(n, nra[k]) for n, k in sorted(_NRA.items()) if nra.get(k)))
    st = obj.get("status", {})
    status = _key(1, 0) + _enc_varint(1 if st.get("allowed") else 0)
    if st.get("reason"):
        status += _str(2, st["reason"])
    if st.get("denied"):
        status += _key(4, 0) + _enc_varint(1)
    msg = _ld(1, b"") + _ld(2, spec) + _ld(3, status)
    tm = _str(1, obj.get("apiVersion", "authorization.k8s.io/v1")) + _str(2, obj.get("kind", "SelfSubjectAccessReview"))
    unknown = _ld(1, tm) + _ld(2, msg) + _str(3, "") + _str(4, "")
    return MAGIC + unknown


# ---- generic decoding of built-in kinds (kubectl create <kind> uses typed clients) ----
# Messages of k8s.io/apimachinery that the generated.proto files import but
# ../shared/k8s-fixtures/proto does not contain: (label, type, name, number).
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_MACHINERY = {
    _META + "ObjectMeta": [("o", "string", "name", 1), ("o", "string", "generateName", 2),
                           ("o", "string", "namespace", 3), ("o", "string", "selfLink", 4),
                           ("o", "string", "uid", 5), ("o", "string", "resourceVersion", 6),
                           ("o", "int64", "generation", 7), ("o", _META + "Time", "creationTimestamp", 8),
                           ("o", _META + "Time", "deletionTimestamp", 9),
                           ("o", "int64", "deletionGracePeriodSeconds", 10),
                           ("m", "string", "labels", 11), ("m", "string", "annotations", 12),
                           ("r", _META + "OwnerReference", "ownerReferences", 13),
                           ("r", "string", "finalizers", 14),
                           ("r", _META + "ManagedFieldsEntry", "managedFields", 17)],
    _META + "OwnerReference": [("o", "string", "kind", 1), ("o", "string", "name", 3), ("o", "string", "uid", 4),
                               ("o", "string", "apiVersion", 5), ("o", "bool", "controller", 6),
                               ("o", "bool", "blockOwnerDeletion", 7)],
    _META + "LabelSelector": [("m", "string", "matchLabels", 1),
                              ("r", _META + "LabelSelectorRequirement", "matchExpressions", 2)],
    _META + "LabelSelectorRequirement": [("o", "string", "key", 1), ("o", "string", "operator", 2),
                                         ("r", "string", "values", 3)],
    _META + "ManagedFieldsEntry": [("o", "string", "manager", 1), ("o", "string", "operation", 2),
                                   ("o", "string", "apiVersion", 3), ("o", _META + "Time", "time", 4),
                                   ("o", "string", "fieldsType", 6), ("o", _META + "FieldsV1", "fieldsV1", 7),
                                   ("o", "string", "subresource", 8)],
    _META + "ListMeta": [("o", "string", "selfLink", 1), ("o", "string", "resourceVersion", 2),
                         ("o", "string", "continue", 3), ("o", "int64", "remainingItemCount", 4)],
}
_SPECIAL = {_META + "Time", _META + "MicroTime", _META + "FieldsV1", _META + "Duration",
            "k8s.io.apimachinery.pkg.util.intstr.IntOrString", "k8s.io.apimachinery.pkg.api.resource.Quantity",
            "k8s.io.apimachinery.pkg.runtime.RawExtension"}
_PACKAGES = {"": "k8s.io.api.core.v1", "apps": "k8s.io.api.apps.v1", "rbac.authorization.k8s.io": "k8s.io.api.rbac.v1",
             "coordination.k8s.io": "k8s.io.api.coordination.v1", "policy": "k8s.io.api.policy.v1",
             "authorization.k8s.io": "k8s.io.api.authorization.v1", "autoscaling": "k8s.io.api.autoscaling.v1",
             "events.k8s.io": "k8s.io.api.events.v1"}


class Protos:
    """Message definitions parsed from the generated.proto files in DIR."""

    def __init__(self, directory, schemas=None):
        import os
        import re
        self.msgs = dict(_MACHINERY)
        self.inline = set()  # (message, field number) of Go embedded structs, inlined in JSON
        field = re.compile(r"^\s*(optional|repeated)\s+([.\w]+)\s+(\w+)\s*=\s*(\d+)")
        mapf = re.compile(r"^\s*map<\s*\w+\s*,\s*([.\w]+)\s*>\s+(\w+)\s*=\s*(\d+)")
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".proto"):
                continue
            pkg, cur = "", None
            with open(os.path.join(directory, name)) as f:
                for line in f:
                    line = line.split("//")[0]
                    m = re.match(r"^\s*package\s+([.\w]+);", line)
                    if m:
                        pkg = m.group(1)
                        continue
                    m = re.match(r"^message\s+(\w+)\s*{", line)
                    if m:
                        cur = self.msgs.setdefault(pkg + "." + m.group(1), [])
                        continue
                    if line.startswith("}"):
                        cur = None
                        continue
                    if cur is None:
                        continue
                    m = field.match(line)
                    if m:
                        cur.append(("r" if m.group(1) == "repeated" else "o", self._qual(m.group(2), pkg),
                                    m.group(3), int(m.group(4))))
                        continue
                    m = mapf.match(line)
                    if m:
                        cur.append(("m", self._qual(m.group(1), pkg), m.group(2), int(m.group(3))))
        self.by_num = {k: {f[3]: f for f in v} for k, v in self.msgs.items()}
        if schemas is not None:
            self._find_inline(schemas)

    def _find_inline(self, schemas):
        """A message field the OpenAPI parent lacks, whose own fields the parent
        has, is an embedded struct (VolumeSource, ProbeHandler, LocalObjectReference...)."""
        for mname, flds in self.msgs.items():
            props = schemas.resolve(schemas.schemas.get("io.k8s." + mname[len("k8s.io."):], {})).get("properties")
            if not props:
                continue
            for label, ftype, name, num in flds:
                inner = self.msgs.get(ftype)
                if label == "o" and inner and name not in props and any(f[2] in props for f in inner):
                    self.inline.add((mname, num))

    @staticmethod
    def _qual(t, pkg):
        if t.startswith("."):
            return t[1:]
        if t in ("string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"):
            return t
        return t if "." in t else pkg + "." + t

    def decode_object(self, body):
        """k8s protobuf body of a built-in kind -> the JSON dict the real
        server would decode it to. ValueError for anything it cannot read."""
        api_version, kind, raw = unwrap(body)
        group = api_version.rpartition("/")[0]
        pkg = _PACKAGES.get(group)
        mtype = "%s.%s" % (pkg, kind) if pkg else None
        if mtype not in self.by_num:
            raise ValueError("no protobuf message for %s %s" % (api_version, kind))
        obj = {"kind": kind, "apiVersion": api_version}
        obj.update(self._message(mtype, raw))
        return obj

    def _message(self, mtype, buf):
        import base64
        import datetime
        import json as _json
        if mtype.endswith(".Time") or mtype.endswith(".MicroTime"):
            d = {}
            for n, _, v in fields(buf):
                d[n] = v
            secs = _signed(d.get(1, 0))
            if not secs and not d.get(2):
                return None
            t = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
            if mtype.endswith(".MicroTime"):
                return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (d.get(2, 0) // 1000)
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        if mtype.endswith("IntOrString"):
            d = {n: v for n, _, v in fields(buf)}
            return _signed(d.get(2, 0)) if d.get(1, 0) == 0 else d.get(3, b"").decode()
        if mtype.endswith("Quantity"):
            return {n: v for n, _, v in fields(buf)}.get(1, b"").decode()
        if mtype.endswith("FieldsV1") or mtype.endswith("RawExtension"):
            raw = {n: v for n, _, v in fields(buf)}.get(1, b"")
            return _json.loads(raw) if raw else {}
        if mtype.endswith(".Duration"):
            return "%dns" % _signed({n: v for n, _, v in fields(buf)}.get(1, 0))
        spec = self.by_num.get(mtype)
        if spec is None:
            raise ValueError("unknown protobuf message %s" % mtype)
        out = {}
        for num, wt, v in fields(buf):
            f = spec.get(num)
            if f is None:
                continue  # a newer field: ignored, as an older server would
            label, ftype, name, _ = f
            if label == "m":
                entry = {n: val for n, _, val in fields(v)}
                key = entry.get(1, b"").decode()
                out.setdefault(name, {})[key] = self._value(ftype, entry.get(2, b"" if ftype in (
                    "string", "bytes") or "." in ftype else 0), 2)
            elif label == "r":
                if wt == 2 and ftype in ("int32", "int64", "bool", "uint32", "uint64"):
                    vals, i = [], 0
                    while i < len(v):
                        x, i = _varint(v, i)
                        vals.append(self._value(ftype, x, 0))
                    out.setdefault(name, []).extend(vals)
                else:
                    out.setdefault(name, []).append(self._value(ftype, v, wt))
            elif (mtype, num) in self.inline:
                out.update(self._value(ftype, v, wt))
            else:
                out[name] = self._value(ftype, v, wt)
        return {k: v for k, v in out.items() if v not in ("", None, {}, []) or k == "fieldsV1"}

    def _value(self, ftype, v, wt):
        import base64
        import struct
        if ftype == "string":
            return v.decode("utf-8")
        if ftype == "bytes":
            return base64.b64encode(v).decode()
        if ftype == "bool":
            return bool(v)
        if ftype in ("int32", "int64"):
            return _signed(v)
        if ftype in ("uint32", "uint64"):
            return v
        if ftype == "double":
            return struct.unpack("<d", v)[0]
        if ftype == "float":
            return struct.unpack("<f", v)[0]
        return self._message(ftype, v)


def _signed(n):
    return n - (1 << 64) if n >= 1 << 63 else n
