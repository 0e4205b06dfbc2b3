"""Print the import graph's cycles and layer violations of the floatalk package.

    python scripts/check_layers.py            # exit 0 when there are none, 1 otherwise
    python scripts/check_layers.py --edges    # also list every import edge between the package's modules

Every import is read from the source with `ast`, nothing is executed: imports at the top of a
module, inside functions and under `if TYPE_CHECKING:` all count. The layer order is the one of
docs/ARCHITECTURE.md (LAYERS below, lowest first): a module may import modules of its own layer
or of a lower one, never of a higher one, and the graph must have no cycle at all.
`tests/test_layering.py` runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "src" / "floatalk"

# Lowest first. Each entry: (layer name, the package's top-level modules or packages in it).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("errors", "units", "convert", "progress", "fileio", "config", "model_folders", "jaw_law")),
    ("io and models", ("io", "models", "face_motion", "assets")),
    ("specs", ("sampling", "checkpoint", "timeline", "options", "scene")),
    ("meters", ("evaluation",)),
    ("engine", ("engine",)),
    ("editing", ("editing",)),
    ("pipeline", ("pipeline", "live")),
    ("render", ("render", "synth")),
    ("training", ("training",)),
    ("apps", ("apps",)),
    ("cli", ("cli",)),
    ("package", ("__init__", "__main__")),
)


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """'floatalk.editing.plan' -> its file, for every module of the package."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _package_of(module: str, path: Path) -> str:
    """The package a module's relative imports start from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_names(source: str, package: str) -> list[str]:
    """Absolute dotted names a module imports: `a.b` for `import a.b`, and `a.b` for each name b
    it takes with `from a import b` (b may be a module: `from floatalk import synth`, or a name
    defined in a). Function-local and TYPE_CHECKING imports included. `package`: where relative
    imports start."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            # `from a import b` depends on a.b when that is a module, else on a: the graph resolves it
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a name resolves to the longest module it names)."""
    files = module_files(package_dir)
    top = package_dir.name
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(path.read_text(), _package_of(module, path)):
            if name != top and not name.startswith(top + "."):
                continue
            while name not in files:
                name = name.rpartition(".")[0]
            if name not in (module, top):  # `from floatalk import x` names the module x, kept above
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer_of(module: str, layers: Iterable[tuple[str, tuple[str, ...]]] = LAYERS) -> int | None:
    """The layer number of a module (its top-level name's), or None when LAYERS does not place it."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    for number, (_, members) in enumerate(layers):
        if head in members:
            return number
    return None


def violations(graph: dict[str, set[str]]) -> list[str]:
    """One line per import that points to a higher layer, or per module no layer places."""
    lines = []
    for module in sorted(graph):
        own = layer_of(module)
        if own is None:
            lines.append(f"{module}: in no layer (add it to LAYERS and docs/ARCHITECTURE.md)")
            continue
        for target in sorted(graph[module]):
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                lines.append(f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]}), a higher layer")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cycles and layer violations of floatalk's import graph.")
    parser.add_argument("--edges", action="store_true", help="also print every import edge inside the package")
    args = parser.parse_args(argv)
    graph = import_graph()
    if args.edges:
        for module in sorted(graph):
            for target in sorted(graph[module]):
                print(f"{module} -> {target}")
    found = cycles(graph)
    bad = violations(graph)
    edges = sum(len(t) for t in graph.values())
    print(f"{len(graph)} modules, {edges} import edges (function-local and TYPE_CHECKING imports included)")
    print(f"cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print(f"layer violations: {len(bad)}")
    for line in bad:
        print("  " + line)
    return 1 if found or bad else 0


if __name__ == "__main__":
    sys.exit(main())
