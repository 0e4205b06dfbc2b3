"""The one training loop. It drives any `Recipe` (one training stage: stage 1 in
`motion_ae_trainer`, stage 2 in `fmt_trainer`) and owns what the stages share: the run folder and
its resume rules, log.csv, the progress reports, the cadence of samples and checkpoints, and data
parallelism under torchrun.

A run folder belongs to one stage and one model architecture: resuming it with another refuses,
and a folder with a checkpoint is never overwritten without --resume. Checkpoints hold the
recipe's `state_dict()` plus the step, the run's config and the torch RNG states; the recipe's
per-step randomness depends only on (seed, step, micro-batch, rank), so a resumed run repeats a
straight one bit for bit.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from floatalk.errors import UserInputError
from floatalk.fileio import atomic_write
from floatalk.progress import Progress, no_progress
from floatalk.training import distributed as D
from floatalk.training.configs import TrainRun
from floatalk.training.state import CsvLog, load_checkpoint, rng_state, save_checkpoint, set_rng_state


class Recipe(Protocol):
    """One training stage, as the loop drives it."""

    stage: str  # 'motion-ae' | 'fmt': recorded in config.json and in every checkpoint
    cfg: TrainRun  # paths, --resume, --device and the loop settings

    def model_config(self) -> Any:
        """The architecture (a config dataclass): config.json's 'model', which a resume must match.
        It may read the stage's inputs (stage 2 follows its motion auto-encoder)."""

    def setup(self, ctx: D.Context, state: dict[str, Any] | None) -> None:
        """Read the data, build models and optimizers (seeded), and `load_state_dict(state)` when resuming."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def modules(self) -> list[nn.Module]:
        """The trained modules: broadcast from rank 0 at the start, checksummed at each checkpoint."""

    def step(self, step: int) -> dict[str, float]:
        """One optimizer step (all its micro-batches); returns {log column: value}."""

    def sample(self, step: int, say: Callable[[str], None]) -> None:
        """Write samples of the current weights into the run folder (rank 0 only)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly: weights, optimizers, schedulers, averages."""

    def export(self, step: int) -> None:
        """Write the stage's product (the weights the next stage or inference loads) into the run folder."""


def silent(line: str) -> None:
    """A `say` that drops every line."""
    return None


def open_run(run_dir: Path, stage: str, resume: bool) -> dict[str, Any] | None:
    """The last checkpoint of `run_dir` when resuming it (None for a new run); UserInputError for
    a folder holding a run without --resume, or a run of another stage."""
    state = load_checkpoint(run_dir)
    if state is not None and not resume:
        raise UserInputError(f"'{run_dir}' already holds a run; pass --resume to continue it or choose a new --out.")
    if state is not None and state.get("stage") != stage:
        raise UserInputError(f"'{run_dir}' holds a {state.get('stage')} run, not {stage}.")
    return state


def start_run(run_dir: Path, state: dict[str, Any] | None, config: dict[str, Any], ctx: D.Context) -> None:
    """Refuse to resume another architecture, restore the RNG states, write config.json."""
    if state is not None:
        if state["config"]["model"] != config["model"]:
            raise UserInputError(
                f"'{run_dir}' was trained with another model config; it cannot be resumed with this one."
            )
        set_rng_state(state["rng"])
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(config, indent=2, sort_keys=True)
        atomic_write(run_dir / "config.json", lambda p: p.write_text(text))
    D.barrier(ctx)


class LogRows:
    """Means of the step logs since the last row, averaged over ranks, as rows of log.csv (rank 0)."""

    def __init__(self, run_dir: Path, start: int, ctx: D.Context) -> None:
        self.ctx = ctx
        self.csv = CsvLog(run_dir, start) if ctx.is_main else None
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def write(self, step: int) -> dict[str, float]:
        """Write the row of `step` (every rank must call it); returns the means."""
        means = D.mean_over_ranks({k: v / self.count for k, v in self.sums.items()}, self.ctx)
        self.sums, self.count = {}, 0
        if self.csv is not None:
            self.csv.write(step, means)
        return means


def save(run_dir: Path, step: int, recipe: Recipe, config: dict[str, Any], ctx: D.Context) -> None:
    """Export and write the checkpoint on rank 0 (every rank must call it).

    The checkpoint records every rank's weight checksum; differing values mean the ranks diverged.
    """
    sums = D.weight_checksums(recipe.modules(), ctx)
    if ctx.is_main:
        if len(set(sums)) > 1:
            warnings.warn(f"ranks hold different weights at step {step}: {sums}", stacklevel=2)
        recipe.export(step)
        state = {"stage": recipe.stage, "step": step, "config": config, **recipe.state_dict(), "rng": rng_state()}
        save_checkpoint(run_dir, {**state, "rank_checksums": sums})
    D.barrier(ctx)


def train(recipe: Recipe, progress: Progress = no_progress, say: Callable[[str], None] = silent) -> Path:
    """Train (or with --resume continue) `recipe` to --max-steps; returns the run folder.

    progress('train', step, max_steps) follows the steps; `say` gets one line per log row and the
    recipe's notes (rank 0 only)."""
    run, loop = recipe.cfg, recipe.cfg.loop
    run_dir = Path(run.out)
    ctx = D.setup(run.device)
    try:
        state = open_run(run_dir, recipe.stage, run.resume)
        config = {"stage": recipe.stage, **asdict(run), "model": asdict(recipe.model_config())}
        start_run(run_dir, state, config, ctx)
        recipe.setup(ctx, state)
        for module in recipe.modules():
            D.broadcast_module(module, ctx)
        start = 0 if state is None else int(state["step"])
        rows = LogRows(run_dir, start, ctx)
        if ctx.is_main:
            progress("train", start, loop.max_steps)
        for step in range(start + 1, loop.max_steps + 1):
            rows.add(recipe.step(step))
            last = step == loop.max_steps
            if step % loop.log_every == 0 or last:
                means = rows.write(step)
                if ctx.is_main:
                    say(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in means.items()))
            if ctx.is_main:
                progress("train", step, loop.max_steps)
                if step % loop.sample_every == 0 or last:
                    recipe.sample(step, say)
            if step % loop.ckpt_every == 0 or last:
                save(run_dir, step, recipe, config, ctx)
        return run_dir
    finally:
        D.teardown()


def autocast(ctx: D.Context):
    """bfloat16 mixed precision on GPUs; a no-op on CPUs."""
    return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16, enabled=ctx.device.type == "cuda")


@torch.no_grad()
def update_ema(ema: Iterable[torch.Tensor], params: Iterable[torch.Tensor], decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * param, in place, pairwise."""
    for e, p in zip(ema, params):
        e.lerp_(p.detach(), 1 - decay)


def accumulate(logs: dict[str, float], values: dict[str, float], n: int) -> None:
    """logs[k] += values[k] / n: the mean over a step's `n` micro-batches."""
    for k, v in values.items():
        logs[k] = logs.get(k, 0.0) + v / n
