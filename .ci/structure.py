#!/usr/bin/env python3
"""The structure rules of the workspace, checked on every CI run:

1. No import cycle between the modules of any crate (lib or bin): a module may use its
   descendants and other modules, but no two modules use each other, directly or not. A crate's
   root only declares and re-exports, so nothing inside a crate imports through its root.
2. Only the unit of work begins and commits transactions (`nats/src/unit_of_work`, with the
   database module that opens them).
3. No code under `e2e/` holds SQL or a database driver: it reads the services' state through
   their audit functions only.
4. No source file outside tests is longer than 400 lines.

Prints each violation and exits 1 if there is any.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["contracts", "nats", "harness", "concert-svc", "seat-svc", "reservation-svc",
          "payment-svc", "gateway", "ticketctl", "e2e"]
MAX_LINES = 400

problems = []


def module_files(src):
    """Each crate target under `src` (the lib, each bin) as {module path: file}."""
    targets = {}
    lib = src / "lib.rs"
    if lib.exists():
        targets["lib"] = collect(lib.parent, lib, skip={"bin"})
    bins = src / "bin"
    if bins.is_dir():
        for b in sorted(bins.iterdir()):
            if b.suffix == ".rs":
                targets[f"bin {b.stem}"] = {(): b}
            elif (b / "main.rs").exists():
                targets[f"bin {b.name}"] = collect(b, b / "main.rs", skip=set())
    return targets


def collect(folder, root_file, skip):
    modules = {(): root_file}
    for f in folder.rglob("*.rs"):
        rel = f.relative_to(folder)
        if f == root_file or (rel.parts and rel.parts[0] in skip):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "mod":
            parts.pop()
        modules[tuple(parts)] = f
    return modules


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    prefix = tree[:i]
    body = tree[i + 1:tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part.strip() for p in expand(prefix + part.strip())]


def strip_tests(text):
    """The code without `#[cfg(test)] mod … { … }` blocks (tests may use what they test)."""
    out, i = [], 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = text.find("{", j)
        semicolon = text.find(";", j)
        if k < 0 or 0 <= semicolon < k:
            # `#[cfg(test)] mod tests;`: the tests live in a file of their own.
            i = semicolon + 1 if semicolon >= 0 else len(text)
            continue
        depth = 0
        for n in range(k, len(text)):
            depth += text[n] == "{"
            depth -= text[n] == "}"
            if depth == 0:
                i = n + 1
                break
        else:
            return "".join(out)


def references(text, here, modules):
    """Module paths (as tuples) that `text`, the file of module `here`, refers to."""
    text = re.sub(r"//[^\n]*", "", strip_tests(text))
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths += expand(m.group(1))
    paths += re.findall(r"(?<![\w:])\w+(?:::\w+)+", text)
    out = []
    for p in paths:
        segs = [s for s in p.split("::") if s]
        if segs and here + (segs[0],) in modules:
            # A path relative to this module: one of its children.
            segs = ["self"] + segs
        if not segs or segs[0] not in ("crate", "super", "self"):
            continue
        if segs[0] == "crate":
            base = ()
        else:
            base = list(here)
            if segs[0] == "self":
                segs = segs[1:]
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
            base = tuple(base)
            segs = ["crate"] + segs
        out.append(base + tuple(s for s in segs[1:] if s not in ("self", "*")))
    return out


def check_cycles(name, modules):
    edges = {m: set() for m in modules}
    for m, f in modules.items():
        for path in references(f.read_text(), m, modules):
            # The longest prefix that is a module of this target.
            for n in range(len(path), -1, -1):
                target = path[:n]
                if target in modules:
                    break
            if target != m:
                edges[m].add(target)
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                shown = " -> ".join("::".join(c) or "<root>" for c in cycle)
                problems.append(f"{name}: import cycle {shown}")
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


for crate in CRATES:
    src = ROOT / crate / "src"
    for target, modules in module_files(src).items():
        check_cycles(f"{crate} ({target})", modules)
    for f in src.rglob("*.rs"):
        lines = f.read_text().count("\n")
        if lines > MAX_LINES:
            problems.append(f"{f.relative_to(ROOT)}: {lines} lines (more than {MAX_LINES})")

for f in ROOT.glob("*/src/**/*.rs"):
    rel = f.relative_to(ROOT).as_posix()
    if rel.startswith(("nats/src/unit_of_work/", "nats/src/db/")):
        continue
    text = f.read_text()
    for pattern in (r"\.begin\(", r"\.begin_with\(", r"\.commit\(\)", r"\.rollback\(\)"):
        if re.search(pattern, text):
            problems.append(f"{rel}: begins or ends a transaction outside the unit of work")
            break

for f in list((ROOT / "e2e").rglob("*.rs")) + [ROOT / "e2e" / "Cargo.toml"]:
    text = re.sub(r"//[^\n]*", "", f.read_text())
    found = re.search(r"\b(sqlx|SELECT\s+\w|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", text)
    if found:
        problems.append(f"{f.relative_to(ROOT)}: `{found.group(0)}`: e2e reads state only through the services' audits")

for p in problems:
    print(p)
print(f"structure: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
