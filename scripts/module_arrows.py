#!/usr/bin/env python3
"""Fails when the top-level modules of a crate import each other in a cycle.

For each `src` directory given, every `crate::<module>` path in a file (outside its
`#[cfg(test)] mod tests`) is an arrow from the file's top-level module to <module>. Any cycle
among those arrows is printed and the exit status is 1. Run by scripts/test.sh.
"""
import os
import re
import sys


def arrows(root):
    graph = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            top = os.path.relpath(path, root).split(os.sep)[0].removesuffix(".rs")
            if top in ("lib", "main", "tests"):
                continue
            text = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path).read())[0]
            for match in re.finditer(r"\bcrate::(\w+)", text):
                if match.group(1) != top:
                    graph.setdefault(top, set()).add(match.group(1))
    return graph


def cycles(graph):
    found = set()

    def visit(node, path):
        for nxt in graph.get(node, ()):
            if nxt in path:
                cycle = path[path.index(nxt):]
                turn = cycle.index(min(cycle))
                found.add(tuple(cycle[turn:] + cycle[:turn]))
            else:
                visit(nxt, path + [nxt])

    for start in graph:
        visit(start, [start])
    return sorted(found)


def main():
    bad = False
    for root in sys.argv[1:] or ["src", "actors/src"]:
        for cycle in cycles(arrows(root)):
            bad = True
            print(f"module cycle in {root}: {' -> '.join(cycle + (cycle[0],))}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
