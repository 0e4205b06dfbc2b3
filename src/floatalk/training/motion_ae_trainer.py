"""Stage 1: the motion auto-encoder, trained by self-reconstruction (paper section 3.1 / LIA).

Each sample takes two frames of one clip: the source gives the identity (s_src and feature
maps), the driving frame gives the motion (lambda_drv); the decoder must render the driving
frame from style s_src + Q lambda_drv. Loss: L1 + multi-scale perceptual + eye/mouth region L1
+ non-saturating adversarial (StyleGAN2 discriminator, lazy R1), plus the optional plug-ins of
`floatalk.training.auxiliary` (speech anchor, expression anchor, landmark flow).

The run folder holds checkpoints/last.pt (resumable), log.csv, probe.csv, samples/*.png and, at
every checkpoint, motion_ae/: the auto-encoder (the weight average with --ema-decay) in the
floatalk folder format, which `floatalk train fmt --motion-ae` takes.

Letters: B pairs, S image size, M motion coordinates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from floatalk.checkpoint import load_motion_autoencoder, load_strict, read_weights, save_pretrained
from floatalk.config import MotionAEConfig, build_dataclass
from floatalk.convert import to_pixels, to_tensor
from floatalk.errors import UserInputError
from floatalk.fileio import atomic_write
from floatalk.model_folders import is_floatalk_folder, is_release_folder, read_json
from floatalk.models.motion_ae import MotionAutoEncoder
from floatalk.training import distributed as D
from floatalk.training.auxiliary import (
    AuxiliaryLoss,
    ExpressionAnchor,
    LandmarkFlow,
    PairBatch,
    Reconstruction,
    SpeechAnchor,
)
from floatalk.training.configs import FIRST_FRAMES, MotionAELosses, MotionAETrainConfig
from floatalk.training.data import read_manifest
from floatalk.training.discriminator import Discriminator
from floatalk.training.loop import accumulate, autocast, update_ema
from floatalk.training.losses import (
    EYES,
    MOUTH,
    PerceptualNet,
    discriminator_loss,
    generator_adv_loss,
    perceptual_loss,
    r1_penalty,
    region_l1,
)
from floatalk.training.probe import probe_lipsync

STAGE = "motion-ae"
EXPORT_DIR = "motion_ae"
LEGACY_CONFIG, LEGACY_WEIGHTS = "motion_ae_config.json", "motion_ae.safetensors"  # exports of older versions
PROBE_CLIPS = 4  # held-out clips re-rendered at every sample step (floatalk.training.probe)


def pair_batch(
    frames: list[np.ndarray],
    batch: int,
    rng: np.random.Generator,
    near: tuple[float, int] = (0.0, 0),
    first: float = 0.0,
) -> PairBatch:
    """Random (source, driving) frame pairs, each from one clip's (T, S, S, 3) uint8 `frames`.

    near = (p, gap): with probability p the driving frame is at most `gap` frames from the source,
    so head pose barely changes and the difference to render is mostly mouth and eyes.
    first: probability (checked before `near`) that the source is one of the clip's first
    FIRST_FRAMES frames and the driving frame anywhere in the clip.
    """
    src, drv, pairs = [], [], []
    for _ in range(batch):
        c = int(rng.integers(len(frames)))
        n = frames[c].shape[0]
        i, j = rng.integers(n, size=2)
        if first > 0 and rng.random() < first:
            i = int(rng.integers(min(n, FIRST_FRAMES)))
        elif rng.random() < near[0]:
            j = int(np.clip(i + rng.integers(-near[1], near[1] + 1), 0, n - 1))
        src.append(frames[c][i])
        drv.append(frames[c][j])
        pairs.append((c, int(i), int(j)))
    return PairBatch(
        to_tensor(np.stack(src)), to_tensor(np.stack(drv)), np.array(pairs, dtype=np.int64).reshape(batch, 3)
    )


def auxiliary_losses(losses: MotionAELosses, fps: float, motion_dim: int) -> list[AuxiliaryLoss]:
    """The optional losses whose weight is above 0, in the order their terms are added."""
    chosen: list[AuxiliaryLoss] = []
    if losses.speech_anchor > 0:
        chosen.append(SpeechAnchor(losses.speech_anchor, fps))
    if losses.expression_anchor > 0:
        chosen.append(ExpressionAnchor(losses.expression_anchor, motion_dim))
    if losses.landmark_flow > 0:
        chosen.append(LandmarkFlow(losses.landmark_flow))
    return chosen


def start_with_identity_flow(model: MotionAutoEncoder) -> None:
    """Zero the flow heads' weights: every scale starts as an identity warp with mask 0.5, so the
    decoder reproduces the source from the first steps and learns motion as departures from it.
    A fresh StyleGAN2-style init starts from random flows instead, and at 128 px on a CPU budget
    it had not learned to move the mouth after 1800 steps (held-out probe lip sync r = -0.04)."""
    with torch.no_grad():
        for head in model.dec.to_flows:
            head.conv.weight.zero_()


def write_probe(run_dir: Path, step: int, result: dict[str, float]) -> str:
    """Append one row to probe.csv (step, recon_r, truth_r, psnr, still_psnr); returns it as a sentence."""
    path = run_dir / "probe.csv"
    new = not path.exists()
    with path.open("a") as f:
        if new:
            f.write("step,recon_r,truth_r,psnr,still_psnr\n")
        f.write(
            f"{step},{result['recon_r']:.4f},{result['truth_r']:.4f},{result['psnr']:.2f},{result['still_psnr']:.2f}\n"
        )
    return (
        f"step {step}: held-out lip-sync through the auto-encoder r = {result['recon_r']:.3f} "
        f"(real frames {result['truth_r']:.3f}), PSNR {result['psnr']:.1f} dB (source held still "
        f"{result['still_psnr']:.1f} dB)"
    )


def save_grid(path: Path, rows: list[Tensor]) -> None:
    """PNG grid: each tensor (B, 3, S, S) in [-1, 1] is one row."""
    from PIL import Image

    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # (3, rows * S, B * S)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(to_pixels(grid))
    atomic_write(path, lambda p: image.save(p, format="PNG"))


def load_motion_ae(path: str | Path) -> MotionAutoEncoder:
    """The motion AE of a stage-1 run folder, its export (RUN/motion_ae), a floatalk model folder or
    a release folder (or an export of an older version: motion_ae_config.json + motion_ae.safetensors)."""
    folder = Path(path)
    for cand in (folder / EXPORT_DIR, folder):
        if is_floatalk_folder(cand) or is_release_folder(cand):
            return load_motion_autoencoder(cand)
        if (cand / LEGACY_CONFIG).is_file():
            model = MotionAutoEncoder(build_dataclass(MotionAEConfig, read_json(cand / LEGACY_CONFIG)))
            load_strict(model, read_weights(cand / LEGACY_WEIGHTS), None, cand / LEGACY_WEIGHTS)
            return model.eval()
    raise UserInputError(f"'{folder}' is not a motion-ae run, a floatalk model folder or a FLOAT release folder.")


class MotionAERecipe:
    """Stage 1 as a recipe of `floatalk.training.loop.train`."""

    stage = STAGE

    def __init__(self, cfg: MotionAETrainConfig) -> None:
        self.cfg, self.losses, self.model_cfg = cfg, cfg.losses, cfg.model_config()
        self.run_dir = Path(cfg.out)

    def model_config(self) -> MotionAEConfig:
        return self.model_cfg

    def setup(self, ctx: D.Context, state: dict[str, Any] | None) -> None:
        cfg, losses, self.ctx = self.cfg, self.losses, ctx
        meta, clips = read_manifest(cfg.data)
        if meta["size"] != self.model_cfg.size:
            raise UserInputError(
                f"'{cfg.data}' holds {meta['size']} px crops but the model is {self.model_cfg.size} px."
            )
        self.fps = meta["fps"]
        self.clips = [c for c in clips if c.split == "train"] or clips
        self.probe_clips = [c for c in clips if c.split == "val"][:PROBE_CLIPS]

        torch.manual_seed(cfg.loop.seed)
        self.gen = MotionAutoEncoder(self.model_cfg).to(ctx.device)
        start_with_identity_flow(self.gen)
        if cfg.init_from is not None and state is None:
            start = load_motion_ae(cfg.init_from)
            if start.cfg != self.model_cfg:
                raise UserInputError(
                    f"'{cfg.init_from}' holds a motion AE of another configuration than --config/--size."
                )
            self.gen.load_state_dict(start.state_dict())
        self.disc = Discriminator(self.model_cfg).to(ctx.device)
        vgg = torch.load(cfg.vgg_weights, map_location="cpu", weights_only=True) if cfg.vgg_weights else None
        self.percept = PerceptualNet(vgg).to(ctx.device)
        lr = cfg.loop.lr
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=lr, betas=(losses.adam_beta1, 0.99))
        r1_ratio = losses.r1_every / (losses.r1_every + 1)  # lazy regularisation (StyleGAN2)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr * r1_ratio, betas=(0.0, 0.99**r1_ratio))
        warmup = max(1, cfg.loop.warmup)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lambda s: min(1.0, (s + 1) / warmup))
        self.ema = copy.deepcopy(self.gen).eval().requires_grad_(False) if losses.ema_decay > 0 else None
        if state is not None:
            self.load_state_dict(state)
        self.shown = self.gen if self.ema is None else self.ema  # the weights that are exported and probed
        self.frames = [c.load_frames() for c in self.clips]
        self.aux_losses = auxiliary_losses(losses, self.fps, self.model_cfg.motion_dim)
        for aux in self.aux_losses:
            aux.prepare(self.clips)
        self.gen.train()
        self.disc.train()

    def modules(self) -> list[nn.Module]:
        return [self.gen, self.disc]

    def reconstruct(self, batch: PairBatch) -> Reconstruction:
        """Render each driving frame from its source's identity (= gen(src, drv))."""
        gen = self.gen
        s_src, lam_src, feats = gen.encode(batch.src)
        _, lam_drv, _ = gen.encode(batch.drv)
        grids: list[Tensor] | None = [] if any(aux.needs_grids for aux in self.aux_losses) else None
        fake = gen.decode(s_src + gen.motion(lam_drv), feats, grids)
        return Reconstruction(fake, lam_src, lam_drv, grids or [])

    def step(self, step: int) -> dict[str, float]:
        losses, loop, n = self.losses, self.cfg.loop, self.cfg.loop.grad_accum
        use_adv = step > losses.adv_start and losses.adversarial > 0
        logs: dict[str, float] = {}
        self.opt_g.zero_grad(set_to_none=True)
        fakes, reals = [], []
        for micro in range(n):
            # Per-step randomness depends only on (seed, step, micro-batch, rank): resume is exact.
            rng = np.random.default_rng([loop.seed, step, micro, self.ctx.rank])
            src, drv, pairs = pair_batch(
                self.frames, loop.batch_size, rng, (losses.near_pairs, losses.near_gap), losses.first_source
            )
            batch = PairBatch(src.to(self.ctx.device), drv.to(self.ctx.device), pairs)
            with autocast(self.ctx):
                out = self.reconstruct(batch)
                l1 = (out.fake - batch.drv).abs().mean()
                perc = (
                    perceptual_loss(self.percept, out.fake, batch.drv)
                    if losses.perceptual > 0
                    else out.fake.new_zeros(())
                )
                region, mouth = region_l1(out.fake, batch.drv, EYES), region_l1(out.fake, batch.drv, MOUTH)
                loss = losses.l1 * l1 + losses.perceptual * perc + losses.region * region + losses.mouth * mouth
                for aux in self.aux_losses:
                    term, values = aux.loss(batch, out)
                    loss = loss + term
                    accumulate(logs, values, n)
                if use_adv:
                    adv = generator_adv_loss(self.disc(out.fake))
                    loss = loss + losses.adversarial * adv
                    accumulate(logs, {"g_adv": adv.item()}, n)
            (loss / n).backward()
            accumulate(
                logs, {"l1": l1.item(), "perceptual": perc.item(), "region": region.item(), "mouth": mouth.item()}, n
            )
            fakes.append(out.fake.detach())
            reals.append(batch.drv)
        D.average_gradients(self.gen.parameters(), self.ctx)
        self.opt_g.step()
        self.sched.step()
        if self.ema is not None:
            update_ema(self.ema.parameters(), self.gen.parameters(), losses.ema_decay)
        if use_adv:
            logs.update(self.discriminator_step(step, fakes, reals))
        self.shown_rows = [batch.src[:4], batch.drv[:4], fakes[-1][:4]]
        return logs

    def discriminator_step(self, step: int, fakes: list[Tensor], reals: list[Tensor]) -> dict[str, float]:
        """Non-saturating D loss on the step's micro-batches, plus lazy R1 every r1_every steps."""
        losses, logs = self.losses, {}
        self.opt_d.zero_grad(set_to_none=True)
        for fake, real in zip(fakes, reals):
            with autocast(self.ctx):
                d_loss = discriminator_loss(self.disc(real), self.disc(fake))
            (d_loss / len(fakes)).backward()
            accumulate(logs, {"d": d_loss.item()}, len(fakes))
        if step % losses.r1_every == 0:
            r1 = r1_penalty(self.disc, reals[0])
            (losses.r1_gamma / 2 * r1 * losses.r1_every).backward()
            logs["r1"] = r1.item()
        D.average_gradients(self.disc.parameters(), self.ctx)
        self.opt_d.step()
        return logs

    def sample(self, step: int, say: Callable[[str], None]) -> None:
        save_grid(self.run_dir / "samples" / f"step_{step:07d}.png", self.shown_rows)
        if self.probe_clips:
            say(write_probe(self.run_dir, step, probe_lipsync(self.shown, self.probe_clips, fps=self.fps)))

    def state_dict(self) -> dict[str, Any]:
        state = {
            "model": self.gen.state_dict(),
            "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched": self.sched.state_dict(),
        }
        return state if self.ema is None else {**state, "ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.load_state_dict(state["model"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched.load_state_dict(state["sched"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def export(self, step: int) -> None:
        trained = {"trained": {"step": step, "data": self.cfg.data}}
        save_pretrained(self.shown, self.run_dir / EXPORT_DIR, extra=trained)
