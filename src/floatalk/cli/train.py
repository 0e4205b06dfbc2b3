"""`floatalk train motion-ae|fmt`: the two training stages, on 1 process or many under torchrun."""

from __future__ import annotations

import argparse

from floatalk.training.presets import PRESETS


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DATA", help="folder written by 'floatalk preprocess'")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder: checkpoints, log.csv, exported weights")
    p.add_argument(
        "--config",
        default="tiny",
        choices=PRESETS,
        help="model preset: tiny (64 px, tests), demo (128 px, CPU), base (release sizes, 512 px)",
    )
    p.add_argument("--max-steps", type=int, default=1000, metavar="N", help="train until this optimizer step")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="samples per process per micro-batch")
    p.add_argument("--grad-accum", type=int, default=1, metavar="K", help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 2e-3 motion-ae, 1e-4 fmt)")
    p.add_argument("--warmup", type=int, default=100, metavar="N", help="linear learning-rate warm-up steps")
    p.add_argument("--seed", type=int, default=0, help="seed of initial weights and of every batch")
    p.add_argument(
        "--ckpt-every",
        type=int,
        default=100,
        metavar="N",
        help="steps between checkpoints; a killed run loses at most these",
    )
    p.add_argument("--log-every", type=int, default=10, metavar="N", help="steps between log.csv rows")
    p.add_argument("--sample-every", type=int, default=500, metavar="N", help="steps between sample images")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto = cuda when available (mixed bf16 precision), else cpu",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train the motion auto-encoder or the FMT",
        description="Train FLOAT's two stages. Run under 'torchrun --nproc_per_node N $(which floatalk) "
        "train ...' for data parallelism (gloo on CPU, NCCL on GPU).",
    )
    stages = p.add_subparsers(dest="stage", metavar="STAGE", required=True, parser_class=type(p))
    mae = stages.add_parser(
        "motion-ae",
        help="stage 1: motion auto-encoder (self-reconstruction + GAN)",
        description="Stage 1: train the motion auto-encoder by reconstructing a driving frame "
        "from a source frame of the same clip.",
    )
    _common(mae)
    mae.add_argument(
        "--vgg-weights",
        metavar="FILE",
        help="ImageNet VGG19 state dict (torchvision keys) for the perceptual loss; without it a "
        "fixed random-feature network of the same layout is used (no download)",
    )
    mae.add_argument(
        "--size",
        type=int,
        default=None,
        metavar="PX",
        help="image size: 64, 128, 256 or 512 (default: the preset's; must match the data)",
    )
    mae.add_argument(
        "--adam-beta1",
        type=float,
        default=0.0,
        metavar="B",
        help="Adam's first-moment decay for the auto-encoder (default 0, StyleGAN2's and LIA's; 0.9 learns "
        "much faster here; the demo recipe uses 0.9)",
    )
    mae.add_argument(
        "--channel-base",
        type=int,
        default=None,
        metavar="N",
        help="decoder/encoder width: N / resolution channels per scale, capped by the preset's maximum "
        "(default: the preset's; demo 2048, i.e. 16 channels at 128 px)",
    )
    mae.add_argument(
        "--adv-weight", type=float, default=0.05, help="weight of the adversarial loss (0 disables the GAN)"
    )
    mae.add_argument(
        "--perceptual-weight",
        type=float,
        default=1.0,
        help="weight of the multi-scale perceptual loss (default 1; without --vgg-weights its features are random)",
    )
    mae.add_argument(
        "--mouth-weight",
        type=float,
        default=1.0,
        help="weight of the extra L1 on the mouth box of the face crop (the demo recipe uses 10)",
    )
    mae.add_argument(
        "--near-pairs",
        type=float,
        default=0.0,
        metavar="P",
        help="share of training pairs whose driving frame is at most --near-gap frames from the source "
        "(pose barely changes, so the loss is about the mouth and eyes; default 0)",
    )
    mae.add_argument(
        "--speech-anchor",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of a loss tying motion coordinate 0 to the jaw opening implied by each clip's speech "
        "(self-supervised, no labels; the demo recipe uses 1; default 0 = plain LIA)",
    )
    mae.add_argument(
        "--expression-anchor",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of a loss tying motion coordinates 1..K to the per-frame expression truth that preprocess "
        "keeps from the synthetic world's sidecars (default 0 = off; the demo recipe uses 1)",
    )
    mae.add_argument(
        "--landmark-flow",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of a loss making the decoder's warp carry each driving-frame landmark back to the same "
        "landmark of the source, from the per-frame landmarks preprocess keeps from the synthetic world's "
        "sidecars (default 0 = off; the demo recipe uses 100)",
    )
    mae.add_argument("--near-gap", type=int, default=6, metavar="N", help="largest frame gap of a near pair")
    mae.add_argument(
        "--first-source",
        type=float,
        default=0.0,
        metavar="P",
        help="share of training pairs whose source is one of the clip's first 5 frames, as at inference where one "
        "photo is driven through a whole clip (with clips that start neutral: the pairs that change expression; "
        "default 0)",
    )
    mae.add_argument(
        "--eye-weight",
        type=float,
        default=1.0,
        help="weight of the extra L1 on the eye band of the face crop, where brows show expression (default 1)",
    )
    mae.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from the auto-encoder of this stage-1 run (or model folder) instead of from scratch",
    )
    mae.add_argument(
        "--ema-decay",
        type=float,
        default=0.0,
        metavar="D",
        help="export, probe and hand to stage 2 an exponential moving average of the weights with this decay "
        "(e.g. 0.995; default 0 = the raw weights of the last step)",
    )
    mae.set_defaults(run=run_motion_ae)
    fmt = stages.add_parser(
        "fmt",
        help="stage 2: flow matching transformer on frozen motion latents",
        description="Stage 2: train the FMT (and the audio projection) on motion latents of the "
        "frozen auto-encoder, cached once per data folder.",
    )
    _common(fmt)
    fmt.add_argument(
        "--motion-ae",
        required=True,
        metavar="RUN_OR_CHECKPOINT",
        help="stage-1 run folder, a floatalk model folder or a FLOAT release folder",
    )
    fmt.add_argument(
        "--wav2vec2",
        metavar="DIR",
        help="use wav2vec2 audio features from this local folder (e.g. wav2vec2-base-960h); "
        "default: the built-in log-mel front end, which needs no weights",
    )
    fmt.add_argument(
        "--emotion-model",
        metavar="DIR",
        help="release speech-emotion folder to predict emotions of unlabelled clips; default: a small "
        "log-mel classifier trained on the clip labels",
    )
    fmt.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay of the exported weights")
    fmt.add_argument(
        "--drop-audio",
        type=float,
        default=0.1,
        metavar="P",
        help="probability that a sample's audio condition is dropped (default 0.1, the paper's); higher makes "
        "the emotion label, not the speech, decide more of the expression",
    )
    fmt.add_argument(
        "--drop-emotion",
        type=float,
        default=0.1,
        metavar="P",
        help="probability that a sample's emotion condition is dropped (default 0.1, the paper's)",
    )
    fmt.add_argument(
        "--drop-reference",
        type=float,
        default=0.1,
        metavar="P",
        help="probability that a sample's reference motion is dropped (default 0.1, the paper's)",
    )
    fmt.add_argument(
        "--first-reference",
        type=float,
        default=0.0,
        metavar="P",
        help="share of samples whose reference motion is one of the clip's first 5 frames, as at inference where "
        "the reference is the source photo (with clips that start neutral, the expression must then come from "
        "the emotion label; default 0 = any frame)",
    )
    fmt.set_defaults(run=run_fmt)
    return p


def _settings(args: argparse.Namespace, default_lr: float):
    from floatalk.errors import UserInputError
    from floatalk.training.loop import LoopSettings

    for name in ("max_steps", "batch_size", "grad_accum", "ckpt_every", "log_every", "sample_every", "warmup"):
        if getattr(args, name) < 1:
            raise UserInputError(f"--{name.replace('_', '-')} must be at least 1.")
    if not 0 <= args.ema_decay < 1:
        raise UserInputError(f"--ema-decay must be in [0, 1) (got {args.ema_decay}).")
    return LoopSettings(
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr if args.lr is not None else default_lr,
        warmup=args.warmup,
        seed=args.seed,
        ckpt_every=args.ckpt_every,
        log_every=args.log_every,
        sample_every=args.sample_every,
        quiet=args.quiet,
    )


def _check_shares(args: argparse.Namespace, *names: str) -> None:
    """Probabilities and shares must lie in [0, 1]; a one-sentence error names the flag."""
    from floatalk.errors import UserInputError

    for name in names:
        if not 0 <= getattr(args, name) <= 1:
            raise UserInputError(f"--{name.replace('_', '-')} must be between 0 and 1 (got {getattr(args, name)}).")


def run_motion_ae(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from floatalk.errors import UserInputError
    from floatalk.training.motion_ae_trainer import MotionAELosses, train_motion_ae
    from floatalk.training.presets import preset

    _check_shares(args, "near_pairs", "first_source")
    for name in ("speech_anchor", "expression_anchor", "landmark_flow"):
        if getattr(args, name) < 0:
            raise UserInputError(f"--{name.replace('_', '-')} must not be negative (got {getattr(args, name)}).")
    if not 0 <= args.adam_beta1 < 1:
        raise UserInputError(f"--adam-beta1 must be in [0, 1) (got {args.adam_beta1}).")
    model_cfg = preset(args.config).motion_ae
    if args.size is not None:
        if args.size not in (64, 128, 256, 512):
            raise UserInputError(f"--size must be 64, 128, 256 or 512 (got {args.size}).")
        model_cfg = replace(model_cfg, size=args.size)
    if args.channel_base is not None:
        if not 256 <= args.channel_base <= 65536:
            raise UserInputError(f"--channel-base must be between 256 and 65536 (got {args.channel_base}).")
        model_cfg = replace(model_cfg, channel_base=args.channel_base)
    train_motion_ae(
        args.data,
        args.out,
        model_cfg,
        _settings(args, 2e-3),
        MotionAELosses(
            adversarial=args.adv_weight,
            perceptual=args.perceptual_weight,
            mouth=args.mouth_weight,
            region=args.eye_weight,
            near_pairs=args.near_pairs,
            near_gap=args.near_gap,
            first_source=args.first_source,
            speech_anchor=args.speech_anchor,
            expression_anchor=args.expression_anchor,
            landmark_flow=args.landmark_flow,
            adam_beta1=args.adam_beta1,
            ema_decay=args.ema_decay,
        ),
        resume=args.resume,
        vgg_weights=args.vgg_weights,
        device=args.device,
        init_from=args.init_from,
    )
    return 0


def run_fmt(args: argparse.Namespace) -> int:
    from floatalk.training.fmt_trainer import FMTLosses, train_fmt

    _check_shares(args, "drop_audio", "drop_emotion", "drop_reference", "first_reference")

    train_fmt(
        args.data,
        args.motion_ae,
        args.out,
        args.config,
        _settings(args, 1e-4),
        FMTLosses(
            ema_decay=args.ema_decay,
            drop_audio=args.drop_audio,
            drop_emotion=args.drop_emotion,
            drop_reference=args.drop_reference,
            first_reference=args.first_reference,
        ),
        resume=args.resume,
        wav2vec2_dir=args.wav2vec2,
        emotion_dir=args.emotion_model,
        device=args.device,
    )
    return 0
