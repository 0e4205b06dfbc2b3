"""Does a stage-1 auto-encoder carry lip motion? A cheap check before spending time on stage 2.

Each held-out clip is re-rendered through the auto-encoder: the identity and feature maps of
its first frame, the motion code of every frame (`s_src + Q lambda_t`). The lip-sync meter then
scores the re-rendered video against the clip's audio. An auto-encoder that drops the mouth
scores near 0 even when its PSNR looks fine; the clip's own frames score near 1.

Letters: T frames, S image size.
"""

from __future__ import annotations

import numpy as np
import torch

from floatalk.convert import to_pixels, to_tensor
from floatalk.models.motion_ae import MotionAutoEncoder
from floatalk.training.data import Clip
from floatalk.units import FPS


@torch.inference_mode()
def reconstruct_clip(model: MotionAutoEncoder, frames: np.ndarray, batch: int = 16) -> np.ndarray:
    """frames (T, S, S, 3) uint8 -> (T, S, S, 3) uint8 rendered from frame 0's identity and each frame's motion."""
    device = next(model.parameters()).device
    s_src, _, feats = model.encode(to_tensor(frames[:1]).to(device))
    out = []
    for i in range(0, len(frames), batch):
        _, lam, _ = model.encode(to_tensor(frames[i : i + batch]).to(device))
        style = s_src + model.motion(lam)
        img = model.decode(style, [f.expand(len(lam), -1, -1, -1) for f in feats])
        out.append(to_pixels(img))
    return np.concatenate(out)


def probe_lipsync(model: MotionAutoEncoder, clips: list[Clip], fps: float = FPS) -> dict[str, float]:
    """Mean lip-sync correlation (offset 0) of the clips re-rendered through `model`, and of the
    clips' own frames, plus the mean PSNR of the re-rendering and, as its baseline, of the first frame
    held still (an auto-encoder that only copies its source scores about that). Keys: recon_r,
    truth_r, psnr, still_psnr."""
    from floatalk.evaluation import psnr, score_lipsync

    was_training = model.training
    model.eval()
    recon, truth, quality, still = [], [], [], []
    try:
        for clip in clips:
            frames = np.asarray(clip.load_frames())
            audio = clip.load_audio()
            rendered = reconstruct_clip(model, frames)
            real = score_lipsync(frames, audio, fps=fps, max_offset=0)
            box = tuple(real["face_box"])  # both videos are measured in the face box found on the real one
            recon.append(score_lipsync(rendered, audio, fps=fps, max_offset=0, box=box)["correlation"])
            truth.append(real["correlation"])
            quality.append(psnr(rendered, frames))
            still.append(psnr(np.repeat(frames[:1], len(frames), axis=0), frames))
    finally:
        model.train(was_training)
    return {
        "recon_r": float(np.mean(recon)),
        "truth_r": float(np.mean(truth)),
        "psnr": float(np.mean(quality)),
        "still_psnr": float(np.mean(still)),
    }
