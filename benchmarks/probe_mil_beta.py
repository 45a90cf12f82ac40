"""Could the trained geometry MIL head localize relations at inference? (synthetic data)

The bundled default's checkpoint trains a per-frame predicate classifier on the attended pair's geometry
(`temporal_mil_input: geometry`; a training-only head). This probe links every test relation with the model's α
and, instead of the model's β, a β built from that head's firing map σ(s_pred(t)) for the queried predicate:
normalised, multiplied with β, thresholded at a fraction of its maximum, or smoothed over 9 sampled frames first.
Same linking (σ = 0.04, λ = 1) and metric (tIoU 0.5, average over sIoU 0.3/0.5/0.7) as the table rows.

    python benchmarks/probe_mil_beta.py CHECKPOINT REGIONS_DIR ANNOTATIONS_DIR VIDEOS
"""
import sys, numpy as np, torch
from vrgv.annotations import ground_truth_from_annotations, load_annotations
from oracle_bounds import link_relations, print_table  # noqa: E402 - benchmarks/ is the script's folder
from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
from vrgv.training.model import pair_geometry_features, _pool_regions, beta_per_frame

ckpt, regions, annd, nvid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(1)
model, vocab = load_checkpoint(ckpt)[:2]
model.eval()
anns = load_annotations(annd)[:nvid]
store = load_region_folder(regions, [a.video_id for a in anns], model.config.num_frames, model.config.num_regions)
pidx = {p: i for i, p in enumerate(vocab.predicates)}
sigma = 0.04
names = ["model β (β1 + β2)", "fire / Σ fire × 2", "fire / Σ fire + β2", "β·fire ≥ 0.3·max", "fire ≥ 0.5·max", "fire ≥ 0.7·max", "β·fire ≥ 0.5·max",
         "fire smoothed (9 frames) ≥ 0.5·max", "fire smoothed (9 frames) ≥ 0.6·max"]
preds = {n: {} for n in names}
for a in anns:
    vr = store[a.video_id]
    rels = a.relation_strings()
    q = torch.from_numpy(vocab.encode_query(list(rels)))
    bn = torch.from_numpy(vr.boxes_norm)
    with torch.no_grad():
        emb = model.embed_regions(bn, torch.from_numpy(vr.features.astype(np.float32)))
        a_s, a_o, b1, b2 = model.attend(emb, q)
        geo = pair_geometry_features(_pool_regions(a_s, bn, None), _pool_regions(a_o, bn, None))
        scores = model.predicate_mil(geo)  # [R,N,P]
    own = torch.tensor([pidx[vocab.canonical(r).predicate] for r in rels])
    fire = torch.sigmoid(scores.gather(2, own[:, None, None].expand(-1, scores.shape[1], 1)).squeeze(-1)).numpy()
    beta = beta_per_frame(b1.numpy(), b2.numpy(), model.config.clip_len)
    b2f = np.repeat(b2.numpy(), model.config.clip_len, -1)
    def rel(x, f):  # threshold at f * max, expressed through sigma
        return x * (sigma / (f * x.max(1, keepdims=True)))
    k = np.ones(9) / 9
    smooth = np.stack([np.convolve(f, k, mode="same") for f in fire])
    fnorm = fire / fire.sum(1, keepdims=True)
    inputs = {"model β (β1 + β2)": beta, "fire / Σ fire × 2": fnorm * 2, "fire / Σ fire + β2": fnorm + b2f, "β·fire ≥ 0.3·max": rel(beta * fire, 0.3),
              "fire ≥ 0.5·max": rel(fire, 0.5), "fire ≥ 0.7·max": rel(fire, 0.7), "β·fire ≥ 0.5·max": rel(beta * fire, 0.5),
              "fire smoothed (9 frames) ≥ 0.5·max": rel(smooth, 0.5), "fire smoothed (9 frames) ≥ 0.6·max": rel(smooth, 0.6)}
    boxes = vr.pixel_boxes().astype(np.float64)
    for name, b in inputs.items():
        preds[name][a.video_id] = link_relations(boxes, a_s.numpy(), a_o.numpy(), b, vr, rels, a.video_id, sigma)
print(f"{len(anns)} videos; checkpoint {ckpt} (synthetic data)")
print_table(ground_truth_from_annotations(anns), {n: preds[n] for n in names}, "β used for linking")
