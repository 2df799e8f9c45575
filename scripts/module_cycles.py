#!/usr/bin/env python3
"""Fails when the top-level modules of a crate use each other in a cycle.

For each crate's `src/`, a module's dependencies are the `crate::<module>`
paths its files name outside comments; `tests.rs` files and `#[cfg(test)]`
helpers count too, as a cycle through a test is still one to untangle.
Usage: module_cycles.py SRC_DIR...  (exit 1 and the cycle when there is one)
"""
import re
import sys
from pathlib import Path


def graph(src):
    deps = {}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        if rel.name in ("lib.rs", "main.rs") and len(rel.parts) == 1:
            continue
        module = rel.parts[0].removesuffix(".rs")
        text = re.sub(r"//[^\n]*", "", path.read_text())
        for used in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text):
            if used != module:
                deps.setdefault(module, set()).add(used)
    return deps


def cycle(deps):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(deps):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main(dirs):
    failed = False
    for d in dirs:
        found = cycle(graph(Path(d)))
        if found:
            print(f"module_cycles: {d}: " + " -> ".join(found), file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
