"""Regions simulated from annotated trajectories, for data sets whose videos are unavailable (ImageNet-VidVRD
trajectories in ``../shared``) or to train without running a detector.

At each of the N sampled frames, every annotated object box becomes a proposal with probability
``1 - miss_rate``, jittered (centre shift ~ N(0, ``jitter``) x box size, log-scale ~ N(0, ``jitter``)),
plus ``duplicates`` looser copies (jitter x 3), like a detector's overlapping proposals; the rest of the M
slots are distractors: random boxes whose feature is either another category's vector or background.
Appearance feature = category vector (fixed per category for a ``world_seed``) + instance vector (per
track, scale ``instance_scale``) + noise (per box, scale ``noise_scale``). Proposals are shuffled per frame,
so the region index carries no information. Only boxes are read; relation spans and ids are not.
"""
from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

from vrgv.annotations import VideoAnnotation
from vrgv.errors import ConfigError
from vrgv.regions import Regions, sample_frame_ids


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the proposal simulator (validated)."""

    num_samples: int = 120
    num_regions: int = 40
    feature_dim: int = 128
    miss_rate: float = 0.1
    jitter: float = 0.06
    duplicates: int = 1
    instance_scale: float = 0.5
    noise_scale: float = 0.35
    distractor_object_rate: float = 0.3
    world_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_samples", "num_regions", "feature_dim"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"SimulationConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("miss_rate", "distractor_object_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"SimulationConfig.{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.jitter < 0 or self.instance_scale < 0 or self.noise_scale < 0 or self.duplicates < 0:
            raise ConfigError("SimulationConfig jitter, instance_scale, noise_scale and duplicates must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode("utf-8"))


def category_vector(category: str, cfg: SimulationConfig) -> np.ndarray:
    """The unit-norm-ish appearance prototype of a category (same in every video of a world)."""
    rng = np.random.default_rng(_seed("category", cfg.world_seed, category))
    return rng.normal(0.0, 1.0 / np.sqrt(cfg.feature_dim), cfg.feature_dim).astype(np.float32) * 3.0


def _jitter(box: np.ndarray, scale: float, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx = (x1 + x2) / 2 + rng.normal(0, scale) * w
    cy = (y1 + y2) / 2 + rng.normal(0, scale) * h
    w, h = w * np.exp(rng.normal(0, scale)), h * np.exp(rng.normal(0, scale))
    out = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    out[[0, 2]] = np.clip(out[[0, 2]], 0, width)
    out[[1, 3]] = np.clip(out[[1, 3]], 0, height)
    if out[2] - out[0] < 1:
        out[2] = min(out[0] + 1, width)
        out[0] = out[2] - 1
    if out[3] - out[1] < 1:
        out[3] = min(out[1] + 1, height)
        out[1] = out[3] - 1
    return out


def simulate_regions(ann: VideoAnnotation, cfg: SimulationConfig | None = None, seed: int = 0,
                     categories: list[str] | None = None) -> Regions:
    """Simulated proposals for one annotated video (deterministic given ``seed`` and the video id)."""
    cfg = cfg or SimulationConfig()
    rng = np.random.default_rng(_seed("video", seed, ann.video_id))
    N, M, D = cfg.num_samples, cfg.num_regions, cfg.feature_dim
    W, H = ann.width, ann.height
    frame_ids = sample_frame_ids(ann.frame_count, N)
    protos = {c: category_vector(c, cfg) for c in set(ann.categories.values()) | set(categories or [])}
    pool = sorted(protos)
    instance = {tid: rng.normal(0, cfg.instance_scale / np.sqrt(D), D).astype(np.float32) * 3.0 for tid in ann.categories}
    background = rng.normal(0, 1.0 / np.sqrt(D), D).astype(np.float32)
    noise = cfg.noise_scale / np.sqrt(D) * 3.0
    boxes = np.zeros((N, M, 4), np.float32)
    feats = np.zeros((N, M, D), np.float32)
    for i, fid in enumerate(frame_ids):
        rows: list[tuple[np.ndarray, np.ndarray]] = []
        for tid, traj in ann.trajectories.items():
            box = traj.get(int(fid))
            if box is None or rng.random() < cfg.miss_rate:
                continue
            base = protos[ann.categories[tid]] + instance[tid]
            b = np.asarray(box, dtype=np.float64)
            rows.append((_jitter(b, cfg.jitter, W, H, rng), base + rng.normal(0, noise, D)))
            for _ in range(cfg.duplicates):
                rows.append((_jitter(b, 3 * cfg.jitter, W, H, rng), base + rng.normal(0, 1.5 * noise, D)))
        rows = rows[:M]
        while len(rows) < M:
            w, h = rng.uniform(0.05, 0.5) * W, rng.uniform(0.05, 0.5) * H
            x1, y1 = rng.uniform(0, W - w), rng.uniform(0, H - h)
            proto = protos[pool[rng.integers(len(pool))]] if rng.random() < cfg.distractor_object_rate else background
            rows.append((np.array([x1, y1, x1 + w, y1 + h]), proto + rng.normal(0, 2 * noise, D)))
        order = rng.permutation(M)
        boxes[i] = np.stack([rows[k][0] for k in order])
        feats[i] = np.stack([rows[k][1] for k in order])
    return Regions(boxes=boxes, features=feats, frame_ids=frame_ids, width=W, height=H, num_frames=ann.frame_count,
                   video_id=ann.video_id, fps=ann.fps)


def main(argv: list[str] | None = None) -> int:
    """``python -m vrgv.training.simulate ANNOTATIONS OUT [--seed S]``: write ``OUT/<video_id>.npz`` Regions."""
    import argparse
    from pathlib import Path

    from vrgv.annotations import load_annotations
    from vrgv.vocab import Vocabulary

    p = argparse.ArgumentParser(description="Simulate regions of annotated videos (Regions .npz per video id)")
    p.add_argument("annotations")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0, help="0 = what `vrgv train --simulate-regions --seed 0` uses")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    categories = Vocabulary.default().objects
    count = 0
    for ann in load_annotations(args.annotations):
        path = out / f"{ann.video_id}.npz"
        if not path.exists():
            simulate_regions(ann, SimulationConfig(), args.seed, categories).save(path)
            count += 1
    print(f"wrote {count} Regions files to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
