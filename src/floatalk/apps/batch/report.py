"""What became of each line of a batch: one `Outcome` a line, the `BatchResult` of a run, the
report written to `batch_report.json` and the summary printed on the terminal."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

__all__ = ["EXIT_SOME_FAILED", "REPORT_NAME", "BatchResult", "Outcome"]

REPORT_NAME = "batch_report.json"
"""The report's file name inside the output folder."""

EXIT_SOME_FAILED = 3
"""Exit status of `floatalk batch` when at least one line failed (0: every line done or skipped)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one line: 'done' (rendered now), 'skipped' (its output existed), 'failed'
    (with `reason`) or 'not run' (the batch was interrupted first)."""

    line: int
    name: str
    status: str
    reason: str | None = None
    seconds: float | None = None  # wall-clock time of the render
    detail: str | None = None  # the traceback of an internal error

    def to_json(self) -> dict[str, Any]:
        """The report's record of this line (keys without a value are left out)."""
        record = {"line": self.line, "output": self.name, "status": self.status}
        if self.reason is not None:
            record["reason"] = self.reason
        if self.seconds is not None:
            record["seconds"] = round(self.seconds, 2)
        if self.detail is not None:
            record["traceback"] = self.detail
        return record


@dataclasses.dataclass
class BatchResult:
    """The outcome of every line of a batch, in the jobs file's order."""

    jobs_file: Path
    out_dir: Path
    outcomes: list[Outcome]
    complete: bool  # False when the run was interrupted
    elapsed: float

    def count(self, status: str) -> int:
        """How many lines ended with `status`."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        """The failed lines."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_status(self) -> int:
        """0 when every line is done or skipped, EXIT_SOME_FAILED otherwise."""
        return EXIT_SOME_FAILED if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        """The report: counts and every line's outcome."""
        statuses = ("done", "skipped", "failed", "not run")
        return {
            "jobs_file": str(self.jobs_file),
            "out": str(self.out_dir),
            "complete": self.complete,
            "elapsed_seconds": round(self.elapsed, 2),
            "counts": {s: self.count(s) for s in statuses if s != "not run" or self.count(s)},
            "jobs": [o.to_json() for o in self.outcomes],
        }

    def summary(self) -> list[str]:
        """Lines for the terminal: the counts with their line numbers, then each failure's reason."""
        lines = [f"{len(self.outcomes)} jobs in {self.elapsed:.1f} s:"]
        for status in ("done", "skipped", "not run"):
            numbers = [o.line for o in self.outcomes if o.status == status]
            if numbers:
                lines.append(f"  {status:8} {len(numbers):4}  ({_ranges(numbers)})")
        failed = self.failed
        if failed:
            lines.append(f"  {'failed':8} {len(failed):4}:")
            lines += [f"    line {o.line} ({o.name}): {o.reason}" for o in failed]
        lines.append(f"report: {self.out_dir / REPORT_NAME}")
        return lines


def _ranges(numbers: list[int]) -> str:
    """'lines 1-3, 7' for [1, 2, 3, 7]."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ("line " if len(numbers) == 1 else "lines ") + ", ".join(parts)
