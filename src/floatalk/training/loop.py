"""What both trainers share: run folders, resume rules, the progress bar and checkpoint cadence."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from floatalk.errors import UserInputError
from floatalk.training.distributed import Context, barrier, mean_over_ranks, weight_checksums
from floatalk.training.state import CsvLog, load_checkpoint, save_checkpoint, set_rng_state


@dataclass(frozen=True)
class LoopSettings:
    """Common trainer settings (the CLI flags of both `floatalk train` stages)."""

    max_steps: int = 1000
    batch_size: int = 8  # per process, per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-4
    warmup: int = 100  # linear learning-rate warm-up steps (independent of max_steps, so resume is exact)
    seed: int = 0
    ckpt_every: int = 100  # steps between checkpoints (and at the end)
    log_every: int = 10
    sample_every: int = 500
    quiet: bool = False


def start_or_resume(run_dir: Path, stage: str, config: dict[str, Any], resume: bool, ctx: Context) -> dict | None:
    """Create the run folder, or load its last checkpoint with --resume.

    A run folder belongs to one stage and one architecture: resuming with another refuses.
    A run with checkpoints is never overwritten without --resume.
    """
    state = load_checkpoint(run_dir)
    if state is not None and not resume:
        raise UserInputError(f"'{run_dir}' already holds a run; pass --resume to continue it or choose a new --out.")
    if state is not None:
        if state.get("stage") != stage:
            raise UserInputError(f"'{run_dir}' holds a {state.get('stage')} run, not {stage}.")
        if state["config"]["model"] != config["model"]:
            raise UserInputError(
                f"'{run_dir}' was trained with another model config; it cannot be resumed with this one."
            )
        set_rng_state(state["rng"])
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    barrier(ctx)
    return state


class Progress:
    """tqdm bar (it/s, ETA, latest losses) on rank 0, plus the CSV log."""

    def __init__(self, run_dir: Path, start: int, total: int, settings: LoopSettings, ctx: Context, label: str) -> None:
        from tqdm import tqdm

        self.ctx, self.settings = ctx, settings
        self.log = CsvLog(run_dir, start) if ctx.is_main else None
        self.bar = tqdm(
            total=total,
            initial=start,
            desc=label,
            unit="step",
            file=sys.stderr,
            disable=settings.quiet or not ctx.is_main,
            dynamic_ncols=True,
        )
        self.sums: dict[str, float] = {}
        self.count = 0

    def step(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        self.bar.update(1)
        if step % self.settings.log_every == 0 or step == self.bar.total:
            means = mean_over_ranks({k: v / self.count for k, v in self.sums.items()}, self.ctx)
            self.sums, self.count = {}, 0
            if self.log is not None:
                self.log.write(step, means)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()


def maybe_checkpoint(
    run_dir: Path,
    step: int,
    settings: LoopSettings,
    ctx: Context,
    make_state: Callable[[], dict],
    modules: list[torch.nn.Module],
) -> None:
    """Write the checkpoint on rank 0 every ckpt_every steps and at the last step.

    It records every rank's weight checksum; differing values mean the ranks diverged.
    """
    if step % settings.ckpt_every == 0 or step == settings.max_steps:
        sums = weight_checksums(modules, ctx)
        if ctx.is_main:
            if len(set(sums)) > 1:
                print(f"warning: ranks hold different weights at step {step}: {sums}", file=sys.stderr)
            save_checkpoint(run_dir, {**make_state(), "rank_checksums": sums})
        barrier(ctx)


def config_dict(stage: str, model_cfg: Any, settings: LoopSettings, extra: dict[str, Any]) -> dict[str, Any]:
    return {"stage": stage, "model": asdict(model_cfg), "loop": asdict(settings), **extra}


def autocast(ctx: Context):
    """bfloat16 mixed precision on GPUs; a no-op on CPUs."""
    return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16, enabled=ctx.device.type == "cuda")


@torch.no_grad()
def update_ema(ema: Iterable[torch.Tensor], params: Iterable[torch.Tensor], decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * param, in place, pairwise."""
    for e, p in zip(ema, params):
        e.lerp_(p.detach(), 1 - decay)
