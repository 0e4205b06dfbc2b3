"""Procedural portraits drawn with OpenCV (anti-aliased, sub-pixel) on numpy arrays.

A face lives in *face units*: x to the right, y down, the face's half-width is about 1, the
eyes sit near y = -0.25 and the mouth near y = 0.72. The face box (about what OpenCV's Haar
detector returns for these faces, the anchor of the 1.6x crop) is the square of side 2.6 units
centred on face point (0, 0.05); in the frame it is centred and 0.624 of the frame side wide (at
pose scale 1), so one face unit is 0.24 of the frame side and the frame looks like the 1.6x
crop the model is fed. The head pose rotates and scales the face about that box centre and
translates it by (tx, ty) fractions of the frame side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOX_CENTRE",
    "BOX_SIDE",
    "UNIT",
    "FaceState",
    "Identity",
    "LANDMARK_NAMES",
    "face_box",
    "landmarks",
    "render_background",
    "render_frame",
    "supersampling",
]

UNIT = 0.24
"""One face unit as a fraction of the frame side."""

BOX_SIDE = 2.6
"""Side of the face box in face units (2.6 * 0.24 = 0.624 of the frame side, i.e. a 1.6x crop)."""

BOX_CENTRE = (0.0, 0.05)
"""Face-unit point at the centre of the face box (and of the frame at rest)."""

_SHIFT = 4  # OpenCV fixed-point bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT

_SKIN_DARK = np.array([82.0, 54.0, 40.0])
_SKIN_LIGHT = np.array([246.0, 212.0, 188.0])
_HAIR = [
    (25, 20, 18),
    (60, 40, 28),
    (105, 70, 40),
    (160, 120, 70),
    (210, 180, 120),
    (140, 60, 30),
    (150, 150, 150),
    (45, 35, 50),
]
_IRIS = [(70, 45, 25), (40, 30, 20), (60, 100, 140), (70, 110, 70), (100, 100, 110)]


@dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic person look like themselves (colours RGB 0..255)."""

    seed: int
    skin: tuple[float, float, float]
    lip: tuple[float, float, float]
    hair: tuple[float, float, float]
    brow: tuple[float, float, float]
    iris: tuple[float, float, float]
    shirt: tuple[float, float, float]
    hair_style: int  # 0 short, 1 long, 2 receding, 3 bun, 4 curly
    face_w: float
    face_h: float
    jaw_w: float
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_gap: float
    brow_thick: float
    brow_len: float
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_upper: float
    lip_lower: float
    f0: float  # speaking pitch (Hz)
    background: tuple  # (top colour, bottom colour, [(x, y, r, colour), ...])

    @classmethod
    def sample(cls, seed: int) -> Identity:
        """Draw an identity from `seed` (any non-negative int); same seed, same person."""
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1D]))
        tone = float(rng.beta(1.3, 1.3))
        skin = _SKIN_DARK + (_SKIN_LIGHT - _SKIN_DARK) * tone
        skin = skin * (1.0 + rng.normal(0.0, 0.03, 3))
        skin = np.clip(skin, 40, 250)
        lip = np.clip(skin * np.array([0.78, 0.48, 0.50]) * rng.uniform(0.85, 1.05), 25, 230)
        hair = np.array(_HAIR[int(rng.integers(len(_HAIR)))], dtype=float) * rng.uniform(0.85, 1.15)
        hair = np.clip(hair, 10, 230)
        brow = np.minimum(hair, skin * 0.42) * 0.85
        iris = np.array(_IRIS[int(rng.integers(len(_IRIS)))], dtype=float)
        shirt = rng.uniform(30, 220, 3)
        top = rng.uniform(40, 230, 3)
        bottom = np.clip(top * rng.uniform(0.5, 1.1) + rng.normal(0, 25, 3), 10, 245)
        shapes = [
            (float(rng.uniform(-1.8, 1.8)), float(rng.uniform(-1.8, 1.8)), float(rng.uniform(0.2, 0.8)),
             tuple(float(c) for c in np.clip(top + rng.normal(0, 40, 3), 0, 255)))
            for _ in range(int(rng.integers(2, 6)))
        ]  # fmt: skip
        male = rng.random() < 0.5
        return cls(
            seed=int(seed),
            skin=_tup(skin),
            lip=_tup(lip),
            hair=_tup(hair),
            brow=_tup(brow),
            iris=_tup(iris),
            shirt=_tup(shirt),
            hair_style=int(rng.integers(5)),
            face_w=float(rng.uniform(0.9, 1.04)),
            face_h=float(rng.uniform(1.22, 1.36)),
            jaw_w=float(rng.uniform(0.74, 0.9)),
            eye_dx=float(rng.uniform(0.36, 0.44)),
            eye_y=float(rng.uniform(-0.3, -0.22)),
            eye_w=float(rng.uniform(0.15, 0.19)),
            eye_h=float(rng.uniform(0.075, 0.095)),
            brow_gap=float(rng.uniform(0.17, 0.22)),
            brow_thick=float(rng.uniform(0.06, 0.09)),
            brow_len=float(rng.uniform(0.32, 0.42)),
            nose_y=float(rng.uniform(0.3, 0.38)),
            nose_w=float(rng.uniform(0.1, 0.15)),
            mouth_y=float(rng.uniform(0.68, 0.76)),
            mouth_w=float(rng.uniform(0.3, 0.38)),
            lip_upper=float(rng.uniform(0.045, 0.07)),
            lip_lower=float(rng.uniform(0.06, 0.09)),
            f0=float(rng.uniform(95, 135) if male else rng.uniform(175, 235)),
            background=(_tup(top), _tup(bottom), shapes),
        )


def _tup(values) -> tuple[float, float, float]:
    return tuple(float(v) for v in values)  # type: ignore[return-value]


@dataclass(frozen=True)
class FaceState:
    """One frame's animation state.

    opening: jaw/lip opening 0..1; rounding: lip rounding 0..1 (narrower mouth); blink: 0 open ..
    1 closed; tx, ty: head translation (fractions of the frame side); rot: head roll (degrees,
    positive = counter-clockwise on screen); scale: head scale; brow_raise: brows up (face
    units); brow_tilt: inner brow ends down (face units, angry > 0, sad/fear < 0); corner: mouth
    corners up (face units); eye_open: eye-height multiplier; lip_raise: upper-lip raise (face
    units, disgust).
    """

    opening: float = 0.0
    rounding: float = 0.0
    blink: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    rot: float = 0.0
    scale: float = 1.0
    brow_raise: float = 0.0
    brow_tilt: float = 0.0
    corner: float = 0.0
    eye_open: float = 1.0
    lip_raise: float = 0.0


def face_box(state: FaceState, size: int) -> tuple[float, float, float, float]:
    """The face box (x, y, w, h) in pixels of a `size` x `size` frame for this pose."""
    side = BOX_SIDE * UNIT * size * state.scale
    cx = size / 2 + state.tx * size
    cy = size / 2 + state.ty * size
    return (cx - side / 2, cy - side / 2, side, side)


LANDMARK_NAMES = (
    *(f"brow_{s}_{part}" for s in ("left", "right") for part in ("inner", "middle", "outer")),
    *(f"eye_{s}_{part}" for s in ("left", "right") for part in ("centre", "upper_lid", "lower_lid")),
    "mouth_left",
    "mouth_right",
    "lip_upper_inner",
    "lip_lower_inner",
    "lip_upper_outer",
    "lip_lower_outer",
    "nose_tip",
    "nostril_left",
    "nostril_right",
    "chin",
    "cheek_left",
    "cheek_right",
    "ear_left",
    "ear_right",
    "hair_top",
)
"""Order of the points `landmarks` returns ("left" is the left of the image)."""


def _landmark_units(idt: Identity, st: FaceState) -> np.ndarray:
    """The `LANDMARK_NAMES` points in face units (L, 2), following `render_frame`'s geometry."""
    pts: list[tuple[float, float]] = []
    eye_y = idt.eye_y
    for side in (-1, 1):
        base = eye_y - idt.eye_h - idt.brow_gap - st.brow_raise
        inner = (side * 0.1, base + st.brow_tilt)
        outer = (side * (0.1 + idt.brow_len), base - 0.02)
        # The middle of the band's centre line: the quadratic curve's point at t = 1/2.
        ctrl = ((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2 - 0.05)
        middle = (ctrl[0], 0.25 * inner[1] + 0.5 * ctrl[1] + 0.25 * outer[1])
        pts += [inner, middle, outer]
    for side in (-1, 1):
        ex = side * idt.eye_dx
        h = idt.eye_h * st.eye_open * (1.0 - st.blink)
        pts += [(ex, eye_y), (ex, eye_y - h), (ex, eye_y + h)]
    my = idt.mouth_y - 0.35 * st.lip_raise
    half = idt.mouth_w * (1.0 - 0.22 * st.rounding) * (1.0 + 0.12 * max(st.corner, 0.0))
    corner_y = my - st.corner
    up = my + 0.02 - 0.06 * st.opening - 0.5 * st.lip_raise
    down = my + 0.02 + 0.26 * st.opening
    pts += [(-half, corner_y), (half, corner_y), (0.0, up), (0.0, down)]
    pts += [(0.0, up - idt.lip_upper - 0.01), (0.0, down + idt.lip_lower)]
    ny = idt.nose_y
    pts += [(0.0, ny - 0.03), (-idt.nose_w * 0.5, ny + 0.035), (idt.nose_w * 0.5, ny + 0.035)]
    pts.append((0.0, 0.45 + 0.09 * st.opening + idt.face_h * 0.75))
    pts += [(-idt.face_w, -0.15), (idt.face_w, -0.15)]
    pts += [(-idt.face_w * 0.98, -0.02), (idt.face_w * 0.98, -0.02)]
    hairline = -0.93 if idt.hair_style != 2 else -1.05
    pts.append((0.0, hairline - 0.62))
    return np.asarray(pts, dtype=np.float64)


def landmarks(identity: Identity, state: FaceState, size: int) -> np.ndarray:
    """Where the `LANDMARK_NAMES` points of this face and pose fall in a `size` px frame: (L, 2) float
    (x, y) in continuous pixel coordinates (pixel i spans [i, i + 1]), as `render_frame` draws them
    (on a supersampled canvas whose pixel centres are integers, then area-averaged down)."""
    factor = supersampling(size)
    big = size * factor
    pts = _landmark_units(identity, state)
    angle = math.radians(-state.rot)
    cos, sin = math.cos(angle), math.sin(angle)
    px = UNIT * big * state.scale
    dx, dy = pts[:, 0] - BOX_CENTRE[0], pts[:, 1] - BOX_CENTRE[1]
    x = big / 2 + state.tx * big + px * (cos * dx - sin * dy)
    y = big / 2 + state.ty * big + px * (sin * dx + cos * dy)
    return np.stack([(x + 0.5) / factor, (y + 0.5) / factor], axis=1)


def render_background(identity: Identity, size: int) -> np.ndarray:
    """Static backdrop (size, size, 3) uint8: vertical gradient plus a few soft discs."""
    import cv2

    top, bottom, shapes = identity.background
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    img = (np.asarray(top)[None, None] * (1 - ramp) + np.asarray(bottom)[None, None] * ramp) * np.ones((1, size, 1))
    layer = img.copy()
    for x, y, r, colour in shapes:
        centre = (int((0.5 + x * UNIT) * size * _ONE), int((0.5 + y * UNIT) * size * _ONE))
        cv2.circle(layer, centre, int(r * UNIT * size * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
    img = 0.5 * img + 0.5 * layer
    sigma = max(1.0, size / 40)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class _Pen:
    """Draws in face units through the head pose onto a float image."""

    def __init__(self, img: np.ndarray, state: FaceState) -> None:
        size = img.shape[0]
        self.img = img
        self.px = UNIT * size * state.scale  # pixels per face unit
        self.rot = state.rot
        angle = math.radians(-state.rot)  # screen y points down: counter-clockwise means negative angle
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        self.cx = size / 2 + state.tx * size
        self.cy = size / 2 + state.ty * size

    def point(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - BOX_CENTRE[0], y - BOX_CENTRE[1]
        return (
            self.cx + self.px * (self.cos * dx - self.sin * dy),
            self.cy + self.px * (self.sin * dx + self.cos * dy),
        )

    def _fixed(self, x: float, y: float) -> tuple[int, int]:
        px, py = self.point(x, y)
        return int(round(px * _ONE)), int(round(py * _ONE))

    def ellipse(self, x: float, y: float, ax: float, ay: float, colour, angle: float = 0.0, arc=(0, 360)) -> None:
        import cv2

        axes = (max(1, int(round(ax * self.px * _ONE))), max(1, int(round(ay * self.px * _ONE))))
        cv2.ellipse(
            self.img, self._fixed(x, y), axes, angle - self.rot, arc[0], arc[1], _col(colour), -1, cv2.LINE_AA, _SHIFT
        )

    def poly(self, points: np.ndarray, colour) -> None:
        import cv2

        pts = np.array([self._fixed(float(x), float(y)) for x, y in points], dtype=np.int32)
        cv2.fillPoly(self.img, [pts], _col(colour), cv2.LINE_AA, _SHIFT)

    def line(self, points: np.ndarray, colour, width: float) -> None:
        import cv2

        pts = np.array([self._fixed(float(x), float(y)) for x, y in points], dtype=np.int32)
        thickness = max(1, int(round(width * self.px)))
        cv2.polylines(self.img, [pts], False, _col(colour), thickness, cv2.LINE_AA, _SHIFT)


def _col(colour) -> tuple[float, float, float]:
    return tuple(float(min(255.0, max(0.0, c))) for c in colour)  # type: ignore[return-value]


def _mul(colour, factor: float) -> tuple[float, float, float]:
    return _col(c * factor for c in colour)


def _lit(colour, factor: float, add: float) -> tuple[float, float, float]:
    """A highlight: brighter by a factor plus a fixed amount (so dark skin gets highlights too)."""
    return _col(c * factor + add for c in colour)


def _mix(a, b, t: float) -> tuple[float, float, float]:
    return _col(x * (1 - t) + y * t for x, y in zip(a, b))


def _curve(p0, p1, p2, n: int = 12) -> np.ndarray:
    """Quadratic Bezier from p0 to p2 with control point p1 -> (n, 2)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def supersampling(size: int) -> int:
    """Factor by which frames of side `size` are drawn larger, then area-averaged down (3, 2 or 1)."""
    return 3 if size < 96 else 2 if size < 192 else 1


def render_frame(identity: Identity, state: FaceState, background: np.ndarray, size: int | None = None) -> np.ndarray:
    """Draw one frame over a `render_background` image -> (size, size, 3) uint8 RGB.

    The background may be larger than `size` (supersampling, see `supersampling`): the frame is
    drawn at the background's size and area-averaged down to `size`. Default: the background's size.
    """
    import cv2

    img = background.astype(np.float32)
    idt, st = identity, state
    skin = idt.skin

    pen = _Pen(img, st)
    hair = idt.hair
    if idt.hair_style == 1:  # long hair behind the head and neck
        pen.ellipse(0.0, 0.1, idt.face_w * 1.28, 1.55, _mul(hair, 0.85))
        pen.poly(np.array([[-1.25, 0.0], [1.25, 0.0], [1.15, 1.65], [-1.15, 1.65]]), _mul(hair, 0.85))

    # Body: shoulders and neck move with the head's translation only.
    body = _Pen(img, FaceState(tx=st.tx * 0.6, ty=st.ty * 0.6, scale=st.scale))
    body.ellipse(0.0, 2.55, 1.9, 0.95, idt.shirt)
    body.poly(np.array([[-0.42, 1.0], [0.42, 1.0], [0.5, 1.85], [-0.5, 1.85]]), _mul(skin, 0.86))

    if idt.hair_style == 3:  # bun
        pen.ellipse(0.0, -1.45, 0.42, 0.32, hair)
    # ears
    for side in (-1, 1):
        pen.ellipse(side * idt.face_w * 0.98, -0.02, 0.14, 0.24, _mul(skin, 0.86))

    # Face: cranium and jaw ellipses (the jaw drops with the opening), shaded by nested insets.
    jaw_drop = 0.09 * st.opening
    for inset, tone in ((1.0, 0.78), (0.93, 0.88), (0.84, 0.96), (0.7, 1.0)):
        pen.ellipse(0.0, -0.15, idt.face_w * inset, 1.05 * inset, _mul(skin, tone))
        pen.ellipse(0.0, 0.45 + jaw_drop, idt.face_w * idt.jaw_w * inset, idt.face_h * 0.75 * inset, _mul(skin, tone))
    # cheeks a little brighter and warmer
    for side in (-1, 1):
        pen.ellipse(side * 0.5, 0.25, 0.26, 0.2, _mix(_lit(skin, 1.06, 8), (230, 120, 110), 0.06))

    pen.ellipse(0.0, -0.72, 0.55, 0.2, _lit(skin, 1.05, 6))  # forehead highlight
    # Eye sockets (darker), nose bridge (brighter).
    eye_y = idt.eye_y
    for side in (-1, 1):
        pen.ellipse(side * idt.eye_dx, eye_y - 0.02, idt.eye_w * 1.7, idt.eye_h * 2.3, _mul(skin, 0.74))
        pen.ellipse(side * idt.eye_dx, eye_y - 0.01, idt.eye_w * 1.35, idt.eye_h * 1.6, _mul(skin, 0.62))
    pen.ellipse(0.0, (eye_y + idt.nose_y) / 2 - 0.05, 0.075, (idt.nose_y - eye_y) / 2 + 0.08, _lit(skin, 1.12, 14))

    # Nose: side shadow, tip highlight, nostrils.
    ny = idt.nose_y
    for side in (-1, 1):
        pen.ellipse(side * idt.nose_w * 0.95, ny - 0.02, 0.045, 0.07, _mul(skin, 0.8))
    pen.ellipse(0.0, ny - 0.03, idt.nose_w * 0.75, 0.075, _mul(skin, 1.08))
    for side in (-1, 1):
        pen.ellipse(side * idt.nose_w * 0.5, ny + 0.035, 0.04, 0.022, _mul(skin, 0.62))

    # Eyes.
    for side in (-1, 1):
        ex = side * idt.eye_dx
        h = idt.eye_h * st.eye_open * (1.0 - st.blink)
        if h > 0.008:
            pen.ellipse(ex, eye_y, idt.eye_w, h, _mix((232, 228, 222), skin, 0.3))
            r = idt.eye_h * 0.95
            pen.ellipse(ex, eye_y, r * 0.95, min(r, h), idt.iris)
            pen.ellipse(ex, eye_y, r * 0.45, min(r * 0.45, h), (12, 10, 10))
        pen.line(
            _curve((ex - idt.eye_w, eye_y), (ex, eye_y - 2 * h - 0.01), (ex + idt.eye_w, eye_y)), (35, 25, 22), 0.03
        )

    # Brows: a tapered band; raise lifts both ends, tilt moves the inner end down.
    for side in (-1, 1):
        base = eye_y - idt.eye_h - idt.brow_gap - st.brow_raise
        inner_x, outer_x = side * 0.1, side * (0.1 + idt.brow_len)
        inner_y, outer_y = base + st.brow_tilt, base - 0.02
        mid = ((inner_x + outer_x) / 2, (inner_y + outer_y) / 2 - 0.05)
        top = _curve((inner_x, inner_y - idt.brow_thick / 2), (mid[0], mid[1] - idt.brow_thick / 2), (outer_x, outer_y))
        bottom = _curve(
            (outer_x, outer_y), (mid[0], mid[1] + idt.brow_thick / 2), (inner_x, inner_y + idt.brow_thick / 2)
        )
        pen.poly(np.concatenate([top, bottom]), idt.brow)

    _draw_mouth(pen, idt, st)

    # Hair on top of the head.
    if idt.hair_style == 4:  # curly: a crown of discs
        for k in range(9):
            a = math.pi * (0.08 + 0.84 * k / 8)
            pen.ellipse(-math.cos(a) * idt.face_w * 0.95, -0.6 - math.sin(a) * 0.75, 0.28, 0.24, hair)
    hairline = -0.93 if idt.hair_style != 2 else -1.05
    pen.ellipse(0.0, hairline, idt.face_w * 1.04, 0.62, hair, arc=(180, 360))
    if idt.hair_style in (0, 1):  # side fringe
        pen.poly(np.array([[-0.9, hairline - 0.02], [0.35, hairline - 0.02], [-0.2, hairline + 0.08]]), hair)

    img = cv2.GaussianBlur(img, (3, 3), 0.5)
    if size is not None and size != img.shape[0]:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _draw_mouth(pen: _Pen, idt: Identity, st: FaceState) -> None:
    """Lips and mouth cavity. The cavity's height is proportional to the opening; the corners move
    with `corner` while the middle of the lips stays put."""
    my = idt.mouth_y - 0.35 * st.lip_raise
    half = idt.mouth_w * (1.0 - 0.22 * st.rounding) * (1.0 + 0.12 * max(st.corner, 0.0))
    corner_y = my - st.corner
    centre = my + 0.02  # the lip line bows down a little at rest
    up = centre - 0.06 * st.opening - 0.5 * st.lip_raise  # upper inner lip, middle
    down = centre + 0.26 * st.opening  # lower inner lip, middle
    left, right = (-half, corner_y), (half, corner_y)

    def through(y_mid: float) -> float:  # control point putting the curve's middle at y_mid
        return 2.0 * y_mid - corner_y

    upper_inner = _curve(left, (0.0, through(up)), right)
    lower_inner = _curve(right, (0.0, through(down)), left)
    upper_outer = _curve(right, (0.0, through(up - idt.lip_upper - 0.01)), left)
    lower_outer = _curve(left, (0.0, through(down + idt.lip_lower)), right)
    lip = idt.lip
    pen.poly(np.concatenate([upper_inner, upper_outer]), _mul(lip, 0.92))
    pen.poly(np.concatenate([lower_outer, lower_inner]), lip)
    if down - up > 1e-3:
        pen.poly(np.concatenate([upper_inner, lower_inner]), (38, 14, 16))
    pen.line(upper_inner, _mul(lip, 0.45), 0.018)
