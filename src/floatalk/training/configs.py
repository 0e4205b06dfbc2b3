"""What each training stage takes: one frozen dataclass per stage, the single source of its
command-line flags, their defaults and their help (`floatalk.options`).

`MotionAETrainConfig` is `floatalk train motion-ae`, `FMTTrainConfig` is `floatalk train fmt`;
both hold the run's paths, a `LoopSettings` and their stage's losses. Values are checked when a
config is made: a bad one is a one-sentence UserInputError naming its flag. This module imports
nothing heavy (no torch), so `floatalk train ... --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floatalk.config import MotionAEConfig
from floatalk.errors import UserInputError
from floatalk.options import flag_name, option
from floatalk.training.presets import PRESETS, preset

FIRST_FRAMES = 5  # a clip's "first" frames (0..4): stage 1's first sources, stage 2's first references
SIZES = (64, 128, 256, 512)


def _check(cfg: Any, name: str, ok: bool, rule: str) -> None:
    """UserInputError '--flag-of-name RULE (got VALUE).' unless `ok`."""
    if not ok:
        field = next(f for f in dataclasses.fields(cfg) if f.name == name)
        raise UserInputError(f"{flag_name(field)} {rule} (got {getattr(cfg, name)}).")


def _shares(cfg: Any, *names: str) -> None:
    for name in names:
        _check(cfg, name, 0 <= getattr(cfg, name) <= 1, "must be between 0 and 1")


def _below_one(cfg: Any, *names: str) -> None:
    for name in names:
        _check(cfg, name, 0 <= getattr(cfg, name) < 1, "must be in [0, 1)")


def _share(default: float, help: str) -> Any:
    """A probability's or share's option (metavar P; checked to lie in [0, 1] by `_shares`)."""
    return option(default, help, metavar="P")


def _first_frames_share(what: str, why: str) -> Any:
    """The option 'share of WHAT is one of the clip's first FIRST_FRAMES frames, as at inference where WHY'."""
    return _share(0.0, f"share of {what} is one of the clip's first {FIRST_FRAMES} frames, as at inference where {why}")


def _weight(default: float, help: str, flag: str | None = None) -> Any:
    """A loss weight's option (metavar W); `flag` when it is not --field-name."""
    return option(default, help, flag=flag, metavar="W")


def _path(help: str, metavar: str) -> Any:
    """An optional file or folder's option (default None: not given)."""
    return option(None, help, metavar=metavar)


@dataclass(frozen=True)
class LoopSettings:
    """The training loop both stages share: steps, batches, learning rate, seed and the cadence of
    log rows, samples and checkpoints."""

    max_steps: int = option(1000, "train until this optimizer step", metavar="N")
    batch_size: int = option(8, "samples per process per micro-batch", metavar="N")
    grad_accum: int = option(1, "micro-batches per optimizer step", metavar="K")
    lr: float = option(1e-4, "learning rate")
    # Independent of max_steps, so a resumed run follows the same schedule.
    warmup: int = option(100, "linear learning-rate warm-up steps", metavar="N")
    seed: int = option(0, "seed of initial weights and of every batch")
    ckpt_every: int = option(
        100, "steps between checkpoints (and at the end); a killed run loses at most these", metavar="N"
    )
    log_every: int = option(10, "steps between log.csv rows", metavar="N")
    sample_every: int = option(
        500, "steps between samples (stage 1: an image grid and the held-out probe; stage 2: a video)", metavar="N"
    )

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "ckpt_every", "log_every", "sample_every", "warmup"):
            _check(self, name, getattr(self, name) >= 1, "must be at least 1")


@dataclass(frozen=True)
class TrainRun:
    """What every `floatalk train` stage takes besides its model and losses."""

    data: str = option("", "folder written by 'floatalk preprocess'", metavar="DATA", required=True)
    out: str = option("", "run folder: checkpoints, log.csv, samples, exported weights", metavar="RUN", required=True)
    config: str = option(
        "tiny", "model preset: tiny (64 px, tests), demo (128 px, CPU), base (release sizes, 512 px)", choices=PRESETS
    )
    resume: bool = option(False, "continue the run in --out from its last checkpoint")
    device: str = option(
        "auto", "auto = cuda when available (mixed bf16 precision), else cpu", choices=("auto", "cpu", "cuda")
    )
    quiet: bool = option(False, "no progress bar and no progress lines (log.csv and probe.csv still get every row)")
    loop: LoopSettings = option(LoopSettings(), "training loop")

    def check_paths(self) -> None:
        """The folders this run reads exist (the data is a preprocessed folder), or one sentence
        (UserInputError); nothing heavy is imported, nothing is written."""
        from floatalk.training.data import read_manifest

        read_manifest(self.data)
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise UserInputError(f"--out '{out}' is a file, not a run folder.")
        existing = next(p for p in (out, *out.parents) if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserInputError(f"Cannot make the run folder '{out}': '{existing}' is not writable.")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in self.input_paths and value and not Path(value).exists():
                raise UserInputError(f"{flag_name(field)} '{value}' does not exist.")

    @property
    def input_paths(self) -> tuple[str, ...]:
        """The fields besides `data` that name files or folders this run reads."""
        return ()


@dataclass(frozen=True)
class MotionAELosses:
    """Stage 1's loss weights, GAN schedule, pair sampling, optimizer and weight average."""

    l1: float = option(1.0, "weight of the L1 reconstruction loss", cli=False)
    perceptual: float = _weight(
        1.0,
        "weight of the multi-scale perceptual loss (without --vgg-weights its features are random)",
        "--perceptual-weight",
    )
    region: float = _weight(
        1.0,
        "weight of the extra L1 on the eye band of the face crop, where brows show expression",
        "--eye-weight",
    )
    # The demo recipe raises it: the mouth is a few pixels at 128 px.
    mouth: float = _weight(
        1.0,
        "weight of the extra L1 on the mouth box of the face crop (the demo recipe uses 10)",
        "--mouth-weight",
    )
    adversarial: float = _weight(0.05, "weight of the adversarial loss (0 disables the GAN)", "--adv-weight")
    adv_start: int = option(0, "step after which the discriminator trains and the adversarial term is on", cli=False)
    r1_gamma: float = option(1.0, "weight of the R1 penalty on real images", cli=False)
    r1_every: int = option(16, "steps between lazy R1 penalties (StyleGAN2)", cli=False)
    near_pairs: float = _share(
        0.0,
        "share of training pairs whose driving frame is at most --near-gap frames from the source (pose barely "
        "changes, so the loss is about the mouth and eyes)",
    )
    near_gap: int = option(6, "largest frame gap of a near pair", metavar="N")
    # Checked before near_pairs. Inference drives one photo through a whole clip; in clips that
    # start neutral, these pairs are the ones that carry the expression change.
    first_source: float = _first_frames_share(
        "training pairs whose source",
        "one photo is driven through a whole clip (with clips that start neutral: the pairs that change expression)",
    )
    speech_anchor: float = _weight(
        0.0,
        "weight of a loss tying motion coordinate 0 to the jaw opening implied by each clip's speech "
        "(self-supervised, no labels; the demo recipe uses 1; 0 = plain LIA)",
    )
    # With a constant learning rate the raw weights wander between samples; the average does not.
    ema_decay: float = option(
        0.0,
        "export, probe and hand to stage 2 an exponential moving average of the weights with this decay "
        "(e.g. 0.995; 0 = the raw weights of the last step)",
        metavar="D",
    )
    expression_anchor: float = _weight(
        0.0,
        "weight of a loss tying motion coordinates 1..K to the clips' per-frame expression values "
        "(DATA/clips/NAME/expression.npy, which preprocess keeps from the synthetic world's sidecars; "
        "0 = off; the demo recipe uses 1)",
    )
    # StyleGAN2 and LIA use 0 (no momentum). Pure self-reconstruction at 128 px reached L1 0.045
    # after 250 steps with 0.9 and lr 1e-2, against 0.087 with 0 and lr 2e-3 (--near-pairs 1
    # --near-gap 0); the demo recipe uses 0.9 at lr 5e-3.
    adam_beta1: float = option(
        0.0,
        "Adam's first-moment decay for the auto-encoder (0 is StyleGAN2's and LIA's; 0.9 learns much faster "
        "here; the demo recipe uses 0.9)",
        metavar="B",
    )
    landmark_flow: float = _weight(
        0.0,
        "weight of a loss making the decoder's warp carry each driving-frame landmark back to the same landmark "
        "of the source (DATA/clips/NAME/landmarks.npy, which preprocess keeps from the synthetic world's "
        "sidecars; 0 = off; the demo recipe uses 100)",
    )

    def __post_init__(self) -> None:
        _shares(self, "near_pairs", "first_source")
        for name in ("speech_anchor", "expression_anchor", "landmark_flow"):
            _check(self, name, getattr(self, name) >= 0, "must not be negative")
        _below_one(self, "adam_beta1", "ema_decay")


@dataclass(frozen=True)
class MotionAETrainConfig(TrainRun):
    """`floatalk train motion-ae`: stage 1, the motion auto-encoder."""

    loop: LoopSettings = option(LoopSettings(lr=2e-3), "training loop")
    size: int | None = option(
        None, "image size: 64, 128, 256 or 512 (default: the preset's; must match the data)", metavar="PX"
    )
    channel_base: int | None = option(
        None,
        "decoder/encoder width: N / resolution channels per scale, capped by the preset's maximum "
        "(default: the preset's; demo 2048, i.e. 16 channels at 128 px)",
        metavar="N",
    )
    vgg_weights: str | None = _path(
        "ImageNet VGG19 state dict (torchvision keys) for the perceptual loss; without it a fixed random-feature "
        "network of the same layout is used (no download)",
        "FILE",
    )
    init_from: str | None = _path(
        "start from the auto-encoder of this stage-1 run (or model folder) instead of from scratch",
        "RUN",
    )
    losses: MotionAELosses = option(MotionAELosses(), "stage-1 losses")

    def __post_init__(self) -> None:
        if self.size is not None:
            _check(self, "size", self.size in SIZES, "must be 64, 128, 256 or 512")
        if self.channel_base is not None:
            _check(self, "channel_base", 256 <= self.channel_base <= 65536, "must be between 256 and 65536")

    def model_config(self) -> MotionAEConfig:
        """The preset's auto-encoder with --size and --channel-base applied."""
        cfg = preset(self.config).motion_ae
        if self.size is not None:
            cfg = dataclasses.replace(cfg, size=self.size)
        if self.channel_base is not None:
            cfg = dataclasses.replace(cfg, channel_base=self.channel_base)
        return cfg


@dataclass(frozen=True)
class FMTLosses:
    """Stage 2's loss weights, condition dropout, reference sampling and weight average."""

    velocity: float = option(1.0, "weight of the frame-difference (velocity) loss", cli=False)
    drop_audio: float = _share(
        0.1,
        "probability that a sample's audio condition is dropped (0.1 is the paper's); higher makes the emotion "
        "label, not the speech, decide more of the expression",
    )
    drop_emotion: float = _share(0.1, "probability that a sample's emotion condition is dropped (0.1 is the paper's)")
    drop_reference: float = _share(0.1, "probability that a sample's reference motion is dropped (0.1 is the paper's)")
    drop_previous: float = option(0.5, "probability that the previous frames and audio are dropped", cli=False)
    emotion_ce: float = option(1.0, "weight of the log-mel emotion classifier's loss", cli=False)
    ema_decay: float = option(0.999, "EMA decay of the exported weights", metavar="D")
    # At inference the reference is the source photo; in clips that start neutral these samples
    # are the ones where the expression must come from the emotion label, not the reference.
    first_reference: float = _first_frames_share(
        "samples whose reference motion",
        "the reference is the source photo (with clips that start neutral, the "
        "expression must then come from the emotion label; 0 = any frame)",
    )

    def __post_init__(self) -> None:
        _shares(self, "drop_audio", "drop_emotion", "drop_reference", "first_reference")
        _below_one(self, "ema_decay")


@dataclass(frozen=True)
class FMTTrainConfig(TrainRun):
    """`floatalk train fmt`: stage 2, the flow matching transformer on a frozen stage-1 auto-encoder."""

    motion_ae: str = option(
        "",
        "stage-1 run folder, its export, a floatalk model folder or a FLOAT release folder",
        metavar="RUN_OR_CHECKPOINT",
        required=True,
    )
    wav2vec2: str | None = _path(
        "use wav2vec2 audio features from this local folder (e.g. wav2vec2-base-960h); default: the built-in "
        "log-mel front end, which needs no weights",
        "DIR",
    )
    emotion_model: str | None = _path(
        "release speech-emotion folder to predict emotions of unlabelled clips; default: a small log-mel "
        "classifier trained on the clip labels",
        "DIR",
    )
    losses: FMTLosses = option(FMTLosses(), "stage-2 losses")

    @property
    def input_paths(self) -> tuple[str, ...]:
        return ("motion_ae", "wav2vec2", "emotion_model")
