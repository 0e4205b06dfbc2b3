"""Reading and writing model folders.

Two layouts are understood:

* the public FLOAT release, as its users have it::

      DIR/float.pth                                       torch.save'd {name: tensor}
      DIR/wav2vec2-base-960h/                             config.json + model.safetensors or pytorch_model.bin
      DIR/wav2vec-english-speech-emotion-recognition/     config.json + weights

* the project's own format, written by `save_pretrained`::

      DIR/floatalk_config.json                            FloatConfig + format version
      DIR/model.safetensors                               every parameter, one file

  A stage-1 export (`floatalk train motion-ae`) is the same folder holding the motion
  auto-encoder alone: its config JSON says "part": "motion_ae" and holds a MotionAEConfig.
  `load_motion_autoencoder` reads it (or takes the auto-encoder of a whole model); the
  loaders of whole models refuse it in one sentence.

Loading is strict: torch files are read with weights_only=True, and a missing file, a
missing or unexpected key, or a wrong shape raises CheckpointError with one sentence naming
the file and the key.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from floatalk.config import MotionAEConfig
from floatalk.errors import CheckpointError
from floatalk.fileio import atomic_write
from floatalk.model_folders import (
    AUDIO_DIR,
    CONFIG_FILE,
    EMOTION_DIR,
    FORMAT_VERSION,
    MOTION_AE_PART,
    RELEASE_WEIGHTS,
    WEIGHTS_FILE,
    floatalk_config,
    folder_config,
    folder_meta,
    release_config,
    resolve_folder,
)
from floatalk.models.float_model import FloatModel
from floatalk.models.motion_ae import MotionAutoEncoder

# Heads of other wav2vec2 task classes (e.g. the CTC head of wav2vec2-base-960h) that the
# audio encoder does not use; they may sit beside the `wav2vec2.` backbone in a folder.
_UNUSED_HEADS = ("lm_head.", "quantizer.", "project_hid.", "project_q.", "projector.", "classifier.")
_LEGACY_WEIGHT_NORM = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


def load_model(path: str | os.PathLike) -> FloatModel:
    """Load either layout from a folder (or a release `float.pth` file beside its two sub-folders)."""
    folder, kind = resolve_folder(path)
    return load_floatalk_folder(folder) if kind == "floatalk" else load_release_folder(folder)


def load_release_folder(folder: Path) -> FloatModel:
    """Build a FloatModel from the release's float.pth and its two Hugging Face folders."""
    audio_dir, emotion_dir = folder / AUDIO_DIR, folder / EMOTION_DIR
    cfg = release_config(folder)
    model = FloatModel(cfg)

    float_file = folder / RELEASE_WEIGHTS
    main = read_weights(float_file)
    target = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith(("audio_encoder.wav2vec2.", "emotion_encoder.wav2vec2_for_emotion."))
    }
    load_strict(model, main, target, float_file)

    audio_file, audio_state = read_hf_weights(audio_dir)
    audio_state = strip_backbone_prefix(audio_state, audio_file)
    load_strict(
        model.audio_encoder.wav2vec2,
        rename_weight_norm(audio_state, model.audio_encoder.wav2vec2),
        None,
        audio_file,
    )

    emo_file, emo_state = read_hf_weights(emotion_dir)
    classifier = model.emotion_encoder.wav2vec2_for_emotion
    load_strict(classifier, rename_weight_norm(emo_state, classifier), None, emo_file)
    return model.eval()


def _load_folder_weights(model: nn.Module, folder: Path) -> nn.Module:
    weights = folder / WEIGHTS_FILE
    load_strict(model, read_weights(weights), None, weights)
    return model.eval()


def load_floatalk_folder(folder: Path) -> FloatModel:
    """Load a folder written by `save_pretrained`."""
    return _load_folder_weights(FloatModel(floatalk_config(folder)), folder)


def load_motion_autoencoder(path: str | os.PathLike) -> MotionAutoEncoder:
    """The motion auto-encoder of a stage-1 export, or that of a whole model (either layout)."""
    folder, kind = resolve_folder(path)
    if kind == "release":
        return load_release_folder(folder).motion_autoencoder
    meta = folder_meta(folder)
    if meta.get("part") != MOTION_AE_PART:
        return load_floatalk_folder(folder).motion_autoencoder
    return _load_folder_weights(MotionAutoEncoder(folder_config(folder, meta, MotionAEConfig)), folder)


def save_pretrained(
    model: FloatModel | MotionAutoEncoder,
    path: str | os.PathLike,
    extra: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `model` in the floatalk format (config JSON + one safetensors file); returns the folder.

    A MotionAutoEncoder alone is written as a stage-1 export ("part": "motion_ae"). dtype (e.g.
    torch.float16) stores floating-point weights in that precision (loading casts them back to
    the model's float32). Files are written to temporary names and renamed, so a failure leaves
    no half-written file.
    """
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().to("cpu").contiguous()
        for k, v in model.state_dict().items()
    }
    part = {"part": MOTION_AE_PART} if isinstance(model, MotionAutoEncoder) else {}
    meta = {"format_version": FORMAT_VERSION, **part, "config": asdict(model.cfg), **(extra or {})}
    atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    atomic_write(folder / CONFIG_FILE, lambda p: p.write_text(json.dumps(meta, indent=2, sort_keys=True)))
    return folder


def read_weights(path: Path) -> dict[str, Tensor]:
    """{name: tensor} from a .safetensors file or a torch file (weights_only=True, on the CPU)."""
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file '{path}' is missing.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one sentence
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"Could not read checkpoint file '{path}': {reason[:200]}.") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"Checkpoint file '{path}' is not a plain {{name: tensor}} state dict.")
    return state


def read_hf_weights(folder: Path) -> tuple[Path, dict[str, Tensor]]:
    """Weights of a Hugging Face model folder: model.safetensors, else pytorch_model.bin."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name, read_weights(folder / name)
    raise CheckpointError(f"Folder '{folder}' has no model.safetensors or pytorch_model.bin.")


def strip_backbone_prefix(state: dict[str, Tensor], file: Path) -> dict[str, Tensor]:
    """Bare Wav2Vec2Model keys from a task checkpoint (`wav2vec2.*` + an unused head) or a bare one."""
    if not any(k.startswith("wav2vec2.") for k in state):
        return state
    out = {}
    for key, value in state.items():
        if key.startswith("wav2vec2."):
            out[key[len("wav2vec2.") :]] = value
        elif not key.startswith(_UNUSED_HEADS):
            raise CheckpointError(f"Checkpoint file '{file}' has an unexpected key '{key}'.")
    return out


def rename_weight_norm(state: dict[str, Tensor], module: nn.Module) -> dict[str, Tensor]:
    """Map legacy weight-norm names (weight_g / weight_v) to the module's names, or back."""
    wanted = set(module.state_dict())
    out = {}
    for key, value in state.items():
        new = key
        for legacy, modern in _LEGACY_WEIGHT_NORM.items():
            if key.endswith("." + legacy) and key not in wanted:
                new = key[: -len(legacy)] + modern
            elif key.endswith("." + modern) and key not in wanted:
                new = key[: -len(modern)] + legacy
        out[new] = value
    return out


def load_strict(module: nn.Module, state: dict[str, Tensor], target: dict[str, Tensor] | None, file: Path) -> None:
    """Copy `state` into `module`, requiring exactly the keys of `target` (default: the whole module)."""
    expected = module.state_dict() if target is None else target
    for key in expected:
        if key not in state:
            raise CheckpointError(f"Checkpoint file '{file}' is missing the key '{key}'.")
    for key, value in state.items():
        if key not in expected:
            raise CheckpointError(f"Checkpoint file '{file}' has an unexpected key '{key}'.")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"Checkpoint file '{file}' key '{key}' has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}."
            )
    module.load_state_dict(state, strict=target is None)
