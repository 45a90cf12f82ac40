"""Are instance choice's candidate pairs right, and does the head pick the right one? By relation kind (synthetic).

For every (video, relation string) of a split, the candidate (subject, object) track pairs of
``vrgv.instances.candidate_pairs`` are compared with the ground-truth subject and object on the sampled frames
where each has a box: a track is "on" its object where box IoU ≥ 0.5, and a pair is right when both tracks are on
theirs for at least ``--share`` of those frames. Reports per kind (as in ``same_category_split.py``): how often
some candidate pair is right (what a perfect choice could reach), and how often the pair instance choice picks
(head score + γ · evidence) is right. Ground truth is read only for scoring.

    python benchmarks/candidate_oracle.py CHECKPOINT ANNOTATIONS_DIR REGIONS_DIR [--share 0.7] [--gamma G]
        [--temperature T] [--proximity NU]
"""
from __future__ import annotations

import argparse
import collections
import sys

import numpy as np


def main() -> None:
    import torch

    from same_category_split import relation_kinds  # noqa: E402 - benchmarks/ is the script's folder
    from vrgv.annotations import load_annotations
    from vrgv.instances import HeadWeights, candidate_pairs
    from vrgv.metric import box_iou
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.data import load_region_folder
    from vrgv.training.evaluate import attend_video

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("annotations")
    p.add_argument("regions")
    p.add_argument("--share", type=float, default=0.7)
    p.add_argument("--gamma", type=float, default=None, help="default: the config's instance_gamma")
    p.add_argument("--temperature", type=float, default=None, help="default: the config's instance_temperature")
    p.add_argument("--proximity", type=float, default=None, help="default: the config's instance_proximity")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, vocab, _ = load_checkpoint(args.checkpoint)
    c = model.config
    gamma = c.instance_gamma if args.gamma is None else args.gamma
    temperature = c.instance_temperature if args.temperature is None else args.temperature
    proximity = c.instance_proximity if args.proximity is None else args.proximity
    head = HeadWeights.from_state({k: v.numpy() for k, v in model.state_dict().items()
                                   if k.startswith("temporal_head.")}, c.to_dict())
    anns = load_annotations(args.annotations)
    store = load_region_folder(args.regions, [a.video_id for a in anns], c.num_frames, c.num_regions)
    kinds = relation_kinds(anns)
    covered, chosen, count, sizes = (collections.Counter() for _ in range(4))
    for a in anns:
        vr = store[a.video_id]
        boxes = vr.pixel_boxes().astype(np.float64)
        first = {}
        for r in a.relations:
            first.setdefault(a.relation_string(r), r)
        rels = list(first)
        a_s, a_o, _ = attend_video(model, vocab, vr, rels)
        cands = candidate_pairs(boxes, a_s, a_o, vr.frame_ids, temperature, num_frames=vr.num_frames,
                                proximity=proximity)
        if not cands:
            continue
        rows = np.arange(len(vr.frame_ids))
        bn = vr.boxes_norm.astype(np.float64)
        _, scores = head.firing_and_score(np.stack([bn[rows, x.subject] for x in cands]),
                                          np.stack([bn[rows, x.object] for x in cands]),
                                          vocab.encode_query(rels)[[x.relation for x in cands]][:, 1:-1])

        def on(path: np.ndarray, tid: int) -> float:
            hits = [box_iou(boxes[n, path[n]], np.array(b)) >= 0.5 for n, fid in enumerate(vr.frame_ids)
                    if (b := a.trajectories[tid].get(int(fid))) is not None]
            return float(np.mean(hits)) if hits else 0.0

        by_rel = collections.defaultdict(list)
        for i, x in enumerate(cands):
            by_rel[x.relation].append((float(scores[i]) + gamma * x.evidence, i))
        for ri, rel in enumerate(rels):
            kind, r = kinds[(a.video_id, rel)], first[rel]
            right = {i for _, i in by_rel[ri] if on(cands[i].subject, r.subject_tid) >= args.share
                     and on(cands[i].object, r.object_tid) >= args.share}
            for k in (kind, "all"):
                count[k] += 1
                sizes[k] += len(by_rel[ri])
                covered[k] += bool(right)
                chosen[k] += bool(by_rel[ri]) and max(by_rel[ri])[1] in right
    print(f"{args.checkpoint}: {len(anns)} videos (synthetic data); a pair is right when both tracks are on their "
          f"object for ≥ {args.share:g} of its frames; T = {temperature:g}, ν = {proximity:g}, γ = {gamma:g}")
    for k in sorted(count):
        print(f"{k:7s} {count[k]:4d} relations, {sizes[k] / count[k]:.2f} candidates each: some candidate right "
              f"{100 * covered[k] / count[k]:.1f}%, the chosen one right {100 * chosen[k] / count[k]:.1f}%")


if __name__ == "__main__":
    sys.path.insert(0, sys.path[0])
    main()
