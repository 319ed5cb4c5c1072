"""openapi_check.py - objects checked against the real OpenAPI v3 documents.

The documents in ../shared/k8s-openapi are what kube-apiserver serves under
/openapi/v3. Every object the server stores or emits is checked here: JSON
types (a string where an int64 belongs is a decode error, 400 on the real
server), required fields (422 Invalid with causes), enums where the schema has
them. Fields the schema does not know are allowed (newer clients send newer
fields) unless the request asked for fieldValidation=Strict.

Strategic merge patch also lives here because it needs the schema's
x-kubernetes-patch-merge-key / x-kubernetes-patch-strategy.
"""
import copy
import json
import os

_GO_TYPES = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool",
             "object": "map[string]interface {}", "array": "[]interface {}"}


class Schemas:
    """All component schemas of the documents in DIR, indexed by GVK."""

    def __init__(self, directory):
        self.schemas = {}
        self.by_gvk = {}
        self.docs = {}
        for name in sorted(os.listdir(directory)):
            if not name.endswith("_openapi.json"):
                continue
            with open(os.path.join(directory, name), "rb") as f:
                self.add(name[:-len("_openapi.json")].replace("__", "/"), f.read())

    def add(self, key, raw):
        """One document (as served at /openapi/v3/<key>): its schemas join the index."""
        self.docs[key] = raw
        doc = json.loads(raw)
        for sname, s in doc.get("components", {}).get("schemas", {}).items():
            self.schemas.setdefault(sname, s)
            for gvk in s.get("x-kubernetes-group-version-kind", []):
                self.by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = sname

    def schema_for(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        name = self.by_gvk.get((group, version, kind))
        return self.schemas.get(name) if name else None

    def resolve(self, s):
        """Follow $ref / single allOf to the real schema."""
        while s:
            if "$ref" in s:
                s = self.schemas.get(s["$ref"].rsplit("/", 1)[-1], {})
            elif "allOf" in s and len(s["allOf"]) == 1:
                s = s["allOf"][0]
            else:
                break
        return s or {}

    def prop(self, s, key):
        s = self.resolve(s)
        p = s.get("properties", {}).get(key)
        return p

    # ---- validation -------------------------------------------------------
    def validate(self, obj, strict=False):
        """-> (decode_errors, causes, unknown): decode_errors are 400s (type
        mismatch), causes are 422 {field, reason, message}, unknown are paths
        the schema does not know (reported only, or refused when strict)."""
        res = ([], [], [])
        s = self.schema_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        if s is None:
            return res
        self._walk(obj, s, "", res, obj.get("kind", ""))
        return res

    def _walk(self, v, s, path, res, struct):
        s = self.resolve(s)
        if v is None:
            return
        if "oneOf" in s:
            types = [o.get("type") for o in s["oneOf"]]
            if not any(_is_type(v, t) for t in types):
                res[0].append("json: cannot unmarshal %s into Go struct field %s.%s of type %s"
                              % (_json_type(v), struct, path.lstrip("."), "intstr.IntOrString"
                                 if s.get("format") == "int-or-string" else "resource.Quantity"))
            return
        t = s.get("type")
        if t and not _is_type(v, t):
            res[0].append("json: cannot unmarshal %s into Go struct field %s.%s of type %s"
                          % (_json_type(v), struct, path.lstrip("."), _GO_TYPES.get(t, t)))
            return
        if "enum" in s and v not in s["enum"]:
            res[1].append({"reason": "FieldValueNotSupported", "field": path.lstrip("."),
                           "message": "Unsupported value: %s: supported values: %s"
                           % (json.dumps(v), ", ".join(json.dumps(e) for e in s["enum"]))})
        if isinstance(v, dict):
            props = s.get("properties")
            for req in s.get("required", []):
                if v.get(req) is None:
                    res[1].append({"reason": "FieldValueRequired", "field": (path + "." + req).lstrip("."),
                                   "message": "Required value"})
            if props is not None:
                for k, sub in v.items():
                    if k in props:
                        self._walk(sub, props[k], path + "." + k, res, struct)
                    elif not k.startswith("$"):
                        res[2].append((path + "." + k).lstrip("."))
            elif isinstance(s.get("additionalProperties"), dict):
                for k, sub in v.items():
                    self._walk(sub, s["additionalProperties"], path + "." + k, res, struct)
        elif isinstance(v, list) and "items" in s:
            for i, sub in enumerate(v):
                self._walk(sub, s["items"], "%s[%d]" % (path, i), res, struct)

    # ---- strategic merge patch -------------------------------------------
    def strategic_merge(self, orig, patch, api_version, kind):
        s = self.schema_for(api_version, kind) or {}
        return self._smp_map(copy.deepcopy(orig), patch, s)

    def _smp_map(self, orig, patch, s):
        if not isinstance(orig, dict):
            orig = {}
        if patch.get("$patch") == "replace":
            out = {k: v for k, v in patch.items() if k != "$patch"}
            return out
        if patch.get("$patch") == "delete":
            return None
        retain = patch.get("$retainKeys")
        for k, pv in patch.items():
            if k.startswith("$setElementOrder/") or k in ("$patch", "$retainKeys"):
                continue
            if k.startswith("$deleteFromPrimitiveList/"):
                name = k.split("/", 1)[1]
                if isinstance(orig.get(name), list):
                    orig[name] = [x for x in orig[name] if x not in pv]
                continue
            ps = self.prop(s, k) or {}
            if pv is None:
                orig.pop(k, None)
            elif isinstance(pv, dict):
                sub = self.resolve(ps)
                if sub.get("properties") is None and isinstance(sub.get("additionalProperties"), dict):
                    sub = {"additionalProperties": sub["additionalProperties"]}
                r = self._smp_map(orig.get(k), pv, sub)
                if r is None:
                    orig.pop(k, None)
                else:
                    orig[k] = r
            elif isinstance(pv, list):
                orig[k] = self._smp_list(orig.get(k), pv, ps)
            else:
                orig[k] = pv
        if isinstance(retain, list):
            for k in list(orig):
                if k not in retain:
                    del orig[k]
        return orig

    def _smp_list(self, orig, patch, ps):
        strategy = (ps or {}).get("x-kubernetes-patch-strategy", "")
        key = (ps or {}).get("x-kubernetes-patch-merge-key")
        if "merge" not in strategy.split(",") or not isinstance(orig, list):
            return [x for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
        if key is None:  # list of primitives: union
            out = list(orig)
            for x in patch:
                if x not in out:
                    out.append(x)
            return out
        items = self.resolve((ps or {}).get("items", {}))
        out = list(orig)
        for x in patch:
            if not isinstance(x, dict):
                continue
            idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == x.get(key)), None)
            if x.get("$patch") == "delete":
                if idx is not None:
                    del out[idx]
            elif idx is None:
                out.append({k: v for k, v in x.items() if k != "$patch"})
            else:
                out[idx] = self._smp_map(out[idx], x, items)
        return out


def _is_type(v, t):
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    return True


def _json_type(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


def merge_patch(orig, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc, ops):
    """RFC 6902 JSON patch; ValueError on a bad op or a failed test."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError("json patch must be an array of operations")

    def split(p):
        if p == "":
            return []
        if not p.startswith("/"):
            raise ValueError("invalid JSON pointer %r" % p)
        return [t.replace("~1", "/").replace("~0", "~") for t in p[1:].split("/")]

    def parent(d, toks):
        for t in toks[:-1]:
            d = d[int(t)] if isinstance(d, list) else d[t]
        return d

    def get(d, toks):
        for t in toks:
            d = d[int(t)] if isinstance(d, list) else d[t]
        return d

    for op in ops:
        try:
            kind, toks = op["op"], split(op["path"])
            if kind in ("add", "replace", "test") and "value" not in op:
                raise ValueError("missing value")
            if kind == "test":
                if get(doc, toks) != op["value"]:
                    raise ValueError("testing value %s failed" % op["path"])
                continue
            if kind in ("move", "copy"):
                val = copy.deepcopy(get(doc, split(op["from"])))
                if kind == "move":
                    ft = split(op["from"])
                    fp = parent(doc, ft)
                    del fp[int(ft[-1]) if isinstance(fp, list) else ft[-1]]
                kind, op = "add", {"value": val}
            if not toks:
                if kind in ("add", "replace"):
                    doc = copy.deepcopy(op["value"])
                continue
            p = parent(doc, toks)
            last = toks[-1]
            if isinstance(p, list):
                i = len(p) if last == "-" else int(last)
                if kind == "add":
                    p.insert(i, copy.deepcopy(op["value"]))
                elif kind == "replace":
                    p[i] = copy.deepcopy(op["value"])
                elif kind == "remove":
                    del p[i]
            else:
                if kind in ("replace", "remove") and last not in p:
                    raise ValueError("replace operation does not apply: doc is missing path: %s" % op["path"])
                if kind in ("add", "replace"):
                    p[last] = copy.deepcopy(op["value"])
                elif kind == "remove":
                    del p[last]
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError("the server rejected our request due to an error in our request: %s" % e)
    return doc
