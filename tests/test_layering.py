"""Layering: the meters in floatalk.evaluation must not depend on the synthetic world's code.

The lip-sync meter reads the world's audio law from `floatalk.jaw_law`, a layer below both; if
an evaluation module imported `floatalk.synth`, the meter would measure with the generator's
own code. Imports are read from the source with `ast` (function-local imports included), so
nothing is executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import floatalk

PACKAGE = Path(floatalk.__file__).resolve().parent


def imported_modules(source: str, package: str) -> list[str]:
    """Absolute names of the modules that `source`, a module of `package`, imports (and of the
    names it takes from them, which may be modules: `from floatalk import synth`)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_imported_modules_resolves_relative_and_function_local_imports():
    source = (
        "import numpy\n"
        "from .lipsync import pearson\n"
        "def f():\n"
        "    from .. import synth\n"
        "    from ..synth.speech import VOWELS\n"
    )
    names = imported_modules(source, "floatalk.evaluation")
    assert {"numpy", "floatalk.evaluation.lipsync", "floatalk.synth", "floatalk.synth.speech"} <= set(names)


def test_evaluation_does_not_import_synth():
    offenders = {
        str(path.relative_to(PACKAGE.parent)): name
        for path in sorted((PACKAGE / "evaluation").rglob("*.py"))
        for name in imported_modules(path.read_text(), ".".join(path.relative_to(PACKAGE.parent).parent.parts))
        if name == "floatalk.synth" or name.startswith("floatalk.synth.")
    }
    assert not offenders, f"floatalk.evaluation imports the synthetic world: {offenders}"
