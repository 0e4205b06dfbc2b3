"""A job as the store keeps it: its state, stage, progress and, when it failed, why; and how a
row of the store's table becomes one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COLUMNS", "FINAL_STATES", "STATES", "JobRecord", "record_from_row"]

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = frozenset({"done", "failed", "cancelled"})

COLUMNS = "id, state, stage, progress, error, created, started, finished, updated, options, cancel_requested"
"""The columns a record is read from, in `record_from_row`'s order."""


@dataclass(frozen=True)
class JobRecord:
    """One job as stored: its state, progress through the stages and, when it failed, why."""

    id: str
    state: str  # 'queued' | 'running' | 'done' | 'failed' | 'cancelled'
    stage: str | None
    progress: float  # 0..1 over the whole job
    error: str | None
    created: float
    started: float | None
    finished: float | None
    options: dict = field(default_factory=dict)
    updated: float = 0.0
    cancel_requested: bool = False

    @property
    def final(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self.state in FINAL_STATES

    def to_json(self) -> dict:
        """The record as a JSON-ready dict (times are Unix seconds)."""
        return {
            "id": self.id,
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "updated": self.updated,
            "options": self.options,
            "cancel_requested": self.cancel_requested,
        }


def record_from_row(row: Sequence[Any]) -> JobRecord:
    """The record of one row of the `COLUMNS`."""
    (id_, state, stage, progress, error, created, started, finished, updated, options, cancel) = tuple(row)
    return JobRecord(
        id=id_,
        state=state,
        stage=stage,
        progress=float(progress),
        error=error,
        created=created,
        started=started,
        finished=finished,
        options=json.loads(options),
        updated=updated,
        cancel_requested=bool(cancel),
    )
