"""Numba backend: the reference algorithm (see ``reference.py``) as explicit loops compiled with ``@njit``.

Floating-point operations happen in the same order as the NumPy reference, so results match it exactly.
``cache=True`` stores the machine code on disk; :func:`warmup` compiles (or loads) it ahead of first use.
The kernel releases the GIL (``nogil=True``), so Python threads can link different videos in parallel.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from vrgv.linking.reference import RawLink


@njit(cache=True, error_model="numpy")
def _segment_bounds(beta, threshold, max_gap):  # pragma: no cover - compiled
    """Step 2: candidate indices and [start, stop) offsets of each segment into them."""
    n = beta.shape[0]
    cand = np.empty(n, np.int64)
    nc = 0
    for i in range(n):
        if beta[i] >= threshold:
            cand[nc] = i
            nc += 1
    starts = np.empty(nc + 1, np.int64)
    ns = 0
    for j in range(nc):
        if j == 0 or (cand[j] - cand[j - 1]) > max_gap:
            starts[ns] = j
            ns += 1
    starts[ns] = nc
    return cand[:nc], starts[: ns + 1]


@njit(cache=True, error_model="numpy")
def _keep_distinct(seg, frame_ids):  # pragma: no cover - compiled
    """Step 3: drop indices repeating the previous kept frame id."""
    kept = np.empty(seg.shape[0], np.int64)
    k = 0
    for j in range(seg.shape[0]):
        if j == 0 or frame_ids[seg[j]] != frame_ids[seg[j - 1]]:
            kept[k] = seg[j]
            k += 1
    return kept[:k]


@njit(cache=True, error_model="numpy", inline="always")
def _link_term(px1, py1, px2p, py2p, parea, qx1, qy1, qx2p, qy2p, qarea, lam):  # pragma: no cover - compiled
    """lam * IoU(p, q), inclusive-pixel, with x2 + 1 and y2 + 1 precomputed per box (``reference.pairwise_iou``)."""
    ix1 = px1 if px1 > qx1 else qx1
    iy1 = py1 if py1 > qy1 else qy1
    iw = (px2p if px2p < qx2p else qx2p) - ix1
    iw = iw if iw > 0.0 else 0.0
    ih = (py2p if py2p < qy2p else qy2p) - iy1
    ih = ih if ih > 0.0 else 0.0
    inter = iw * ih
    return lam * (inter / ((parea + qarea) - inter))


@njit(cache=True, error_model="numpy")
def _step(rows, ga, us, uo, lam, gb, best_s, best_o):  # pragma: no cover - compiled
    """Forward step for subject and object: best[q] = max over live p (``rows``) of U[p] + lam IoU(p, q).

    ``ga``/``gb`` hold frame a's/b's x1, y1, x2 + 1, y2 + 1 and area per box (one row each). Only maxima are
    kept (``_backtrack_step`` recovers the argmax for the q the path visits), so the q loop is branch-free.
    """
    mq = gb.shape[1]
    for q in range(mq):
        best_s[q] = -np.inf
        best_o[q] = -np.inf
    for r in range(rows.shape[0]):
        p = rows[r]
        px1 = ga[0, p]
        py1 = ga[1, p]
        px2p = ga[2, p]
        py2p = ga[3, p]
        ar = ga[4, p]
        usp = us[p]
        uop = uo[p]
        for q in range(mq):
            li = _link_term(px1, py1, px2p, py2p, ar, gb[0, q], gb[1, q], gb[2, q], gb[3, q], gb[4, q], lam)
            cs = usp + li
            co = uop + li
            best_s[q] = cs if cs > best_s[q] else best_s[q]
            best_o[q] = co if co > best_o[q] else best_o[q]


@njit(cache=True, error_model="numpy")
def _backtrack_step(ga, gb, q, u, lam):  # pragma: no cover - compiled
    """The lowest p maximising U[p] + lam IoU(p, q): the forward step's argmax for one q. Boxes that
    ``_live_rows`` skipped are strictly worse, so scanning every p gives the same answer."""
    best_p = 0
    best = -np.inf
    for p in range(ga.shape[1]):
        c = u[p] + _link_term(ga[0, p], ga[1, p], ga[2, p], ga[3, p], ga[4, p],
                              gb[0, q], gb[1, q], gb[2, q], gb[3, q], gb[4, q], lam)
        if c > best:
            best = c
            best_p = p
    return best_p


@njit(cache=True, error_model="numpy")
def _live_rows(us, uo, sb, ob, lam, rows):  # pragma: no cover - compiled
    """``reference.live_rows`` on U = prev + alpha_a: boxes p that may still win some q; fills ``rows``."""
    m = us.shape[0]
    top_s = -np.inf
    top_o = -np.inf
    for p in range(m):
        top_s = max(top_s, us[p])
        top_o = max(top_o, uo[p])
    big_s = 0.0
    big_o = 0.0
    for q in range(m):
        big_s = max(big_s, abs(sb[q]))
        big_o = max(big_o, abs(ob[q]))
    thr_s = top_s - abs(lam) - 1e-9 * (1.0 + abs(top_s) + abs(lam) + big_s)
    thr_o = top_o - abs(lam) - 1e-9 * (1.0 + abs(top_o) + abs(lam) + big_o)
    n = 0
    for p in range(m):
        if us[p] >= thr_s or uo[p] >= thr_o:
            rows[n] = p
            n += 1
    return n


@njit(cache=True, error_model="numpy")
def _viterbi_pair(geo, alpha_s, alpha_o, kept, frame_ids, iou_weight):  # pragma: no cover - compiled
    """Steps 4-5 for subject and object over kept indices (K >= 2); same arithmetic as the reference.
    ``geo`` [N,5,M]: x1, y1, x2 + 1, y2 + 1 and area of every box."""
    k_len = kept.shape[0]
    m = geo.shape[2]
    prev_s = np.zeros(m)
    prev_o = np.zeros(m)
    best_s = np.empty(m)
    best_o = np.empty(m)
    rows = np.empty(m, np.int64)
    u_s = np.empty((k_len - 1, m))
    u_o = np.empty((k_len - 1, m))
    lams = np.empty(k_len - 1)
    for t in range(1, k_len):
        a = kept[t - 1]
        b = kept[t]
        lam = iou_weight / float(frame_ids[b] - frame_ids[a])
        lams[t - 1] = lam
        for p in range(m):
            u_s[t - 1, p] = prev_s[p] + alpha_s[a, p]
            u_o[t - 1, p] = prev_o[p] + alpha_o[a, p]
        n_live = _live_rows(u_s[t - 1], u_o[t - 1], alpha_s[b], alpha_o[b], lam, rows)
        _step(rows[:n_live], geo[a], u_s[t - 1], u_o[t - 1], lam, geo[b], best_s, best_o)
        for q in range(m):
            prev_s[q] = best_s[q] + alpha_s[b, q]
            prev_o[q] = best_o[q] + alpha_o[b, q]
    path_s = np.empty(k_len, np.int64)
    path_o = np.empty(k_len, np.int64)
    path_s[k_len - 1] = np.argmax(prev_s)
    path_o[k_len - 1] = np.argmax(prev_o)
    for t in range(k_len - 1, 0, -1):
        ga = geo[kept[t - 1]]
        gb = geo[kept[t]]
        path_s[t - 1] = _backtrack_step(ga, gb, path_s[t], u_s[t - 1], lams[t - 1])
        path_o[t - 1] = _backtrack_step(ga, gb, path_o[t], u_o[t - 1], lams[t - 1])
    return path_s, prev_s[path_s[k_len - 1]] / (k_len - 1), path_o, prev_o[path_o[k_len - 1]] / (k_len - 1)


@njit(cache=True, error_model="numpy")
def _interpolate(boxes, kept, path, frame_ids):  # pragma: no cover - compiled
    """Step 7 (eq. 14): one box per real frame between the first and last kept frame."""
    k_len = kept.shape[0]
    f0 = frame_ids[kept[0]]
    length = frame_ids[kept[k_len - 1]] - f0 + 1
    out = np.empty((length, 4))
    if k_len == 1:
        for c in range(4):
            out[0, c] = boxes[kept[0], path[0], c]
        return out
    k = 0
    for i in range(length):
        fc = f0 + i
        while k < k_len - 2 and frame_ids[kept[k + 1]] <= fc:
            k += 1
        lo = frame_ids[kept[k]]
        hi = frame_ids[kept[k + 1]]
        gap = float(hi - lo)
        w_lo = float(hi - fc) / gap
        w_hi = float(fc - lo) / gap
        for c in range(4):
            out[i, c] = w_lo * boxes[kept[k], path[k], c] + w_hi * boxes[kept[k + 1], path[k + 1], c]
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def _link_kernel(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames, sigma, iou_weight, strict):  # pragma: no cover
    """Steps 1-8; status 0 = nothing (strict), 1 = found, 2 = fallback."""
    n = boxes.shape[0]
    m = boxes.shape[1]
    geo = np.empty((n, 5, m))  # per box: x1, y1, x2 + 1, y2 + 1, inclusive area
    for i in range(n):
        for j in range(m):
            geo[i, 0, j] = boxes[i, j, 0]
            geo[i, 1, j] = boxes[i, j, 1]
            geo[i, 2, j] = boxes[i, j, 2] + 1.0
            geo[i, 3, j] = boxes[i, j, 3] + 1.0
            geo[i, 4, j] = (boxes[i, j, 2] - boxes[i, j, 0] + 1.0) * (boxes[i, j, 3] - boxes[i, j, 1] + 1.0)
    ten_r = 10.0 * (n / num_frames)
    max_gap = max(1.0, ten_r)
    min_len = max(1, int(ten_r))
    cand, starts = _segment_bounds(beta, sigma, max_gap)
    found = False
    best = -np.inf
    best_kept = np.empty(0, np.int64)
    best_sp = np.empty(0, np.int64)
    best_op = np.empty(0, np.int64)
    best_ss = 0.0
    best_os = 0.0
    for g in range(starts.shape[0] - 1):
        seg = cand[starts[g]: starts[g + 1]]
        if seg.shape[0] <= min_len:
            continue
        kept = _keep_distinct(seg, frame_ids)
        if kept.shape[0] < 2:
            continue
        sp, ss, op, os_ = _viterbi_pair(geo, alpha_s, alpha_o, kept, frame_ids, iou_weight)
        score = (ss + os_) / 2.0
        if not found or score > best:
            found = True
            best = score
            best_kept, best_sp, best_op, best_ss, best_os = kept, sp, op, ss, os_
    status = 1
    if not found:
        if strict:
            return 0, best_kept, best_sp, best_op, 0.0, 0.0, np.empty((0, 4)), np.empty((0, 4))
        status = 2
        peak = np.argmax(beta)
        top = beta[peak]
        cand, starts = _segment_bounds(beta, min(top / 2.0, top), max_gap)
        seg = cand[0:0]
        for g in range(starts.shape[0] - 1):
            if cand[starts[g]] <= peak and peak <= cand[starts[g + 1] - 1]:
                seg = cand[starts[g]: starts[g + 1]]
                break
        best_kept = _keep_distinct(seg, frame_ids)
        if best_kept.shape[0] >= 2:
            best_sp, best_ss, best_op, best_os = _viterbi_pair(
                geo, alpha_s, alpha_o, best_kept, frame_ids, iou_weight)
        else:
            i = best_kept[0]
            best_sp = np.empty(1, np.int64)
            best_op = np.empty(1, np.int64)
            best_sp[0] = np.argmax(alpha_s[i])
            best_op[0] = np.argmax(alpha_o[i])
            best_ss = alpha_s[i, best_sp[0]]
            best_os = alpha_o[i, best_op[0]]
    sub = _interpolate(boxes, best_kept, best_sp, frame_ids)
    obj = _interpolate(boxes, best_kept, best_op, frame_ids)
    return status, best_kept, best_sp, best_op, best_ss, best_os, sub, obj


def link_arrays(
    boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, beta: np.ndarray,
    frame_ids: np.ndarray, num_frames: int, sigma: float, iou_weight: float, strict: bool,
) -> RawLink | None:
    """Steps 1-8 for one relation (validated arrays), compiled; same contract as ``reference.link_arrays``."""
    status, kept, sp, op, ss, os_, sub, obj = _link_kernel(
        boxes, alpha_s, alpha_o, beta, frame_ids, int(num_frames), float(sigma), float(iou_weight), bool(strict))
    if status == 0:
        return None
    return (kept, sp, op, float(ss), float(os_), status == 2,
            int(frame_ids[kept[0]]), int(frame_ids[kept[-1]]), sub, obj)


def warmup() -> float:
    """Compile (or load from the on-disk cache) the kernel on a tiny input; returns the seconds it took."""
    t0 = time.perf_counter()
    boxes = np.zeros((3, 2, 4))
    boxes[..., 2:] = 10.0
    alpha = np.full((3, 2), 0.5)
    beta = np.array([0.1, 0.1, 0.0])
    fids = np.array([0, 1, 2], np.int64)
    link_arrays(boxes, alpha, alpha, beta, fids, 3, 0.04, 1.0, False)
    return time.perf_counter() - t0
