"""Does a checkpoint's own MIL predicate head (``temporal_mil_input: "geometry"``) localize predicates? (synthetic)

For each relation of the first K videos: σ(s_pred(t)) of the trained head on the geometry of the model's own
α-pooled boxes, compared inside vs outside the relation's ground-truth instances (mean and frame AUC; relations
whose instances cover all or none of the sampled frames are skipped). Ground truth is used only for scoring.

    python benchmarks/probe_mil_head.py CHECKPOINT REGIONS_DIR ANNOTATIONS_DIR [K]
"""
import sys

import numpy as np
import torch

from vrgv.annotations import load_annotations
from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
from vrgv.training.evaluate import attend_video
from vrgv.training.model import pair_geometry_features

ckpt, regdir, anndir = sys.argv[1:4]
K = int(sys.argv[4]) if len(sys.argv) > 4 else 40
torch.set_num_threads(1)
model, vocab = load_checkpoint(ckpt)[:2]
model.eval()
if not hasattr(model, "predicate_mil") or model.config.temporal_mil_input != "geometry":
    sys.exit(f"{ckpt}: no geometry MIL head (temporal_mil_weight > 0 with temporal_mil_input 'geometry')")
anns = load_annotations(anndir)[:K]
store = load_region_folder(regdir, [a.video_id for a in anns], model.config.num_frames, model.config.num_regions)
pidx = {p: i for i, p in enumerate(vocab.predicates)}
ins, outs, aucs = [], [], []
for a in anns:
    vr = store[a.video_id]
    rels = a.relation_strings()
    a_s, a_o, _ = attend_video(model, vocab, vr, rels)
    bn = torch.from_numpy(vr.boxes_norm).float()
    box_s = torch.einsum("rnm,nmk->rnk", torch.from_numpy(a_s), bn)
    box_o = torch.einsum("rnm,nmk->rnk", torch.from_numpy(a_o), bn)
    with torch.no_grad():
        fire = torch.sigmoid(model.predicate_mil(pair_geometry_features(box_s, box_o))).numpy()
    for r, rel in enumerate(rels):
        s = fire[r, :, pidx[vocab.canonical(rel).predicate]]
        inside = np.zeros(len(s), bool)
        for i in a.relations:
            if a.relation_string(i) == rel:
                inside |= (vr.frame_ids >= i.begin_fid) & (vr.frame_ids < i.end_fid)
        if inside.all() or not inside.any():
            continue
        si, so = s[inside], s[~inside]
        ins.append(si.mean())
        outs.append(so.mean())
        aucs.append((si[:, None] > so[None, :]).mean() + 0.5 * (si[:, None] == so[None, :]).mean())
print(f"{ckpt}: head σ inside {np.mean(ins):.3f} outside {np.mean(outs):.3f}, frame AUC {np.mean(aucs):.3f} "
      f"over {len(aucs)} relations of {len(anns)} videos (synthetic data)")
