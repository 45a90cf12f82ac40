"""Accuracy split by how ambiguous a relation's instances are, for checkpoints linked at their own σ (synthetic data).

Three kinds of (video, relation string):
- ``same``: subject and object of one category (person-left-person): identical spatial queries;
- ``dup``: different categories, but the video holds another object of the subject's or the object's category
  (person-ride-horse with two persons in view), so the query's category alone does not say which one;
- ``unique``: each category appears once in the video.
Prints, per checkpoint, the count and AccS / AccO / AccR (average column, tIoU 0.5) of each kind.

    python benchmarks/same_category_split.py ANNOTATIONS_DIR REGIONS_DIR CHECKPOINT...
"""
import collections
import sys

import numpy as np
import torch

from vrgv.annotations import VideoAnnotation, ground_truth_from_annotations, load_annotations
from vrgv.metric import per_relation
from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
from vrgv.training.evaluate import ground_split


def relation_kinds(anns: list[VideoAnnotation]) -> dict[tuple[str, str], str]:
    """(video id, relation string) -> "same", "dup" or "unique" (from the categories of the annotated tracks)."""
    kinds = {}
    for a in anns:
        count = collections.Counter(a.categories.values())
        for r in a.relations:
            s, o = a.categories[r.subject_tid], a.categories[r.object_tid]
            kinds[(a.video_id, a.relation_string(r))] = ("same" if s == o else
                                                         "dup" if count[s] > 1 or count[o] > 1 else "unique")
    return kinds


def main() -> None:
    torch.set_num_threads(1)
    anns = load_annotations(sys.argv[1])
    store = load_region_folder(sys.argv[2], [a.video_id for a in anns], 120, 40)
    gt = ground_truth_from_annotations(anns)
    kinds = relation_kinds(anns)
    for ck in sys.argv[3:]:
        model, vocab, meta = load_checkpoint(ck)
        sigma = float(meta.get("sigma", 0.04))
        by = collections.defaultdict(list)
        for r in per_relation(gt, ground_split(model, vocab, anns, store, sigma=sigma)):
            by[kinds[(r.video_id, r.relation)]].append((r.sub, r.obj, r.rel))
            by["all"].append((r.sub, r.obj, r.rel))
        cells = "  ".join(f"{k} n={len(v)} ({100 * len(v) / len(by['all']):.0f}%): "
                          + " / ".join(f"{100 * x:.1f}" for x in np.mean(v, 0)) for k, v in sorted(by.items()))
        print(f"{ck.rstrip('/').split('/')[-1]} (σ = {sigma:g}) AccS / AccO / AccR  {cells}")


if __name__ == "__main__":
    main()
