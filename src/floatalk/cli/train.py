"""`floatalk train motion-ae|fmt`: the two training stages, on 1 process or many under torchrun.

Every flag, its default and its help come from the stage's config dataclass
(`floatalk.training.configs`); this module imports nothing heavy until a stage runs.
"""

from __future__ import annotations

import argparse

from floatalk.options import add_flags, from_args
from floatalk.training.configs import FMTTrainConfig, MotionAETrainConfig, TrainRun


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train the motion auto-encoder or the FMT",
        description="Train FLOAT's two stages. Run under 'torchrun --nproc_per_node N $(which floatalk) "
        "train ...' for data parallelism (gloo on CPU, NCCL on GPU). See docs/TRAINING.md.",
    )
    stages = p.add_subparsers(dest="stage", metavar="STAGE", required=True, parser_class=type(p))
    mae = stages.add_parser(
        "motion-ae",
        help="stage 1: motion auto-encoder (self-reconstruction + GAN)",
        description="Stage 1: train the motion auto-encoder by reconstructing a driving frame "
        "from a source frame of the same clip.",
    )
    add_flags(mae, MotionAETrainConfig)
    mae.set_defaults(run=run_motion_ae)
    fmt = stages.add_parser(
        "fmt",
        help="stage 2: flow matching transformer on frozen motion latents",
        description="Stage 2: train the FMT (and the audio projection) on motion latents of the "
        "frozen auto-encoder, cached once per data folder.",
    )
    add_flags(fmt, FMTTrainConfig)
    fmt.set_defaults(run=run_fmt)
    return p


def run_motion_ae(args: argparse.Namespace) -> int:
    cfg = from_args(MotionAETrainConfig, args)
    cfg.check_paths()  # before torch is imported: a wrong folder fails in a second, and nothing is written
    from floatalk.training.motion_ae_trainer import MotionAERecipe

    return _train(MotionAERecipe(cfg))


def run_fmt(args: argparse.Namespace) -> int:
    cfg = from_args(FMTTrainConfig, args)
    cfg.check_paths()
    from floatalk.training.fmt_trainer import FMTRecipe

    return _train(FMTRecipe(cfg))


def _train(recipe) -> int:
    """Run `recipe` with a step bar and its lines on stderr (neither with --quiet)."""
    from floatalk.progress import ProgressBar
    from floatalk.training.loop import silent, train

    cfg: TrainRun = recipe.cfg
    with ProgressBar(unit="step", labels={"train": recipe.stage}, quiet=cfg.quiet) as bar:
        train(recipe, progress=bar, say=silent if cfg.quiet else bar.write)
    return 0
