#!/usr/bin/env python3
"""The crate's module graph from its `crate::` / `super::` paths: fails on an import cycle.

Test code (`#[cfg(test)] mod ... { }` blocks and tests.rs files) is left out. Two levels are checked:
  * top-level modules (src/<m>.rs or src/<m>/): an edge a -> b when a file under a names crate::b;
  * inside each top-level module, its children (src/<m>/<c>.rs or src/<m>/<c>/): an edge c -> d when a
    file under c names crate::<m>::d or super::d. The parent's own mod.rs is left out of this level:
    it declares and re-exports its children, so edges to and from it are not layering.
The upper layers (cli, server, http, state, config) may only be imported by the layers above them
(UPPER below). More rules can be added with --forbid a:b (a must not import b).

Usage: scripts/module_graph.py [--src src] [--dot FILE] [--forbid a:b ...]
Exit status 1 when a cycle (or a forbidden edge) is found, with the files that make each edge.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(rel):
    """src-relative path -> module path list (['http','embed']); None for the binary root."""
    parts = rel[:-3].split(os.sep)
    if parts == ["lib"]:
        return []
    if parts == ["main"]:
        return None
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def strip_tests(text):
    """Drop `#[cfg(test)] mod tests { ... }` (test code may build whole configs and states)."""
    m = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text)
    if not m:
        return text
    depth, i = 0, m.end() - 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[: m.start()] + strip_tests(text[j + 1 :])
    return text[: m.start()]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # drop // comments (also //! and ///) but keep "//" inside strings roughly: good enough here
        i = line.find("//")
        if i >= 0 and line[:i].count('"') % 2 == 0:
            line = line[:i]
        out.append(line)
    text = "\n".join(out)
    # string literals can hold paths in messages: drop them
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def use_trees(text):
    """Yield every path named in `use` statements (braces expanded) and inline `crate::`/`super::` paths."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield from expand(m.group(1).replace("\n", " ").replace(" ", ""))
    body = re.sub(r"\buse\s+[^;]+;", "", text)
    for m in re.finditer(r"\b((?:crate|super)(?:::(?:super|" + IDENT + r"))+)", body):
        yield m.group(1)


def expand(tree, prefix=""):
    """a::{b,c::{d,e}} -> a::b, a::c::d, a::c::e."""
    i = tree.find("{")
    if i < 0:
        yield prefix + tree
        return
    head, inner = tree[:i], tree[i + 1 : tree.rfind("}")]
    depth, start = 0, 0
    for j, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = inner[start:j]
            start = j + 1
            if part:
                yield from expand(part, prefix + head)


def resolve(mod, path):
    """Module-relative path (crate::/super::/self::) -> absolute list of segments, or None."""
    segs = path.split("::")
    if segs[0] == "crate":
        return segs[1:]
    if segs[0] in ("super", "self"):
        base = list(mod)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            segs = segs[1:]
        return base + segs
    return None


# The upper layers and who may import them: features, engine, heads, store and models take their
# own config sections and services as arguments, never the whole Config, the server state, HTTP
# types or the command line.
UPPER = {
    "cli": set(),
    "server": {"cli"},
    "http": {"server", "cli"},
    "state": {"http", "server", "cli"},
    "config": {"state", "http", "server", "cli"},
}


# Only these may see HTTP types (axum): below them errors and inputs are the services' own.
HTTP_LAYERS = {"http", "server", "cli"}


def find_cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
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
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    ap.add_argument("--dot", help="write the top-level graph as Graphviz dot")
    ap.add_argument("--forbid", action="append", default=[], help="a:b, module a must not import b")
    args = ap.parse_args()

    files = {}
    for root, _, names in os.walk(args.src):
        for n in names:
            if n.endswith(".rs") and n != "tests.rs":  # tests.rs: a `#[cfg(test)] mod tests;`
                full = os.path.join(root, n)
                mod = module_of(os.path.relpath(full, args.src))
                if mod is not None:
                    files[full] = mod
    children = defaultdict(set)  # top -> its direct children (files or folders)
    for mod in files.values():
        if len(mod) >= 2:
            children[mod[0]].add(mod[1])
    tops = {m[0] for m in files.values() if m}

    top_edges, top_why = defaultdict(set), defaultdict(set)
    sub_edges, sub_why = defaultdict(lambda: defaultdict(set)), defaultdict(set)
    http_users = set()
    for full, mod in files.items():
        if not mod:
            continue
        text = strip_tests(strip_comments(open(full, encoding="utf-8").read()))
        rel = os.path.relpath(full, args.src)
        if mod[0] not in HTTP_LAYERS and re.search(r"\baxum::", text):
            http_users.add(rel)
        for path in use_trees(text):
            target = resolve(mod, path)
            if not target or target[0] not in tops:
                continue
            if target[0] != mod[0]:
                top_edges[mod[0]].add(target[0])
                top_why[(mod[0], target[0])].add(rel)
            elif len(mod) >= 2 and len(target) >= 2 and target[1] in children[mod[0]]:
                if target[1] != mod[1]:
                    sub_edges[mod[0]][mod[1]].add(target[1])
                    sub_why[(mod[0], mod[1], target[1])].add(rel)

    bad = False
    for rel in sorted(http_users):
        bad = True
        print(f"layering: {rel} uses HTTP types (axum) below the http layer")
    for comp in find_cycles(tops, top_edges):
        bad = True
        print("cycle between top-level modules: " + ", ".join(comp))
        for a in comp:
            for b in sorted(top_edges[a] & set(comp)):
                print(f"  {a} -> {b}: {', '.join(sorted(top_why[(a, b)]))}")
    for top in sorted(sub_edges):
        for comp in find_cycles(children[top], sub_edges[top]):
            bad = True
            print(f"cycle inside {top}: " + ", ".join(comp))
            for a in comp:
                for b in sorted(sub_edges[top][a] & set(comp)):
                    print(f"  {top}::{a} -> {b}: {', '.join(sorted(sub_why[(top, a, b)]))}")
    for upper, allowed in UPPER.items():
        for a in sorted(top_edges):
            if upper in top_edges[a] and a not in allowed:
                bad = True
                print(f"layering: {a} imports {upper}: {', '.join(sorted(top_why[(a, upper)]))}")
    for rule in args.forbid:
        a, b = rule.split(":")
        if b in top_edges.get(a, ()):
            bad = True
            print(f"forbidden: {a} imports {b}: {', '.join(sorted(top_why[(a, b)]))}")
    if args.dot:
        with open(args.dot, "w") as f:
            f.write("digraph crate {\n")
            for a in sorted(top_edges):
                for b in sorted(top_edges[a]):
                    f.write(f'  "{a}" -> "{b}";\n')
            f.write("}\n")
    if bad:
        return 1
    print(f"module graph: {len(files)} files, {len(tops)} top-level modules, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
