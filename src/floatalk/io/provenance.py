"""Which media are the synthetic world's: floatalk marks what shows its drawn faces, and reads
the mark back to tell them from real faces.

Pixels alone do not tell them apart reliably: after H.264 or the model's decoder a drawn face
is no flatter than a compressed or upscaled photo. So floatalk marks the portraits and videos
that show a drawn face when it writes them (the synthetic world's clips, the example portrait,
videos animated from a marked portrait): a PNG's text chunk `floatalk`, a video container's
`comment`. A face without the mark is taken to be real. The mark survives copying and renaming,
not re-encoding by other tools (such a file is then treated as real: the cautious side).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SYNTHETIC_MARK", "is_synthetic", "synthetic_png_info", "synthetic_video_metadata"]

SYNTHETIC_MARK = "floatalk synthetic world"
"""The value of the mark: a PNG text chunk `floatalk`, a video's `comment`."""

_PNG_KEY = "floatalk"
_VIDEO_KEY = "comment"


def synthetic_png_info():
    """The PNG text chunk that marks a portrait of the synthetic world (`Image.save(..., pnginfo=)`)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(_PNG_KEY, SYNTHETIC_MARK)
    return info


def synthetic_video_metadata() -> dict[str, str]:
    """The container metadata that marks a video of the synthetic world (`VideoWriter(metadata=)`)."""
    return {_VIDEO_KEY: SYNTHETIC_MARK}


def is_synthetic(path: str | os.PathLike) -> bool:
    """True when the file at `path` (a PNG portrait or a video) carries floatalk's synthetic-world
    mark; False for anything else, an unreadable or missing file included (never raises)."""
    path = Path(os.fspath(path))
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return False
    if head == b"\x89PNG\r\n\x1a\n":
        from PIL import Image

        try:
            with Image.open(path) as image:
                return image.info.get(_PNG_KEY) == SYNTHETIC_MARK
        except Exception:  # noqa: BLE001 - an unreadable file carries no mark; reading it reports the error
            return False
    import av

    try:
        with av.open(os.fspath(path), mode="r") as container:
            return container.metadata.get(_VIDEO_KEY) == SYNTHETIC_MARK
    except Exception:  # noqa: BLE001 - as above
        return False
