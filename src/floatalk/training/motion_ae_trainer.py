"""Stage 1: the motion auto-encoder, trained by self-reconstruction (paper section 3.1 / LIA).

Each sample takes two frames of one clip: the source gives the identity (s_src and feature
maps), the driving frame gives the motion (lambda_drv); the decoder must render the driving
frame from style s_src + Q lambda_drv. Loss: L1 + multi-scale perceptual + eye/mouth region L1
+ non-saturating adversarial (StyleGAN2 discriminator, lazy R1), and optional anchors and a
landmark flow loss where the data carries truth for them.

The run folder holds checkpoints/last.pt (resumable), log.csv, samples/*.png and, at the end
(and at every checkpoint), motion_ae/ with the weights that `floatalk train fmt --motion-ae`
takes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from floatalk.checkpoint import atomic_write
from floatalk.config import MotionAEConfig
from floatalk.errors import UserInputError
from floatalk.models.motion_ae import MotionAutoEncoder
from floatalk.training import distributed as D
from floatalk.training.data import Clip, read_manifest
from floatalk.training.discriminator import Discriminator
from floatalk.training.loop import (
    LoopSettings,
    Progress,
    autocast,
    config_dict,
    maybe_checkpoint,
    start_or_resume,
    update_ema,
)
from floatalk.training.losses import (
    EYES,
    MOUTH,
    PerceptualNet,
    discriminator_loss,
    generator_adv_loss,
    landmark_flow_loss,
    perceptual_loss,
    r1_penalty,
    region_l1,
)
from floatalk.training.probe import probe_lipsync
from floatalk.training.state import rng_state

STAGE = "motion-ae"
EXPORT_DIR = "motion_ae"
FIRST_FRAMES = 5  # "first" frames of a clip (0..4): pair_batch's first sources, stage 2's first references
PROBE_CLIPS = 4  # held-out clips re-rendered at every sample step (floatalk.training.probe)


@dataclass(frozen=True)
class MotionAELosses:
    """Loss weights and GAN schedule."""

    l1: float = 1.0
    perceptual: float = 1.0
    region: float = 1.0  # eye band L1
    mouth: float = 1.0  # mouth box L1 (the demo recipe raises it: the mouth is a few pixels at 128 px)
    adversarial: float = 0.05
    adv_start: int = 0  # step from which the discriminator trains and the adversarial term is on
    r1_gamma: float = 1.0
    r1_every: int = 16
    near_pairs: float = 0.0  # share of pairs whose driving frame is within near_gap frames of the source
    near_gap: int = 6
    # Share of pairs whose source is one of the clip's first FIRST_FRAMES frames (checked before
    # near_pairs). Inference drives one photo through a whole clip; in clips that start neutral,
    # these pairs are the ones that carry the expression change.
    first_source: float = 0.0
    # Weight of the speech anchor: (lambda_drv[0] - lambda_src[0] - (o_drv - o_src))^2, o the jaw
    # opening implied by the clip's speech. It gives the motion code a lip coordinate of unit scale
    # from the first steps, which the decoder then learns to render (0 = off, plain LIA).
    speech_anchor: float = 0.0
    # EMA of the generator's weights: exported, probed and used by stage 2 (0 = off, the raw weights).
    # With a constant learning rate the raw weights wander between samples; the average does not.
    ema_decay: float = 0.0
    # Weight of the expression anchor: motion coordinates 1..K move with the data's per-frame
    # expression truth (DATA/clips/NAME/expression.npy, K values per frame, each standardised over
    # the training frames): (lambda_drv - lambda_src)[1:K+1] = (e_drv - e_src) / std. Like the speech
    # anchor for the mouth, it hands the decoder clean expression coordinates to learn to render
    # (0 = off). It needs that truth, which the synthetic world writes; real footage would need an
    # expression tracker's output in its place.
    expression_anchor: float = 0.0
    # Adam's first-moment decay for the auto-encoder (StyleGAN2 and LIA use 0, no momentum). Pure
    # self-reconstruction at 128 px reached L1 0.045 after 250 steps with 0.9 and lr 1e-2, against
    # 0.087 with 0 and lr 2e-3 (`--near-pairs 1 --near-gap 0`); the demo recipe uses 0.9 at lr 5e-3.
    adam_beta1: float = 0.0
    # Weight of the landmark flow loss (`losses.landmark_flow_loss`): the decoder's warp at every
    # scale must carry each driving-frame landmark back to the same landmark of the source
    # (DATA/clips/NAME/landmarks.npy; 0 = off). Photometric losses alone hardly move features that
    # shift by a few pixels; this supervises the motion itself. Needs landmark truth, which the
    # synthetic world writes; real footage would need a landmark tracker's output in its place.
    landmark_flow: float = 0.0


def require_truth(clips: list[Clip], rows: list[np.ndarray | None], flag: str, what: str, key: str) -> list[np.ndarray]:
    """`rows` (one per clip, None where preprocess found no `key` in the clip's sidecar), or a
    one-sentence UserInputError naming `flag`, the first clip without `what` and how many lack it."""
    missing = [c.name for c, r in zip(clips, rows) if r is None]
    if missing:
        raise UserInputError(
            f"{flag} needs per-frame {what}, which clip '{missing[0]}' lacks ({len(missing)} of {len(clips)} "
            f"clips); preprocess videos whose .json sidecars give '{key}'."
        )
    return rows  # type: ignore[return-value]


def expression_truth(clips: list[Clip]) -> list[np.ndarray]:
    """Each clip's (T, K) expression truth divided by its per-column std over all `clips`' frames.

    UserInputError if a clip has none (preprocess writes it only from sidecars that give it)."""
    rows = require_truth(
        clips, [c.load_expression() for c in clips], "--expression-anchor", "expression truth", "expression_frames"
    )
    std = np.concatenate(rows).std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(r / std).astype(np.float32) for r in rows]


def clip_landmarks(clips: list[Clip]) -> list[np.ndarray]:
    """Each clip's (T, L, 2) landmarks; UserInputError if a clip has none or counts differ."""
    rows = require_truth(clips, [c.load_landmarks() for c in clips], "--landmark-flow", "landmarks", "landmarks")
    if len({r.shape[1] for r in rows}) > 1:
        raise UserInputError("--landmark-flow needs the same landmarks in every clip, but their counts differ.")
    return rows


class PairBatch(NamedTuple):
    """What `pair_batch` draws (B pairs; S image size, K expression values, L landmarks)."""

    src: Tensor  # (B, 3, S, S) in [-1, 1]
    drv: Tensor  # (B, 3, S, S)
    delta: Tensor  # (B,) speech-implied opening of drv minus src (zeros without openings)
    expr_delta: Tensor  # (B, K) expression truth of drv minus src ((B, 0) without)
    marks: Tensor  # (B, 2, L, 2) landmarks of src ([:, 0]) and drv ([:, 1]) ((B, 2, 0, 2) without)


def pair_batch(
    clips: list[Clip],
    frames: list[np.ndarray],
    batch: int,
    rng: np.random.Generator,
    near: tuple[float, int] = (0.0, 0),
    openings: list[np.ndarray] | None = None,
    first: float = 0.0,
    expressions: list[np.ndarray] | None = None,
    landmarks: list[np.ndarray] | None = None,
) -> PairBatch:
    """Random (source, driving) frame pairs, each from one clip: two (B, 3, S, S) tensors in [-1, 1],
    (B,) the speech-implied mouth opening of the driving frame minus that of the source frame
    (zeros without `openings`, per-clip (T,) arrays from `speech_openings`), (B, K) the driving
    frame's expression minus the source frame's (per-clip (T, K) arrays `expressions`; (B, 0) without)
    and (B, 2, L, 2) both frames' landmarks (per-clip (T, L, 2) arrays `landmarks`; (B, 2, 0, 2) without).

    near = (p, gap): with probability p the driving frame is at most `gap` frames from the source,
    so head pose barely changes and the difference to render is mostly mouth and eyes.
    first: probability (checked before `near`) that the source is one of the clip's first
    FIRST_FRAMES frames and the driving frame anywhere in the clip.
    """
    src, drv, delta, expr, marks = [], [], [], [], []
    for _ in range(batch):
        c = int(rng.integers(len(clips)))
        n = frames[c].shape[0]
        i, j = rng.integers(n, size=2)
        if first > 0 and rng.random() < first:
            i = int(rng.integers(min(n, FIRST_FRAMES)))
        elif rng.random() < near[0]:
            j = int(np.clip(i + rng.integers(-near[1], near[1] + 1), 0, n - 1))
        src.append(frames[c][i])
        drv.append(frames[c][j])
        delta.append(0.0 if openings is None else float(openings[c][j] - openings[c][i]))
        if expressions is not None:
            expr.append(expressions[c][j] - expressions[c][i])
        if landmarks is not None:
            marks.append(np.stack([landmarks[c][i], landmarks[c][j]]))
    to = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # noqa: E731
    expr_delta = torch.from_numpy(np.stack(expr)).float() if expr else torch.zeros(batch, 0)
    mark_pairs = torch.from_numpy(np.stack(marks)).float() if marks else torch.zeros(batch, 2, 0, 2)
    return PairBatch(to(src), to(drv), torch.tensor(delta, dtype=torch.float32), expr_delta, mark_pairs)


def speech_openings(clip: Clip, fps: float) -> np.ndarray:
    """(T,) jaw opening implied by the clip's speech (the lip-sync meter's audio side), 0..1."""
    from floatalk.evaluation import audio_opening

    return audio_opening(clip.load_audio(), clip.frames, fps=fps)


def export_motion_ae(model: MotionAutoEncoder, folder: Path) -> None:
    """Write motion_ae.safetensors + motion_ae_config.json (the input of stage 2)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / "motion_ae.safetensors", lambda p: save_file(state, str(p)))
    atomic_write(folder / "motion_ae_config.json", lambda p: p.write_text(json.dumps(asdict(model.cfg), indent=2)))


def start_with_identity_flow(model: MotionAutoEncoder) -> None:
    """Zero the flow heads' weights: every scale starts as an identity warp with mask 0.5, so the
    decoder reproduces the source from the first steps and learns motion as departures from it.
    A fresh StyleGAN2-style init starts from random flows instead, and at 128 px on a CPU budget
    it had not learned to move the mouth after 1800 steps (held-out probe lip sync r = -0.04)."""
    with torch.no_grad():
        for head in model.dec.to_flows:
            head.conv.weight.zero_()


def write_probe(run_dir: Path, step: int, result: dict[str, float], progress: Progress) -> None:
    """Append one row to probe.csv (step, recon_r, truth_r, psnr, still_psnr) and show it above the bar."""
    path = run_dir / "probe.csv"
    new = not path.exists()
    with path.open("a") as f:
        if new:
            f.write("step,recon_r,truth_r,psnr,still_psnr\n")
        f.write(
            f"{step},{result['recon_r']:.4f},{result['truth_r']:.4f},{result['psnr']:.2f},{result['still_psnr']:.2f}\n"
        )
    progress.bar.write(
        f"step {step}: held-out lip-sync through the auto-encoder r = {result['recon_r']:.3f} "
        f"(real frames {result['truth_r']:.3f}), PSNR {result['psnr']:.1f} dB (source held still "
        f"{result['still_psnr']:.1f} dB)"
    )


def save_grid(path: Path, rows: list[Tensor]) -> None:
    """PNG grid: each tensor (B, 3, S, S) in [-1, 1] is one row."""
    from PIL import Image

    grid = torch.cat([torch.cat(list(r.clamp(-1, 1)), dim=2) for r in rows], dim=1)
    img = ((grid + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def train_motion_ae(
    data: str | Path,
    out: str | Path,
    model_cfg: MotionAEConfig,
    settings: LoopSettings,
    losses: MotionAELosses = MotionAELosses(),
    resume: bool = False,
    vgg_weights: str | Path | None = None,
    device: str = "auto",
    init_from: str | Path | None = None,
) -> Path:
    """Train (or continue) stage 1; returns the run folder.

    `init_from` (a stage-1 run or any folder `load_motion_ae` reads) starts a new run from those
    auto-encoder weights instead of from scratch (fine-tuning); the optimizers start fresh.
    """
    ctx = D.setup(device)
    run_dir = Path(out)
    try:
        meta, clips = read_manifest(data)
        if meta["size"] != model_cfg.size:
            raise UserInputError(f"'{data}' holds {meta['size']} px crops but the model is {model_cfg.size} px.")
        train = [c for c in clips if c.split == "train"] or clips
        start_from = None if init_from is None else str(init_from)
        extra = {"losses": asdict(losses), "data": str(data), "init_from": start_from}
        config = config_dict(STAGE, model_cfg, settings, extra)
        state = start_or_resume(run_dir, STAGE, config, resume, ctx)

        torch.manual_seed(settings.seed)
        gen = MotionAutoEncoder(model_cfg).to(ctx.device)
        start_with_identity_flow(gen)
        if init_from is not None and state is None:
            start_model = load_motion_ae(init_from)
            if start_model.cfg != model_cfg:
                raise UserInputError(f"'{init_from}' holds a motion AE of another configuration than --config/--size.")
            gen.load_state_dict(start_model.state_dict())
        disc = Discriminator(model_cfg).to(ctx.device)
        vgg = torch.load(vgg_weights, map_location="cpu", weights_only=True) if vgg_weights else None
        percept = PerceptualNet(vgg).to(ctx.device)
        opt_g = torch.optim.Adam(gen.parameters(), lr=settings.lr, betas=(losses.adam_beta1, 0.99))
        r1_ratio = losses.r1_every / (losses.r1_every + 1)  # lazy regularisation (StyleGAN2)
        opt_d = torch.optim.Adam(disc.parameters(), lr=settings.lr * r1_ratio, betas=(0.0, 0.99**r1_ratio))
        warmup = max(1, settings.warmup)
        sched = torch.optim.lr_scheduler.LambdaLR(opt_g, lambda s: min(1.0, (s + 1) / warmup))
        start = 0
        if state is not None:
            gen.load_state_dict(state["model"])
            disc.load_state_dict(state["disc"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            sched.load_state_dict(state["sched"])
            start = int(state["step"])
        D.broadcast_module(gen, ctx)
        D.broadcast_module(disc, ctx)
        ema = copy.deepcopy(gen).eval().requires_grad_(False) if losses.ema_decay > 0 else None
        if ema is not None and state is not None:
            ema.load_state_dict(state["ema"])
        shown = gen if ema is None else ema  # the weights that are exported and probed
        frames = [c.load_frames() for c in train]
        probe_clips = [c for c in clips if c.split == "val"][:PROBE_CLIPS]
        openings = [speech_openings(c, meta["fps"]) for c in train] if losses.speech_anchor > 0 else None
        expressions = expression_truth(train) if losses.expression_anchor > 0 else None
        landmarks = clip_landmarks(train) if losses.landmark_flow > 0 else None
        if expressions is not None and expressions[0].shape[1] + 1 > model_cfg.motion_dim:
            raise UserInputError(
                f"--expression-anchor needs {expressions[0].shape[1] + 1} motion coordinates but the model has "
                f"{model_cfg.motion_dim}."
            )

        def make_state() -> dict:
            export_motion_ae(shown, run_dir / EXPORT_DIR)
            extra = {} if ema is None else {"ema": ema.state_dict()}
            return {
                **extra,
                "stage": STAGE,
                "step": step,
                "config": config,
                "model": gen.state_dict(),
                "disc": disc.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng_state(),
            }

        progress = Progress(run_dir, start, settings.max_steps, settings, ctx, "motion-ae")
        gen.train()
        disc.train()
        for step in range(start + 1, settings.max_steps + 1):
            use_adv = step > losses.adv_start and losses.adversarial > 0
            logs: dict[str, float] = {}
            opt_g.zero_grad(set_to_none=True)
            fakes, reals = [], []
            for micro in range(settings.grad_accum):
                # Per-step randomness depends only on (seed, step, micro-batch, rank): resume is exact.
                rng = np.random.default_rng([settings.seed, step, micro, ctx.rank])
                src, drv, delta, expr_delta, marks = (
                    t.to(ctx.device)
                    for t in pair_batch(
                        train,
                        frames,
                        settings.batch_size,
                        rng,
                        (losses.near_pairs, losses.near_gap),
                        openings,
                        losses.first_source,
                        expressions,
                        landmarks,
                    )
                )
                with autocast(ctx):
                    s_src, lam_src, feats = gen.encode(src)
                    _, lam_drv, _ = gen.encode(drv)
                    grids: list[Tensor] | None = [] if landmarks is not None else None
                    fake = gen.decode(s_src + gen.motion(lam_drv), feats, grids)  # = gen(src, drv)
                    l1 = (fake - drv).abs().mean()
                    perc = perceptual_loss(percept, fake, drv) if losses.perceptual > 0 else fake.new_zeros(())
                    region = region_l1(fake, drv, EYES)
                    mouth = region_l1(fake, drv, MOUTH)
                    loss = losses.l1 * l1 + losses.perceptual * perc + losses.region * region + losses.mouth * mouth
                    if openings is not None:
                        # Speech anchor: motion coordinate 0 moves with the speech-implied jaw opening.
                        anchor = (lam_drv[:, 0] - lam_src[:, 0] - delta).pow(2).mean()
                        loss = loss + losses.speech_anchor * anchor
                        logs["anchor"] = logs.get("anchor", 0.0) + anchor.item() / settings.grad_accum
                    if expressions is not None:
                        # Expression anchor: motion coordinates 1..K move with the expression truth.
                        k = expr_delta.shape[1]
                        e_anchor = (lam_drv[:, 1 : k + 1] - lam_src[:, 1 : k + 1] - expr_delta).pow(2).mean()
                        loss = loss + losses.expression_anchor * e_anchor
                        logs["e_anchor"] = logs.get("e_anchor", 0.0) + e_anchor.item() / settings.grad_accum
                    if grids is not None:
                        flow = landmark_flow_loss(grids, marks[:, 0], marks[:, 1])
                        loss = loss + losses.landmark_flow * flow
                        logs["flow"] = logs.get("flow", 0.0) + flow.item() / settings.grad_accum
                    if use_adv:
                        adv = generator_adv_loss(disc(fake))
                        loss = loss + losses.adversarial * adv
                        logs["g_adv"] = logs.get("g_adv", 0.0) + adv.item() / settings.grad_accum
                (loss / settings.grad_accum).backward()
                for k, v in (("l1", l1), ("perceptual", perc), ("region", region), ("mouth", mouth)):
                    logs[k] = logs.get(k, 0.0) + v.item() / settings.grad_accum
                fakes.append(fake.detach())
                reals.append(drv)
            D.average_gradients(gen.parameters(), ctx)
            opt_g.step()
            sched.step()
            if ema is not None:
                update_ema(ema.parameters(), gen.parameters(), losses.ema_decay)
            if use_adv:
                opt_d.zero_grad(set_to_none=True)
                for fake, real in zip(fakes, reals):
                    with autocast(ctx):
                        d_loss = discriminator_loss(disc(real), disc(fake))
                    (d_loss / settings.grad_accum).backward()
                    logs["d"] = logs.get("d", 0.0) + d_loss.item() / settings.grad_accum
                if step % losses.r1_every == 0:
                    r1 = r1_penalty(disc, reals[0])
                    (losses.r1_gamma / 2 * r1 * losses.r1_every).backward()
                    logs["r1"] = r1.item()
                D.average_gradients(disc.parameters(), ctx)
                opt_d.step()
            progress.step(step, logs)
            if ctx.is_main and (step % settings.sample_every == 0 or step == settings.max_steps):
                save_grid(run_dir / "samples" / f"step_{step:07d}.png", [src[:4], drv[:4], fakes[-1][:4]])
                if probe_clips:
                    write_probe(run_dir, step, probe_lipsync(shown, probe_clips, fps=meta["fps"]), progress)
            maybe_checkpoint(run_dir, step, settings, ctx, make_state, [gen, disc])
        progress.close()
        return run_dir
    finally:
        D.teardown()


def load_motion_ae(path: str | Path) -> MotionAutoEncoder:
    """The motion AE from a stage-1 run folder, its motion_ae/ folder, a floatalk model folder or a
    release folder."""
    from safetensors.torch import load_file

    from floatalk.checkpoint import is_floatalk_folder, is_release_folder, load_model, load_strict
    from floatalk.config import build_dataclass

    folder = Path(path)
    for cand in (folder / EXPORT_DIR, folder):
        if (cand / "motion_ae_config.json").is_file():
            cfg = build_dataclass(MotionAEConfig, json.loads((cand / "motion_ae_config.json").read_text()))
            model = MotionAutoEncoder(cfg)
            load_strict(model, load_file(cand / "motion_ae.safetensors"), None, cand / "motion_ae.safetensors")
            return model.eval()
    if folder.is_dir() and (is_floatalk_folder(folder) or is_release_folder(folder)):
        return load_model(folder).motion_autoencoder.eval()
    raise UserInputError(f"'{folder}' is not a motion-ae run, a floatalk model folder or a FLOAT release folder.")
