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


def _imports_under(folder: Path, files: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """module file -> the modules it imports, for the files of `folder` (all of them without `files`)."""
    paths = sorted(folder.rglob("*.py")) if files is None else [folder / name for name in files]
    return {
        str(path.relative_to(PACKAGE.parent)): imported_modules(
            path.read_text(), ".".join(path.relative_to(PACKAGE.parent).parent.parts)
        )
        for path in paths
    }


def _offenders(imports: dict[str, list[str]], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        path: sorted({n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)})
        for path, names in imports.items()
    }
    return {path: names for path, names in found.items() if names}


def test_the_apps_layers_point_one_way():
    apps = PACKAGE / "apps"
    # the page's values, files and queue actions need no web framework (only its layout does)
    plain_ui = _imports_under(apps / "ui", ("convert.py", "staging.py", "actions.py"))
    assert not _offenders(plain_ui, ("gradio", "fastapi", "starlette"))
    # the queue, batch runs and job options know nothing of the web apps above them
    below = {**_imports_under(apps / "queue"), **_imports_under(apps / "batch")}
    below |= _imports_under(apps, ("jobs.py", "uploads.py", "ray_runner.py"))
    web = ("floatalk.apps.server", "floatalk.apps.ui", "gradio", "fastapi", "starlette")
    assert not _offenders(below, web)
    # the API does not know the page (the command line mounts one beside the other)
    assert not _offenders(_imports_under(apps / "server"), ("floatalk.apps.ui", "gradio"))
