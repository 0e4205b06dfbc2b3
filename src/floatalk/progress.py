"""The one progress protocol: `progress(stage, done, total)`.

Long work in the library (generation, training, data preparation, evaluation) reports through
a callable of this shape; the library never prints. The CLI passes a `ProgressBar` (tqdm on
stderr), the web app and the API server their own callables. `stage` is a short word
('audio', 'emotion', 'motion', 'frames', 'train', 'clips', ...); `done` of `total` units.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["GENERATION_LABELS", "Progress", "ProgressBar", "no_progress"]

GENERATION_LABELS = {"audio": "audio features", "emotion": "emotion", "motion": "sampling motion", "frames": "decoding"}
"""How a bar names the stages a generation reports (FloatPipeline.iter_windows)."""

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total) -> None."""


def no_progress(stage: str, done: int, total: int) -> None:
    """A `Progress` that ignores every report."""
    return None


class ProgressBar:
    """A tqdm bar on stderr: its label follows the stage; it counts the units of `count_stage`
    (every stage when None). Usable as a context manager; `quiet` disables it.

    With a `first_label` the bar shows at once (a wait the caller has announced, such as loading
    a model); without one it appears at the first report, so a mistake found before any work
    is its one sentence, with no empty bar above it."""

    def __init__(
        self,
        total: int | None = None,
        unit: str = "it",
        labels: dict[str, str] | None = None,
        count_stage: str | None = None,
        quiet: bool = False,
        first_label: str = "",
    ) -> None:
        self.labels = labels or {}
        self.count_stage = count_stage
        self._settings = {"total": total, "desc": first_label, "unit": unit, "disable": quiet}
        self._bar = None
        if first_label:
            self._open()

    def _open(self):
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(
                **self._settings,
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format="{desc:>15}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
            )
        return self._bar

    @property
    def bar(self):
        """The tqdm bar (opened on first use)."""
        return self._open()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._bar is None:  # opened by this report: with its label from the start
            self._settings["desc"] = self.labels.get(stage, stage)
        self.bar.set_description_str(self.labels.get(stage, stage), refresh=False)
        if self.count_stage is None or stage == self.count_stage:
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)
        else:
            self.bar.refresh()

    def write(self, message: str) -> None:
        """Print a line above the bar."""
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
