#!/usr/bin/env python3
"""objcheck.py cycles|prefixes BUILD_DIR: checks on the object files of a
build (issue 10, docs/internals.md "Checks on the build").

The objects are those of the product: BUILD/lib/<module>/ and the program
folders (relay, delegate, runner, appliance, launcher, signer); a file's
module is lib/<module> or its program folder. nm says what each file
defines and what it uses; a file A depends on a file B when A uses a
global symbol B defines.

cycles:   the strongly connected components of that file graph. A
          component with files of two modules is a cycle between modules
          (a call back up the layers): it fails, with the edges and the
          symbols that close it. A component inside one program folder is
          allowed, and printed as information.
prefixes: every global symbol a file of lib/<module> defines starts
          with cep_<p>_, p the module's name or the stem of one of that
          module's public headers (lib/<module>/*.h, not *_int.h): from a
          name, grep finds the header that declares it. Every global
          symbol of a program starts with that program's own prefix
          (relay_, delegate_, runner_, cepctl_, launcher_, signer_), never
          cep_: grep tells a library name from a program's by its first
          word.
          Allowed besides: a program's main and the names of
          prefix_allow.txt (beside this script; each of its lines must
          still match, so that list only shrinks). The protobuf-generated
          cep__v1__* are built outside these folders.
"""
import fnmatch
import glob
import os
import re
import subprocess
import sys

PROGRAMS = ("relay", "delegate", "runner", "appliance", "launcher", "signer")
# a program's own prefix (appliance/ is cepctl); libraries' is cep_
OWN_PREFIX = {"relay": "relay_", "delegate": "delegate_", "runner": "runner_",
              "appliance": "cepctl_", "launcher": "launcher_", "signer": "signer_"}
# what the compiler itself defines under sanitizers or coverage
COMPILER = ("__odr_asan", "__asan", "__ubsan", "__sancov", "__gcov", "__llvm",
            "__profc", "__profd")
HERE = os.path.dirname(os.path.abspath(__file__))
ALLOW = os.path.join(HERE, "prefix_allow.txt")
SOURCE = os.path.normpath(os.path.join(HERE, "..", ".."))


def objects(build):
    """{source path: (module, object path)} for the product's objects."""
    found = {}
    lib = os.path.join(build, "lib")
    dirs = [("lib/" + m, os.path.join(lib, m))
            for m in (sorted(os.listdir(lib)) if os.path.isdir(lib) else [])]
    dirs += [(p, os.path.join(build, p)) for p in PROGRAMS]
    for module, folder in dirs:
        # only the folder's own targets: BUILD/<folder>/CMakeFiles/<t>.dir
        pattern = os.path.join(folder, "CMakeFiles", "*.dir", "**", "*.c.o")
        for obj in sorted(glob.glob(pattern, recursive=True)):
            found.setdefault(module + "/" + os.path.basename(obj)[:-2], (module, obj))
    return found


def symbols(path):
    """(defined globals, undefined) of one object file."""
    out = subprocess.run(["nm", "-P", "-g", path], check=True,
                         capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind in ("U", "w", "v"):
            used.add(name)
        else:
            defined.add(name)
    return defined, used


def graph(objs):
    """(edges {file: {file: [symbols]}}, defs {file: defined})."""
    defs, uses, owner = {}, {}, {}
    for src, (_, obj) in objs.items():
        defs[src], uses[src] = symbols(obj)
        for s in defs[src]:
            owner.setdefault(s, []).append(src)
    edges = {src: {} for src in objs}
    for src, used in uses.items():
        for s in sorted(used):
            targets = owner.get(s, [])
            # the same name in two programs: the one of the user's module
            same = [t for t in targets if objs[t][0] == objs[src][0]]
            for t in same or targets:
                if t != src:
                    edges[src].setdefault(t, []).append(s)
    return edges, defs


def components(edges):
    """Tarjan's strongly connected components, iteratively."""
    index, low, onstack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        n = stack.pop()
                        onstack.discard(n)
                        comp.append(n)
                        if n == node:
                            break
                    comps.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter
                counter += 1
                stack.append(nxt)
                onstack.add(nxt)
                work.append((nxt, iter(sorted(edges[nxt]))))
            elif nxt in onstack:
                low[node] = min(low[node], index[nxt])
    return comps


def report_cycles(edges, module, out=print):
    """Prints every cycle; 1 when one spans two modules."""
    fail = 0
    for comp in components(edges):
        if len(comp) < 2:
            continue
        mods = sorted({module[f] for f in comp})
        cross = len(mods) > 1
        out("%s: cycle of %d files in %s:" % (
            "FAIL" if cross else "info", len(comp), ", ".join(mods)))
        for a in comp:
            for b in sorted(edges[a]):
                if b in comp:
                    syms = edges[a][b]
                    more = " ..." if len(syms) > 3 else ""
                    mark = "  <- across modules" if module[a] != module[b] else ""
                    out("  %s -> %s (%s%s)%s" % (a, b, " ".join(syms[:3]), more, mark))
        fail |= cross
    return fail


def cycles(objs):
    # the check itself must see a cycle across modules, and none inside one
    probe = {"a.c": {"b.c": ["f"]}, "b.c": {"c.c": ["g"]}, "c.c": {"a.c": ["h"]}}
    quiet = lambda line: None
    if (report_cycles(probe, {"a.c": "x", "b.c": "x", "c.c": "y"}, quiet) != 1 or
            report_cycles(probe, {"a.c": "x", "b.c": "x", "c.c": "x"}, quiet) != 0):
        print("FAIL: the cycle finder misses a known cycle")
        return 1
    edges, _ = graph(objs)
    if not any(edges.values()):
        print("FAIL: no dependency between %d files: is nm working?" % len(objs))
        return 1
    fail = report_cycles(edges, {f: objs[f][0] for f in objs})
    if not fail:
        print("ok: no cycle between files of different modules (%d files)" % len(objs))
    return fail


def allowlist():
    """[(file pattern, compiled symbol regex, line)] of prefix_allow.txt."""
    out = []
    with open(ALLOW) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                glob, rx = line.split()
                out.append((glob, re.compile(rx + r"\Z"), line))
    return out


def lib_prefixes(module):
    """("cep_<module>_", "cep_<stem>_" per public header) of lib/<module>."""
    folder = os.path.join(SOURCE, module)
    stems = sorted(os.path.basename(h)[:-2]
                   for h in glob.glob(os.path.join(folder, "*.h"))
                   if not h.endswith("_int.h"))
    if not stems:
        return None
    name = os.path.basename(module)
    return tuple("cep_%s_" % p for p in [name] + [s for s in stems if s != name])


def own_prefixes(objs):
    """{module: its allowed prefixes}; None when a library has no header
    (the source is not where this script thinks)."""
    out = {}
    for module in sorted({m for m, _ in objs.values()}):
        if module in OWN_PREFIX:
            out[module] = (OWN_PREFIX[module],)
            continue
        out[module] = lib_prefixes(module)
        if out[module] is None:
            print("FAIL: no public header in %s: is %s the source?" % (
                os.path.join(SOURCE, module), SOURCE))
            return None
    return out


def prefixes(objs):
    # the rule itself: a module's or a header's name, and a whole word of it
    probe = ("cep_base_", "cep_clock_")
    if (not "cep_clock_now_ms".startswith(probe) or
            "cep_clockwork".startswith(probe) or "cep_now_ms".startswith(probe)):
        print("FAIL: the prefix rule misreads a known name")
        return 1
    own = own_prefixes(objs)
    if own is None:
        return 1
    _, defs = graph(objs)
    allow = allowlist()
    used, bad = set(), []
    for src in sorted(defs):
        module = objs[src][0]
        ok = own[module]
        for s in sorted(defs[src]):
            is_main = s == "main" and not module.startswith("lib/")
            if s.startswith(ok + COMPILER) or is_main:
                continue
            hit = [a[2] for a in allow if fnmatch.fnmatch(src, a[0]) and a[1].match(s)]
            if hit:
                used.update(hit)
                print("allowed (prefix_allow.txt): %s: %s" % (src, s))
                continue
            bad.append("%s: %s" % (src, s))
    for b in bad:
        print("FAIL: global without its prefix (lib/<module>: cep_<module or "
              "public header>_, a program: its own): " + b)
    for a in allow:
        if a[2] not in used:
            print("FAIL: prefix_allow.txt line matches nothing, remove it: " + a[2])
            bad.append(a[2])
    if not bad:
        print("ok: every global symbol of %d files is prefixed" % len(objs))
    return 1 if bad else 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("cycles", "prefixes"):
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    objs = objects(argv[2])
    if len(objs) < 20:
        print("FAIL: only %d product object files under %s" % (len(objs), argv[2]))
        return 1
    return cycles(objs) if argv[1] == "cycles" else prefixes(objs)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
