"""``vrgv extract``: video file(s) / frame folder(s) → ``Regions`` .npz (M regions per sampled frame)."""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

HELP = "extract region proposals (boxes + features) from videos into Regions .npz files"
DESCRIPTION = """Extract M region proposals per sampled frame from a video file, a folder of frames or many of them.

examples:
  vrgv extract clip.mp4 --out clip.npz
  vrgv extract frames_dir/ --out clip.npz --num-samples 120
  vrgv extract videos/*.mp4 --out-dir regions/ --detector detector.onnx
  vrgv extract clip.mp4 --out clip.npz --extractor faster-rcnn --checkpoint frcnn.pt --num-classes 91
"""

log = logging.getLogger("vrgv.extract")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="VIDEO", help="video file(s) or frame folder(s)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="output .npz (one VIDEO)")
    out.add_argument("--out-dir", help="output folder: one <video_id>.npz per VIDEO")
    parser.add_argument("--extractor", default="builtin", choices=["builtin", "precomputed", "faster-rcnn"])
    parser.add_argument("--num-samples", type=int, default=120, help="sampled frames N (default 120)")
    parser.add_argument("--num-regions", type=int, default=None, help="regions per frame M (default: the extractor's, 40)")
    parser.add_argument("--detector", help="builtin: detector.onnx or a folder holding it (default: the bundled one)")
    parser.add_argument("--regions-dir", help="precomputed: folder of <video_id>.npz")
    parser.add_argument("--checkpoint", help="faster-rcnn: torchvision fasterrcnn_resnet50_fpn state_dict path")
    parser.add_argument("--num-classes", type=int, default=91, help="faster-rcnn: classes incl. background (default 91)")
    parser.add_argument("--threads", type=int, default=None, help="builtin: ONNX Runtime threads")
    parser.add_argument("--overwrite", action="store_true", help="with --out-dir: redo videos whose .npz exists")


def _build(args: argparse.Namespace):
    from vrgv.extractors import get_extractor

    kw: dict = {}
    if args.num_regions is not None:
        kw["num_regions"] = args.num_regions
    if args.extractor == "builtin":
        return get_extractor("builtin", detector=args.detector, threads=args.threads, **kw)
    if args.extractor == "precomputed":
        return get_extractor("precomputed", folder=args.regions_dir, **kw)
    return get_extractor("faster-rcnn", checkpoint=args.checkpoint, num_classes=args.num_classes, **kw)


def run(args: argparse.Namespace) -> int:
    from vrgv.errors import ConfigError, VrgvError

    if args.out and len(args.sources) != 1:
        raise ConfigError(f"--out takes one VIDEO but {len(args.sources)} were given; use --out-dir for many")
    extractor = _build(args)
    failures = 0
    for k, src in enumerate(args.sources):
        src_path = Path(src)
        out = Path(args.out) if args.out else Path(args.out_dir) / f"{src_path.stem if src_path.is_file() else src_path.name}.npz"
        if args.out_dir and out.exists() and not args.overwrite:
            log.info("[%d/%d] %s exists, skipped", k + 1, len(args.sources), out)
            continue
        t0 = time.perf_counter()
        try:
            regions = extractor.extract(src, args.num_samples)
        except VrgvError as exc:
            if args.out:
                raise
            failures += 1
            log.error("[%d/%d] %s: %s", k + 1, len(args.sources), src, exc)
            continue
        path = regions.save(out)
        log.info(
            "[%d/%d] %s -> %s (N=%d, M=%d, D=%d, %d frames, %.2fs)", k + 1, len(args.sources), src, path,
            regions.num_samples, regions.num_regions, regions.feature_dim, regions.num_frames, time.perf_counter() - t0,
        )
        if args.out:
            print(json.dumps({"out": str(path), "video_id": regions.video_id, "num_samples": regions.num_samples,
                              "num_regions": regions.num_regions, "feature_dim": regions.feature_dim,
                              "num_frames": regions.num_frames, "width": regions.width, "height": regions.height}))
    if failures:
        log.error("%d of %d video(s) failed", failures, len(args.sources))
        return 1
    return 0
