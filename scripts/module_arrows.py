#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a cycle, at two levels.

For each `src` directory given (a crate root with `lib.rs`):

- module level: an arrow from one top-level module to another (`src/db/...` uses
  `crate::auth::...`: db -> auth);
- file level: an arrow from one file to another file of the same top-level module
  (`src/routines/check.rs` uses `super::graph::Graph`: check.rs -> graph.rs).

Any cycle among those arrows is printed with its level and the exit status is 1 (there is no
allow-list: close a cycle by moving the shared piece one floor down). Run by scripts/test.sh; the floors are in src/lib.rs and
docs/ARCHITECTURE.md.

What counts as an arrow:

- Paths are resolved to the file they name: `crate::a::b::c`, `super::x`, `self::x`,
  `$crate::x`, a path through a child module (`child::x`) or through a name a `use` brought in,
  and every leaf of a `use` group (`use crate::a::{b, c::d}`). A module `foo` is `foo.rs` or
  `foo/mod.rs` (or an inline `mod foo { ... }`, which is its file). A path naming an item that
  its module re-exports (`pub use child::Item`, or a glob `pub use child::*`) is followed to
  the file that defines the item (so do imports a child reaches as `super::Item`); a path to the
  crate root (`lib.rs`) is no arrow.
- Only code the crate compiles outside tests counts: comments and string literals are skipped
  (except a string that is itself a path, as in `#[serde(with = "crate::x::y")]`), and so is
  every item under `#[cfg(test)]` (a `mod tests { ... }`, a helper, a field); a file is read
  only if its parent declares it with `mod` outside `#[cfg(test)]`, so `tests.rs` and other
  test-only files are not read at all.
- The parent rule: a module's facade is not an arrow into its children. `mod child;` declares
  and `pub use child::Item;` (any `pub`, also `pub(crate)`, also a glob) re-exports for the
  module's users; neither is an arrow from the parent's file into the child's, so a child's
  `use super::Sibling` does not make a cycle with them. The parent's own code using a child's
  item is an arrow: a path through the child in its code (`child::f()`), a private `use
  child::Item`, or a re-exported name that its code also mentions (`pub use registry::Registry;`
  and a `fn` of mod.rs taking a `Registry`).

Not seen: method calls (an `impl` split across files, as `room/join.rs` adds join methods to
the actor of `room/actor.rs`, is one type), names brought in by macros, paths split by whitespace
or generics (`a::<T>::b`), and `#[cfg(...)]` other than `#[cfg(test)]`. main.rs is the binary,
which imports the library by its crate name.
"""
import os
import re
import sys

CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
INNER_CFG_TEST = re.compile(r"#!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
PATH_STRING = re.compile(r"\$?(?:crate|self|super)(?:::\w+)+")
ATTRIBUTE = re.compile(r"\s*#\s*\[")
ITEM_START = re.compile(
    r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?(?:unsafe\s+|async\s+|const\s+|extern\s+(?:\"[^\"]*\"\s+)?)*"
    r"(?:fn|impl|mod|struct|enum|trait|union|const|static|type|use|macro_rules!|extern)\b"
)
MOD_DECL = re.compile(r"(?<![\w$])(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
MOD_INLINE = re.compile(r"(?<![\w$])(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(\w+)\s*\{")
USE = re.compile(r"(?<![\w$])(pub(?:\s*\([^)]*\))?\s+)?use\s+")
DEFINITION = re.compile(
    r"(?<![\w$])(?:fn|struct|enum|trait|union|type|const|static|mod)\s+(\w+)|macro_rules!\s*(\w+)"
)
CODE_PATH = re.compile(r"(?<![\w$:])(\$?[A-Za-z_]\w*)((?:::[A-Za-z_]\w*)+)")
OPEN, CLOSE = "([{", ")]}"
LITERAL_START = re.compile(r"//|/\*|(?<![\w$])b?r#*\"|\"|'")
BLOCK_COMMENT = re.compile(r"/\*|\*/")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
CHAR = re.compile(r"'(?:[^'\\\n]|\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.))'")


def blank(text):
    """`text` with everything but its line breaks turned to spaces (keeps offsets and lines)."""
    return re.sub(r"[^\n]", " ", text)


def code_of(text):
    """The code of a Rust file: comments and string and char literals blanked out."""
    out, i, n = [], 0, len(text)
    while m := LITERAL_START.search(text, i):
        out.append(text[i:m.start()])
        i, start = m.start(), m.group()
        if start == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif start == "/*":
            depth, j = 1, i + 2
            while depth and (inner := BLOCK_COMMENT.search(text, j)):
                depth += 1 if inner.group() == "/*" else -1
                j = inner.end()
            j = j if depth == 0 else n
        elif start.endswith('"') and "r" in start:  # a raw string: r"..", r#".."#, br".."
            hashes = start.count("#")
            end = text.find('"' + "#" * hashes, m.end())
            j = n if end < 0 else end + 1 + hashes
        elif start == '"':
            j = STRING.match(text, i).end() if STRING.match(text, i) else n
            if PATH_STRING.fullmatch(text[i + 1:j - 1]):
                out.append(text[i:j])
                i = j
                continue
        elif char := CHAR.match(text, i):
            j = char.end()
        else:  # a lifetime or a label
            out.append(start)
            i += 1
            continue
        out.append(blank(text[i:j]))
        i = j
    out.append(text[i:])
    return "".join(out)


def matching(code, i):
    """The index just past the bracket that closes the one at `code[i]`."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] in OPEN:
            depth += 1
        elif code[j] in CLOSE:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


def item_end(code, i):
    """Where the item, field or statement starting at `i` ends (past its `;`, `}` or `,`)."""
    while m := ATTRIBUTE.match(code, i):  # further attributes
        i = matching(code, m.end() - 1)
    is_item = ITEM_START.match(code, i) is not None  # else a field, a statement, an argument
    depth = 0
    for j in range(i, len(code)):
        c = code[j]
        if c in OPEN:
            depth += 1
        elif c in CLOSE:
            if depth == 0:
                return j  # the end of the enclosing list (a last field without a comma)
            depth -= 1
            if depth == 0 and c == "}":
                return j + 1
        elif depth == 0 and (c == ";" or (c == "," and not is_item)):
            return j + 1
    return len(code)


def without_tests(code):
    """`code` with every `#[cfg(test)]` item blanked, or None when the file is for tests only."""
    if INNER_CFG_TEST.search(code):
        return None
    while m := CFG_TEST.search(code):
        end = item_end(code, m.end())
        code = code[:m.start()] + blank(code[m.start():end]) + code[end:]
    return code


class Use:
    """One leaf of a `use` tree: the name it binds (None for a glob) and the path it names."""

    def __init__(self, segs, name, public, start, end):
        self.segs, self.name, self.public, self.start, self.end = segs, name, public, start, end


def parse_use_tree(tokens, i, prefix):
    segs, leaves = list(prefix), []
    while i < len(tokens):
        t = tokens[i]
        if t == "{":
            i += 1
            while i < len(tokens) and tokens[i] != "}":
                i, more = parse_use_tree(tokens, i, segs)
                leaves += more
                if i < len(tokens) and tokens[i] == ",":
                    i += 1
            return i + 1, leaves
        if t == "*":
            return i + 1, [(segs, None)]
        if t == "::":
            i += 1
            continue
        if not (t == "self" and segs):
            segs = segs + [t]
        i += 1
        if i < len(tokens) and tokens[i] == "::":
            continue
        name = segs[-1] if segs else None
        if i + 1 < len(tokens) and tokens[i] == "as":
            name, i = tokens[i + 1], i + 2
        return i, [(segs, name)]
    return i, leaves


class Crate:
    def __init__(self, root):
        self.root = root
        self.modules = {}  # module path (tuple) -> file
        self.scopes = {}  # file -> [(start, end, module path)], outermost first
        self.code = {}  # file -> code (comments, strings and test items blanked)
        self.uses = {}  # module path -> [Use]
        self.defined = {}  # module path -> names defined there
        self.load((), os.path.join(root, "lib.rs"))

    def load(self, modpath, path):
        code = without_tests(code_of(open(path, encoding="utf-8").read()))
        if code is None:
            return
        self.code[path] = code
        self.scopes[path] = [(0, len(code), modpath)]
        self.modules[modpath] = path
        for m in MOD_INLINE.finditer(code):  # in order, so a parent comes before its children
            end = matching(code, m.end() - 1)
            inner = self.scope_at(path, m.start()) + (m.group(1),)
            self.scopes[path].append((m.end(), end, inner))
            self.modules[inner] = path
        for m in DEFINITION.finditer(code):
            self.defined.setdefault(self.scope_at(path, m.start()), set()).add(
                m.group(1) or m.group(2))
        for m in USE.finditer(code):
            end = item_end(code, m.start())
            tokens = re.findall(r"\$?\w+|::|[{}*,;]", code[m.end():end])
            if tokens and tokens[0] == "::":
                continue  # `use ::extern_crate`
            scope = self.scope_at(path, m.start())
            for segs, name in parse_use_tree(tokens, 0, [])[1]:
                if segs:
                    self.uses.setdefault(scope, []).append(
                        Use(segs, name, m.group(1) is not None, m.start(), end))
        folder = os.path.dirname(path)
        if os.path.basename(path) not in ("lib.rs", "mod.rs"):
            folder = path.removesuffix(".rs")
        for m in MOD_DECL.finditer(code):
            child = self.scope_at(path, m.start()) + (m.group(1),)
            sub = os.path.join(folder, *child[len(modpath):])
            for candidate in (sub + ".rs", os.path.join(sub, "mod.rs")):
                if os.path.exists(candidate):
                    self.load(child, candidate)
                    break

    def scope_at(self, path, pos):
        return [s for s in self.scopes[path] if s[0] <= pos < s[1]][-1][2]

    def binding(self, modpath, name):
        for use in self.uses.get(modpath, ()):
            if use.name == name:
                return use
        return None

    def resolve(self, scope, segs, follow=True, seen=frozenset()):
        """The module a path written in `scope` ends in (the item's, or the module's), or None
        for a path outside the crate. `follow`: look through re-exports to the defining file."""
        first, rest = segs[0], list(segs[1:])
        if first in ("crate", "$crate"):
            cur = ()
        elif first in ("self", "super"):
            cur = scope
            rest = segs[:]
        elif scope + (first,) in self.modules:
            cur = scope + (first,)
        elif (use := self.binding(scope, first)) and (scope, first) not in seen:
            return self.resolve(scope, use.segs + rest, follow, seen | {(scope, first)})
        else:
            return None  # another crate, or a local type's associated item
        for k, seg in enumerate(rest):
            if seg == "self":
                continue
            if seg == "super":
                cur = cur[:-1]
                continue
            if cur + (seg,) in self.modules:
                cur = cur + (seg,)
                continue
            if not follow or (cur, seg) in seen:
                return cur
            seen = seen | {(cur, seg)}
            if use := self.binding(cur, seg):
                return self.resolve(cur, use.segs + rest[k + 1:], follow, seen) or cur
            if seg in self.defined.get(cur, ()):
                return cur
            for glob in self.uses.get(cur, ()):
                if glob.name is None:
                    there = self.resolve(cur, glob.segs, follow, seen)
                    if there is not None and (
                        seg in self.defined.get(there, ())
                        or self.binding(there, seg)
                        or there + (seg,) in self.modules
                    ):
                        return self.resolve(cur, glob.segs + rest[k:], follow, seen) or cur
            return cur
        return cur

    def arrows(self):
        """(file, file) for every arrow, with the module paths at both ends."""
        found = set()
        for path, code in self.code.items():
            for start, end, scope in self.scopes[path]:
                inner = [s for s in self.scopes[path] if s[2][:-1] == scope]
                uses = self.uses.get(scope, [])
                own = list(code[start:end])  # this module's code, without its uses and inner mods
                for s in inner:
                    own[s[0] - start:s[1] - start] = " " * (s[1] - s[0])
                for use in uses:
                    own[use.start - start:use.end - start] = " " * (use.end - use.start)
                own = "".join(own)
                targets = []
                for use in uses:
                    written = self.resolve(scope, use.segs, follow=False)
                    facade = (use.public and written is not None
                              and len(written) > len(scope) and written[:len(scope)] == scope)
                    if facade and not (use.name and re.search(rf"(?<![\w$]){use.name}\b", own)):
                        continue
                    targets.append(self.resolve(scope, use.segs))
                for m in CODE_PATH.finditer(own):
                    segs = [m.group(1)] + m.group(2).split("::")[1:]
                    targets.append(self.resolve(scope, segs))
                for target in targets:
                    if target and target in self.modules:
                        found.add((path, self.modules[target], scope, target))
        return found


def cycles(graph):
    """Every elementary cycle of `graph` (node -> set of nodes), each starting at its least node."""
    found = []

    def visit(start, node, path, on_path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append(tuple(path))
            elif nxt > start and nxt not in on_path:
                on_path.add(nxt)
                visit(start, nxt, path + [nxt], on_path)
                on_path.discard(nxt)

    for start in sorted(graph):
        visit(start, start, [start], {start})
    return sorted(found)


def main():
    bad = False
    roots = sys.argv[1:] or ["src", "actors/src"]
    for root in roots:
        crate = Crate(root)
        tops, files = {}, {}  # files: top-level module -> its file graph
        for src, dst, src_mod, dst_mod in crate.arrows():
            if not src_mod or not dst_mod:
                continue  # the crate root
            if src_mod[0] != dst_mod[0]:
                tops.setdefault(src_mod[0], set()).add(dst_mod[0])
            elif src != dst:
                files.setdefault(src_mod[0], {}).setdefault(src, set()).add(dst)
        found = [("module", f"top-level modules of {root}", c) for c in cycles(tops)]
        for top, graph in sorted(files.items()):
            found += [("file", f"files of {root}/{top}", c) for c in cycles(graph)]
        for level, where, cycle in found:
            line = " -> ".join(cycle + (cycle[0],))
            bad = True
            print(f"{level} cycle among {where}: {line}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
