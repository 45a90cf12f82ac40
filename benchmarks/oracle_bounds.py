"""Which half of grounding limits accuracy: the spatial attention α or the temporal attention β (synthetic data).

For the first K videos of a split, every annotated relation is linked (paper §3.4, σ = 0.04, λ = 1) with:

- ``model``: the checkpoint's α and β;
- ``oracle_beta``: the model's α, β = 1 on the sampled frames of the relation's longest ground-truth instance
  and 0 elsewhere (perfect temporal attention);
- ``oracle_alpha``: α one-hot on the region with the highest IoU to the ground-truth subject (object) box of
  that instance on every frame where it is visible (perfect spatial attention), the model's β;
- ``oracle_both``: both oracles (the ceiling that the regions and the linking allow);
- ``oracle_alpha_flat_beta``: perfect α, β flat (every frame linked: no temporal localization at all).

Optionally ``--relative F,...`` adds rows where β is thresholded at F·max(β) per relation instead of σ.

    python benchmarks/oracle_bounds.py CHECKPOINT REGIONS_DIR ANNOTATIONS_DIR [--videos K] [--relative 0.5,0.7]
"""
from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    import torch

    from vrgv.annotations import ground_truth_from_annotations, load_annotations
    from vrgv.metric import box_iou
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.data import load_region_folder
    from vrgv.training.evaluate import attend_video

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("regions")
    p.add_argument("annotations")
    p.add_argument("--videos", type=int, default=60, help="first K videos of the split")
    p.add_argument("--relative", default="", help="comma-separated fractions F: β thresholded at F·max(β)")
    p.add_argument("--sigma", type=float, default=0.04)
    args = p.parse_args()
    fracs = [float(x) for x in args.relative.split(",") if x]
    torch.set_num_threads(1)
    model, vocab = load_checkpoint(args.checkpoint)[:2]
    model.eval()
    anns = load_annotations(args.annotations)[: args.videos]
    store = load_region_folder(args.regions, [a.video_id for a in anns], model.config.num_frames,
                               model.config.num_regions)
    names = ["model", "oracle_beta", "oracle_alpha", "oracle_both", "oracle_alpha_flat_beta",
             *(f"model, β ≥ {f:g}·max β" for f in fracs), *(f"oracle_alpha, β ≥ {f:g}·max β" for f in fracs)]
    preds: dict[str, dict] = {n: {} for n in names}
    for a in anns:
        vr = store[a.video_id]
        rels = a.relation_strings()
        a_s, a_o, beta = attend_video(model, vocab, vr, rels)
        boxes = vr.pixel_boxes().astype(np.float64)
        os_, oo_ = np.full_like(a_s, 1.0 / a_s.shape[-1]), np.full_like(a_o, 1.0 / a_o.shape[-1])
        ob = np.zeros_like(beta)
        for r, rel in enumerate(rels):
            inst = max((i for i in a.relations if a.relation_string(i) == rel), key=lambda i: i.end_fid - i.begin_fid)
            ob[r, (vr.frame_ids >= inst.begin_fid) & (vr.frame_ids < inst.end_fid)] = 1.0
            for k, fid in enumerate(vr.frame_ids):
                for tid, out in ((inst.subject_tid, os_), (inst.object_tid, oo_)):
                    g = a.trajectories[tid].get(int(fid))
                    if g is not None:
                        out[r, k] = 0.0
                        out[r, k, box_iou(boxes[k], np.asarray(g, np.float64)).argmax()] = 1.0
        inputs = {"model": (a_s, a_o, beta), "oracle_beta": (a_s, a_o, ob), "oracle_alpha": (os_, oo_, beta),
                  "oracle_both": (os_, oo_, ob), "oracle_alpha_flat_beta": (os_, oo_, np.ones_like(beta))}
        for f in fracs:  # β ≥ f·max(β) ⟺ β·σ/(f·max β) ≥ σ
            scaled = beta * (args.sigma / (f * beta.max(axis=1, keepdims=True)))
            inputs[f"model, β ≥ {f:g}·max β"] = (a_s, a_o, scaled)
            inputs[f"oracle_alpha, β ≥ {f:g}·max β"] = (os_, oo_, scaled)
        for name, (s, o, b) in inputs.items():
            preds[name][a.video_id] = link_relations(boxes, s, o, b, vr, rels, a.video_id, args.sigma)
    print(f"{len(anns)} videos, checkpoint {args.checkpoint}; Average over sIoU 0.3/0.5/0.7, tIoU 0.5 (synthetic data)")
    print_table(ground_truth_from_annotations(anns), preds, "attention used for linking")


def link_relations(boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, beta: np.ndarray, regions,
                   relations: list, video_id: str, sigma: float) -> dict:
    """{relation: Grounding dict} of one video's relations, linked as the table rows are (λ = 1)."""
    from vrgv.linking import link_many, to_grounding

    res = link_many(boxes, alpha_s.astype(np.float64), alpha_o.astype(np.float64), beta.astype(np.float64),
                    regions.frame_ids, regions.num_frames, sigma=sigma, iou_weight=1.0)
    return {rel: to_grounding(x, rel, video_id).to_dict() for rel, x in zip(relations, res) if x is not None}


def print_table(gt: dict, preds: dict, first_column: str) -> None:
    """One Markdown row of average AccS / AccO / AccR (tIoU 0.5) per prediction set, in insertion order."""
    from vrgv.metric import evaluate

    print(f"| {first_column} | AccS | AccO | AccR |\n| --- | ---: | ---: | ---: |")
    for name, pred in preds.items():
        acc = evaluate(gt, pred, tiou=0.5).columns["average"]
        print(f"| {name} | {acc.AccS:.2f} | {acc.AccO:.2f} | {acc.AccR:.2f} |")


if __name__ == "__main__":
    main()
