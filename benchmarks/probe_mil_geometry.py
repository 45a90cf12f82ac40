"""Can predicates be localized in time from video-level labels alone, given the pair's geometry? (synthetic data)

Multiple-instance learning outside the model. One bag per (video, subject track, object track) of the training
split: 120 sampled frames of `pair_geometry_features` (boxes, offset, velocities, size ratios), positives = the
predicates the video's labels give for the pair, every other predicate negative; a 2-layer MLP per frame, BCE on
the max over frames, 300 full-batch Adam steps. Score: frame AUC on the test split, i.e. how often σ(s_pred(t))
ranks a frame inside one of the predicate's ground-truth instances above a frame outside (ground truth is read
only for scoring). The geometry comes from the ground-truth tracks (``--boxes gt``) or from a checkpoint's α over
a region folder (``soft``: α-weighted box, ``hard``: argmax box).

    python benchmarks/probe_mil_geometry.py TRAIN_ANN TEST_ANN [--boxes gt|soft|hard --checkpoint C
        --train-regions DIR --test-regions DIR]
"""
from __future__ import annotations

import argparse
import collections

import numpy as np

N = 120


def pair_bags(anns, boxes: str, model=None, vocab=None, store=None) -> list:
    """[(box_s [N,5], box_o [N,5], {predicate: inside mask [N]}, seconds between samples)] per annotated
    (subject, object) pair."""
    from vrgv.training.evaluate import attend_video

    out = []
    for a in anns:
        pairs = collections.defaultdict(list)
        for r in a.relations:
            pairs[(r.subject_tid, r.object_tid)].append(r)
        if boxes == "gt":
            fids = np.round(np.linspace(0, a.frame_count - 1, N)).astype(int)
        else:
            vr = store[a.video_id]
            fids = vr.frame_ids
        for (s, o), rs in pairs.items():
            if boxes == "gt":
                tracks = []
                for tid in (s, o):
                    t, last, rows = a.trajectories[tid], None, []
                    for f in fids:
                        b = t.get(int(f))
                        if b is not None:
                            x1, y1, x2, y2 = b
                            last = [x1 / a.width, y1 / a.height, x2 / a.width, y2 / a.height,
                                    (x2 - x1) * (y2 - y1) / (a.width * a.height)]
                        rows.append(last)
                    first = next((x for x in rows if x is not None), None)
                    if first is None:
                        break
                    tracks.append(np.array([x if x is not None else first for x in rows], np.float32))
                if len(tracks) < 2:
                    continue
                box_s, box_o = tracks
            else:
                a_s, a_o, _ = attend_video(model, vocab, vr, [a.relation_string(rs[0])])
                bn = vr.boxes_norm.astype(np.float32)
                if boxes == "soft":
                    box_s, box_o = np.einsum("nm,nmk->nk", a_s[0], bn), np.einsum("nm,nmk->nk", a_o[0], bn)
                else:
                    box_s, box_o = bn[np.arange(N), a_s[0].argmax(-1)], bn[np.arange(N), a_o[0].argmax(-1)]
            inside: dict[str, np.ndarray] = {}
            for r in rs:
                inside[r.predicate] = inside.get(r.predicate, np.zeros(N, bool)) | ((fids >= r.begin_fid) & (fids < r.end_fid))
            seconds = (a.frame_count - 1) / (N - 1) / float(a.fps or 30.0)  # time between two samples
            out.append((box_s, box_o, inside, seconds))
    return out


def bag_tensors(bags: list, index: dict, features: str = "geometry") -> tuple:
    """(geometry [B,N,F], multi-hot labels [B,P]) of ``pair_bags`` output; ``index`` maps predicate -> column;
    ``features``: "geometry" (``pair_geometry_features``, F = 27) or "relative" (``pair_relative_features``)."""
    import torch

    from vrgv.training.model import pair_geometry_features, pair_relative_features

    timed = features.endswith("-timed")  # velocities in frame fractions per second (needs each video's fps)
    scale = torch.tensor([1.0 / (4.0 * b[3]) for b in bags]) if timed else None
    g = (pair_relative_features if features.startswith("relative") else pair_geometry_features)(
        torch.from_numpy(np.stack([b[0] for b in bags])), torch.from_numpy(np.stack([b[1] for b in bags])),
        velocity_scale=scale)
    y = torch.zeros(len(bags), len(index))
    for k, b in enumerate(bags):
        for q in b[2]:
            y[k, index[q]] = 1.0
    return g, y


def load_bags(parser, args) -> tuple:
    """(train bags, test bags, predicate -> column, train tensors, test tensors) of ``args.train_annotations`` and
    ``args.test_annotations`` for ``args.boxes``: ground-truth tracks, or the α of ``args.checkpoint`` over
    ``args.train_regions`` / ``args.test_regions``."""
    from vrgv.annotations import load_annotations

    if args.boxes != "gt" and not (args.checkpoint and args.train_regions and args.test_regions):
        parser.error("boxes soft|hard need --checkpoint, --train-regions and --test-regions")
    train_anns, test_anns = load_annotations(args.train_annotations), load_annotations(args.test_annotations)
    model = vocab = None
    stores: dict = {}
    if args.boxes != "gt":
        from vrgv.training.checkpoint import load_checkpoint
        from vrgv.training.data import load_region_folder

        model, vocab = load_checkpoint(args.checkpoint)[:2]
        stores = {k: load_region_folder(d, [a.video_id for a in anns], N, model.config.num_regions)
                  for k, d, anns in (("train", args.train_regions, train_anns), ("test", args.test_regions, test_anns))}
    train = pair_bags(train_anns, args.boxes, model, vocab, stores.get("train"))
    test = pair_bags(test_anns, args.boxes, model, vocab, stores.get("test"))
    index = {q: i for i, q in enumerate(sorted({q for b in train + test for q in b[2]}))}
    features = getattr(args, "features", "geometry")
    return train, test, index, bag_tensors(train, index, features), bag_tensors(test, index, features)


def main() -> None:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from vrgv.training.model import GEOMETRY_DIM

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("train_annotations")
    p.add_argument("test_annotations")
    p.add_argument("--boxes", choices=["gt", "soft", "hard"], default="gt")
    p.add_argument("--checkpoint")
    p.add_argument("--train-regions")
    p.add_argument("--test-regions")
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train, test, index, (g_train, y_train), (g_test, _) = load_bags(p, args)
    preds = sorted(index, key=index.get)
    mu, sd = g_train.mean((0, 1)), g_train.std((0, 1)) + 1e-6
    net = nn.Sequential(nn.Linear(GEOMETRY_DIM, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, len(preds)))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(args.steps):
        loss = F.binary_cross_entropy_with_logits(net((g_train - mu) / sd).amax(1), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        fire = torch.sigmoid(net((g_test - mu) / sd)).numpy()
    per: dict[str, list[float]] = collections.defaultdict(list)
    for k, b in enumerate(test):
        for q, inside in b[2].items():
            if inside.all() or not inside.any():
                continue
            si, so = fire[k, inside, index[q]], fire[k, ~inside, index[q]]
            per[q].append(float((si[:, None] > so[None, :]).mean() + 0.5 * (si[:, None] == so[None, :]).mean()))
    every = [x for v in per.values() for x in v]
    print(f"boxes: {args.boxes}; {len(train)} training bags; final bag loss {loss.item():.3f} (synthetic data)")
    print(f"frame AUC inside vs outside the ground truth: {np.mean(every):.3f} over {len(every)} (pair, predicate)s")
    for q, v in sorted(per.items(), key=lambda kv: -len(kv[1])):
        print(f"  {q:12s} n={len(v):3d} AUC {np.mean(v):.3f}")


if __name__ == "__main__":
    main()
