#!/usr/bin/env python3
"""Draws the workspace's structure and finds import circles.

    scripts/module_graph.py crates          # Mermaid drawing of the crate graph (from cargo metadata)
    scripts/module_graph.py modules CRATE   # Mermaid drawing of CRATE's module graph + its circles
    scripts/module_graph.py check CRATE...  # exit 1 if an import circle spans two module folders

The module graph is read from the source: an edge A -> B for every `crate::B...` or `super::...` path
in module A (in `use` lines and inline paths), B cut to the longest module that exists. A "module
folder" is a module's first path segment (`pipeline::retrieve` lives in `pipeline`); a circle inside
one folder is that folder's own business, a circle across folders is a seam in the wrong place.
No dependencies beyond the Python standard library.
"""
import json
import os
import re
import subprocess
import sys

# Run from the workspace root (or name it with CAIRN_ROOT).
ROOT = os.environ.get("CAIRN_ROOT", os.getcwd())


def crate_graph():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"], cwd=ROOT))
    graph = {}
    for p in meta["packages"]:
        deps = sorted({d["name"] for d in p["dependencies"]
                       if d["name"].startswith("cairn-") and d.get("kind") is None})
        graph[p["name"]] = deps
    return graph


def modules_of(crate):
    src = os.path.join(ROOT, "crates", crate, "src")
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main", "mod"):
                rel = rel[:-1]
            mods["::".join(rel)] = os.path.join(dirpath, f)
    return mods


PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\};", re.S)


def strip_tests(text):
    # Code after `#[cfg(test)]` is the module's tests, and comments (doc links included) are prose:
    # neither is the module's design.
    i = text.find("#[cfg(test)]")
    text = text if i < 0 else text[:i]
    return re.sub(r"//[^\n]*", "", text)


def resolve(mods, here, root, segs):
    if root == "super":
        base = here.split("::")[:-1] if here else []
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
        parts = base + segs
    else:
        parts = segs
    for n in range(len(parts), -1, -1):
        cand = "::".join(parts[:n])
        if cand in mods:
            return cand
    return None


def module_graph(crate):
    mods = modules_of(crate)
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        text = strip_tests(open(path, encoding="utf-8").read())
        refs = []
        for root, prefix, group in USE_GROUP.findall(text):
            for item in re.split(r",", group):
                item = item.strip().split(" as ")[0].strip()
                if item and item != "self":
                    refs.append((root, [s for s in prefix.split("::") if s] + item.split("::")[:1]))
                elif item == "self":
                    refs.append((root, [s for s in prefix.split("::") if s]))
        for root, rest in PATH.findall(text):
            refs.append((root, [s for s in rest.split("::") if s]))
        for root, segs in refs:
            target = resolve(mods, m, root, segs)
            if target is not None and target != m and target != "":
                edges[m].add(target)
    return edges


def circles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def folder(module):
    return module.split("::")[0]


def mermaid(edges, label=lambda n: n):
    ids = {n: re.sub(r"\W", "_", n) or "lib" for n in sorted(edges)}
    lines = ["```mermaid", "graph TD"]
    for n in sorted(edges):
        if label(n) != ids[n]:
            lines.append('  %s["%s"]' % (ids[n], label(n)))
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if b in ids:
                lines.append("  %s --> %s" % (ids[a], ids[b]))
    lines.append("```")
    return "\n".join(lines)


def main(argv):
    if len(argv) >= 1 and argv[0] == "crates":
        g = crate_graph()
        print(mermaid({k: set(v) for k, v in g.items()}))
        return 0
    if len(argv) == 2 and argv[0] == "modules":
        edges = module_graph(argv[1])
        print(mermaid(edges, label=lambda n: n or "lib"))
        for c in circles(edges):
            print("circle (%s): %s" % ("across folders" if len({folder(m) for m in c}) > 1
                                       else "inside " + folder(c[0]), " <-> ".join(c)))
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        bad = 0
        for crate in argv[1:]:
            for c in circles(module_graph(crate)):
                folders = sorted({folder(m) for m in c})
                if len(folders) > 1:
                    bad += 1
                    print("%s: an import circle spans %s: %s" % (crate, ", ".join(folders), " <-> ".join(c)))
        if not bad:
            print("no import circle spans more than one module folder in: " + ", ".join(argv[1:]))
        return 1 if bad else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
