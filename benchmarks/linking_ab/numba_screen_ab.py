"""Numba forward Viterbi steps with the C++ kernel's division-free screen, against the plain step (linking.md, session 9).

Times the forward pass only (no backtracking, no geometry) over all 120 frames of bench_linking's `worst` and
`full` inputs (N=120, M=40, synthetic), best of 7 rounds of 50 passes; checks that every variant gives the same
final scores. Variants: plain (the shipped `_step`), block8 (screen per block of 8 boxes q, bounds computed),
row (one screen over all q of a row p), b8fixed (blocks of exactly 8 through slices).

    .venv/bin/python benchmarks/linking_ab/numba_screen_ab.py
"""
import time, sys, numpy as np
from numba import njit
sys.path.insert(0, 'benchmarks')
from bench_linking import make_inputs
from vrgv.linking.numba_impl import _link_term, _live_rows, _step

# The variants below repeat their per-row set-up on purpose: each is written out as a kernel would be. Sharing it
# through inline helpers and one function with a `kind` switch changed what numba generates (the per-row variant
# went from about 240 to about 1,170 µs on `worst`), so the variants would no longer measure the screen itself.
@njit(cache=False, error_model="numpy")
def _step_screened(rows, ga, us, uo, lam, gb, best_s, best_o, top_s, top_o):
    """The C++ kernel's screen per block of 8 boxes q, with the block's bounds computed (last block shorter)."""
    mq = gb.shape[1]
    for q in range(mq):
        best_s[q] = top_s
        best_o[q] = top_o
    for r in range(rows.shape[0]):
        p = rows[r]
        px1 = ga[0, p]; py1 = ga[1, p]; px2p = ga[2, p]; py2p = ga[3, p]; ar = ga[4, p]
        usp = us[p]; uop = uo[p]
        gap_s = top_s - usp; gap_o = top_o - uop
        g = (gap_s if gap_s < gap_o else gap_o) * (1.0 - 1e-12)
        lam_g = lam + g
        g_area = g * ar
        for q0 in range(0, mq, 8):
            q1 = min(q0 + 8, mq)
            hit = False
            for q in range(q0, q1):
                ix1 = px1 if px1 > gb[0, q] else gb[0, q]
                iy1 = py1 if py1 > gb[1, q] else gb[1, q]
                iw = (px2p if px2p < gb[2, q] else gb[2, q]) - ix1
                iw = iw if iw > 0.0 else 0.0
                ih = (py2p if py2p < gb[3, q] else gb[3, q]) - iy1
                hit |= lam_g * (iw * ih) >= g * gb[4, q] + g_area
            if hit:
                for q in range(q0, q1):
                    li = _link_term(px1, py1, px2p, py2p, ar, gb[0, q], gb[1, q], gb[2, q], gb[3, q], gb[4, q], lam)
                    cs = usp + li; co = uop + li
                    best_s[q] = cs if cs > best_s[q] else best_s[q]
                    best_o[q] = co if co > best_o[q] else best_o[q]


@njit(cache=False, error_model="numpy")
def step_row(rows, ga, us, uo, lam, gb, best_s, best_o, top_s, top_o):
    mq = gb.shape[1]
    for q in range(mq):
        best_s[q] = top_s
        best_o[q] = top_o
    for r in range(rows.shape[0]):
        p = rows[r]
        px1 = ga[0, p]; py1 = ga[1, p]; px2p = ga[2, p]; py2p = ga[3, p]; ar = ga[4, p]
        usp = us[p]; uop = uo[p]
        gap_s = top_s - usp; gap_o = top_o - uop
        g = (gap_s if gap_s < gap_o else gap_o) * (1.0 - 1e-12)
        lam_g = lam + g
        g_area = g * ar
        hit = 0
        for q in range(mq):
            ix1 = px1 if px1 > gb[0, q] else gb[0, q]
            iy1 = py1 if py1 > gb[1, q] else gb[1, q]
            iw = (px2p if px2p < gb[2, q] else gb[2, q]) - ix1
            iw = iw if iw > 0.0 else 0.0
            ih = (py2p if py2p < gb[3, q] else gb[3, q]) - iy1
            hit += lam_g * (iw * ih) >= g * gb[4, q] + g_area
        if hit > 0:
            for q in range(mq):
                li = _link_term(px1, py1, px2p, py2p, ar, gb[0, q], gb[1, q], gb[2, q], gb[3, q], gb[4, q], lam)
                cs = usp + li; co = uop + li
                best_s[q] = cs if cs > best_s[q] else best_s[q]
                best_o[q] = co if co > best_o[q] else best_o[q]

@njit(cache=False, error_model="numpy")
def step_b8(rows, ga, us, uo, lam, gb, best_s, best_o, top_s, top_o):
    mq = gb.shape[1]
    for q in range(mq):
        best_s[q] = top_s
        best_o[q] = top_o
    for r in range(rows.shape[0]):
        p = rows[r]
        px1 = ga[0, p]; py1 = ga[1, p]; px2p = ga[2, p]; py2p = ga[3, p]; ar = ga[4, p]
        usp = us[p]; uop = uo[p]
        gap_s = top_s - usp; gap_o = top_o - uop
        g = (gap_s if gap_s < gap_o else gap_o) * (1.0 - 1e-12)
        lam_g = lam + g
        g_area = g * ar
        for q0 in range(0, mq, 8):
            x1 = gb[0, q0:q0 + 8]; y1 = gb[1, q0:q0 + 8]; x2 = gb[2, q0:q0 + 8]; y2 = gb[3, q0:q0 + 8]; qa = gb[4, q0:q0 + 8]
            hit = 0
            for j in range(8):
                ix1 = px1 if px1 > x1[j] else x1[j]
                iy1 = py1 if py1 > y1[j] else y1[j]
                iw = (px2p if px2p < x2[j] else x2[j]) - ix1
                iw = iw if iw > 0.0 else 0.0
                ih = (py2p if py2p < y2[j] else y2[j]) - iy1
                hit |= lam_g * (iw * ih) >= g * qa[j] + g_area
            if hit:
                for j in range(8):
                    q = q0 + j
                    li = _link_term(px1, py1, px2p, py2p, ar, x1[j], y1[j], x2[j], y2[j], qa[j], lam)
                    cs = usp + li; co = uop + li
                    best_s[q] = cs if cs > best_s[q] else best_s[q]
                    best_o[q] = co if co > best_o[q] else best_o[q]

@njit(cache=False, error_model="numpy")
def run(kind, geo, alpha_s, alpha_o, fids, reps):
    n, _, m = geo.shape
    best_s = np.empty(m); best_o = np.empty(m); rows = np.empty(m, np.int64)
    acc = 0.0
    for _ in range(reps):
        prev_s = np.zeros(m); prev_o = np.zeros(m)
        for t in range(1, n):
            a = t - 1; b = t
            lam = 1.0 / float(fids[b] - fids[a])
            us = prev_s + alpha_s[a]; uo = prev_o + alpha_o[a]
            nl = _live_rows(us, uo, alpha_s[b], alpha_o[b], lam, rows)
            ts = us.max(); to = uo.max()
            if kind == 0:
                _step(rows[:nl], geo[a], us, uo, lam, geo[b], best_s, best_o)
            elif kind == 1:
                _step_screened(rows[:nl], geo[a], us, uo, lam, geo[b], best_s, best_o, ts, to)
            elif kind == 3:
                step_b8(rows[:nl], geo[a], us, uo, lam, geo[b], best_s, best_o, ts, to)
            else:
                step_row(rows[:nl], geo[a], us, uo, lam, geo[b], best_s, best_o, ts, to)
            for q in range(m):
                prev_s[q] = best_s[q] + alpha_s[b, q]; prev_o[q] = best_o[q] + alpha_o[b, q]
        acc += prev_s.max() + prev_o.max()
    return acc
for kindname in ('worst', 'full'):
    boxes, a_s, a_o, beta, fids, nf = make_inputs(120, 40, 1, kindname)
    a_s, a_o = a_s[0], a_o[0]
    geo = np.empty((120, 5, 40))
    geo[:, 0] = boxes[..., 0]; geo[:, 1] = boxes[..., 1]; geo[:, 2] = boxes[..., 2] + 1; geo[:, 3] = boxes[..., 3] + 1
    geo[:, 4] = (boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)
    vals = [run(k, geo, a_s, a_o, fids, 1) for k in range(4)]
    assert len(set(vals)) == 1, vals
    best = {k: 1e9 for k in range(4)}
    for rnd in range(7):
        for k in range(4):
            t = time.perf_counter(); run(k, geo, a_s, a_o, fids, 50); best[k] = min(best[k], (time.perf_counter() - t) / 50)
    print(kindname, {['plain', 'block8', 'row', 'b8fixed'][k]: round(v * 1e6, 1) for k, v in best.items()})
