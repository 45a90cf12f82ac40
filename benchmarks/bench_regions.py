"""Region-extractor benchmark: recall of GT boxes by the M regions, nearest-centroid category accuracy of
the matched regions' features, and ONNX Runtime frames/s.

Recall: a GT box at a sampled frame is matched when one of the M regions of that frame has IoU ≥ 0.5.
Features: the best-IoU region of each matched GT box is labelled with the GT category; class centroids come
from other videos (``--centroid-split``, or 2-fold over the evaluated videos), accuracy = nearest centroid
by cosine. Speed: the extractor on 120 frames (letterbox + ORT), at the synthetic resolution and 640×360.

Usage::

    python benchmarks/bench_regions.py --detector /work/data/detector --split /work/data/synth/test \\
        [--regions-dir /work/data/regions/test] [--centroid-split /work/data/synth/val] --json out.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vrgv.annotations import VideoAnnotation
from vrgv.regions import Regions


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [G,4] against b [M,4] (x1,y1,x2,y2)."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_video(regions: Regions, ann: VideoAnnotation, iou: float = 0.5) -> dict:
    """Per-GT-box best IoU, and for matched boxes their category and the best region's feature."""
    best, cats, feats, areas, gt_cats = [], [], [], [], []
    for n, fid in enumerate(regions.frame_ids):
        gt, gcat = [], []
        for tid, traj in ann.trajectories.items():
            if int(fid) in traj:
                gt.append(traj[int(fid)])
                gcat.append(ann.categories[tid])
        if not gt:
            continue
        m = iou_matrix(np.asarray(gt, np.float32), regions.boxes[n])
        j = m.argmax(1)
        b = m[np.arange(len(gt)), j]
        best.extend(b.tolist())
        g = np.asarray(gt, np.float32)
        areas.extend(((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])).tolist())
        gt_cats.extend(gcat)
        for g in np.nonzero(b >= iou)[0]:
            cats.append(gcat[g])
            feats.append(regions.features[n, j[g]])
    return {"best_iou": np.asarray(best), "categories": cats, "gt_area": np.asarray(areas), "gt_categories": gt_cats,
            "features": np.asarray(feats, np.float32).reshape(-1, regions.feature_dim)}


def centroid_accuracy(train_f: np.ndarray, train_c: list[str], test_f: np.ndarray, test_c: list[str]) -> float:
    names = sorted(set(train_c))
    if not names or len(test_c) == 0:
        return float("nan")
    tc = np.asarray(train_c)
    cent = np.stack([train_f[tc == c].mean(0) for c in names])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True) + 1e-9
    f = test_f / (np.linalg.norm(test_f, axis=1, keepdims=True) + 1e-9)
    pred = np.asarray(names)[(f @ cent.T).argmax(1)]
    return float(np.mean(pred == np.asarray(test_c)))


def split_results(split: Path, extractor, regions_dir: Path | None, max_videos: int | None, num_samples: int) -> list[dict]:
    out = []
    for af in sorted((split / "annotations").glob("*.json"))[:max_videos]:
        ann = VideoAnnotation.load(af)
        cached = regions_dir / f"{ann.video_id}.npz" if regions_dir else None
        if cached is not None and cached.exists():
            regions = Regions.load(cached)
        else:
            regions = extractor.extract(split / "videos" / f"{ann.video_id}.mp4", num_samples)
        out.append(match_video(regions, ann))
    return out


def speed(extractor, width: int, height: int, frames: int = 120, repeats: int = 2) -> float:
    """Frames/s of extractor(VideoFrames) on random frames (letterbox + ORT), best of ``repeats``."""
    from vrgv.video import VideoFrames

    rng = np.random.default_rng(0)
    video = VideoFrames(rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8), np.arange(frames),
                        num_frames=frames, width=width, height=height)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        extractor(video)
        best = max(best, frames / (time.perf_counter() - t))
    return best


def speed_rows(args: argparse.Namespace) -> dict:
    from vrgv.extractors import get_extractor

    rows = {}
    for t in args.threads:
        e = get_extractor("builtin", detector=args.detector, threads=t)
        rows[f"threads={t}"] = {"320x240": round(speed(e, 320, 240), 1), "640x360": round(speed(e, 640, 360), 1)}
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", help="detector.onnx or its folder (default: the built-in one)")
    p.add_argument("--split", help="held-out split folder (videos/, annotations/); required unless --speed-only")
    p.add_argument("--regions-dir", help="use already extracted <video_id>.npz from here when present")
    p.add_argument("--centroid-split", help="split whose matched features give the class centroids (default: 2-fold)")
    p.add_argument("--centroid-regions-dir", help="extracted regions of --centroid-split")
    p.add_argument("--max-videos", type=int, default=None)
    p.add_argument("--num-samples", type=int, default=120)
    p.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="ORT thread counts for the speed rows")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--speed-only", action="store_true", help="only the frames/s rows (with the load average)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    from vrgv.extractors import get_extractor

    if args.speed_only:
        import os

        out = {"loadavg_before": [round(x, 2) for x in os.getloadavg()], "frames_per_s": speed_rows(args)}
        out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(out, indent=1))
        return 0
    if not args.split:
        p.error("--split is required unless --speed-only")
    ex = get_extractor("builtin", detector=args.detector)
    res = split_results(Path(args.split), ex, Path(args.regions_dir) if args.regions_dir else None,
                        args.max_videos, args.num_samples)
    best = np.concatenate([r["best_iou"] for r in res])
    out: dict = {
        "split": args.split, "videos": len(res), "gt_boxes": int(best.size), "num_regions": ex.num_regions,
        "recall_iou50": float(np.mean(best >= 0.5)), "recall_iou70": float(np.mean(best >= 0.7)),
        "mean_best_iou": float(best.mean()),
    }
    area = np.concatenate([r["gt_area"] for r in res])
    gcat = np.asarray([c for r in res for c in r["gt_categories"]])
    out["recall_iou50_by_area_px"] = {
        f"[{lo:g},{hi:g})": [int(m.sum()), round(float((best[m] >= 0.5).mean()), 3)]
        for lo, hi in [(0, 400), (400, 1000), (1000, 2500), (2500, np.inf)]
        if (m := (area >= lo) & (area < hi)).any()
    }
    out["recall_iou50_by_category"] = {c: [int((gcat == c).sum()), round(float((best[gcat == c] >= 0.5).mean()), 3)]
                                       for c in sorted(set(gcat.tolist()))}
    if args.centroid_split:
        cres = split_results(Path(args.centroid_split), ex,
                             Path(args.centroid_regions_dir) if args.centroid_regions_dir else None,
                             args.max_videos, args.num_samples)
        tf = np.concatenate([r["features"] for r in cres])
        tc = [c for r in cres for c in r["categories"]]
        acc = centroid_accuracy(tf, tc, np.concatenate([r["features"] for r in res]), [c for r in res for c in r["categories"]])
        out["centroids_from"] = args.centroid_split
    else:
        halves = [res[0::2], res[1::2]]
        accs, counts = [], []
        for k in range(2):
            tr, te = halves[k], halves[1 - k]
            tef = np.concatenate([r["features"] for r in te])
            accs.append(centroid_accuracy(np.concatenate([r["features"] for r in tr]), [c for r in tr for c in r["categories"]],
                                          tef, [c for r in te for c in r["categories"]]))
            counts.append(len(tef))
        acc = float(np.average(accs, weights=counts)) if sum(counts) else float("nan")
        out["centroids_from"] = "2-fold over the evaluated videos (even / odd)"
    out["matched_regions"] = int(sum(len(r["categories"]) for r in res))
    out["centroid_accuracy"] = acc
    if not args.no_speed:
        out["frames_per_s"] = speed_rows(args)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
