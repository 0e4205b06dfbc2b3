"""What a render did: the report `floatalk generate` and `floatalk reenact` summarise.

Letters: W, H the photo's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floatalk.io.face import CropBox

__all__ = ["RenderReport", "SceneFaceReport", "SceneReport"]


@dataclass(frozen=True)
class RenderReport:
    """What `render_video` did."""

    out: Path
    frames: int  # frames written
    fps: int
    width: int
    height: int
    seconds: float  # duration of the recording, which is the video's
    elapsed: float  # wall-clock seconds of the whole render
    crop_box: CropBox  # the square the model saw, in photo pixels
    face_box: tuple[int, int, int, int] | None  # the detected face (x, y, w, h); None without cropping
    photo_size: tuple[int, int]  # (W, H) of the photo
    emotion: str  # the forced emotion's name, "auto" (predicted from the speech) or "timeline" (set by segments)
    probabilities: dict[str, float] = field(default_factory=dict)  # the emotion vector used, by name
    face_choice: Any = None  # floatalk.io.face.FaceChoice (which face, which detector); None without cropping

    def top_emotions(self, k: int = 2) -> list[tuple[str, float]]:
        """The k most probable emotions of the vector used, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def summary(self) -> list[str]:
        """The lines `floatalk generate` prints: face, emotion, and what was written."""
        w, h = self.photo_size
        if self.face_box is None:
            face = f"face: not searched (whole {w}x{h} photo, letterboxed to a square)"
        else:
            x, y, fw, fh = self.face_box
            box = self.crop_box
            which = ""
            if self.face_choice is not None:
                c = self.face_choice
                which = f"{c.number} of {c.count} (from the left), " if c.count > 1 else ""
                which += f"found by the {c.detector} detector, "
            face = (
                f"face: {which}{fw}x{fh} at ({x}, {y}) in the {w}x{h} photo; cropped a {box.size:.0f} px square "
                f"at ({box.x0:.0f}, {box.y0:.0f})"
            )
        if self.emotion == "auto":
            top = ", ".join(f"{name} {p:.2f}" for name, p in self.top_emotions(2))
            emotion = f"emotion: predicted from the speech: {top}"
        elif self.emotion == "timeline":
            top = ", ".join(f"{name} {p:.2f}" for name, p in self.top_emotions(2))
            emotion = f"emotion: set by the timeline (over the whole clip: {top})"
        else:
            emotion = f"emotion: {self.emotion} (forced)"
        wrote = (
            f"wrote {self.out}: {self.frames} frames at {self.fps} fps ({self.seconds:.2f} s), "
            f"{self.width}x{self.height}, in {self.elapsed:.1f} s"
        )
        return [face, emotion, wrote]


@dataclass(frozen=True)
class SceneFaceReport:
    """One face of a scene: what it did."""

    label: str  # 'face 2' or 'the face at x,y,w,h'
    box: tuple[int, int, int, int]  # the face box (x, y, w, h) in the photo's pixels
    role: str  # 'speaker', 'idle' or 'still'
    voice: str  # where its voice came from
    speaking: float  # seconds it speaks
    emotion: str  # the forced emotion's name or 'auto'


@dataclass(frozen=True)
class SceneReport:
    """What `render_scene` did."""

    out: Path
    frames: int  # frames written
    fps: int
    width: int
    height: int
    seconds: float  # the scene's length, which is the video's
    elapsed: float  # wall-clock seconds of the whole render
    photo_size: tuple[int, int]  # (W, H) of the photo
    faces: tuple[SceneFaceReport, ...]
    found: int | None = None  # faces the detector found; None when it did not run
    detector: str | None = None

    def summary(self) -> list[str]:
        """The lines `floatalk scene` prints: the faces, then what was written."""
        w, h = self.photo_size
        lines = []
        if self.found is not None:
            lines.append(f"faces: {self.found} found in the {w}x{h} photo by the {self.detector} detector")
        for face in self.faces:
            x, y, fw, fh = face.box
            where = f"{face.label} ({fw}x{fh} at {x}, {y})"
            if face.role == "speaker":
                what = f"speaks {face.speaking:.1f} s ({face.voice}), emotion {face.emotion}"
            else:
                what = "idle (nobody names it)" if face.role == "idle" else "still (nobody names it)"
            lines.append(f"{where}: {what}")
        lines.append(
            f"wrote {self.out}: {self.frames} frames at {self.fps} fps ({self.seconds:.2f} s), "
            f"{self.width}x{self.height}, in {self.elapsed:.1f} s"
        )
        return lines
