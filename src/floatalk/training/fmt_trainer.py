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

The run folder holds checkpoints/last.pt, log.csv and model/ (a complete floatalk folder, EMA
weights) that `FloatPipeline.from_pretrained` and `floatalk generate --checkpoint` load.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.checkpoint import save_pretrained
from floatalk.config import EMOTIONS, AudioEncoderConfig, EmotionEncoderConfig, FloatConfig, Wav2Vec2Settings
from floatalk.errors import UserInputError
from floatalk.models.float_model import FloatModel
from floatalk.pipeline import normalize_audio
from floatalk.training import distributed as D
from floatalk.training.data import Clip, read_manifest
from floatalk.training.loop import (
    LoopSettings,
    Progress,
    autocast,
    config_dict,
    maybe_checkpoint,
    start_or_resume,
    update_ema,
)
from floatalk.training.motion_ae_trainer import FIRST_FRAMES, load_motion_ae
from floatalk.training.presets import preset
from floatalk.training.state import rng_state

STAGE = "fmt"
EXPORT_DIR = "model"


@dataclass(frozen=True)
class FMTLosses:
    velocity: float = 1.0  # weight of the frame-difference (velocity) loss
    drop_audio: float = 0.1
    drop_emotion: float = 0.1
    drop_reference: float = 0.1
    drop_previous: float = 0.5
    emotion_ce: float = 1.0  # log-mel emotion classifier loss weight
    ema_decay: float = 0.999
    # Share of samples whose reference is one of the clip's first FIRST_FRAMES frames instead of
    # any frame. At inference the reference is the source photo; in clips that start neutral these
    # samples are the ones where the expression must come from the emotion label, not the reference.
    first_reference: float = 0.0


def build_model_config(
    preset_name: str, motion_cfg, wav2vec2_dir: Path | None, emotion_dir: Path | None
) -> FloatConfig:
    """Full config: stage 1's motion AE, the preset's FMT sized to it, the chosen audio/emotion front ends."""
    from floatalk.checkpoint import read_json

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
            x = torch.from_numpy(np.array(frames[i : i + 16])).permute(0, 3, 1, 2).float() / 127.5 - 1
            lams.append(ae.encode(x.to(device))[1])
        r = ae.motion(torch.cat(lams)).cpu().numpy().astype(np.float32)
        wave = normalize_audio(clip.load_audio())
        feats = audio.layer_features(torch.from_numpy(wave)[None].to(device), clip.frames)[0]
        probs = np.zeros(len(EMOTIONS), np.float32)
        if clip.emotion is not None:
            probs[EMOTIONS.index(clip.emotion)] = 1.0
        elif model.cfg.emotion.kind == "wav2vec2":
            probs = model.emotion_encoder(torch.from_numpy(wave)[None].to(device))[0, 0].cpu().numpy()
        tmp = target.with_suffix(".tmp.npz")
        np.savez(tmp, r=r, feats=feats.cpu().numpy().astype(np.float16), probs=probs)
        tmp.rename(target)


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
    n = int(seconds * 16000)
    waves, labels = [], []
    for _ in range(batch):
        c = labelled[int(rng.integers(len(labelled)))]
        a = c.load_audio()
        s = int(rng.integers(0, max(1, len(a) - n + 1)))
        seg = np.pad(a[s : s + n], (0, max(0, n - len(a[s : s + n]))))
        waves.append(normalize_audio(seg))
        labels.append(EMOTIONS.index(c.emotion))
    return torch.from_numpy(np.stack(waves)), torch.tensor(labels)


def train_fmt(
    data: str | Path,
    motion_ae: str | Path,
    out: str | Path,
    preset_name: str,
    settings: LoopSettings,
    losses: FMTLosses = FMTLosses(),
    resume: bool = False,
    wav2vec2_dir: str | Path | None = None,
    emotion_dir: str | Path | None = None,
    device: str = "auto",
) -> Path:
    """Train (or continue) stage 2; returns the run folder (model/ inside loads with from_pretrained)."""
    ctx = D.setup(device)
    run_dir = Path(out)
    try:
        meta, clips = read_manifest(data)
        mae = load_motion_ae(motion_ae)
        if meta["size"] != mae.cfg.size:
            raise UserInputError(f"'{data}' holds {meta['size']} px crops but the motion AE is {mae.cfg.size} px.")
        w2v = Path(wav2vec2_dir) if wav2vec2_dir else None
        emo = Path(emotion_dir) if emotion_dir else None
        model_cfg = build_model_config(preset_name, mae.cfg, w2v, emo)
        L, Lp = model_cfg.fmt.window, model_cfg.fmt.prev
        train = [c for c in clips if c.split == "train" and c.frames >= L] or [c for c in clips if c.frames >= L]
        if not train:
            raise UserInputError(f"No clip in '{data}' has the {L} frames one training window needs.")
        config = config_dict(
            STAGE, model_cfg, settings, {"losses": asdict(losses), "data": str(data), "motion_ae": str(motion_ae)}
        )
        state = start_or_resume(run_dir, STAGE, config, resume, ctx)

        torch.manual_seed(settings.seed)
        model = FloatModel(model_cfg)
        model.motion_autoencoder.load_state_dict(mae.state_dict())
        if w2v is not None:
            load_hf_backbone(model.audio_encoder.wav2vec2, w2v)
        if emo is not None:
            load_hf_backbone(model.emotion_encoder.wav2vec2_for_emotion, emo)
        model.to(ctx.device).requires_grad_(False)
        trained = _trained_modules(model)
        params = [p for m in trained for p in m.parameters() if p.dtype.is_floating_point]
        pos_embed = model.fmt.pos_embed  # fixed sin/cos table: never trained
        params = [p for p in params if p is not pos_embed]
        for p in params:
            p.requires_grad_(True)

        cache_dir = Path(data) / "cache" / _cache_key(model)
        if ctx.is_main:
            build_cache(model, train, cache_dir, ctx.device)
        D.barrier(ctx)
        cache = [dict(np.load(cache_dir / f"{c.name}.npz")) for c in train]

        opt = torch.optim.Adam(params, lr=settings.lr)
        warmup = max(1, settings.warmup)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        ema = [p.detach().clone() for p in params]
        start = 0
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            ema = [e.to(ctx.device) for e in state["ema"]]
            start = int(state["step"])
        D.broadcast_module(model, ctx)

        def export() -> None:
            shadow = copy.deepcopy(model).cpu()
            shadow_params = [p for m in _trained_modules(shadow) for p in m.parameters() if p.dtype.is_floating_point]
            shadow_params = [p for p in shadow_params if p is not shadow.fmt.pos_embed]
            with torch.no_grad():
                for p, e in zip(shadow_params, ema):
                    p.copy_(e.cpu())
            save_pretrained(shadow.eval(), run_dir / EXPORT_DIR, extra={"trained": {"step": step, "data": str(data)}})
            if step % settings.sample_every == 0 or step == settings.max_steps:
                write_sample_video(shadow, sample_clip, run_dir / "samples" / f"step_{step:07d}.mp4")

        def make_state() -> dict:
            export()
            return {
                "stage": STAGE,
                "step": step,
                "config": config,
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "ema": [e.cpu() for e in ema],
                "rng": rng_state(),
            }

        val = [c for c in clips if c.split == "val"] or clips
        sample_clip = val[0]
        progress = Progress(run_dir, start, settings.max_steps, settings, ctx, "fmt")
        for m in trained:
            m.train()
        for step in range(start + 1, settings.max_steps + 1):
            opt.zero_grad(set_to_none=True)
            logs: dict[str, float] = {}
            for micro in range(settings.grad_accum):
                seed = [settings.seed, step, micro, ctx.rank]
                rng = np.random.default_rng(seed)
                g = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2**62)))
                batch = {
                    k: v.to(ctx.device)
                    for k, v in window_batch(cache, L, Lp, settings.batch_size, rng, losses.first_reference).items()
                }
                with autocast(ctx):
                    loss, parts = flow_matching_loss(model, batch, losses, g)
                    if model_cfg.emotion.kind == "logmel" and losses.emotion_ce > 0:
                        eb = emotion_batch(train, settings.batch_size, 2.0, rng)
                        if eb is not None:
                            ce = F.cross_entropy(
                                model.emotion_encoder.logits(eb[0].to(ctx.device)), eb[1].to(ctx.device)
                            )
                            loss = loss + losses.emotion_ce * ce
                            parts["emotion_ce"] = ce.item()
                (loss / settings.grad_accum).backward()
                for k, v in parts.items():
                    logs[k] = logs.get(k, 0.0) + v / settings.grad_accum
            D.average_gradients(params, ctx)
            opt.step()
            sched.step()
            update_ema(ema, params, losses.ema_decay)
            progress.step(step, logs)
            maybe_checkpoint(run_dir, step, settings, ctx, make_state, trained)
        progress.close()
        return run_dir
    finally:
        D.teardown()


def _trained_modules(model: FloatModel) -> list[nn.Module]:
    mods: list[nn.Module] = [model.fmt, model.audio_encoder.audio_projection]
    if model.cfg.emotion.kind == "logmel":
        mods.append(model.emotion_encoder)
    return mods


def write_sample_video(model: FloatModel, clip: Clip, path: Path, seconds: float = 2.0) -> None:
    """Animate the clip's first frame with its first seconds of audio (EMA weights) into an mp4."""
    from floatalk.io.video import VideoWriter
    from floatalk.pipeline import FloatPipeline

    pipe = FloatPipeline(model)
    audio = clip.load_audio()[: int(seconds * 16000)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps=25, audio=audio, sample_rate=16000) as writer:
        for _, frames in pipe.stream(image=np.array(clip.load_frames()[0]), audio=audio, crop=False, nfe=6):
            writer.write(frames)
