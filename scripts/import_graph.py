"""Print the import graph between this repository's packages and check the layer rule.

    python scripts/import_graph.py              # package graph, violations, cycles; exit 1 if any
    python scripts/import_graph.py --modules    # also every module-to-module edge across packages

Layers, bottom to top; a package may import its own modules and packages of LOWER layers only
(two packages of one layer do not import each other):

    4  icl_ft          the application: CLI, study, analysis, lm-eval integration
    3  finetune, augment   libraries with run(config)
    2  lm_eval_tasks   task families, data API, task names, family registry
    1  icl_ft_common   config mechanism, atomic I/O, artifact names, embedded model

Every `import` and `from ... import` counts, at module level or inside a function (a lazy import
is still a dependency), and `importlib.import_module("literal")` too. A file-level cycle is a set
of modules that import each other, directly or through others. Read with `ast`; nothing is
imported, so it runs without the package's dependencies.
"""

from __future__ import annotations

import argparse
import ast
import collections
import sys
from pathlib import Path

LAYERS = {"icl_ft_common": 1, "lm_eval_tasks": 2, "finetune": 3, "augment": 3, "icl_ft": 4}
REPOSITORY = Path(__file__).resolve().parent.parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path) -> dict[str, Path]:
    """Every module of the layered packages under `root`: dotted name -> file."""
    modules = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module of ours, line) for every import statement in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import submodule` depends on the submodule itself
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.append((target, node.lineno))
    return found


def package_of(module: str) -> str:
    return module.split(".")[0]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def analyse(root: Path = REPOSITORY) -> dict:
    """The graph and its problems: {"edges", "package_edges", "violations", "cycles"}."""
    modules = find_modules(root)
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges[module] = {}
        for target, line in imports_of(module, path, modules):
            edges[module].setdefault(target, line)
    package_edges: dict[tuple[str, str], int] = collections.Counter()
    violations = []
    for module, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            source_package, target_package = package_of(module), package_of(target)
            if source_package == target_package:
                continue
            package_edges[(source_package, target_package)] += 1
            if LAYERS[target_package] >= LAYERS[source_package]:
                where = modules[module].relative_to(root)
                violations.append(
                    f"{where}:{line}: {module} (layer {LAYERS[source_package]}) imports {target} "
                    f"(layer {LAYERS[target_package]})"
                )
    cycles = strongly_connected({module: set(targets) for module, targets in edges.items()})
    return {"edges": edges, "package_edges": dict(package_edges), "violations": violations, "cycles": cycles}


def render(result: dict, show_modules: bool = False) -> str:
    lines = ["packages (layer): imports of our other packages, as module-to-module edges"]
    for package in sorted(LAYERS, key=lambda p: (-LAYERS[p], p)):
        targets = sorted((t, n) for (s, t), n in result["package_edges"].items() if s == package)
        listed = ", ".join(f"{t} ({LAYERS[t]}) x{n}" for t, n in targets) or "nothing of ours"
        lines.append(f"  {package} ({LAYERS[package]}) -> {listed}")
    if show_modules:
        lines.append("module edges across packages:")
        for module, targets in sorted(result["edges"].items()):
            for target in sorted(targets):
                if package_of(module) != package_of(target):
                    lines.append(f"  {module} -> {target}")
    lines.append(f"layer violations (an import of the same or a higher layer): {len(result['violations'])}")
    lines += [f"  {violation}" for violation in result["violations"]]
    lines.append(f"file-level import cycles: {len(result['cycles'])}")
    lines += [f"  {' <-> '.join(cycle)}" for cycle in result["cycles"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPOSITORY, help="repository root [default: this repository]")
    parser.add_argument("--modules", action="store_true", help="also list every module edge across packages")
    args = parser.parse_args(argv)
    result = analyse(args.root)
    print(render(result, show_modules=args.modules))
    return 1 if result["violations"] or result["cycles"] else 0


if __name__ == "__main__":
    sys.exit(main())
