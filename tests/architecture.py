"""The layering rule, as code: which package may import which. Every import statement counts, at the top
of a module or inside a function.

    cli -> api -> orchestrate -> report -> (engine, only through the child process: never imported)
    engine -> capacity -> strategies | data | metrics -> model -> core
    report -> core, the metric definitions and their read-back checks only (no torch)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("harness", "strategies")

# (group, layer) by module prefix; the longest matching prefix wins.
GROUPS = {
    "harness": ("core", 0),
    "harness.core": ("core", 0),
    "harness.model": ("model", 1),
    "strategies": ("strategies", 2),
    "harness.data": ("data", 2),
    "harness.metrics": ("metrics", 2),
    "harness.capacity": ("capacity", 3),
    "harness.engine": ("engine", 4),
    "harness.report": ("report", 5),
    "harness.orchestrate": ("orchestrate", 6),
    "harness.api": ("api", 7),
    "harness.cli": ("cli", 8),
    "harness.__main__": ("cli", 8),
}
# What a group may import besides lower layers; and what it must not, whatever the layers say.
REPORT_MAY_IMPORT = (
    "harness",
    "harness.core",
    "harness.metrics.definitions",
    "harness.metrics.peaks",
    "harness.metrics.plausible",
    "harness.metrics.readback",
)
NEVER = {("orchestrate", "engine"), ("api", "engine"), ("cli", "engine")}


def group_of(module: str) -> tuple[str, int]:
    best = max((p for p in GROUPS if module == p or module.startswith(p + ".")), key=len)
    return GROUPS[best]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def imports(root: Path, name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (a `from pkg import sub` names the submodule when it is one)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(known)
            found.update(submodules)
            if len(submodules) < len(node.names):  # some names are the package's own attributes
                found.add(base)
    return {m for m in found if m in known and m != name}


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(root, name, path, known) for name, path in known.items()}


def _report_may_import(target: str) -> bool:
    return target == "harness" or any(
        target == p or target.startswith(p + ".") for p in REPORT_MAY_IMPORT if p != "harness"
    )


def violations(root: Path) -> list[str]:
    problems = []
    for source, targets in graph(root).items():
        (src_group, src_layer) = group_of(source)
        for target in sorted(targets):
            (dst_group, dst_layer) = group_of(target)
            if (src_group, dst_group) in NEVER:
                problems.append(
                    f"{source} imports {target}: {src_group} reaches the engine only through a process"
                )
            elif src_group == "report" and dst_group != "report" and not _report_may_import(target):
                problems.append(
                    f"{source} imports {target}: the report reads only core and metric definitions and checks"
                )
            elif dst_layer > src_layer or (dst_layer == src_layer and dst_group != src_group):
                problems.append(f"{source} imports {target}: {src_group} may not depend on {dst_group}")
    return problems


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    edges = graph(root)
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found
