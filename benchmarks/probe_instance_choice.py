"""Probe: choose the subject and object *instances* with the temporal head, at the track level (synthetic data).

42% of the grounding world's test relations involve two objects of one category (person-chase-person, or
person-ride-horse in a video with two persons); the attention picks the most category-like box and gets these
mostly wrong. This probe links two candidate tracks per role (the Viterbi track of α, then the Viterbi track of α
with the first track's boxes masked out), scores every (subject, object) candidate pair with the checkpoint's
temporal head for the query's predicate (its top-k bag score, no ground truth), adds γ · log of each track's
mean attention (how category-like it is), and links the best pair with the head's curve at the checkpoint's σ.
Ground truth is read only for scoring.

    python benchmarks/probe_instance_choice.py CHECKPOINT ANNOTATIONS_DIR REGIONS_DIR [--gammas 0 0.5 1] [--temperature T]
"""
from __future__ import annotations

import argparse
import collections

import numpy as np


def tracks(boxes, areas, alpha, kept, frame_ids, mask_iou: float = 0.3, iou_weight: float = 1.0):
    """The Viterbi track of ``alpha`` [N,M] over ``kept`` and the one after masking the first's boxes (λ =
    ``iou_weight``: a larger λ keeps a track on one object where α hops between two of a category)."""
    from vrgv.linking.reference import pairwise_iou, viterbi_pair

    first = viterbi_pair(boxes, areas, alpha, alpha, kept, frame_ids, iou_weight)[0]
    masked = alpha.copy()
    for t, k in enumerate(kept):
        iou = pairwise_iou(boxes[k, first[t]][None], boxes[k], areas[k, first[t]][None], areas[k])[0]
        masked[k, iou >= mask_iou] = 0.0
    second = viterbi_pair(boxes, areas, masked, masked, kept, frame_ids, iou_weight)[0]
    return [first, second]


def main() -> None:
    import torch

    from vrgv.annotations import ground_truth_from_annotations, load_annotations
    from vrgv.linking import link_many, to_grounding
    from vrgv.linking.reference import box_areas, keep_distinct_frames, pairwise_iou
    from vrgv.metric import per_relation
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.data import load_region_folder
    from vrgv.training.evaluate import attend_video
    from vrgv.vocab import QUERY_LEN

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("annotations")
    p.add_argument("regions")
    p.add_argument("--gammas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--temperature", type=float, default=1.0,
                   help="link candidate tracks on α^(1/T), renormalised per frame: T > 1 flattens α between two "
                        "objects of one category, so the track's continuity term keeps it on one of them")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, vocab, meta = load_checkpoint(args.checkpoint)
    model.eval()
    c = model.config
    sigma = float(meta.get("sigma", 0.2))
    anns = load_annotations(args.annotations)
    gt = ground_truth_from_annotations(anns)
    store = load_region_folder(args.regions, [a.video_id for a in anns], c.num_frames, c.num_regions)
    k_top = max(1, int(round(c.temporal_head_topk * c.num_frames)))
    preds = {g: {} for g in ["attention", *args.gammas]}
    kind = {}
    for a in anns:
        cats = collections.Counter(a.categories.values())
        for r in a.relations:
            s, o = a.categories[r.subject_tid], a.categories[r.object_tid]
            kind[(a.video_id, a.relation_string(r))] = "same" if s == o else ("dup" if cats[s] > 1 or cats[o] > 1 else "unique")
    for a in anns:
        vr = store[a.video_id]
        rels = a.relation_strings()
        a_s, a_o, beta = attend_video(model, vocab, vr, rels)
        boxes = vr.pixel_boxes().astype(np.float64)
        areas = box_areas(boxes)
        kept = keep_distinct_frames(np.arange(len(vr.frame_ids)), vr.frame_ids)
        expand = np.clip(np.searchsorted(vr.frame_ids[kept], vr.frame_ids, side="right") - 1, 0, len(kept) - 1)
        bn = torch.from_numpy(vr.boxes_norm)
        q = torch.from_numpy(vocab.encode_query(rels))
        for g in preds:
            preds[g][a.video_id] = {}
        res = link_many(boxes, a_s, a_o, beta, vr.frame_ids, vr.num_frames, sigma=sigma)
        for rel, x in zip(rels, res):
            if x is not None:
                preds["attention"][a.video_id][rel] = to_grounding(x, rel, a.video_id).to_dict()
        for i, rel in enumerate(rels):
            cand = {}
            flat_s, flat_o = (a ** (1.0 / args.temperature) for a in (a_s[i], a_o[i]))
            flat_s, flat_o = flat_s / flat_s.sum(-1, keepdims=True), flat_o / flat_o.sum(-1, keepdims=True)
            ts = tracks(boxes, areas, flat_s, kept, vr.frame_ids)
            to = tracks(boxes, areas, flat_o, kept, vr.frame_ids)
            for si, sp in enumerate(ts):
                for oi, op in enumerate(to):
                    sp_n, op_n = sp[expand], op[expand]  # region per sampled frame
                    iou = np.mean([pairwise_iou(boxes[n, sp_n[n]][None], boxes[n, op_n[n]][None],
                                                areas[n, sp_n[n]][None], areas[n, op_n[n]][None])[0, 0]
                                   for n in range(len(sp_n))])
                    if iou > 0.5:  # one object cannot be both
                        continue
                    rows = np.arange(len(sp_n))
                    b_s, b_o = bn[rows, sp_n][None], bn[rows, op_n][None]
                    with torch.no_grad():
                        curve, score = model.temporal_head.firing_and_score(
                            model.head_features(b_s, b_o), q[i:i + 1, 1:QUERY_LEN - 1], c.temporal_head_smooth, k_top)
                    evidence = np.log(a_s[i][rows, sp_n].mean() + 1e-12) + np.log(a_o[i][rows, op_n].mean() + 1e-12)
                    cand[(si, oi)] = (float(score[0]), evidence, curve[0].numpy(), sp_n, op_n)
            if not cand:
                continue
            for g in args.gammas:
                best = max(cand.values(), key=lambda v: v[0] + g * v[1])
                _, _, curve, sp_n, op_n = best
                one_s = np.zeros_like(a_s[i]); one_s[np.arange(len(sp_n)), sp_n] = 1.0
                one_o = np.zeros_like(a_o[i]); one_o[np.arange(len(op_n)), op_n] = 1.0
                x = link_many(boxes, one_s[None], one_o[None], curve[None].astype(np.float64), vr.frame_ids,
                              vr.num_frames, sigma=sigma)[0]
                if x is not None:
                    preds[g][a.video_id][rel] = to_grounding(x, rel, a.video_id).to_dict()
    print(f"{len(anns)} videos, σ = {sigma}, T = {args.temperature:g} (synthetic data); AccS / AccO / AccR "
          f"(tIoU 0.5, average column) by kind")
    for g, pr in preds.items():
        res = per_relation(gt, pr)
        by = collections.defaultdict(list)
        for r in res:
            by[kind[(r.video_id, r.relation)]].append((r.sub, r.obj, r.rel))
            by["all"].append((r.sub, r.obj, r.rel))
        cells = "  ".join(f"{k} ({len(v)}): " + " / ".join(f"{100 * x:.1f}" for x in np.mean(v, 0))
                          for k, v in sorted(by.items()))
        print(f"{'attention α' if g == 'attention' else f'instances by head, γ = {g}'}: {cells}")


if __name__ == "__main__":
    main()
