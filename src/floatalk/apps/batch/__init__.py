"""Batch generation: a jobs file (JSONL or CSV, one job a line) rendered into one output folder.

A run is resumable: an output that exists is finished (videos are written atomically), so it is
skipped; rerunning the same command does only what is left. One run holds a lock on the output
folder; stale temporary files of a run that was killed are removed when the next one starts.
The outcome of every line is written to `batch_report.json` in the output folder.

The parts: `jobs_file` (reading and checking the lines), `run` (the runners and `run_batch`),
`report` (each line's outcome, the report), `folder` (the output folder's lock and leftovers).
Jobs run here (`run_local`, the model loaded once) or on a Ray cluster
(`floatalk.apps.ray_runner.ray_runner`, the model loaded once per actor). Nothing heavy is
imported at the top.
"""

from floatalk.apps.batch.folder import remove_partials
from floatalk.apps.batch.jobs_file import BatchEntry, read_jobs
from floatalk.apps.batch.report import EXIT_SOME_FAILED, REPORT_NAME, BatchResult, Outcome
from floatalk.apps.batch.run import Runner, run_batch, run_entry, run_local

__all__ = [
    "EXIT_SOME_FAILED",
    "REPORT_NAME",
    "BatchEntry",
    "BatchResult",
    "Outcome",
    "Runner",
    "read_jobs",
    "remove_partials",
    "run_batch",
    "run_entry",
    "run_local",
]
