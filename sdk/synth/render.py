"""Pixels of a simulated scene: textured, cluttered, panning background, sprites drawn back to front,
foreground occluders, blur, brightness flicker and sensor noise (so finding objects is not a colour threshold).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from vrgv.synth.world import RENDER_STREAM, Scene, rng_for

NOISE_BANK = 6


def _value_noise(rng: np.random.Generator, h: int, w: int, octaves=(4, 12, 40)) -> np.ndarray:
    """Smooth multi-scale noise in roughly [-1, 1], float32 [h, w]."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for cells in octaves:
        g = rng.normal(size=(max(2, cells * h // max(h, w)), cells)).astype(np.float32)
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.5
    return out / 1.75


def _colour(rng: np.random.Generator, lo=0.2, hi=0.9) -> np.ndarray:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(30, 200), rng.integers(int(lo * 255), int(hi * 255))]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def make_background(rng: np.random.Generator, width: int, height: int, horizon: float) -> np.ndarray:
    """uint8 [H, width, 3]: sky gradient with clouds, textured ground (noise, stripes), clutter blobs."""
    H, W = height, width
    img = np.zeros((H, W, 3), np.float32)
    hz = int(horizon)
    sky_top, sky_low = _colour(rng, 0.5, 1.0), _colour(rng, 0.6, 1.0)
    t = np.linspace(0, 1, max(hz, 1), dtype=np.float32)[:, None, None]
    img[:hz] = (1 - t) * sky_top + t * sky_low
    img[:hz] += 25.0 * _value_noise(rng, max(hz, 1), W, (3, 8))[..., None]
    ground_far, ground_near = _colour(rng, 0.25, 0.75), _colour(rng, 0.2, 0.7)
    t = np.linspace(0, 1, H - hz, dtype=np.float32)[:, None, None]
    img[hz:] = (1 - t) * ground_far + t * ground_near
    img[hz:] += (30.0 * _value_noise(rng, H - hz, W))[..., None] * rng.uniform(0.5, 1.5, size=3).astype(np.float32)
    if rng.random() < 0.6:  # furrows, road markings, tiles
        yy, xx = np.mgrid[0 : H - hz, 0:W].astype(np.float32)
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / period * 2 * np.pi) > rng.uniform(-0.3, 0.6)
        img[hz:][stripes] += _colour(rng, 0.1, 0.5) * 0.35 - 40.0
    for _ in range(int(rng.integers(8, 30))):  # clutter: stones, bushes, signs, puddles
        colour = tuple(float(c) for c in _colour(rng, 0.1, 1.0))
        cx, cy = int(rng.integers(0, W)), int(rng.integers(max(0, hz - 20), H))
        r = int(rng.integers(3, max(4, H // 10)))
        shape = rng.integers(4)
        if shape == 0:
            cv2.ellipse(img, (cx, cy), (r, max(2, r // 2)), float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif shape == 1:
            cv2.rectangle(img, (cx, cy), (cx + r, cy + int(rng.integers(2, 2 * r + 3))), colour, -1)
        elif shape == 2:
            pts = np.array([[cx + rng.integers(-r, r), cy + rng.integers(-r, r)] for _ in range(5)], np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
        else:  # tree: trunk and crown on the horizon
            cv2.rectangle(img, (cx, hz - r), (cx + max(2, r // 4), hz + r // 2), (80.0, 60.0, 40.0), -1)
            cv2.circle(img, (cx + r // 8, hz - r), r, colour, -1, cv2.LINE_AA)
    img *= 1.0 + 0.08 * rng.normal(size=(H, W, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Occluder:
    """A static foreground thing (post, bush, fence) drawn over the objects, in background coordinates."""

    x0: int
    y0: int
    rgb: np.ndarray
    mask: np.ndarray


def make_occluders(rng: np.random.Generator, width: int, height: int, horizon: float) -> list[Occluder]:
    out = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        kind = rng.integers(3)
        colour = _colour(rng, 0.15, 0.8)
        if kind == 0:  # post / tree trunk
            w, h = int(rng.integers(4, 12)), int(rng.uniform(0.3, 0.8) * height)
            rgb = np.empty((h, w, 3), np.float32)
            rgb[:] = colour
            rgb *= np.linspace(0.7, 1.2, w, dtype=np.float32)[None, :, None]
            mask = np.ones((h, w), bool)
        elif kind == 1:  # bush
            w, h = int(rng.integers(20, 60)), int(rng.integers(12, 35))
            mask_u8 = np.zeros((h, w), np.uint8)
            for _ in range(10):
                cv2.circle(mask_u8, (int(rng.integers(0, w)), int(rng.integers(h // 3, h))), int(rng.integers(4, max(5, h // 2))), 1, -1)
            mask = mask_u8.astype(bool)
            rgb = colour + 40.0 * _value_noise(rng, h, w, (3, 9))[..., None]
        else:  # fence rails
            w, h = int(rng.integers(50, 140)), int(rng.integers(14, 30))
            mask = np.zeros((h, w), bool)
            mask[: max(2, h // 6)] = True
            mask[h // 2 : h // 2 + max(2, h // 6)] = True
            mask[:, :: max(8, w // 6)] = True
            mask[:, 1 :: max(8, w // 6)] = True
            rgb = np.empty((h, w, 3), np.float32)
            rgb[:] = colour
        y0 = int(rng.uniform(horizon, height - 0.5 * mask.shape[0])) if kind else int(height - rng.uniform(0.6, 1.0) * mask.shape[0])
        x0 = int(rng.integers(0, width))
        out.append(Occluder(x0, y0, np.clip(rgb, 0, 255).astype(np.uint8), mask))
    return out


def _paste(frame: np.ndarray, rgb: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> None:
    H, W = frame.shape[:2]
    h, w = mask.shape
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sub_m = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    roi = frame[fy0:fy1, fx0:fx1]
    roi[sub_m] = rgb[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0][sub_m]


def render_frames(scene: Scene) -> Iterator[np.ndarray]:
    """RGB uint8 [H, W, 3] frames of a scene, rendered in memory; deterministic for the scene's seed/index."""
    rng = rng_for(scene.seed, scene.index, RENDER_STREAM)
    W, H, T = scene.options.width, scene.options.height, scene.frame_count
    pan_amp = int(rng.uniform(0.0, 0.12) * W)
    background = make_background(rng, W + 2 * pan_amp + 1, H, scene.horizon)
    occluders = make_occluders(rng, W + 2 * pan_amp, H, scene.horizon)
    period, phase = rng.uniform(8.0, 30.0) * scene.fps, rng.uniform(0, 2 * np.pi)
    offsets = np.round(pan_amp * (1.0 + np.sin(2 * np.pi * np.arange(T) / period + phase))).astype(int)
    sigma_noise = rng.uniform(2.0, 9.0)
    bank = [np.round(rng.normal(0.0, sigma_noise, size=(H, W, 3))).astype(np.int16) for _ in range(NOISE_BANK)]
    choice = rng.integers(0, NOISE_BANK, size=T)
    gains = 1.0 + rng.uniform(0.0, 0.06) * np.sin(np.arange(T) * rng.uniform(0.05, 0.5))
    blur = float(rng.uniform(0.4, 1.1))
    flipped = {p.tid: [(np.ascontiguousarray(s.rgb[:, ::-1]), np.ascontiguousarray(s.mask[:, ::-1])) for s in p.sprites]
               for p in scene.paths}
    for t in range(T):
        off = int(offsets[t])
        frame = background[:, off : off + W].copy()
        order = sorted((p.boxes[t, 3], p.tid, p) for p in scene.paths if not np.isnan(p.boxes[t, 0]))
        for _, _, p in order:
            k = int(p.pose[t])
            if p.facing[t] >= 0:
                rgb, mask = p.sprites[k].rgb, p.sprites[k].mask
            else:
                rgb, mask = flipped[p.tid][k]
            _paste(frame, rgb, mask, int(p.x0[t]), int(p.y0[t]))
        for occ in occluders:
            _paste(frame, occ.rgb, occ.mask, occ.x0 - off, occ.y0)
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
        out = frame.astype(np.int16)
        out += bank[int(choice[t])]
        if gains[t] != 1.0:
            out = (out * gains[t]).astype(np.int16)
        np.clip(out, 0, 255, out=out)
        yield out.astype(np.uint8)
