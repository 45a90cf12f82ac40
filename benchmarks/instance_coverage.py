"""Does the attention's linked track stay on an object of the query's category? By relation kind (synthetic data).

For every (video, relation string) of a split, the subject's Viterbi track of α over the whole video (λ = 1) is
compared, on the sampled frames where the ground-truth subject has a box, with (a) the ground-truth subject and
(b) any object of the subject's category (box IoU ≥ 0.5). As a check on the detector, it also reports how often
some region has IoU ≥ 0.5 with the ground-truth subject or object. Kinds as in `same_category_split.py`.

    python benchmarks/instance_coverage.py CHECKPOINT ANNOTATIONS_DIR REGIONS_DIR
"""
from __future__ import annotations

import collections
import sys

import numpy as np


def main() -> None:
    import torch

    from same_category_split import relation_kinds  # noqa: E402 - benchmarks/ is the script's folder
    from vrgv.annotations import load_annotations
    from vrgv.linking.reference import box_areas, keep_distinct_frames, viterbi_pair
    from vrgv.metric import box_iou
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.data import load_region_folder
    from vrgv.training.evaluate import attend_video

    torch.set_num_threads(1)
    model, vocab, _ = load_checkpoint(sys.argv[1])
    anns = load_annotations(sys.argv[2])
    c = model.config
    store = load_region_folder(sys.argv[3], [a.video_id for a in anns], c.num_frames, c.num_regions)
    kinds = relation_kinds(anns)
    on_subject, on_category, recall = (collections.defaultdict(list) for _ in range(3))
    per_relation: dict[str, list[float]] = collections.defaultdict(list)  # kind -> share of frames on the subject
    for a in anns:
        vr = store[a.video_id]
        boxes = vr.pixel_boxes().astype(np.float64)
        areas = box_areas(boxes)
        kept = keep_distinct_frames(np.arange(len(vr.frame_ids)), vr.frame_ids)
        expand = np.clip(np.searchsorted(vr.frame_ids[kept], vr.frame_ids, side="right") - 1, 0, len(kept) - 1)
        first = {}
        for r in a.relations:
            first.setdefault(a.relation_string(r), r)
        rels = list(first)
        a_s = attend_video(model, vocab, vr, rels)[0]
        for i, rel in enumerate(rels):
            r, kind = first[rel], kinds[(a.video_id, rel)]
            path = viterbi_pair(boxes, areas, a_s[i], a_s[i], kept, vr.frame_ids, 1.0)[0][expand]
            same_cat = [t for t, cat in a.categories.items() if cat == a.categories[r.subject_tid]]
            start = len(on_subject[kind])
            for n, fid in enumerate(vr.frame_ids):
                gt = a.trajectories[r.subject_tid].get(int(fid))
                if gt is None:
                    continue
                on_subject[kind].append(box_iou(boxes[n, path[n]], np.array(gt)) >= 0.5)
                on_category[kind].append(any(
                    a.trajectories[t].get(int(fid)) is not None
                    and box_iou(boxes[n, path[n]], np.array(a.trajectories[t][int(fid)])) >= 0.5 for t in same_cat))
                for tid in (r.subject_tid, r.object_tid):
                    b = a.trajectories[tid].get(int(fid))
                    if b is not None:
                        recall[kind].append(box_iou(boxes[n], np.array(b)).max() >= 0.5)
            if len(on_subject[kind]) > start:
                per_relation[kind].append(float(np.mean(on_subject[kind][start:])))
    print(f"{len(anns)} videos (synthetic data); share of ground-truth subject frames")
    for kind in sorted(on_subject):
        print(f"{kind:7s} frames {len(on_subject[kind]):6d}: track on the subject {np.mean(on_subject[kind]):.3f}, on an "
              f"object of its category {np.mean(on_category[kind]):.3f}; detector recall (IoU ≥ 0.5) "
              f"{np.mean(recall[kind]):.3f}")
    edges = [0.0, 0.1, 0.3, 0.7, 0.9, 1.0001]
    print("relations by the share of their frames on the subject (a track that hops between two objects sits "
          "near 0.5): " + ", ".join(f"{lo:g}-{min(hi, 1):g}" for lo, hi in zip(edges, edges[1:])))
    for kind in sorted(per_relation):
        print(f"{kind:7s} {len(per_relation[kind]):4d} relations: {np.histogram(per_relation[kind], edges)[0].tolist()}")


if __name__ == "__main__":
    sys.path.insert(0, sys.path[0])
    main()
