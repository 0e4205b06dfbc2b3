"""Stage 1's optional losses, as plug-ins with one small interface (`AuxiliaryLoss`).

Each plug-in reads what it needs from the training clips once (`prepare`), then turns a batch of
(source, driving) pairs and the auto-encoder's outputs into a weighted loss term and its log
values (`loss`). Per-frame truth comes from `Clip.load_annotation(NAME)`, i.e. DATA/clips/CLIP/
NAME.npy with one row per frame, whatever wrote it (preprocess keeps it from the synthetic
world's sidecars; a tracker run on real footage could write the same files):

- `SpeechAnchor` (--speech-anchor): no file; the jaw opening implied by each clip's audio.
- `ExpressionAnchor` (--expression-anchor): expression.npy, (T, K) float32.
- `LandmarkFlow` (--landmark-flow): landmarks.npy, (T, L, 2) float32 in the crop's [-1, 1].

Letters: B pairs, T frames, K expression values, L landmarks, M motion coordinates.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from floatalk.errors import UserInputError
from floatalk.training.data import Clip
from floatalk.training.losses import landmark_flow_loss


class PairBatch(NamedTuple):
    """B (source, driving) frame pairs, each from one clip."""

    src: Tensor  # (B, 3, S, S) in [-1, 1]
    drv: Tensor  # (B, 3, S, S)
    pairs: np.ndarray  # (B, 3) int: index of the clip, of the source frame, of the driving frame


class Reconstruction(NamedTuple):
    """What the auto-encoder made of a PairBatch."""

    fake: Tensor  # (B, 3, S, S): the driving frame rendered from the source's identity
    lam_src: Tensor  # (B, M) motion coefficients of the source
    lam_drv: Tensor  # (B, M) of the driving frame
    grids: list[Tensor]  # per-scale sampling grids (B, H, W, 2); empty unless a loss needs them


class AuxiliaryLoss(Protocol):
    """An optional stage-1 loss: `prepare` once on the training clips, then `loss` per micro-batch."""

    flag: str  # the command-line flag of its weight, named in its error messages
    needs_grids: bool  # whether the decoder must hand over its sampling grids

    def prepare(self, clips: list[Clip]) -> None:
        """Read what the loss needs from `clips` (the list whose indices PairBatch.pairs holds)."""

    def loss(self, batch: PairBatch, out: Reconstruction) -> tuple[Tensor, dict[str, float]]:
        """(the weighted loss term, {log column: unweighted value})."""


def clip_annotations(clips: list[Clip], name: str, flag: str, what: str, key: str) -> list[np.ndarray]:
    """Each clip's per-frame annotation `name`, or a one-sentence UserInputError naming `flag`, the
    first clip without `what` and how many lack it (`key`: the sidecar entry preprocess keeps)."""
    rows = [c.load_annotation(name) for c in clips]
    missing = [c.name for c, r in zip(clips, rows) if r is None]
    if missing:
        raise UserInputError(
            f"{flag} needs per-frame {what}, which clip '{missing[0]}' lacks ({len(missing)} of {len(clips)} "
            f"clips); preprocess videos whose .json sidecars give '{key}'."
        )
    return rows  # type: ignore[return-value]


def speech_openings(clip: Clip, fps: float) -> np.ndarray:
    """(T,) jaw opening implied by the clip's speech (the lip-sync meter's audio side), 0..1."""
    from floatalk.evaluation import audio_opening

    return audio_opening(clip.load_audio(), clip.frames, fps=fps)


def expression_truth(clips: list[Clip]) -> list[np.ndarray]:
    """Each clip's (T, K) expression.npy divided by its per-column std over all `clips`' frames."""
    rows = clip_annotations(clips, "expression", "--expression-anchor", "expression truth", "expression_frames")
    std = np.concatenate(rows).std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(r / std).astype(np.float32) for r in rows]


def clip_landmarks(clips: list[Clip]) -> list[np.ndarray]:
    """Each clip's (T, L, 2) landmarks.npy; UserInputError if a clip has none or counts differ."""
    rows = clip_annotations(clips, "landmarks", "--landmark-flow", "landmarks", "landmarks")
    if len({r.shape[1] for r in rows}) > 1:
        raise UserInputError("--landmark-flow needs the same landmarks in every clip, but their counts differ.")
    return rows


class PairTruthLoss:
    """Base of the plug-ins below: `read` gives each clip's per-frame rows (T, ...) once, and
    `pair_rows` hands a batch's (B, 2, ...) rows of each pair's source ([:, 0]) and driving frame."""

    flag = ""
    needs_grids = False

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.rows: list[np.ndarray] = []

    def read(self, clips: list[Clip]) -> list[np.ndarray]:
        raise NotImplementedError

    def prepare(self, clips: list[Clip]) -> None:
        self.rows = self.read(clips)

    def pair_rows(self, batch: PairBatch) -> np.ndarray:
        return np.stack([np.stack([self.rows[c][i], self.rows[c][j]]) for c, i, j in batch.pairs])


class SpeechAnchor(PairTruthLoss):
    """(lambda_drv[0] - lambda_src[0] - (o_drv - o_src))^2, o the jaw opening implied by the clip's
    speech: motion coordinate 0 becomes a lip coordinate of unit scale from the first steps, which
    the decoder then learns to render."""

    flag = "--speech-anchor"

    def __init__(self, weight: float, fps: float) -> None:
        super().__init__(weight)
        self.fps = fps

    def read(self, clips: list[Clip]) -> list[np.ndarray]:
        return [speech_openings(c, self.fps) for c in clips]

    def loss(self, batch: PairBatch, out: Reconstruction) -> tuple[Tensor, dict[str, float]]:
        rows = self.pair_rows(batch)  # (B, 2)
        delta = torch.from_numpy(rows[:, 1] - rows[:, 0]).float().to(out.lam_drv.device)  # (B,)
        anchor = (out.lam_drv[:, 0] - out.lam_src[:, 0] - delta).pow(2).mean()
        return self.weight * anchor, {"anchor": anchor.item()}


class ExpressionAnchor(PairTruthLoss):
    """(lambda_drv - lambda_src)[1:K+1] = (e_drv - e_src) / std: motion coordinates 1..K move with the
    clips' expression values, as the speech anchor ties coordinate 0 to the mouth."""

    flag = "--expression-anchor"

    def __init__(self, weight: float, motion_dim: int) -> None:
        super().__init__(weight)
        self.motion_dim = motion_dim

    def read(self, clips: list[Clip]) -> list[np.ndarray]:
        truth = expression_truth(clips)
        k = truth[0].shape[1]
        if k + 1 > self.motion_dim:
            raise UserInputError(f"{self.flag} needs {k + 1} motion coordinates but the model has {self.motion_dim}.")
        return truth

    def loss(self, batch: PairBatch, out: Reconstruction) -> tuple[Tensor, dict[str, float]]:
        rows = self.pair_rows(batch)  # (B, 2, K)
        delta = torch.from_numpy(rows[:, 1] - rows[:, 0]).float().to(out.lam_drv.device)  # (B, K)
        k = delta.shape[1]
        e_anchor = (out.lam_drv[:, 1 : k + 1] - out.lam_src[:, 1 : k + 1] - delta).pow(2).mean()
        return self.weight * e_anchor, {"e_anchor": e_anchor.item()}


class LandmarkFlow(PairTruthLoss):
    """`losses.landmark_flow_loss`: the decoder's warp at every scale must carry each driving-frame
    landmark back to the same landmark of the source. Photometric losses alone hardly move features
    that shift by a few pixels; this supervises the motion itself."""

    flag = "--landmark-flow"
    needs_grids = True

    def read(self, clips: list[Clip]) -> list[np.ndarray]:
        return clip_landmarks(clips)

    def loss(self, batch: PairBatch, out: Reconstruction) -> tuple[Tensor, dict[str, float]]:
        marks = torch.from_numpy(self.pair_rows(batch)).float().to(out.fake.device)  # (B, 2, L, 2)
        flow = landmark_flow_loss(out.grids, marks[:, 0], marks[:, 1])
        return self.weight * flow, {"flow": flow.item()}
