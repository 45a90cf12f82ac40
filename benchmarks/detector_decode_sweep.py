"""Recall at IoU 0.5 of detector decoding variants, from the detector's dense maps (synthetic data).

Runs the PyTorch detector once on a few videos of a split, then re-implements the decoder in NumPy to try
region budgets without exporting each: top-K peaks (3×3 max-pool NMS) with one or several box sizes per peak,
top cells without NMS, and the upper bound of every cell's box. Used to choose ``box_scales`` on the val split
(seed 2) before measuring the shipped detector on test (``bench_regions.py``).

    python benchmarks/detector_decode_sweep.py --weights /work/data/detector_v2 --split /work/data/synth/val
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_regions import iou_matrix  # noqa: E402  (same matching as the recall benchmark)

VARIANTS: list[tuple[str, int, tuple[float, ...], bool]] = [  # name, peaks, size factors, NMS
    ("top 40 peaks, 1 box each", 40, (1.0,), True),
    ("top 40 cells without peak NMS", 40, (1.0,), False),
    ("20 peaks × (1.0, 1.25)", 20, (1.0, 1.25), True),
    ("13 peaks × (1.0, 0.8, 1.25)", 13, (1.0, 0.8, 1.25), True),
    ("13 peaks × (1.0, 1.2, 1.45)", 13, (1.0, 1.2, 1.45), True),
    ("10 peaks × (1.0, 0.75, 1.3, 1.0)", 10, (1.0, 0.75, 1.3, 1.0), True),
    ("20 peaks × (1.0, 0.8)", 20, (1.0, 0.8), True),
    ("40 peaks × 1.2", 40, (1.2,), True),
]


def dense_maps(weights: Path, split: Path, videos: int, frames: int) -> dict:
    """Heatmap (sigmoid), log size, offset per sampled frame, and the GT boxes in detector-input pixels."""
    import torch
    from safetensors.torch import load_file

    from vrgv.annotations import VideoAnnotation
    from vrgv.extractors.onnx_detector import letterbox
    from vrgv.training.detector.model import DetectorConfig, RegionDetector
    from vrgv.video import read_video

    torch.set_num_threads(1)
    cfg = DetectorConfig.from_dict(json.loads((weights / "config.json").read_text())["detector"])
    model = RegionDetector(cfg)
    model.load_state_dict(load_file(str(weights / "detector.safetensors")))
    model.eval()
    heat, size, off, gts = [], [], [], []
    for af in sorted((split / "annotations").glob("*.json"))[:videos]:
        ann = VideoAnnotation.load(af)
        video = read_video(split / "videos" / f"{ann.video_id}.mp4", frames)
        imgs = []
        for frame, fid in zip(video.frames, video.frame_ids):
            img, scale = letterbox(frame, cfg.input_width, cfg.input_height)
            imgs.append(img)
            boxes = [traj[int(fid)] for traj in ann.trajectories.values() if int(fid) in traj]
            gts.append(np.asarray(boxes, np.float32).reshape(-1, 4) * scale)
        with torch.no_grad():
            maps = model.maps(torch.from_numpy(np.stack(imgs)))
        heat.append(torch.sigmoid(maps["heatmap"])[:, 0].numpy())
        size.append(maps["size"].numpy())
        off.append(maps["offset"].numpy())
    return {"heat": np.concatenate(heat), "size": np.concatenate(size), "offset": np.concatenate(off), "gt": gts,
            "stride": cfg.stride}


def peaks(hm: np.ndarray) -> np.ndarray:
    """Heatmap values at 3×3 local maxima, 0 elsewhere (the graph's max-pool NMS)."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(hm, 1, constant_values=-1.0)
    return hm * (sliding_window_view(padded, (3, 3)).max(axis=(-1, -2)) == hm)


def recall(maps: dict, num_peaks: int, factors: tuple[float, ...], nms: bool) -> float:
    heat, size, off, stride = maps["heat"], maps["size"], maps["offset"], maps["stride"]
    _, h, w = heat.shape
    best = []
    for f, gt in enumerate(maps["gt"]):
        if len(gt) == 0:
            continue
        score = peaks(heat[f]) if nms else heat[f]
        idx = np.argsort(-score.ravel(), kind="stable")[:num_peaks]
        cx = (idx % w + 0.5 + off[f, 0].ravel()[idx]) * stride
        cy = (idx // w + 0.5 + off[f, 1].ravel()[idx]) * stride
        sw, sh = np.exp(size[f, 0].ravel()[idx]) * stride, np.exp(size[f, 1].ravel()[idx]) * stride
        boxes = np.concatenate([np.stack([cx - k * sw / 2, cy - k * sh / 2, cx + k * sw / 2, cy + k * sh / 2], -1)
                                for k in factors])
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w * stride)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h * stride)
        best.append(iou_matrix(gt, boxes).max(1))
    return float(np.mean(np.concatenate(best) >= 0.5))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, type=Path, help="folder with detector.safetensors and config.json")
    p.add_argument("--split", required=True, type=Path, help="synthetic split folder (videos/, annotations/)")
    p.add_argument("--videos", type=int, default=24)
    p.add_argument("--frames", type=int, default=30, help="sampled frames per video")
    args = p.parse_args(argv)
    maps = dense_maps(args.weights, args.split, args.videos, args.frames)
    n_gt = sum(len(g) for g in maps["gt"])
    _, h, w = maps["heat"].shape
    print(f"synthetic split {args.split}: {args.videos} videos × {args.frames} frames, {n_gt} GT boxes\n")
    print("| regions per frame | recall@0.5 |\n| --- | ---: |")
    for name, k, factors, nms in VARIANTS:
        print(f"| {name} | {100 * recall(maps, k, factors, nms):.1f}% |")
    print(f"| upper bound: every cell's box ({h * w} per frame) | {100 * recall(maps, h * w, (1.0,), False):.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
