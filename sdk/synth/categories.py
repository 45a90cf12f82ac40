"""Object categories of the synthetic world: one hand-drawn look per VidVRD category, varied per object.

Each category has its own silhouette (drawn with OpenCV primitives on a supersampled canvas), colour palette,
surface pattern (stripes, spots, patches, gradients) and fine texture; every object samples its own size,
aspect, shade and pattern so that two objects of one category look alike but not identical.
"""
from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from vrgv.errors import ConfigError

SUPERSAMPLE = 2


@dataclass(frozen=True)
class Sprite:
    """One rendered pose of an object: RGB pixels and the boolean silhouette, cropped to the silhouette."""

    rgb: np.ndarray  # uint8 [h, w, 3]
    mask: np.ndarray  # bool [h, w]

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[:2] != self.mask.shape or self.rgb.dtype != np.uint8:
            raise ConfigError(f"sprite rgb {self.rgb.shape} {self.rgb.dtype} does not match mask {self.mask.shape}")
        if self.mask.size == 0 or not self.mask.any():
            raise ConfigError("sprite has an empty silhouette; its size must be at least 2x2 pixels")

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])


@dataclass(frozen=True)
class Style:
    """Per-object appearance: main/secondary/accent colours (RGB 0-255), pattern name and its parameters."""

    main: tuple[int, int, int]
    second: tuple[int, int, int]
    accent: tuple[int, int, int]
    pattern: str
    pattern_scale: float
    pattern_angle: float
    texture: float
    seed: int


@dataclass(frozen=True)
class CategorySpec:
    """What a category looks like and how it may move."""

    name: str
    height_range: tuple[float, float]  # sprite height as a fraction of the frame height
    aspect: float  # width / height of the drawing canvas
    poses: int  # animation frames (walk cycle, wing beat, rolling)
    kind: str  # "walker", "vehicle", "flyer", "roller", "static"
    draw: Callable[["_Painter", Style, int], None]
    style: Callable[[np.random.Generator], Style]


# ------------------------------------------------------------------------------------------------
# painting helpers


class _Painter:
    """Draws primitives in unit coordinates (0..1 of the canvas) into colour, silhouette and part maps."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.img = np.zeros((height, width, 3), np.uint8)
        self.mask = np.zeros((height, width), np.uint8)
        self.part = np.zeros((height, width), np.uint8)  # 1 = patterned surface

    def _p(self, x: float, y: float) -> tuple[int, int]:
        return int(round(x * (self.w - 1))), int(round(y * (self.h - 1)))

    def _len(self, r: float) -> int:
        return max(1, int(round(r * min(self.w, self.h))))

    def _apply(self, fn: Callable[[np.ndarray, object], None], color, part: int) -> None:
        fn(self.img, tuple(int(c) for c in color))
        fn(self.mask, 255)
        fn(self.part, part)

    def ellipse(self, cx, cy, rx, ry, color, part=0, angle=0.0) -> None:
        c = self._p(cx, cy)
        axes = (max(1, int(rx * self.w)), max(1, int(ry * self.h)))
        self._apply(lambda im, col: cv2.ellipse(im, c, axes, angle, 0, 360, col, -1, cv2.LINE_AA), color, part)

    def circle(self, cx, cy, r, color, part=0, thickness=-1) -> None:
        c, rad = self._p(cx, cy), self._len(r)
        t = thickness if thickness < 0 else self._len(thickness)
        self._apply(lambda im, col: cv2.circle(im, c, rad, col, t, cv2.LINE_AA), color, part)

    def rect(self, x1, y1, x2, y2, color, part=0) -> None:
        p, q = self._p(x1, y1), self._p(x2, y2)
        self._apply(lambda im, col: cv2.rectangle(im, p, q, col, -1), color, part)

    def poly(self, pts, color, part=0) -> None:
        arr = np.array([self._p(x, y) for x, y in pts], np.int32)
        self._apply(lambda im, col: cv2.fillPoly(im, [arr], col, cv2.LINE_AA), color, part)

    def line(self, x1, y1, x2, y2, color, thickness, part=0) -> None:
        p, q, t = self._p(x1, y1), self._p(x2, y2), self._len(thickness)
        self._apply(lambda im, col: cv2.line(im, p, q, col, t, cv2.LINE_AA), color, part)


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _shade(color, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * factor))) for c in color)  # type: ignore[return-value]


def _style(rng: np.random.Generator, main, second, accent, patterns: list[str], texture=(0.04, 0.12)) -> Style:
    return Style(
        main=main,
        second=second,
        accent=accent,
        pattern=str(rng.choice(patterns)),
        pattern_scale=float(rng.uniform(0.08, 0.2)),
        pattern_angle=float(rng.uniform(0, np.pi)),
        texture=float(rng.uniform(*texture)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _pick(rng: np.random.Generator, palette: list[tuple[float, float, float]], jitter=0.06) -> tuple[int, int, int]:
    h, s, v = palette[int(rng.integers(len(palette)))]
    return _hsv(h + rng.uniform(-0.02, 0.02), s + rng.uniform(-jitter, jitter), v + rng.uniform(-2 * jitter, 2 * jitter))


def _any_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _hsv(rng.uniform(0, 1), rng.uniform(0.35, 0.95), rng.uniform(0.35, 0.95))


# ------------------------------------------------------------------------------------------------
# categories: styles

_FUR = [(0.07, 0.6, 0.45), (0.08, 0.5, 0.7), (0.1, 0.35, 0.85), (0.0, 0.0, 0.15), (0.0, 0.0, 0.9), (0.06, 0.7, 0.3)]
_CAT = [(0.07, 0.75, 0.85), (0.0, 0.0, 0.55), (0.0, 0.0, 0.2), (0.0, 0.0, 0.92), (0.08, 0.3, 0.7)]
_HORSE = [(0.05, 0.7, 0.4), (0.06, 0.65, 0.55), (0.0, 0.0, 0.12), (0.0, 0.0, 0.85), (0.0, 0.0, 0.55), (0.08, 0.45, 0.75)]
_SKIN = [(0.07, 0.45, 0.95), (0.06, 0.55, 0.75), (0.06, 0.6, 0.5), (0.05, 0.55, 0.35)]
_BIRD = [(0.6, 0.6, 0.7), (0.0, 0.75, 0.75), (0.15, 0.8, 0.9), (0.08, 0.5, 0.45), (0.0, 0.0, 0.2), (0.35, 0.6, 0.55)]


def _style_person(rng):
    return _style(rng, _any_colour(rng), _hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.6)),
                  _pick(rng, _SKIN), ["plain", "stripes", "gradient", "patches"])


def _style_dog(rng):
    main = _pick(rng, _FUR)
    return _style(rng, main, _pick(rng, _FUR), _shade(main, 0.6), ["plain", "spots", "patches", "gradient"])


def _style_cat(rng):
    main = _pick(rng, _CAT)
    return _style(rng, main, _shade(main, 0.55), (240, 170, 170), ["stripes", "stripes", "plain", "patches"])


def _style_horse(rng):
    main = _pick(rng, _HORSE)
    return _style(rng, main, _pick(rng, [(0.0, 0.0, 0.95), (0.0, 0.0, 0.1)]), _shade(main, 0.45),
                  ["plain", "plain", "gradient", "spots"])


def _style_zebra(rng):
    white = _hsv(0.1, rng.uniform(0.0, 0.12), rng.uniform(0.85, 1.0))
    black = _hsv(0.0, 0.0, rng.uniform(0.03, 0.2))
    s = _style(rng, white, black, black, ["stripes"])
    return Style(s.main, s.second, s.accent, "stripes", float(rng.uniform(0.05, 0.09)),
                 float(np.pi / 2 + rng.uniform(-0.35, 0.35)), s.texture, s.seed)


def _style_car(rng):
    main = _any_colour(rng)
    return _style(rng, main, _shade(main, 0.6), _hsv(0.58, rng.uniform(0.1, 0.4), rng.uniform(0.5, 0.85)),
                  ["plain", "gradient", "band"], texture=(0.02, 0.06))


def _style_bicycle(rng):
    return _style(rng, _any_colour(rng), _hsv(0, 0, rng.uniform(0.05, 0.25)), _hsv(0, 0, rng.uniform(0.1, 0.3)),
                  ["plain"], texture=(0.02, 0.05))


def _style_ball(rng):
    kind = rng.integers(4)
    if kind == 0:  # football: white with dark spots
        return Style((245, 245, 245), (20, 20, 20), (0, 0, 0), "spots", 0.3, 0.0, 0.05, int(rng.integers(2**31 - 1)))
    if kind == 1:  # basketball
        return Style(_hsv(0.07, 0.85, 0.9), (30, 20, 10), (0, 0, 0), "seams", 0.5, float(rng.uniform(0, 3)), 0.08,
                     int(rng.integers(2**31 - 1)))
    main = _any_colour(rng)
    return _style(rng, main, _any_colour(rng), main, ["sectors", "stripes", "plain"])


def _style_bird(rng):
    main = _pick(rng, _BIRD)
    return _style(rng, main, _pick(rng, _BIRD), _hsv(0.09, 0.9, 0.95), ["plain", "gradient", "spots"])


def _style_sheep(rng):
    wool = _hsv(0.12, rng.uniform(0.02, 0.2), rng.uniform(0.8, 0.98))
    face = _hsv(0.08, rng.uniform(0.0, 0.4), rng.uniform(0.08, 0.35))
    return _style(rng, wool, _shade(wool, 0.82), face, ["curls"])


# ------------------------------------------------------------------------------------------------
# categories: silhouettes (unit canvas, facing right; pose = animation phase)


def _legs(p: _Painter, xs, top, bottom, color, pose, thick, swing=0.06) -> None:
    for k, x in enumerate(xs):
        dx = swing * (1 if (k + pose) % 2 == 0 else -1)
        p.line(x, top, x + dx, bottom, color, thick)


def _draw_person(p: _Painter, s: Style, pose: int) -> None:
    pants = s.second
    swing = [0.0, 0.16, 0.0, -0.16][pose % 4]
    p.line(0.5, 0.58, 0.5 + swing, 0.97, pants, 0.2)
    p.line(0.5, 0.58, 0.5 - swing, 0.97, _shade(pants, 0.8), 0.2)
    p.rect(0.2, 0.2, 0.8, 0.62, s.main, part=1)
    p.line(0.25, 0.24, 0.15 - swing * 0.5, 0.55, s.main, 0.14, part=1)
    p.line(0.75, 0.24, 0.85 + swing * 0.5, 0.55, s.main, 0.14, part=1)
    p.circle(0.5, 0.1, 0.3, s.accent)
    p.ellipse(0.5, 0.055, 0.3, 0.045, _shade(s.second, 0.5))


def _draw_dog(p: _Painter, s: Style, pose: int) -> None:
    _legs(p, [0.22, 0.32, 0.62, 0.72], 0.55, 0.98, _shade(s.main, 0.85), pose, 0.08)
    p.line(0.12, 0.45, 0.0, 0.18 + 0.05 * (pose % 2), s.main, 0.07)
    p.ellipse(0.45, 0.5, 0.36, 0.19, s.main, part=1)
    p.ellipse(0.8, 0.3, 0.14, 0.2, s.main, part=1)
    p.ellipse(0.95, 0.36, 0.05, 0.07, s.accent)
    p.ellipse(0.74, 0.28, 0.05, 0.17, s.accent, angle=15)


def _draw_cat(p: _Painter, s: Style, pose: int) -> None:
    _legs(p, [0.25, 0.33, 0.6, 0.68], 0.6, 0.98, s.main, pose, 0.07, swing=0.04)
    p.line(0.1, 0.6, 0.02, 0.1 + 0.06 * (pose % 2), s.main, 0.06, part=1)
    p.ellipse(0.45, 0.6, 0.32, 0.17, s.main, part=1)
    p.circle(0.8, 0.4, 0.2, s.main, part=1)
    p.poly([(0.66, 0.3), (0.7, 0.05), (0.78, 0.25)], s.main, part=1)
    p.poly([(0.82, 0.25), (0.92, 0.05), (0.95, 0.32)], s.main, part=1)
    p.circle(0.86, 0.38, 0.03, (40, 160, 40))


def _draw_horse(p: _Painter, s: Style, pose: int, neck: float = 1.0) -> None:
    _legs(p, [0.24, 0.32, 0.66, 0.74], 0.55, 0.99, _shade(s.main, 0.9), pose, 0.07, swing=0.05)
    p.line(0.1, 0.4, 0.03, 0.7, s.accent, 0.06)
    p.ellipse(0.48, 0.45, 0.33, 0.15, s.main, part=1)
    p.poly([(0.66, 0.42), (0.78, 0.05 + 0.1 * (1 - neck)), (0.9, 0.12), (0.84, 0.5)], s.main, part=1)
    p.ellipse(0.9, 0.16, 0.09, 0.08, s.main, part=1, angle=30)
    p.line(0.7, 0.36, 0.8, 0.06 + 0.1 * (1 - neck), s.accent, 0.05)


def _draw_zebra(p: _Painter, s: Style, pose: int) -> None:
    _draw_horse(p, s, pose, neck=0.7)


def _draw_car(p: _Painter, s: Style, pose: int) -> None:
    p.poly([(0.0, 0.45), (0.22, 0.42), (0.32, 0.08), (0.72, 0.08), (0.85, 0.42), (1.0, 0.48), (1.0, 0.8),
            (0.0, 0.8)], s.main, part=1)
    p.poly([(0.36, 0.14), (0.52, 0.14), (0.52, 0.4), (0.28, 0.4)], s.accent)
    p.poly([(0.56, 0.14), (0.69, 0.14), (0.78, 0.4), (0.56, 0.4)], s.accent)
    p.rect(0.93, 0.5, 0.99, 0.58, (250, 240, 180))
    for x in (0.22, 0.78):
        p.circle(x, 0.8, 0.2, (25, 25, 25))
        p.circle(x, 0.8, 0.09, (170, 170, 170))
        a = pose * np.pi / 4
        p.line(x, 0.8, x + 0.04 * np.cos(a), 0.8 + 0.09 * np.sin(a), (60, 60, 60), 0.025)


def _draw_bicycle(p: _Painter, s: Style, pose: int) -> None:
    for x in (0.21, 0.79):
        p.circle(x, 0.66, 0.31, s.second, thickness=0.05)
        p.circle(x, 0.66, 0.03, s.main)
    frame = [(0.21, 0.66), (0.45, 0.66), (0.72, 0.28), (0.36, 0.28)]
    for (x1, y1), (x2, y2) in zip(frame, frame[1:] + frame[:1]):
        p.line(x1, y1, x2, y2, s.main, 0.045)
    p.line(0.36, 0.28, 0.45, 0.66, s.main, 0.045)
    p.line(0.72, 0.28, 0.79, 0.66, s.main, 0.045)
    p.line(0.72, 0.28, 0.68, 0.06, s.accent, 0.04)
    p.line(0.62, 0.06, 0.78, 0.06, s.accent, 0.05)
    p.ellipse(0.35, 0.2, 0.08, 0.035, s.accent)
    a = pose * np.pi / 2
    p.line(0.45 - 0.08 * np.cos(a), 0.66 - 0.08 * np.sin(a), 0.45 + 0.08 * np.cos(a), 0.66 + 0.08 * np.sin(a),
           s.accent, 0.04)


def _draw_ball(p: _Painter, s: Style, pose: int) -> None:
    p.circle(0.5, 0.5, 0.48, s.main, part=1)


def _draw_bird(p: _Painter, s: Style, pose: int) -> None:
    p.poly([(0.05, 0.5), (0.0, 0.35), (0.2, 0.45)], s.second)
    p.ellipse(0.45, 0.55, 0.32, 0.16, s.main, part=1)
    p.circle(0.78, 0.42, 0.15, s.main, part=1)
    p.poly([(0.9, 0.38), (1.0, 0.45), (0.9, 0.5)], s.accent)
    if pose % 2 == 0:
        p.poly([(0.3, 0.5), (0.55, 0.5), (0.35, 0.0)], s.second)
    else:
        p.poly([(0.3, 0.55), (0.55, 0.55), (0.35, 1.0)], s.second)


def _draw_sheep(p: _Painter, s: Style, pose: int) -> None:
    _legs(p, [0.28, 0.36, 0.6, 0.68], 0.6, 0.98, s.accent, pose, 0.06, swing=0.04)
    rng = np.random.default_rng(s.seed)
    for _ in range(14):
        p.circle(0.45 + rng.uniform(-0.27, 0.27), 0.45 + rng.uniform(-0.15, 0.15), 0.13, s.main, part=1)
    p.ellipse(0.85, 0.42, 0.11, 0.14, s.accent, angle=20)
    p.ellipse(0.78, 0.32, 0.07, 0.04, s.accent)


CATEGORY_SPECS: dict[str, CategorySpec] = {
    spec.name: spec
    for spec in (
        CategorySpec("person", (0.2, 0.3), 0.42, 4, "walker", _draw_person, _style_person),
        CategorySpec("dog", (0.1, 0.14), 1.45, 2, "walker", _draw_dog, _style_dog),
        CategorySpec("domestic_cat", (0.08, 0.12), 1.25, 2, "walker", _draw_cat, _style_cat),
        CategorySpec("horse", (0.22, 0.3), 1.3, 2, "walker", _draw_horse, _style_horse),
        CategorySpec("zebra", (0.2, 0.28), 1.3, 2, "walker", _draw_zebra, _style_zebra),
        CategorySpec("sheep", (0.11, 0.15), 1.35, 2, "walker", _draw_sheep, _style_sheep),
        CategorySpec("car", (0.12, 0.17), 2.3, 2, "vehicle", _draw_car, _style_car),
        CategorySpec("bicycle", (0.13, 0.17), 1.6, 2, "vehicle", _draw_bicycle, _style_bicycle),
        CategorySpec("ball", (0.05, 0.08), 1.0, 4, "roller", _draw_ball, _style_ball),
        CategorySpec("bird", (0.05, 0.08), 1.5, 2, "flyer", _draw_bird, _style_bird),
    )
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_SPECS)


# ------------------------------------------------------------------------------------------------
# surface patterns and texture


def _pattern_mask(s: Style, h: int, w: int, pose: int) -> np.ndarray:
    """Where the secondary colour goes (bool [h, w]) for the style's pattern."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    size = float(max(h, w))
    rng = np.random.default_rng(s.seed)
    if s.pattern in ("stripes", "band", "seams"):
        period = max(3.0, s.pattern_scale * size)
        angle = s.pattern_angle + (pose * 0.4 if s.pattern == "seams" else 0.0)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        if s.pattern == "band":
            return (yy > 0.5 * h) & (yy < 0.58 * h)
        if s.pattern == "seams":
            return (np.abs(np.sin(t / period * np.pi)) < 0.12) | (np.abs(xx - w / 2) < 0.04 * w)
        return np.sin(t / period * 2 * np.pi + pose * 0.8 * (s.pattern == "stripes")) > 0.25
    if s.pattern in ("spots", "curls"):
        out = np.zeros((h, w), np.uint8)
        n = 12 if s.pattern == "spots" else 40
        shift = pose * 0.15 * w
        for _ in range(n):
            cx, cy = (rng.uniform(0, w) + shift) % w, rng.uniform(0, h)
            r = rng.uniform(0.04, 0.1) * size if s.pattern == "spots" else rng.uniform(0.02, 0.04) * size
            cv2.circle(out, (int(cx), int(cy)), max(1, int(r)), 1, -1 if s.pattern == "spots" else 1)
        return out.astype(bool)
    if s.pattern == "patches":
        low = rng.normal(size=(4, 4)).astype(np.float32)
        return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) > 0.6
    if s.pattern == "sectors":
        ang = np.arctan2(yy - h / 2, xx - w / 2) + pose * np.pi / 4
        return (np.floor(ang / (np.pi / 3)) % 2) == 0
    if s.pattern == "gradient":
        return np.zeros((h, w), bool)
    return np.zeros((h, w), bool)


def render_sprite(category: str, style: Style, height_px: int, aspect: float, pose: int) -> Sprite:
    """Draw one pose of an object ``height_px`` tall with width/height ``aspect``; deterministic in its inputs."""
    spec = CATEGORY_SPECS.get(category)
    if spec is None:
        raise ConfigError(f"unknown synthetic category {category!r}; known: {', '.join(CATEGORIES)}")
    height_px = max(4, int(height_px))
    width_px = max(4, int(round(height_px * aspect)))
    p = _Painter(width_px * SUPERSAMPLE, height_px * SUPERSAMPLE)
    spec.draw(p, style, pose)
    img = p.img.astype(np.float32)
    surface = p.part > 0
    if surface.any():
        pat = _pattern_mask(style, p.h, p.w, pose) & surface
        img[pat] = np.asarray(style.second, np.float32)
        if style.pattern == "gradient":
            g = np.linspace(0, 1, p.h, dtype=np.float32)[:, None, None]
            blend = g * np.asarray(style.second, np.float32) + (1 - g) * img
            img = np.where(surface[..., None], blend, img)
    rng = np.random.default_rng([style.seed, pose])
    noise = cv2.GaussianBlur(rng.normal(size=(p.h, p.w)).astype(np.float32), (0, 0), 1.0)
    light = np.linspace(1.12, 0.82, p.h, dtype=np.float32)[:, None]
    img *= (light * (1.0 + style.texture * 2.0 * noise))[..., None]
    img = np.clip(img, 0, 255)
    small = cv2.resize(img, (width_px, height_px), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(p.mask.astype(np.float32) / 255.0, (width_px, height_px), interpolation=cv2.INTER_AREA)
    mask = alpha > 0.45
    if not mask.any():
        mask = alpha >= alpha.max()
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb = np.ascontiguousarray(small[y0:y1, x0:x1].round().astype(np.uint8))
    return Sprite(rgb, np.ascontiguousarray(mask[y0:y1, x0:x1]))
