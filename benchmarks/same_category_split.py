"""Relation accuracy split by same- vs different-category pairs, for checkpoints linked at their own σ (synthetic data).

Subject and object of the same category (person-left-person) have identical spatial queries, so nothing tells
them apart. Prints, per checkpoint, the share of such relations and the relation accuracy (average column, tIoU
0.5) on each part.

    python benchmarks/same_category_split.py ANNOTATIONS_DIR REGIONS_DIR CHECKPOINT...
"""
import sys

import numpy as np
import torch

from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
from vrgv.training.evaluate import ground_split
from vrgv.annotations import load_annotations, ground_truth_from_annotations
from vrgv.metric import per_relation
torch.set_num_threads(1)
anns = load_annotations(sys.argv[1]); st = load_region_folder(sys.argv[2], [a.video_id for a in anns], 120, 40)
gt = ground_truth_from_annotations(anns)
for ck in sys.argv[3:]:
    m, v, meta = load_checkpoint(ck)
    res = per_relation(gt, ground_split(m, v, anns, st, sigma=float(meta.get("sigma", 0.04))))
    same = np.array([r.relation.split("-")[0] == r.relation.split("-")[-1] for r in res])
    ok = np.array([r.rel for r in res])
    print(f"{ck.split('/')[-1]:14s} n={len(res)} same-category {same.mean():.0%}: rel acc same {ok[same].mean():.3f} diff {ok[~same].mean():.3f}")
