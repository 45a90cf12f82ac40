"""How many box pairs the C++ Viterbi step's division-free screen lets through, per scenario of bench_linking.py.

Runs the forward Viterbi pass in NumPy (subject and object, λ = 1 / frame gap) over each scenario's inputs (N=120,
M=40, synthetic) and counts, over all steps: the pairs that overlap at all, the pairs that pass the screen
(λ·IoU > gap[p], gap = the smaller of top − U[p] for subject and object), and the (row, block of 8 boxes) that
hold a passing pair: the blocks the kernel scores exactly.

    .venv/bin/python benchmarks/linking_ab/screen_pass_rate.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_linking import SIGMA, make_inputs  # noqa: E402


def pass_rates(kind: str) -> tuple[int, float, float, float]:
    boxes, a_s, a_o, beta, fids, _ = make_inputs(120, 40, 1, kind)
    a_s, a_o, beta = a_s[0], a_o[0], beta[0]
    m = boxes.shape[1]
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    keep = np.where(beta >= SIGMA)[0]
    prev_s, prev_o = np.zeros(m), np.zeros(m)
    pairs = passed = overlapping = blocks = blocks_passed = 0
    for a, b in zip(keep[:-1], keep[1:]):
        lam = 1.0 / (fids[b] - fids[a])
        us, uo = prev_s + a_s[a], prev_o + a_o[a]
        iw = np.maximum(np.minimum(x2[a][:, None] + 1, x2[b][None] + 1) - np.maximum(x1[a][:, None], x1[b][None]), 0)
        ih = np.maximum(np.minimum(y2[a][:, None] + 1, y2[b][None] + 1) - np.maximum(y1[a][:, None], y1[b][None]), 0)
        inter = iw * ih
        term = lam * (inter / (area[a][:, None] + area[b][None] - inter))
        gap = np.minimum(us.max() - us, uo.max() - uo)[:, None]
        hit = term > gap
        pairs += hit.size
        passed += int(hit.sum())
        overlapping += int((inter > 0).sum())
        per_block = hit.reshape(m, m // 8, 8).any(-1)
        blocks += per_block.size
        blocks_passed += int(per_block.sum())
        prev_s = (us[:, None] + term).max(0) + a_s[b]
        prev_o = (uo[:, None] + term).max(0) + a_o[b]
    return len(keep) - 1, overlapping / pairs, passed / pairs, blocks_passed / blocks


if __name__ == "__main__":
    print("| scenario | Viterbi steps | pairs that overlap | pairs that pass | (row, 8-box block)s with a pass |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in ("worst", "full", "typical"):
        steps, ov, ps, bl = pass_rates(kind)
        print(f"| {kind} | {steps} | {ov:.1%} | {ps:.1%} | {bl:.1%} |")
