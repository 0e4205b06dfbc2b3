"""The Scene tab's preview: the group photo with each face the detector finds framed and numbered
1, 2, ... from the left, the numbers a scene's `face` takes (`floatalk.io.face.from_the_left`,
as `floatalk scene` and the `face` option count them).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from floatalk.errors import UserInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["faces_preview"]

_COLOURS = ((255, 64, 64), (64, 160, 255), (64, 200, 64), (255, 176, 0), (200, 64, 255), (0, 200, 200))


def faces_preview(image: str | os.PathLike | None, detector: str = "auto") -> tuple[np.ndarray | None, str]:
    """(the photo with its faces framed and numbered, a line saying what was found), or (None, the
    reason) for a photo that cannot be read; (None, "") without a photo."""
    if not image:
        return None, ""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from floatalk.io.face import detect_faces, from_the_left
    from floatalk.io.image import load_image

    try:
        photo = load_image(image)
        boxes = from_the_left(detect_faces(photo, detector))
    except UserInputError as exc:
        return None, str(exc)
    canvas = Image.fromarray(photo)
    draw = ImageDraw.Draw(canvas)
    side = max(12, min(photo.shape[:2]) // 12)
    try:
        font = ImageFont.load_default(size=side)
    except TypeError:  # a Pillow before 10.1 has one size
        font = ImageFont.load_default()
    for number, (x, y, w, h) in enumerate(boxes, start=1):
        colour = _COLOURS[(number - 1) % len(_COLOURS)]
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=max(1, side // 6))
        draw.text(
            (x + 2, max(0, y - side - 2)), str(number), fill=colour, font=font, stroke_width=2, stroke_fill=(0, 0, 0)
        )
    if not boxes:
        return np.asarray(canvas), "No face was found; try another detector, or name faces by their boxes x,y,w,h."
    count = f"{len(boxes)} face{'s' if len(boxes) != 1 else ''}"
    return np.asarray(canvas), f"Found {count}, numbered from the left: give each voice its face's number."
