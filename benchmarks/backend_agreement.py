"""Acceptance check for issue 6: grounding a split with ``backend="onnxruntime"`` and ``backend="torch"``
gives the same segments, boxes and AccS/AccO/AccR (``--against fp16``: ONNX Runtime fp32 vs fp16 graphs;
``--device cuda``: the torch backend on the GPU, ``--against torch-fp16``: torch with float16 autocast on the GPU).

Regions are extracted once per video (the bundle's detector) and fed to both grounders, so only the
encoder backend differs. Writes a markdown report with the exact command.

    .venv/bin/python benchmarks/backend_agreement.py --bundle sdk/data/default.vrgv \
        --split /work/data/synth/test --out benchmarks/reports/backend_agreement.md
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _boxes_diff(a: dict, b: dict) -> float:
    """Max |Δ| over the boxes of two trajectories ({fid: box}); inf if their frames differ."""
    if set(a) != set(b):
        return float("inf")
    return max((float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a), default=0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True)
    p.add_argument("--split", required=True, help="folder with videos/ and annotations/")
    p.add_argument("--regions", help="folder of precomputed Regions <video_id>.npz to use instead of the videos")
    p.add_argument("--max-videos", type=int, default=0, help="0 = all")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--against", choices=("torch", "fp16", "torch-fp16"), default="torch",
                   help="compare ONNX Runtime fp32 (CPU) with the torch backend, the bundle's fp16 graphs, or torch "
                        "with float16 autocast (needs --device cuda)")
    p.add_argument("--device", default="cpu", help="device of the torch backend: cpu or cuda")
    p.add_argument("--out", help="markdown report path")
    args = p.parse_args()

    import torch

    from vrgv.annotations import ground_truth_from_annotations, load_annotations
    from vrgv.backends import load_backend
    from vrgv.grounder import Grounder, spec_from_bundle
    from vrgv.metric import evaluate

    torch.set_num_threads(args.threads)
    split = Path(args.split)
    anns = sorted(load_annotations(split / "annotations"), key=lambda a: a.video_id)
    if args.max_videos:
        anns = anns[: args.max_videos]
    grounders = {"onnxruntime": Grounder.load(args.bundle, backend="onnxruntime", threads=args.threads)}
    bundle = grounders["onnxruntime"].bundle
    if args.against in ("torch", "torch-fp16"):
        grounders[args.against] = Grounder.load(args.bundle, backend="torch", threads=args.threads, device=args.device,
                                                precision="fp16" if args.against == "torch-fp16" else "fp32")
    else:
        half = load_backend(bundle, "onnxruntime", threads=args.threads, precision="fp16")
        grounders["fp16"] = Grounder(half, bundle.vocabulary, spec_from_bundle(bundle), name="fp16")
    other = args.against
    preds: dict[str, dict] = {name: {} for name in grounders}
    worst_box, seg_mismatch, fallback_mismatch, worst_score, n, box_mismatch = 0.0, 0, 0, 0.0, 0, 0
    t0 = time.time()
    for i, ann in enumerate(anns):
        if args.regions:
            regions = grounders["onnxruntime"].extract(Path(args.regions) / f"{ann.video_id}.npz")
        else:
            videos = list((split / "videos").glob(f"{ann.video_id}.*"))
            regions = grounders["onnxruntime"].extract(videos[0], video_id=ann.video_id)
        rels = sorted(set(ann.relation_strings()))
        out = {name: g.ground_many(regions, rels) for name, g in grounders.items()}
        for name in grounders:
            preds[name][ann.video_id] = {str(gr.relation): gr.to_dict() for gr in out[name]}
        for a, b in zip(out["onnxruntime"], out[other]):
            da, db = a.to_dict(), b.to_dict()
            n += 1
            seg_mismatch += da["segment"] != db["segment"]
            fallback_mismatch += da.get("fallback") != db.get("fallback")
            diff = max(_boxes_diff(da["sub"], db["sub"]), _boxes_diff(da["obj"], db["obj"]))
            worst_box, box_mismatch = max(worst_box, diff), box_mismatch + (diff >= 1e-3)
            worst_score = max(worst_score, abs(float(da.get("score") or 0) - float(db.get("score") or 0)))
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{len(anns)} videos, {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    gt = ground_truth_from_annotations(anns)
    prov = bundle.manifest.provenance
    reports = {name: evaluate(gt, preds[name]) for name in grounders}
    cols = {name: r.to_dict() for name, r in reports.items()}
    lines = [
        f"# Backend agreement: ONNX Runtime fp32 vs "
        f"{ {'torch': 'PyTorch', 'fp16': 'ONNX Runtime fp16', 'torch-fp16': 'PyTorch float16 autocast'}[other]} "
        f"grounding (synthetic split)",
        "",
        f"- command: `{' '.join(['.venv/bin/python', 'benchmarks/backend_agreement.py', *sys.argv[1:]])}`",
        f"- bundle: {args.bundle}; split: {args.split} ({len(anns)} videos, {n} video-relation pairs); synthetic data; "
        f"regions: {args.regions or 'extracted from the videos with the bundle detector'}",
        f"- encoders: {'; '.join(f'{k}: {(g.backend.providers or [g.backend.name])[0]}' for k, g in grounders.items())}",
        f"- model provenance: checkpoint {prov.get('checkpoint')!r}, training command "
        f"{(prov.get('training') or {}).get('command')!r}",
        f"- segments that differ: {seg_mismatch}; fallback flags that differ: {fallback_mismatch}",
        f"- pairs whose subject or object boxes differ (>= 1e-3 px): {box_mismatch} of {n}; max |box difference| "
        f"(pixels): {worst_box:.3g}; max |score difference|: {worst_score:.3g}",
        "",
        "| backend | AccS avg | AccO avg | AccR avg | AccR @0.3 / 0.5 / 0.7 | predicted / relations |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *[f"| {name} | {r.average.AccS:.2f} | {r.average.AccO:.2f} | {r.average.AccR:.2f} | "
          f"{' / '.join(f'{r.columns[c].AccR:.2f}' for c in list(r.columns)[:3])} | "
          f"{r.num_predicted} / {r.num_relations} |" for name, r in reports.items()],
        "",
        f"- identical metrics: {cols['onnxruntime'] == cols[other]}",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    same = seg_mismatch == 0 and fallback_mismatch == 0 and worst_box < 1e-3 and cols["onnxruntime"] == cols[other]
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
