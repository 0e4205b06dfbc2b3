"""A contact sheet of one clip: a row of frames above its mouth-opening curves (Pillow only).

    python -m floatalk.synth.contact_sheet CLIP.mp4 --out docs/synth_contact_sheet.png

Curves, each scaled to its own 1st..99th percentile range: the ground truth from ``CLIP.json``
beside the video (when there is one), the opening measured in the frames by the lip-sync meter
and the opening implied by the audio. Grey ticks mark the frames shown above (by default the
most open and most closed frame of successive parts of the clip, in time order).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from floatalk.errors import UserInputError
from floatalk.fileio import atomic_write

__all__ = ["main", "make_contact_sheet"]

_BG = (250, 250, 247)
_INK = (40, 40, 40)
_GRID = (215, 215, 210)
_COLOURS = {"ground truth": (30, 150, 60), "measured (frames)": (230, 110, 20), "implied by audio": (40, 90, 200)}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _scaled(curve: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(curve, [1, 99])
    return np.clip((curve - lo) / (hi - lo), -0.05, 1.05) if hi - lo > 1e-9 else np.zeros_like(curve)


def _pick_frames(curve: np.ndarray, n: int, spread: bool) -> np.ndarray:
    """Indices (n,) in time order: evenly spaced, or alternately the max and min of equal parts."""
    T = len(curve)
    if not spread or len(curve) < 2 * n:
        return np.linspace(0, T - 1, n).round().astype(int)
    edges = np.linspace(0, T, n + 1).round().astype(int)
    picks = []
    for i in range(n):
        part = curve[edges[i] : edges[i + 1]]
        picks.append(edges[i] + int(np.argmax(part) if i % 2 == 0 else np.argmin(part)))
    return np.asarray(picks)


def make_contact_sheet(
    video: str | os.PathLike,
    out: str | os.PathLike | None = None,
    truth: str | os.PathLike | None = None,
    n_frames: int = 8,
    tile: int = 144,
    plot_height: int = 170,
    spread: bool = True,
):
    """Draw the sheet for `video` -> PIL.Image (RGB); saved to `out` (PNG) when given.

    `truth` defaults to the JSON beside the video (skipped when absent). The sheet is
    ``n_frames * tile`` pixels wide plus margins. With `spread` the clip is cut into `n_frames`
    equal parts and each shows its most open and most closed frame in turn (by the measured
    curve); otherwise the frames are evenly spaced.
    """
    from PIL import Image, ImageDraw

    from floatalk.evaluation.lipsync import audio_opening, find_face_box, mouth_opening, pearson
    from floatalk.io.audio import load_audio
    from floatalk.io.video import read_video_frames

    if n_frames < 1 or tile < 16:
        raise UserInputError(f"Need at least one frame and tiles of 16 px or more (got {n_frames}, {tile}).")
    video = Path(video)
    frames = read_video_frames(video)
    T = len(frames)
    truth_path = Path(truth) if truth is not None else video.with_suffix(".json")
    gt = None
    meta: dict = {}
    if truth_path.is_file():
        meta = json.loads(truth_path.read_text())
        gt = np.asarray(meta.get("mouth_open", []), dtype=np.float64)[:T]
        if len(gt) != T:
            gt = None
    elif truth is not None:
        raise UserInputError(f"Could not read ground truth '{truth_path}': the file does not exist.")
    box, _ = find_face_box(frames)
    measured = mouth_opening(frames, box)
    implied = audio_opening(load_audio(video), T)
    curves = {"measured (frames)": measured, "implied by audio": implied}
    if gt is not None:
        curves = {"ground truth": gt} | curves

    margin, header, legend_h = 12, 26, 22
    width = n_frames * tile + 2 * margin
    height = header + tile + 10 + plot_height + legend_h + margin
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    small, big = _font(12), _font(14)
    title = f"{video.name}"
    if meta:
        title += f"  -  emotion {meta.get('emotion')}, identity {meta.get('identity')}, {T} frames at 25 fps"
    scores = f"r(frames, audio) = {pearson(measured, implied):.3f}"
    if gt is not None:
        scores = f"r(frames, truth) = {pearson(measured, gt):.3f}   " + scores
    draw.text((margin, 6), title, fill=_INK, font=big)
    draw.text((width - margin, 6), scores, fill=_INK, font=big, anchor="ra")

    picks = _pick_frames(measured, n_frames, spread)
    for i, k in enumerate(picks):
        img = Image.fromarray(frames[k]).resize((tile, tile), Image.Resampling.LANCZOS)
        x = margin + i * tile
        sheet.paste(img, (x, header))
        draw.text((x + 4, header + 3), f"{k}", fill=(255, 255, 255), font=small, stroke_width=2, stroke_fill=(0, 0, 0))

    top = header + tile + 10
    left, right = margin, width - margin
    bottom = top + plot_height
    draw.rectangle((left, top, right, bottom), outline=_GRID, width=1)
    for level in (0.25, 0.5, 0.75):
        y = bottom - level * plot_height
        draw.line((left, y, right, y), fill=_GRID, width=1)
    xs = left + (np.arange(T) + 0.5) / T * (right - left)
    for k in picks:
        x = float(xs[k])
        draw.line((x, top, x, bottom), fill=(180, 180, 175), width=1)
        draw.line((margin + (list(picks).index(k) + 0.5) * tile, header + tile, x, top), fill=(180, 180, 175))
    for name, curve in curves.items():
        ys = bottom - 4 - _scaled(np.asarray(curve, dtype=np.float64)) * (plot_height - 8)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=_COLOURS[name], width=2, joint="curve")
    x = left
    for name in curves:
        draw.line((x, bottom + 13, x + 22, bottom + 13), fill=_COLOURS[name], width=3)
        draw.text((x + 28, bottom + 6), name, fill=_INK, font=small)
        x += 40 + int(draw.textlength(name, font=small)) + 20
    draw.text(
        (right, bottom + 6),
        "mouth opening, each curve scaled to its range",
        fill=(110, 110, 110),
        font=small,
        anchor="ra",
    )
    if out is not None:
        out = Path(out)
        if not out.parent.is_dir():
            raise UserInputError(f"Cannot write '{out}': folder '{out.parent}' does not exist.")
        atomic_write(out, lambda p: sheet.save(p, format="PNG", optimize=True))
    return sheet


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m floatalk.synth.contact_sheet CLIP.mp4 --out SHEET.png``."""
    parser = argparse.ArgumentParser(prog="python -m floatalk.synth.contact_sheet", description=__doc__.split("\n")[0])
    parser.add_argument("video", metavar="CLIP.mp4", help="a clip of the synthetic world (or any face-crop video)")
    parser.add_argument("--out", required=True, metavar="SHEET.png", help="where to save the PNG")
    parser.add_argument("--truth", metavar="CLIP.json", help="ground truth (default: the JSON beside the video)")
    parser.add_argument("--frames", type=int, default=8, metavar="N", help="frames shown in the row (default 8)")
    parser.add_argument("--tile", type=int, default=144, metavar="PX", help="side of each shown frame (default 144)")
    parser.add_argument(
        "--even", action="store_true", help="evenly spaced frames instead of the most open/closed of each part"
    )
    args = parser.parse_args(argv)
    try:
        make_contact_sheet(
            args.video, args.out, truth=args.truth, n_frames=args.frames, tile=args.tile, spread=not args.even
        )
    except UserInputError as exc:
        print(f"contact_sheet: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
