"""Relation accuracy of checkpoints across linking thresholds σ, to choose σ on a validation split (synthetic data).

The model's α and β are computed once per video; the instance choice (with ``instance_choice``), linking and
scoring repeat per σ, and per instance-choice setting given (T = ``--temperatures``, ν = ``--proximities``,
γ = ``--gammas``; default the checkpoint's config). Prints one row per (checkpoint, T, ν, γ, σ): AccS / AccO / AccR
of the average column at tIoU 0.5, and the best setting per checkpoint by AccR.

    python benchmarks/sigma_sweep.py ANNOTATIONS_DIR REGIONS_DIR --sigmas 0.1 0.2 0.3 --checkpoints C1 [C2 ...]
        [--temperatures 8 16] [--proximities 0 4] [--gammas 0.25 0.5]
"""
from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    import torch

    from vrgv.annotations import ground_truth_from_annotations, load_annotations
    from vrgv.linking import link_many, to_grounding
    from vrgv.metric import evaluate
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.data import load_region_folder
    from vrgv.training.evaluate import attend_video

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("annotations")
    p.add_argument("regions")
    p.add_argument("--sigmas", type=float, nargs="+", required=True)
    p.add_argument("--checkpoints", nargs="+", required=True)
    p.add_argument("--iou-weight", type=float, default=1.0)
    p.add_argument("--temperatures", type=float, nargs="+", default=None, help="instance choice's T (default: config)")
    p.add_argument("--proximities", type=float, nargs="+", default=None, help="instance choice's ν (default: config)")
    p.add_argument("--gammas", type=float, nargs="+", default=None, help="instance choice's γ (default: config)")
    args = p.parse_args()
    torch.set_num_threads(1)
    anns = load_annotations(args.annotations)
    gt = ground_truth_from_annotations(anns)
    print(f"{len(anns)} videos, {sum(len(a.relation_strings()) for a in anns)} relation strings (synthetic data)")
    for ck in args.checkpoints:
        model, vocab, _ = load_checkpoint(ck)
        model.eval()
        store = load_region_folder(args.regions, [a.video_id for a in anns], model.config.num_frames,
                                   model.config.num_regions)
        attended = {a.video_id: (a.relation_strings(), attend_video(model, vocab, store[a.video_id], a.relation_strings()))
                    for a in anns}
        head = None
        if model.config.instance_choice:  # as vrgv.training.evaluate and the runtime do, at each σ
            from vrgv.instances import HeadWeights, choose_instances

            c = model.config
            head = HeadWeights.from_state({k: v.numpy() for k, v in model.state_dict().items()
                                           if k.startswith("temporal_head.")}, c.to_dict())
        best = (-1.0, "")
        settings = [(float(t), float(nu), float(g)) for t in (args.temperatures or [c.instance_temperature])
                    for nu in (args.proximities or [c.instance_proximity])
                    for g in (args.gammas or [c.instance_gamma])] if head is not None else [(0.0, 0.0, 0.0)]
        for temperature, proximity, gamma in settings:
            label = f"T={temperature:g} ν={proximity:g} γ={gamma:g} " if head is not None else ""
            for sigma in args.sigmas:
                preds = {}
                for vid, (rels, (a_s, a_o, beta)) in attended.items():
                    vr = store[vid]
                    if head is not None:
                        a_s, a_o, beta = choose_instances(
                            vr.pixel_boxes(), vr.boxes_norm, a_s, a_o, beta, vr.frame_ids,
                            vocab.encode_query(rels)[:, 1:-1], head, temperature, gamma,
                            num_frames=vr.num_frames, sigma=sigma, iou_weight=args.iou_weight, proximity=proximity)
                    res = link_many(vr.pixel_boxes(), a_s, a_o, beta, vr.frame_ids, vr.num_frames, sigma=sigma,
                                    iou_weight=args.iou_weight)
                    preds[vid] = {r: to_grounding(x, r, vid).to_dict() for r, x in zip(rels, res) if x is not None}
                acc = evaluate(gt, preds).columns["average"]
                print(f"{ck}  {label}σ={sigma:<6g} AccS {acc.AccS:6.2f}  AccO {acc.AccO:6.2f}  AccR {acc.AccR:6.2f}")
                best = max(best, (acc.AccR, f"{label}σ = {sigma:g}"), key=lambda t: t[0])
        print(f"{ck}  best: {best[1]} (AccR {best[0]:.2f})")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
