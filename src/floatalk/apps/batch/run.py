"""Running a batch: every entry of a jobs file rendered into one output folder by a runner (here,
`run_local`, or on a Ray cluster, floatalk.apps.ray_runner), skipping outputs that exist, and
the report written whatever happens.

Nothing heavy is imported at the top: torch and the model are loaded when a runner starts.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from floatalk.apps import jobs
from floatalk.apps.batch.folder import output_lock, remove_partials
from floatalk.apps.batch.jobs_file import BatchEntry, read_jobs
from floatalk.apps.batch.report import REPORT_NAME, BatchResult, Outcome
from floatalk.apps.scene_jobs import run_scene_job
from floatalk.errors import UserInputError, WriteRefusedError, one_line

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import Progress

__all__ = ["Runner", "run_batch", "run_entry", "run_local"]


def run_entry(
    pipe: FloatPipeline, entry: BatchEntry, out_dir: str | os.PathLike, progress: Progress | None = None
) -> Outcome:
    """Render one runnable entry into `out_dir`; a user error or a bug becomes a failed Outcome
    (KeyboardInterrupt and a write the system refused go through, leaving no file behind)."""
    started = time.perf_counter()
    try:
        if entry.scene is not None:
            run_scene_job(
                pipe, entry.image, entry.audio, Path(out_dir) / entry.name, entry.job, entry.scene, progress=progress
            )
        else:
            jobs.run_job(pipe, entry.image, entry.audio, Path(out_dir) / entry.name, entry.job, progress=progress)
    except WriteRefusedError:
        raise  # the output folder's problem (a full disk, ...): every next line would fail the same way
    except UserInputError as exc:
        return Outcome(entry.line, entry.name, "failed", one_line(exc))
    except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the batch; the report keeps its traceback
        reason = f"Internal error ({one_line(exc, with_type=True)}); please report it."
        return Outcome(entry.line, entry.name, "failed", reason, detail=traceback.format_exc())
    return Outcome(entry.line, entry.name, "done", seconds=time.perf_counter() - started)


Runner = Callable[[list[BatchEntry], Path, Callable[[Outcome], None]], None]
"""runner(entries, out_dir, finished): run every entry, calling finished(outcome) as each ends."""


def run_local(checkpoint: str = "bundled", device: str = "cpu", progress: Progress | None = None) -> Runner:
    """A runner that renders the entries one after another in this process, the model loaded
    once (only when there is something to render). progress: the current job's stages."""
    from floatalk.assets import resolve_model

    folder = resolve_model(checkpoint)

    def runner(entries: list[BatchEntry], out_dir: Path, finished: Callable[[Outcome], None]) -> None:
        if not entries:
            return
        import torch

        from floatalk.pipeline import FloatPipeline, reuse_freed_memory

        if device == "cuda" and not torch.cuda.is_available():
            raise UserInputError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")
        if progress is not None:
            progress("loading model", 0, 0)
        pipe = FloatPipeline.from_pretrained(folder, device=device)
        if device == "cpu":
            reuse_freed_memory()  # after loading, as floatalk generate does (the checkpoint's copy goes back)
        for entry in entries:
            finished(run_entry(pipe, entry, out_dir, progress))

    return runner


def run_batch(
    jobs_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    runner: Runner,
    *,
    progress: Progress | None = None,
    entries: list[BatchEntry] | None = None,
) -> BatchResult:
    """Run the jobs of `jobs_file` into `out_dir` (made if missing) with `runner`, skipping the
    outputs that exist, and write the report there atomically. progress('jobs', done, total)
    counts the lines as they end. On KeyboardInterrupt the report (with the lines not run) is
    written and the interrupt goes on; finished videos are kept, nothing is half-written."""
    from floatalk.fileio import atomic_write, output_folder

    started = time.perf_counter()
    jobs_file = Path(os.fspath(jobs_file)).absolute()
    entries = read_jobs(jobs_file) if entries is None else entries
    out = output_folder(Path(os.fspath(out_dir)).absolute())
    outcomes: dict[int, Outcome] = {}
    complete = False

    def finished(outcome: Outcome) -> None:
        outcomes[outcome.line] = outcome
        if progress is not None:
            progress("jobs", len(outcomes), len(entries))

    with output_lock(out):
        remove_partials(out, {e.name for e in entries})
        pending: list[BatchEntry] = []
        for entry in entries:
            if entry.error is not None:
                finished(Outcome(entry.line, entry.name, "failed", entry.error))
            elif (out / entry.name).exists():
                finished(Outcome(entry.line, entry.name, "skipped"))
            else:
                pending.append(entry)
        try:
            runner(pending, out, finished)
            complete = True
        finally:
            rows = [outcomes.get(e.line) or Outcome(e.line, e.name, "not run") for e in entries]
            result = BatchResult(jobs_file, out, rows, complete, time.perf_counter() - started)
            text = json.dumps(result.to_json(), indent=2) + "\n"
            atomic_write(out / REPORT_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return result
