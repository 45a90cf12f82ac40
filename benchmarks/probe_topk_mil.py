"""Max vs top-k pooling for weakly supervised temporal localization, outside the model (synthetic data).

The bags of `probe_mil_geometry.py` (one per annotated subject-object track pair of the training split; the
geometry from the ground-truth tracks or from a checkpoint's α) train a per-frame 2-layer MLP whose bag score is
the max over the 120 frames, or the mean of the top k frames. On the test split it reports the frame AUC and a
temporal-only accuracy: the share of (pair, predicate)s whose frames with the smoothed (9 frames) firing at or
above a threshold (absolute, or relative to the curve's peak) overlap the predicate's ground-truth frames with
IoU >= 0.5. Ground truth is read only for scoring.

    python benchmarks/probe_topk_mil.py TRAIN_ANN TEST_ANN gt|soft|hard POOL... [--checkpoint C --train-regions D
        --test-regions D] [--features geometry|relative] [--context 9,25]  (POOL: max, top12, top24, top36, top48)
"""
from __future__ import annotations

import argparse
import collections
from typing import Any

import numpy as np

from probe_mil_geometry import load_bags  # noqa: E402 - benchmarks/ is the script's folder


def temporal_context(x: Any, windows: tuple[int, ...] = (9, 25), xp: Any = np) -> Any:
    """Per-frame features [B,N,F] followed by their means over centred windows of each length in ``windows``
    (samples; shortened at the video's ends) -> [B,N,F·(1 + len(windows))]: what the pair did around each frame,
    which a per-frame classifier cannot see. Array-agnostic (cumsum and constant indices)."""
    n = x.shape[1]
    csum = xp.concatenate([x[:, :1] * 0, xp.cumsum(x, 1)], 1)
    out = [x]
    for w in windows:
        lo = np.clip(np.arange(n) - w // 2, 0, n)
        hi = np.clip(np.arange(n) + w // 2 + 1, 0, n)
        count = xp.asarray((hi - lo).astype(np.float32)).reshape(1, n, 1)
        out.append((csum[:, hi] - csum[:, lo]) / count)
    return xp.concatenate(out, -1)


def main() -> None:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("train_annotations")
    p.add_argument("test_annotations")
    p.add_argument("boxes", choices=["gt", "soft", "hard"])
    p.add_argument("pools", nargs="+")
    p.add_argument("--checkpoint")
    p.add_argument("--train-regions")
    p.add_argument("--test-regions")
    p.add_argument("--features", choices=["geometry", "relative", "geometry-timed", "relative-timed"], default="geometry",
                   help="per-frame inputs: pair_geometry_features or pair_relative_features; -timed: velocities per second")
    p.add_argument("--context", default="",
                   help="comma-separated window lengths: append the features' means over these windows "
                        "(temporal_context), e.g. 9,25")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train, test, index, (g_train, y_train), (g_test, _) = load_bags(p, args)
    if args.context:
        windows = tuple(int(w) for w in args.context.split(","))
        g_train, g_test = (temporal_context(g, windows, xp=torch) for g in (g_train, g_test))
    preds = sorted(index, key=index.get)
    mu, sd = g_train.mean((0, 1)), g_train.std((0, 1)) + 1e-6
    print(f"boxes: {args.boxes}; {len(train)} training bags, {len(test)} test bags (synthetic data)")
    for pool in args.pools:
        k = 1 if pool == "max" else int(pool[3:])
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(g_train.shape[-1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, len(preds)))
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        for _ in range(400):
            loss = F.binary_cross_entropy_with_logits(net((g_train - mu) / sd).topk(k, dim=1).values.mean(1), y_train)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            fire = torch.sigmoid(net((g_test - mu) / sd)).numpy()
        aucs, hits = [], collections.defaultdict(list)
        for j, b in enumerate(test):
            for q, inside in b[2].items():
                f = fire[j, :, index[q]]
                if inside.any() and not inside.all():
                    aucs.append((f[inside][:, None] > f[~inside][None]).mean())
                smooth = np.convolve(f, np.ones(9) / 9, mode="same")
                for thr in (0.2, 0.3, 0.5):
                    for relative in (False, True):
                        m = smooth >= (thr * smooth.max() if relative else thr)
                        hits[(thr, relative)].append((m & inside).sum() / max((m | inside).sum(), 1) >= 0.5)
        cells = ", ".join(f"{'≥' + str(t) + '·max' if r else '≥' + str(t)}: {100 * np.mean(v):.1f}%"
                          for (t, r), v in sorted(hits.items()))
        print(f"pool {pool:6s} bag loss {loss.item():.3f}  frame AUC {np.mean(aucs):.3f}  temporal accuracy {cells}")


if __name__ == "__main__":
    main()
