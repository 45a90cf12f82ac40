"""Training frames for the detector: frames + every GT box and category, from a synthetic split folder.

A split folder has ``videos/<id>.mp4`` and ``annotations/<id>.json`` (VidVRD format). From each video a few
evenly spaced frames are decoded (sequentially, via :func:`vrgv.video.read_video`) with their boxes.
``make_targets`` turns one letterboxed frame into CenterNet targets on the stride-4 grid.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrgv.annotations import VideoAnnotation
from vrgv.errors import AnnotationError
from vrgv.video import read_video

log = logging.getLogger(__name__)

MAX_OBJECTS = 48


@dataclass
class FrameSample:
    """One frame (uint8 [H,W,3] RGB) with its GT boxes (f32 [K,4] pixels) and category ids (i64 [K])."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.boxes.shape[0] != self.labels.shape[0]:
            raise AnnotationError(
                f"frame sample: image {self.image.dtype} {self.image.shape}, {self.boxes.shape[0]} boxes, "
                f"{self.labels.shape[0]} labels do not fit together"
            )


def boxes_at(ann: VideoAnnotation, fid: int, class_index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """GT boxes [K,4] and category ids [K] of every trajectory present at frame ``fid``."""
    boxes, labels = [], []
    for tid, traj in ann.trajectories.items():
        box = traj.get(int(fid))
        if box is None:
            continue
        cat = ann.categories.get(tid)
        if cat not in class_index:
            raise AnnotationError(f"annotation {ann.video_id!r}: category {cat!r} of trajectory {tid} is not a known class")
        boxes.append(box)
        labels.append(class_index[cat])
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def load_split_frames(
    split_dir: str | Path, class_names: list[str], *, frames_per_video: int = 8, max_videos: int | None = None,
) -> list[FrameSample]:
    """Decode ``frames_per_video`` evenly spaced frames of each video in ``split_dir`` with their GT boxes."""
    split_dir = Path(split_dir)
    class_index = {c: i for i, c in enumerate(class_names)}
    ann_files = sorted((split_dir / "annotations").glob("*.json"))[:max_videos]
    if not ann_files:
        raise AnnotationError(f"split folder {str(split_dir)!r} has no annotations/*.json")
    out: list[FrameSample] = []
    for k, af in enumerate(ann_files):
        ann = VideoAnnotation.load(af)
        found = sorted((split_dir / "videos").glob(f"{ann.video_id}.*"))
        if not found:
            raise AnnotationError(f"split folder {str(split_dir)!r}: no video videos/{ann.video_id}.* for annotation {af.name}")
        video = found[0]
        frames = read_video(video, frames_per_video)
        for img, fid in zip(frames.frames, frames.frame_ids):
            b, lab = boxes_at(ann, int(fid), class_index)
            out.append(FrameSample(img, b, lab))
        if (k + 1) % 50 == 0:
            log.info("decoded %d/%d videos (%d frames)", k + 1, len(ann_files), len(out))
    return out


def letterbox_sample(sample: FrameSample, width: int, height: int, rng: np.random.Generator | None = None,
                     *, jitter: float = 0.0, flip: bool = False) -> FrameSample:
    """Letterbox like the extractor (fit, pad bottom/right), with optional random down-scale and h-flip."""
    from vrgv.extractors.onnx_detector import letterbox

    img, boxes = sample.image, sample.boxes.copy()
    if flip and rng is not None and rng.random() < 0.5:
        img = np.ascontiguousarray(img[:, ::-1])
        w = img.shape[1]
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    out, s = letterbox(img, width, height)
    if jitter > 0 and rng is not None and rng.random() < 0.5:
        f = rng.uniform(1.0 - jitter, 1.0)
        import cv2

        small = cv2.resize(out, (max(16, round(width * f)), max(16, round(height * f))), interpolation=cv2.INTER_AREA)
        canvas = np.zeros_like(out)
        canvas[: small.shape[0], : small.shape[1]] = small
        out, s = canvas, s * small.shape[1] / width
    return FrameSample(out, boxes * s, sample.labels)


def make_targets(sample: FrameSample, width: int, height: int, stride: int = 4, min_size: float = 2.0) -> dict[str, np.ndarray]:
    """CenterNet targets for a letterboxed frame: heatmap [1,h,w], per-object index/size/offset/box/label/mask."""
    h, w = height // stride, width // stride
    heat = np.zeros((1, h, w), np.float32)
    ind = np.zeros(MAX_OBJECTS, np.int64)
    log_size = np.zeros((MAX_OBJECTS, 2), np.float32)
    offset = np.zeros((MAX_OBJECTS, 2), np.float32)
    boxes = np.zeros((MAX_OBJECTS, 4), np.float32)
    labels = np.zeros(MAX_OBJECTS, np.int64)
    mask = np.zeros(MAX_OBJECTS, np.float32)
    b = sample.boxes.copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    valid = np.nonzero((bw >= min_size) & (bh >= min_size))[0]
    # larger objects first so that small ones win a shared centre cell
    valid = valid[np.argsort(-(bw[valid] * bh[valid]))][:MAX_OBJECTS]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for k, i in enumerate(valid):
        cx, cy = (b[i, 0] + b[i, 2]) / 2 / stride, (b[i, 1] + b[i, 3]) / 2 / stride
        ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
        sx, sy = max(bw[i] / stride / 6.0, 0.6), max(bh[i] / stride / 6.0, 0.6)
        g = np.exp(-((xx - ix) ** 2) / (2 * sx * sx) - ((yy - iy) ** 2) / (2 * sy * sy))
        np.maximum(heat[0], g, out=heat[0])
        heat[0, iy, ix] = 1.0
        ind[k] = iy * w + ix
        log_size[k] = np.log([bw[i] / stride, bh[i] / stride])
        offset[k] = (cx - ix - 0.5, cy - iy - 0.5)
        boxes[k] = b[i]
        labels[k] = sample.labels[i]
        mask[k] = 1.0
    return {"heatmap": heat, "ind": ind, "log_size": log_size, "offset": offset, "boxes": boxes, "labels": labels, "mask": mask}


def crop_sample(sample: FrameSample, width: int, height: int, rng: np.random.Generator,
                min_visible: float = 0.4) -> FrameSample:
    """Random width×height crop (training is fully convolutional); keeps boxes ≥ ``min_visible`` inside, clipped."""
    H, W = sample.image.shape[:2]
    x0 = int(rng.integers(0, W - width + 1)) if W > width else 0
    y0 = int(rng.integers(0, H - height + 1)) if H > height else 0
    img = sample.image[y0 : y0 + height, x0 : x0 + width]
    b = sample.boxes - np.array([x0, y0, x0, y0], np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    c = b.copy()
    c[:, [0, 2]] = c[:, [0, 2]].clip(0, img.shape[1])
    c[:, [1, 3]] = c[:, [1, 3]].clip(0, img.shape[0])
    vis = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
    keep = vis >= min_visible * np.maximum(area, 1e-6)
    return FrameSample(np.ascontiguousarray(img), c[keep], sample.labels[keep])
