"""Attention diagnostics of a checkpoint on the first K videos of a split (synthetic data).

Prints the fraction of sampled frames inside each relation's longest ground-truth instance where the argmax of
alpha_s (alpha_o) hits the subject (object) box at IoU > 0.5, the oracle (some region hits), the mean beta inside
and outside the instance, the hit rate per category (subject and object roles together; a category the spatial
attention never finds shows up here) and split by whether subject and object share a category (then nothing in
the query tells them apart), then the Table 2 accuracy of those K videos.

    python benchmarks/diag_attention.py CHECKPOINT REGIONS_DIR K ANNOTATIONS_DIR
"""
import sys, collections, numpy as np, torch, json
from vrgv.annotations import load_annotations
from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
from vrgv.training.evaluate import attend_video, evaluate_split
from vrgv.metric import box_iou
ckpt, regdir, K = sys.argv[1], sys.argv[2], int(sys.argv[3])
anndir = sys.argv[4]
torch.set_num_threads(1)
model, vocab = load_checkpoint(ckpt)[:2]
model.eval()
anns = load_annotations(anndir)[:K]
store = load_region_folder(regdir, [a.video_id for a in anns], model.config.num_frames, model.config.num_regions)
hs=ho=orc=n=0; bin_=[]; bout=[]; b2max=[]; per_cat = collections.defaultdict(list); per_pair = collections.defaultdict(list)
for a in anns:
    vr = store[a.video_id]; rels = a.relation_strings()
    a_s, a_o, beta = attend_video(model, vocab, vr, rels)
    boxes = vr.pixel_boxes()
    for r, rel in enumerate(rels):
        insts = [i for i in a.relations if a.relation_string(i) == rel]
        inst = max(insts, key=lambda i: i.end_fid - i.begin_fid)
        inside = (vr.frame_ids >= inst.begin_fid) & (vr.frame_ids < inst.end_fid)
        bin_.append(beta[r][inside].mean()); bout.append(beta[r][~inside].mean() if (~inside).any() else np.nan)
        for k in np.flatnonzero(inside):
            f = int(vr.frame_ids[k])
            gs = a.trajectories[inst.subject_tid].get(f); go = a.trajectories[inst.object_tid].get(f)
            if gs is None or go is None: continue
            ious_s = box_iou(boxes[k].astype(np.float64), np.array(gs, np.float64))
            ious_o = box_iou(boxes[k].astype(np.float64), np.array(go, np.float64))
            hit_s, hit_o = ious_s[a_s[r, k].argmax()] > .5, ious_o[a_o[r, k].argmax()] > .5
            hs += hit_s; ho += hit_o; orc += ious_s.max() > .5; n += 1
            per_cat[a.categories[inst.subject_tid]].append(hit_s); per_cat[a.categories[inst.object_tid]].append(hit_o)
            same = a.categories[inst.subject_tid] == a.categories[inst.object_tid]
            per_pair["same-category pairs" if same else "different categories"].append((hit_s, hit_o))
print(f"subject hit {hs/n:.3f} object hit {ho/n:.3f} oracle {orc/n:.3f} | beta inside {np.nanmean(bin_):.4f} outside {np.nanmean(bout):.4f}")
print("hit rate per category (frames): " + ", ".join(f"{c} {np.mean(v):.2f} ({len(v)})" for c, v in sorted(per_cat.items())))
print("hit rate s / o: " + ", ".join(f"{k} {np.mean([h[0] for h in v]):.2f} / {np.mean([h[1] for h in v]):.2f} ({len(v)} frames)"
                                   for k, v in sorted(per_pair.items())))
rep, _ = evaluate_split(model, vocab, anns, store)
print(rep.to_markdown(ckpt.split('/')[-1]))
