"""A synthetic talking-portrait world whose lip motion is known exactly.

Procedurally drawn faces (identity from a seed) speak source-filter synthesised speech whose
syllables, loudness and vowel openness drive the jaw; heads move slowly, eyes blink and one of
the 7 emotions shows in brows, mouth corners and prosody. Clips are written like a real data
set (mp4 + wav + per-frame JSON truth + manifest), for training, evaluation, demos and tests.

* `generate_world(out, clips, seconds, size, seed)`: a whole folder (``floatalk synth-data``).
* `make_clip(spec)` / `write_clip(clip, folder)`: one clip in memory / on disk.
* `make_contact_sheet(video, out)`: a picture of a clip with its mouth-opening curves.

The audio -> opening law shared with the lip-sync meter is `floatalk.jaw_law`; the vowel law and the
speech synthesiser are `floatalk.synth.speech`.
"""

from __future__ import annotations

from typing import Any

from floatalk.synth.face import FaceState, Identity
from floatalk.synth.world import EXPRESSIONS, FPS, Clip, ClipSpec, clip_specs, generate_world, make_clip, write_clip

__all__ = [
    "EXPRESSIONS",
    "FPS",
    "Clip",
    "ClipSpec",
    "FaceState",
    "Identity",
    "clip_specs",
    "generate_world",
    "make_contact_sheet",
    "make_clip",
    "write_clip",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m floatalk.synth.contact_sheet` runs the module only once.
    if name == "make_contact_sheet":
        from floatalk.synth.contact_sheet import make_contact_sheet

        return make_contact_sheet
    raise AttributeError(f"module 'floatalk.synth' has no attribute {name!r}")
