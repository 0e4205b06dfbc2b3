"""Training checkpoints: everything needed to continue exactly, written atomically.

A checkpoint is a plain dict of tensors, numbers, strings and lists (loadable with
weights_only=True): model, optimizer, scheduler and EMA state, the step, torch RNG states and
the run's config. It is written to a temporary file and renamed, so a run killed at any moment
(even by SIGKILL) leaves the previous checkpoint intact and loses at most the steps since it.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import torch

from floatalk.fileio import atomic_write, writing

LAST = "last.pt"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """Atomically write run_dir/checkpoints/last.pt."""
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / LAST
    atomic_write(target, lambda p: _save(state, p))
    return target


def _save(state: dict[str, Any], path: Path) -> None:
    # Through a Python file: a full disk then surfaces as an OSError with its errno (torch's own
    # writer reports only 'file write failed').
    with open(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint of a run, or None when there is none."""
    path = run_dir / "checkpoints" / LAST
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


class CsvLog:
    """Appends one row per logged step to run_dir/log.csv (columns fixed by the first row)."""

    def __init__(self, run_dir: Path, resume_step: int) -> None:
        self.path = run_dir / "log.csv"
        self.fields: list[str] | None = None
        if self.path.is_file():
            # Drop rows past the resumed step (they were logged after the checkpoint).
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            if rows:
                self.fields = list(rows[0].keys())
                rows = [r for r in rows if int(r["step"]) <= resume_step]
            atomic_write(self.path, lambda p: self._write_rows(p, rows))

    def _write_rows(self, path: Path, rows: list[dict[str, str]]) -> None:
        with open(path, "w", newline="") as f:
            if self.fields:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(rows)

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, "time": round(time.time(), 2), **{k: f"{v:.6g}" for k, v in values.items()}}
        new = self.fields is None
        if new:
            self.fields = list(row.keys())
        with open(self.path, "a", newline="") as f:
            size = f.tell()
            try:
                with writing(self.path):
                    writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                    if new:
                        writer.writeheader()
                    writer.writerow(row)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                f.truncate(size)  # a row the disk refused halfway is taken back: the log stays whole
                raise
