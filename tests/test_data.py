"""The repository carries the data its tests read (tests/data), and says so loudly when it is gone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import support

REPO = Path(__file__).resolve().parents[1]


def test_parity_files_are_committed_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "tests/data/parity"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    missing = [name for name in support.PARITY_FILES if f"tests/data/parity/{name}" not in tracked]
    assert not missing, f"parity files not committed: {missing}"


def test_nothing_reads_files_outside_the_repository() -> None:
    for folder in ("src", "tests", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            if path == Path(__file__).resolve() or "data" in path.relative_to(REPO).parts:
                continue
            text = path.read_text(encoding="utf-8")
            assert "../shared" not in text and '"shared" /' not in text, f"{path} reaches outside the repository"


@pytest.mark.parametrize("ci", ["", "1"])
def test_missing_parity_data_skips_or_fails_under_ci(tmp_path, monkeypatch, ci: str) -> None:
    monkeypatch.setattr(support, "PARITY", tmp_path / "parity")
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="parity data missing from .*schema.tsv"):
        support.require_parity()
