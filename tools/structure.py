"""The package's shape, measured from its source: module sizes, the longest functions, the import graph.

    python tools/structure.py            # a text report
    python tools/structure.py --json     # the same figures as JSON

Reported: lines per module; the functions longer than ``--long`` lines (default 60); every import
between seqprep's modules (module level, inside functions, under ``TYPE_CHECKING``); the import
cycles (strongly connected components of the module-level and function-level graph); and every
private name (``_x``) one module takes from another. Nothing is imported or run: the files are parsed
with :mod:`ast`.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "seqprep"


@dataclass
class Module:
    name: str
    path: Path
    lines: int
    functions: list[tuple[str, int]] = field(default_factory=list)  # (qualified name, lines)
    imports: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (target, kind, names)
    attributes: list[tuple[str, str]] = field(default_factory=list)  # (module, name) used as module.name


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def parse(path: Path, known: set[str]) -> Module:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    name = module_name(path)
    mod = Module(name=name, path=path, lines=len(text.splitlines()))
    is_package = path.name == "__init__.py"
    bound: dict[str, str] = {}  # local name -> module, for ``from . import readers`` / ``import x as y``

    def visit(node: ast.AST, kind: str, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = f"{scope}{child.name}"
                mod.functions.append((q, (child.end_lineno or child.lineno) - child.lineno + 1))
                visit(child, "function", q + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, kind, f"{scope}{child.name}.")
            elif isinstance(child, ast.If) and _is_type_checking(child):
                visit(child, "type_checking", scope)
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(name, is_package, child.level, child.module)
                names = [a.name for a in child.names]
                if target in known:
                    # ``from . import x`` where x is a module: an import of that module
                    subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
                    for s in subs:
                        mod.imports.append((s, kind, []))
                        bound[next(a.asname or a.name for a in child.names if s.endswith("." + a.name))] = s
                    rest = [n for n in names if f"{target}.{n}" not in known]
                    if rest or not subs:
                        mod.imports.append((target, kind, rest))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name in known:
                        mod.imports.append((a.name, kind, []))
                        if a.asname:
                            bound[a.asname] = a.name
            elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name) and child.value.id in bound:
                mod.attributes.append((bound[child.value.id], child.attr))
                visit(child, kind, scope)
            else:
                visit(child, kind, scope)

    visit(tree, "module", "")
    return mod


def load() -> dict[str, Module]:
    paths = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
    known = {module_name(p) for p in paths}
    return {m.name: m for m in (parse(p, known) for p in paths)}


def cycles(mods: dict[str, Module], *, type_checking: bool = False) -> list[list[str]]:
    """Strongly connected components (Tarjan) with more than one module, over runtime imports (and
    with ``type_checking`` the imports under ``if TYPE_CHECKING:`` too)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for m in mods.values():
        for target, kind, _ in m.imports:
            if (type_checking or kind != "type_checking") and target != m.name and not m.name.startswith(target + "."):
                graph[m.name].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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

    sys.setrecursionlimit(10_000)
    for v in sorted(mods):
        if v not in index:
            strong(v)
    return out


def private_imports(mods: dict[str, Module]) -> list[tuple[str, str, str]]:
    """(importer, module, name) for every ``_name`` taken from another module."""
    out = []
    for m in mods.values():
        for target, _, names in m.imports:
            if target == m.name:
                continue
            out.extend((m.name, target, n) for n in names if n.startswith("_") and not n.startswith("__"))
        out.extend(
            (m.name, target, n)
            for target, n in m.attributes
            if target != m.name and n.startswith("_") and not n.startswith("__")
        )
    return sorted(set(out))


def report(long: int) -> dict[str, object]:
    mods = load()
    kinds: dict[str, int] = defaultdict(int)
    for m in mods.values():
        for _, kind, _ in m.imports:
            kinds[kind] += 1
    functions = sorted(
        ((f"{m.name}.{q}", n) for m in mods.values() for q, n in m.functions if n > long), key=lambda x: -x[1]
    )
    return {
        "modules": {m.name: m.lines for m in sorted(mods.values(), key=lambda m: -m.lines)},
        "total_lines": sum(m.lines for m in mods.values()),
        "long_functions": functions,
        "imports_by_kind": dict(kinds),
        "cycles": cycles(mods),
        "cycles_with_type_checking": cycles(mods, type_checking=True),
        "private_imports": private_imports(mods),
        "graph": {m.name: sorted({t for t, k, _ in m.imports if k != "type_checking"}) for m in mods.values()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--long", type=int, default=60, help="report functions longer than this (lines)")
    args = ap.parse_args()
    r = report(args.long)
    if args.json:
        print(json.dumps(r, indent=1))
        return
    print(f"{len(r['modules'])} modules, {r['total_lines']} lines")
    for name, n in r["modules"].items():
        print(f"  {n:6d}  {name}")
    print(f"\nfunctions longer than {args.long} lines: {len(r['long_functions'])}")
    for name, n in r["long_functions"]:
        print(f"  {n:6d}  {name}")
    print(f"\nimports between modules: {r['imports_by_kind']}")
    print(f"import cycles: {len(r['cycles'])}")
    for c in r["cycles"]:
        print(f"  {len(c)} modules: {', '.join(c)}")
    print(f"import cycles counting TYPE_CHECKING imports: {len(r['cycles_with_type_checking'])}")
    for c in r["cycles_with_type_checking"]:
        print(f"  {len(c)} modules: {', '.join(c)}")
    print(f"private names taken from another module: {len(r['private_imports'])}")
    for importer, target, n in r["private_imports"]:
        print(f"  {importer} <- {target}.{n}")


if __name__ == "__main__":
    main()
