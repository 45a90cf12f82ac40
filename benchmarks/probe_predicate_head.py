"""Frame-level AUC of a checkpoint's per-frame predicate head (``predicate_aux``; needs temporal_aux_weight > 0).

For the first 40 videos: mean log p(predicate words) per sampled frame inside and outside the relation's
ground-truth instances, and the AUC of that score for separating inside from outside frames (synthetic data).

    python benchmarks/probe_predicate_head.py CHECKPOINT REGIONS_DIR ANNOTATIONS_DIR
"""
import sys, torch, numpy as np
from vrgv.annotations import load_annotations
from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
torch.set_num_threads(1)
model, vocab = load_checkpoint(sys.argv[1])[:2]; model.eval()
anns = load_annotations(sys.argv[3])[:40]
store = load_region_folder(sys.argv[2], [a.video_id for a in anns], 120, 40)
ins, outs, auc = [], [], []
for a in anns:
    vr = store[a.video_id]; rels = a.relation_strings()
    q = torch.from_numpy(vocab.encode_query(rels))
    with torch.no_grad():
        emb = model.embed_regions(torch.from_numpy(vr.boxes_norm), torch.from_numpy(vr.features.astype(np.float32)))
        out = model._encode(emb.unsqueeze(0), q)
        lp = torch.log_softmax(model.predicate_aux(out['f_l1']), -1)  # [R,N,V]
        pid = q[:, 1:4]; picked = lp.gather(2, pid.unsqueeze(1).expand(-1, 120, -1)); m = (pid != 0).float().unsqueeze(1)
        score = (picked * m).sum(-1) / m.sum(-1)  # [R,N]
    for r, rel in enumerate(rels):
        inside = np.zeros(120, bool)
        for inst in a.relations:
            if a.relation_string(inst) == rel:
                inside |= (vr.frame_ids >= inst.begin_fid) & (vr.frame_ids < inst.end_fid)
        s = score[r].numpy()
        if inside.all() or not inside.any(): continue
        ins.append(s[inside].mean()); outs.append(s[~inside].mean())
        # AUC
        pos, neg = s[inside], s[~inside]
        auc.append((pos[:, None] > neg[None, :]).mean())
print('mean log p(pred) inside', np.mean(ins), 'outside', np.mean(outs), 'frame AUC', np.mean(auc), len(auc))
