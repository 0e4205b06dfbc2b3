"""How far windowed audio features and segmented emotion are from the whole-clip pass.

On the fill-rule release-size weights, a --seconds clip (the parity speech repeated) is encoded
once in one wav2vec2 pass (the release's way) and once in windows of --core frames with
--context frames of audio on each side (the long-audio path), with the whole-clip statistics
for normalisation in both. Prints the max and mean absolute difference of the audio features
wa, their relative L2 error, the smallest per-frame cosine similarity, and the same for the
emotion probabilities with segments of --segment conv frames.

    python benchmarks/audio_window_error.py --checkpoint checkpoints/parity_release --seconds 20

Results: one JSON object on stdout and, with --json PATH, in that file (with the machine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from _common import machine, write_json

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "parity_release")
    p.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    p.add_argument("--core", type=int, default=100, help="frames per window core (default 100 = 4 s)")
    p.add_argument("--context", type=int, default=125, help="context frames on each side (default 125 = 5 s)")
    p.add_argument("--segment", type=int, default=250, help="emotion segment in conv frames (default 250 = 5 s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from floatalk.io.audio import load_audio
    from floatalk.pipeline import FloatPipeline, LongAudio

    clip = load_audio(PARITY / "inputs_a" / "audio.wav", sample_rate=16000)
    wave = np.resize(clip, int(args.seconds * 16000)).astype(np.float32)
    pipe = FloatPipeline.from_pretrained(args.checkpoint)
    whole_wa = pipe.encode_audio(wave)
    whole_we = pipe.encode_emotion(wave)
    pipe.long_audio = LongAudio(max_whole_frames=1, core=args.core, context=args.context, emotion_segment=args.segment)
    win_wa = pipe.encode_audio(wave)
    win_we = pipe.encode_emotion(wave)
    d = (win_wa - whole_wa).abs()
    cos = torch.nn.functional.cosine_similarity(win_wa[0], whole_wa[0], dim=-1)
    result = {
        "seconds": args.seconds,
        "frames": int(whole_wa.shape[1]),
        "core": args.core,
        "context": args.context,
        "wa_max_abs": float(d.max()),
        "wa_mean_abs": float(d.mean()),
        "wa_mean_abs_value": float(whole_wa.abs().mean()),
        "wa_rel_l2": float((win_wa - whole_wa).norm() / whole_wa.norm()),
        "wa_min_cosine": float(cos.min()),
        "emotion_segment": args.segment,
        "we_max_abs": float((win_we - whole_we).abs().max()),
        "we_whole": [round(float(v), 4) for v in whole_we.flatten()],
        "we_segmented": [round(float(v), 4) for v in win_we.flatten()],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        write_json(args.json, {"benchmark": "audio_window_error", "machine": machine(), **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
