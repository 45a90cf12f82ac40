"""Render detector training frames from the synthetic world into a frame cache (.npz, no pickle).

Each video ``vrgv.synth.sample_video(seed, i)`` is written as mp4v exactly like a split (so frames carry
the same compression artifacts as the videos the detector will see), ``frames_per_video`` evenly spaced
frames are decoded back with their GT boxes and categories, and the temporary video is deleted.

The cache is written in shards of ``--shard`` videos (``OUT_000.npz``, ``OUT_001.npz``...) so that training
can start on the finished ones; a shard that exists is skipped (resumable).

Usage: ``python -m vrgv.training.detector.prepare --seed 11 --videos 400 --out /work/data/detector/frames_s11``
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vrgv.training.detector.data import FrameSample, boxes_at

log = logging.getLogger("vrgv.training.detector.prepare")


def render_video_frames(seed: int, index: int, frames_per_video: int, class_names: list[str]) -> list[FrameSample]:
    """Frames of synthetic video (seed, index) after an mp4v round trip, with every GT box."""
    from vrgv.synth import sample_video
    from vrgv.video import read_video

    video = sample_video(seed, index)
    class_index = {c: i for i, c in enumerate(class_names)}
    with tempfile.TemporaryDirectory(prefix="vrgv-det-") as tmp:
        path, _ = video.write(tmp)
        frames = read_video(path, frames_per_video)
    out = []
    for img, fid in zip(frames.frames, frames.frame_ids):
        b, lab = boxes_at(video.annotation, int(fid), class_index)
        out.append(FrameSample(img, b, lab))
    return out


def save_cache(samples: list[FrameSample], path: Path) -> None:
    counts = np.array([s.boxes.shape[0] for s in samples], np.int64)
    arrays = {
        "images": np.stack([s.image for s in samples]),
        "boxes": np.concatenate([s.boxes for s in samples]).astype(np.float32),
        "labels": np.concatenate([s.labels for s in samples]).astype(np.int64),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_cache(path: str | Path) -> list[FrameSample]:
    """Frame samples saved by :func:`save_cache`."""
    with np.load(path, allow_pickle=False) as d:
        images, boxes, labels, offsets = d["images"], d["boxes"], d["labels"], d["offsets"]
    return [FrameSample(images[i], boxes[offsets[i]:offsets[i + 1]], labels[offsets[i]:offsets[i + 1]])
            for i in range(images.shape[0])]


def _job(args: tuple[int, int, int, list[str]]) -> list[FrameSample]:
    import cv2

    cv2.setNumThreads(1)
    return render_video_frames(*args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=11, help="synthetic split seed (not the train/val/test seeds 1-3)")
    p.add_argument("--videos", type=int, default=400)
    p.add_argument("--start", type=int, default=0, help="first video index")
    p.add_argument("--frames-per-video", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--shard", type=int, default=40, help="videos per cache shard")
    p.add_argument("--out", required=True, help="output prefix: OUT_000.npz, OUT_001.npz, ...")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from vrgv.vocab import Vocabulary

    names = Vocabulary.default().objects
    out = Path(args.out)
    t0 = time.time()
    total = 0
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for k, first in enumerate(range(args.start, args.start + args.videos, args.shard)):
            shard = out.with_name(f"{out.name}_{k:03d}.npz")
            if shard.exists():
                continue
            last = min(first + args.shard, args.start + args.videos)
            jobs = [(args.seed, i, args.frames_per_video, names) for i in range(first, last)]
            samples = [s for res in pool.map(_job, jobs) for s in res]
            save_cache(samples, shard)
            total += len(samples)
            log.info("wrote %s: videos %d..%d, %d frames, %d boxes (%.0fs)", shard, first, last - 1, len(samples),
                     sum(s.boxes.shape[0] for s in samples), time.time() - t0)
    log.info("done: %d new frames", total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
