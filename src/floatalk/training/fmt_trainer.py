"""Stage 2: the flow matching transformer on frozen motion latents (paper section 3.3 / 3.5).

Latents are cached once per data folder and motion AE: for every clip, r_t = Q lambda(frame t)
(T, D) and the frozen audio front end's features (wav2vec2 layer outputs or stacked log-mel).
A sample is a window of L frames x1 = r[s:s+L] with the L' previous latents and audio features
from the real clip (zeros before the clip starts), a reference r_s = r of a random frame of the
clip, and the emotion (the clip's label as one-hot, else the emotion model's prediction).

Conditional OT flow matching: x_t = (1 - t) x0 + t x1, u = x1 - x0, loss ||v - u||^2 plus the
velocity loss on frame differences; condition dropout per sample (audio 0.1, emotion 0.1,
reference 0.1, previous frames + previous audio 0.5), applied to copies, never in place. The
audio projection trains with the FMT; a log-mel emotion classifier (if used) trains on the clip
labels at the same time. EMA of the trained weights is what gets exported.

`FMTRecipe` is the stage as a recipe of `floatalk.training.loop.train`. The run folder holds
checkpoints/last.pt, log.csv, samples/*.mp4 and, at every checkpoint, model/ (a complete floatalk
folder, EMA weights) that `FloatPipeline.from_pretrained` and `floatalk generate --checkpoint` load.

Letters: B batch, L window, L' previous frames, Dx motion latent, F audio features, E emotions.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.checkpoint import save_pretrained
from floatalk.config import (
    EMOTIONS,
    AudioEncoderConfig,
    EmotionEncoderConfig,
    FloatConfig,
    MotionAEConfig,
    Wav2Vec2Settings,
)
from floatalk.convert import to_tensor
from floatalk.engine import normalize_audio
from floatalk.errors import UserInputError
from floatalk.fileio import atomic_path
from floatalk.models.float_model import FloatModel
from floatalk.training import distributed as D
from floatalk.training.configs import FIRST_FRAMES, FMTLosses, FMTTrainConfig
from floatalk.training.data import Clip, read_manifest
from floatalk.training.loop import accumulate, autocast, update_ema
from floatalk.training.motion_ae_trainer import load_motion_ae
from floatalk.training.presets import preset
from floatalk.units import SAMPLE_RATE

STAGE = "fmt"
EXPORT_DIR = "model"


def build_model_config(
    preset_name: str, motion_cfg: MotionAEConfig, wav2vec2_dir: Path | None, emotion_dir: Path | None
) -> FloatConfig:
    """Full config: stage 1's motion AE, the preset's FMT sized to it, the chosen audio/emotion front ends."""
    from floatalk.model_folders import read_json

    base = preset(preset_name)
    audio = base.audio if base.audio.kind == "logmel" else replace(base.audio, kind="logmel")
    if wav2vec2_dir is not None:
        audio = AudioEncoderConfig(
            wav2vec2=Wav2Vec2Settings.from_dict(read_json(wav2vec2_dir / "config.json")), dim_out=base.audio.dim_out
        )
    emotion = base.emotion if base.emotion.kind == "logmel" else EmotionEncoderConfig(kind="logmel")
    if emotion_dir is not None:
        cfg = read_json(emotion_dir / "config.json")
        emotion = EmotionEncoderConfig(
            wav2vec2=Wav2Vec2Settings.from_dict(cfg), num_labels=len(EMOTIONS), pooling=cfg.get("pooling_mode", "mean")
        )
    fmt = replace(base.fmt, dim_x=motion_cfg.style_dim, dim_a=audio.dim_out, dim_e=len(EMOTIONS))
    return FloatConfig(motion_ae=motion_cfg, audio=audio, emotion=emotion, fmt=fmt)


def load_hf_backbone(module: nn.Module, folder: Path) -> None:
    """Weights of a Hugging Face wav2vec2 folder into our module (strict, legacy names accepted)."""
    from floatalk.checkpoint import load_strict, read_hf_weights, rename_weight_norm, strip_backbone_prefix

    file, state = read_hf_weights(folder)
    if hasattr(module, "classifier"):
        load_strict(module, rename_weight_norm(state, module), None, file)
    else:
        load_strict(module, rename_weight_norm(strip_backbone_prefix(state, file), module), None, file)


def _cache_key(model: FloatModel) -> str:
    h = hashlib.sha256()
    for k, v in model.motion_autoencoder.state_dict().items():
        h.update(k.encode())
        h.update(v.float().cpu().numpy().tobytes())
    h.update(json.dumps(asdict(model.cfg.audio), sort_keys=True).encode())
    for k, v in model.audio_encoder.state_dict().items():
        if "audio_projection" not in k:
            h.update(k.encode())
            h.update(v.float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.inference_mode()
def build_cache(model: FloatModel, clips: list[Clip], cache_dir: Path, device: torch.device) -> None:
    """Per clip: r (T, D) float32 motion latents, feats (T, F) float16 audio front-end features, probs (K,)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    ae, audio = model.motion_autoencoder, model.audio_encoder
    for clip in clips:
        target = cache_dir / f"{clip.name}.npz"
        if target.is_file():
            continue
        frames = clip.load_frames()
        lams = []
        for i in range(0, len(frames), 16):
            lams.append(ae.encode(to_tensor(frames[i : i + 16]).to(device))[1])
        r = ae.motion(torch.cat(lams)).cpu().numpy().astype(np.float32)
        wave = normalize_audio(clip.load_audio())
        feats = audio.layer_features(torch.from_numpy(wave)[None].to(device), clip.frames)[0]
        probs = np.zeros(len(EMOTIONS), np.float32)
        if clip.emotion is not None:
            probs[EMOTIONS.index(clip.emotion)] = 1.0
        elif model.cfg.emotion.kind == "wav2vec2":
            probs = model.emotion_encoder(torch.from_numpy(wave)[None].to(device))[0, 0].cpu().numpy()
        with atomic_path(target, ".npz") as tmp:
            np.savez(tmp, r=r, feats=feats.cpu().numpy().astype(np.float16), probs=probs)


def window_batch(
    cache: list[dict[str, np.ndarray]],
    L: int,
    Lp: int,
    batch: int,
    rng: np.random.Generator,
    first_reference: float = 0.0,
) -> dict[str, Tensor]:
    """A batch of training windows (numpy -> tensors); see the module docstring.

    Keys: x1 (B, L, Dx), feats (B, L, F), prev_x (B, L', Dx), prev_feats (B, L', F), ref (B, Dx),
    we (B, 1, E), has_prev (B,). With probability `first_reference` a sample's reference is one of
    its clip's first FIRST_FRAMES frames (as stage 1's first sources), else any frame of the clip.
    """
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("x1", "feats", "prev_x", "prev_feats", "ref", "we", "has_prev")}
    for _ in range(batch):
        c = cache[int(rng.integers(len(cache)))]
        r, feats = c["r"], c["feats"].astype(np.float32)
        s = int(rng.integers(0, r.shape[0] - L + 1))
        out["x1"].append(r[s : s + L])
        out["feats"].append(feats[s : s + L])
        has = s >= Lp
        out["prev_x"].append(r[s - Lp : s] if has else np.zeros((Lp, r.shape[1]), np.float32))
        out["prev_feats"].append(feats[s - Lp : s] if has else np.zeros((Lp, feats.shape[1]), np.float32))
        first = first_reference > 0 and rng.random() < first_reference
        out["ref"].append(r[int(rng.integers(min(FIRST_FRAMES, r.shape[0]) if first else r.shape[0]))])
        out["we"].append(c["probs"][None])
        out["has_prev"].append(np.array(has))
    return {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}


def flow_matching_loss(
    model: FloatModel, b: dict[str, Tensor], losses: FMTLosses, g: torch.Generator
) -> tuple[Tensor, dict[str, float]]:
    """OT flow matching + velocity loss on one batch (inputs are never modified in place)."""
    fmt, proj = model.fmt, model.audio_encoder.audio_projection
    B, L, _ = b["x1"].shape
    wa, prev_wa = proj(b["feats"]), proj(b["prev_feats"])
    keep = lambda p: (torch.rand(B, generator=g) >= p).float()  # noqa: E731
    k_audio, k_emo, k_ref = keep(losses.drop_audio), keep(losses.drop_emotion), keep(losses.drop_reference)
    k_prev = keep(losses.drop_previous) * b["has_prev"].float()
    dev = b["x1"].device
    k_audio, k_emo, k_ref, k_prev = (k.to(dev) for k in (k_audio, k_emo, k_ref, k_prev))
    x0 = torch.randn(b["x1"].shape, generator=g).to(dev)
    t = torch.rand(B, generator=g).to(dev)
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * b["x1"]
    u = b["x1"] - x0
    v = fmt(
        t,
        xt,
        wa * k_audio[:, None, None],
        b["ref"] * k_ref[:, None],
        b["we"] * k_emo[:, None, None],
        b["prev_x"] * k_prev[:, None, None],
        prev_wa * k_prev[:, None, None],
    )[:, -L:]
    fm = F.mse_loss(v, u)
    vel = F.mse_loss(v[:, 1:] - v[:, :-1], u[:, 1:] - u[:, :-1])
    return fm + losses.velocity * vel, {"fm": fm.item(), "velocity": vel.item()}


def emotion_batch(
    clips: list[Clip], batch: int, seconds: float, rng: np.random.Generator
) -> tuple[Tensor, Tensor] | None:
    """Random labelled audio crops (B, N) normalized, and labels (B,), for the log-mel emotion classifier."""
    labelled = [c for c in clips if c.emotion is not None]
    if not labelled:
        return None
    n = int(seconds * SAMPLE_RATE)
    waves, labels = [], []
    for _ in range(batch):
        c = labelled[int(rng.integers(len(labelled)))]
        a = c.load_audio()
        s = int(rng.integers(0, max(1, len(a) - n + 1)))
        seg = np.pad(a[s : s + n], (0, max(0, n - len(a[s : s + n]))))
        waves.append(normalize_audio(seg))
        labels.append(EMOTIONS.index(c.emotion))
    return torch.from_numpy(np.stack(waves)), torch.tensor(labels)


def trained_parameters(model: FloatModel) -> list[nn.Parameter]:
    """The floating-point parameters of the trained modules, without the fixed sin/cos position table."""
    params = [p for m in _trained_modules(model) for p in m.parameters() if p.dtype.is_floating_point]
    return [p for p in params if p is not model.fmt.pos_embed]


class FMTRecipe:
    """Stage 2 as a recipe of `floatalk.training.loop.train`."""

    stage = STAGE

    def __init__(self, cfg: FMTTrainConfig) -> None:
        self.cfg, self.losses = cfg, cfg.losses
        self.run_dir = Path(cfg.out)

    def model_config(self) -> FloatConfig:
        """Reads the manifest and the frozen motion AE, which the model config follows."""
        cfg = self.cfg
        self.meta, self.clips = read_manifest(cfg.data)
        self.mae = load_motion_ae(cfg.motion_ae)
        if self.meta["size"] != self.mae.cfg.size:
            raise UserInputError(
                f"'{cfg.data}' holds {self.meta['size']} px crops but the motion AE is {self.mae.cfg.size} px."
            )
        self.w2v = Path(cfg.wav2vec2) if cfg.wav2vec2 else None
        self.emo = Path(cfg.emotion_model) if cfg.emotion_model else None
        self.model_cfg = build_model_config(cfg.config, self.mae.cfg, self.w2v, self.emo)
        L = self.model_cfg.fmt.window
        long_enough = [c for c in self.clips if c.frames >= L]
        self.train = [c for c in long_enough if c.split == "train"] or long_enough
        if not self.train:
            raise UserInputError(f"No clip in '{cfg.data}' has the {L} frames one training window needs.")
        return self.model_cfg

    def setup(self, ctx: D.Context, state: dict[str, Any] | None) -> None:
        self.ctx = ctx
        torch.manual_seed(self.cfg.loop.seed)
        model = self.model = FloatModel(self.model_cfg)
        model.motion_autoencoder.load_state_dict(self.mae.state_dict())
        if self.w2v is not None:
            load_hf_backbone(model.audio_encoder.wav2vec2, self.w2v)
        if self.emo is not None:
            load_hf_backbone(model.emotion_encoder.wav2vec2_for_emotion, self.emo)
        model.to(ctx.device).requires_grad_(False)
        self.params = trained_parameters(model)
        for p in self.params:
            p.requires_grad_(True)

        cache_dir = Path(self.cfg.data) / "cache" / _cache_key(model)
        if ctx.is_main:
            build_cache(model, self.train, cache_dir, ctx.device)
        D.barrier(ctx)
        self.cache = [dict(np.load(cache_dir / f"{c.name}.npz")) for c in self.train]

        self.opt = torch.optim.Adam(self.params, lr=self.cfg.loop.lr)
        warmup = max(1, self.cfg.loop.warmup)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / warmup))
        self.ema = [p.detach().clone() for p in self.params]
        if state is not None:
            self.load_state_dict(state)
        self.sample_clip = ([c for c in self.clips if c.split == "val"] or self.clips)[0]
        for m in self.modules():
            m.train()

    def modules(self) -> list[nn.Module]:
        return _trained_modules(self.model)

    def step(self, step: int) -> dict[str, float]:
        losses, loop, n = self.losses, self.cfg.loop, self.cfg.loop.grad_accum
        fmt, dev = self.model_cfg.fmt, self.ctx.device
        self.opt.zero_grad(set_to_none=True)
        logs: dict[str, float] = {}
        for micro in range(n):
            seed = [loop.seed, step, micro, self.ctx.rank]
            rng = np.random.default_rng(seed)
            g = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2**62)))
            windows = window_batch(self.cache, fmt.window, fmt.prev, loop.batch_size, rng, losses.first_reference)
            batch = {k: v.to(dev) for k, v in windows.items()}
            with autocast(self.ctx):
                loss, parts = flow_matching_loss(self.model, batch, losses, g)
                if self.model_cfg.emotion.kind == "logmel" and losses.emotion_ce > 0:
                    eb = emotion_batch(self.train, loop.batch_size, 2.0, rng)
                    if eb is not None:
                        ce = F.cross_entropy(self.model.emotion_encoder.logits(eb[0].to(dev)), eb[1].to(dev))
                        loss = loss + losses.emotion_ce * ce
                        parts["emotion_ce"] = ce.item()
            (loss / n).backward()
            accumulate(logs, parts, n)
        D.average_gradients(self.params, self.ctx)
        self.opt.step()
        self.sched.step()
        update_ema(self.ema, self.params, losses.ema_decay)
        return logs

    def averaged_model(self) -> FloatModel:
        """A CPU copy of the model holding the EMA weights, in eval mode."""
        shadow = copy.deepcopy(self.model).cpu()
        with torch.no_grad():
            for p, e in zip(trained_parameters(shadow), self.ema):
                p.copy_(e.cpu())
        return shadow.eval()

    def sample(self, step: int, say: Callable[[str], None]) -> None:
        write_sample_video(self.averaged_model(), self.sample_clip, self.run_dir / "samples" / f"step_{step:07d}.mp4")

    def state_dict(self) -> dict[str, Any]:
        model, opt, sched = self.model.state_dict(), self.opt.state_dict(), self.sched.state_dict()
        return {"model": model, "opt": opt, "sched": sched, "ema": [e.cpu() for e in self.ema]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.ema = [e.to(self.ctx.device) for e in state["ema"]]

    def export(self, step: int) -> None:
        trained = {"trained": {"step": step, "data": self.cfg.data}}
        save_pretrained(self.averaged_model(), self.run_dir / EXPORT_DIR, extra=trained)


def _trained_modules(model: FloatModel) -> list[nn.Module]:
    mods: list[nn.Module] = [model.fmt, model.audio_encoder.audio_projection]
    if model.cfg.emotion.kind == "logmel":
        mods.append(model.emotion_encoder)
    return mods


def write_sample_video(model: FloatModel, clip: Clip, path: Path, seconds: float = 2.0) -> None:
    """Animate the clip's first frame with its first seconds of audio (EMA weights) into an mp4,
    through the library's one render path."""
    from floatalk.pipeline import FloatPipeline
    from floatalk.render import render_video

    audio = clip.load_audio()[: int(seconds * SAMPLE_RATE)]
    path.parent.mkdir(parents=True, exist_ok=True)
    render_video(FloatPipeline(model), np.array(clip.load_frames()[0]), audio, path, crop=False, nfe=6)
