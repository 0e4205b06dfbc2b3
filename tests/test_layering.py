"""Layering: the import graph of src/floatalk has no cycle and points one way, lowest layer
first, in the order docs/ARCHITECTURE.md states (scripts/check_layers.py holds it and prints the
same findings). Imports are read from the source with `ast` (function-local and TYPE_CHECKING
imports included), so nothing is executed.

Besides the general order: the meters in floatalk.evaluation never import the synthetic world
(they would measure with the generator's own code), and the engine knows nothing of motion
editing, the pipeline, rendering or the apps.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
layers = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(layers)


def test_imported_names_resolves_relative_function_local_and_type_checking_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "from .lipsync import pearson\n"
        "if TYPE_CHECKING:\n"
        "    from floatalk.pipeline import FloatPipeline\n"
        "def f():\n"
        "    from .. import synth\n"
        "    from ..synth.speech import VOWELS\n"
    )
    names = layers.imported_names(source, "floatalk.evaluation")
    expected = {"numpy", "floatalk.evaluation.lipsync.pearson", "floatalk.synth", "floatalk.synth.speech.VOWELS"}
    assert expected | {"floatalk.pipeline.FloatPipeline"} <= set(names)


def test_cycle_finder_finds_a_planted_circle_and_nothing_in_a_chain():
    assert layers.cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert layers.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_a_planted_upward_import_is_a_violation():
    graph = {"floatalk.engine.core": {"floatalk.editing.plan"}, "floatalk.editing.plan": set()}
    found = layers.violations(graph)
    assert found and "floatalk.engine.core" in found[0] and "higher layer" in found[0]


def test_the_package_has_no_import_cycle():
    graph = layers.import_graph()
    assert len(graph) > 50 and sum(len(t) for t in graph.values()) > 200  # the whole package was read
    assert layers.cycles(graph) == []


def test_every_import_points_to_the_same_or_a_lower_layer():
    assert layers.violations(layers.import_graph()) == []


def test_architecture_doc_states_the_layers_in_the_enforced_order():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    positions = []
    for name, members in layers.LAYERS:
        named = [m for m in members if not m.startswith("__")]  # the package's own __init__ is not a row
        for member in named:
            found = re.search(rf"`floatalk\.{member}`", doc)
            assert found, f"docs/ARCHITECTURE.md does not name floatalk.{member} (layer {name})"
        if named:
            positions.append(doc.index(f"`floatalk.{named[0]}`"))
    assert positions == sorted(positions, reverse=True), "the doc lists the layers in another order than the check"


def test_evaluation_does_not_import_synth():
    graph = layers.import_graph()
    offenders = {m: sorted(t) for m, t in graph.items() if m.startswith("floatalk.evaluation")}
    offenders = {m: [t for t in ts if t.startswith("floatalk.synth")] for m, ts in offenders.items()}
    assert not {m: ts for m, ts in offenders.items() if ts}, "floatalk.evaluation imports the synthetic world"


def test_engine_imports_nothing_above_it():
    above = ("floatalk.editing", "floatalk.pipeline", "floatalk.render", "floatalk.apps", "floatalk.cli")
    graph = layers.import_graph()
    bad = {m: [t for t in ts if t.startswith(above)] for m, ts in graph.items() if m.startswith("floatalk.engine")}
    assert not {m: ts for m, ts in bad.items() if ts}


def _imports_under(folder: Path, files: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """module file -> the names it imports, for the files of `folder` (all of them without `files`)."""
    package = ROOT / "src"
    paths = sorted(folder.rglob("*.py")) if files is None else [folder / name for name in files]
    found = {}
    for path in paths:
        parts = path.relative_to(package).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        where = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found[str(path.relative_to(package))] = layers.imported_names(path.read_text(), where)
    return found


def _offenders(imports: dict[str, list[str]], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        path: sorted({n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)})
        for path, names in imports.items()
    }
    return {path: names for path, names in found.items() if names}


def test_the_apps_layers_point_one_way():
    apps = ROOT / "src" / "floatalk" / "apps"
    # the page's values, files and queue actions need no web framework (only its layout does)
    plain_ui = _imports_under(apps / "ui", ("convert.py", "staging.py", "actions.py"))
    assert not _offenders(plain_ui, ("gradio", "fastapi", "starlette"))
    # the queue, batch runs and job options know nothing of the web apps above them
    below = {**_imports_under(apps / "queue"), **_imports_under(apps / "batch")}
    below |= _imports_under(apps, ("jobs.py", "uploads.py", "ray_runner.py"))
    web = ("floatalk.apps.server", "floatalk.apps.ui", "gradio", "fastapi", "starlette")
    assert not _offenders(below, web)
    # a live session's bounds, compute, protocol and client need no web framework (only its
    # endpoint and page do)
    live = _imports_under(apps / "live", ("sessions.py", "runner.py", "stream.py", "client.py"))
    assert live and not _offenders(live, web)
    # the API does not know the page (the command line mounts one beside the other)
    assert not _offenders(_imports_under(apps / "server"), ("floatalk.apps.ui", "gradio"))
