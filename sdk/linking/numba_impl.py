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


@njit(cache=True, error_model="numpy")
def _step(rows, pa, parea, pas, pao, prev_s, prev_o, lam, bq, cur_s, cur_o, back_s, back_o):  # pragma: no cover
    """One Viterbi step for subject and object: each live box p (``rows``) of frame a against every box q of b.

    ``bq`` rows hold frame b's x1, y1, x2, y2, area, alpha_s, alpha_o per box (contiguous per row). The q
    loop is branch-free (selects) so LLVM vectorises it; p ascending with strict '>' keeps the lowest p.
    """
    mq = bq.shape[1]
    bx1 = bq[0]
    by1 = bq[1]
    bx2 = bq[2]
    by2 = bq[3]
    barea = bq[4]
    asb = bq[5]
    aob = bq[6]
    for q in range(mq):
        cur_s[q] = -np.inf
        cur_o[q] = -np.inf
        back_s[q] = 0
        back_o[q] = 0
    for r in range(rows.shape[0]):
        p = rows[r]
        px1 = pa[p, 0]
        py1 = pa[p, 1]
        px2 = pa[p, 2]
        py2 = pa[p, 3]
        ar = parea[p]
        asp = pas[p]
        aop = pao[p]
        psp = prev_s[p]
        pop = prev_o[p]
        for q in range(mq):
            ix1 = px1 if px1 > bx1[q] else bx1[q]
            iy1 = py1 if py1 > by1[q] else by1[q]
            ix2 = px2 if px2 < bx2[q] else bx2[q]
            iy2 = py2 if py2 < by2[q] else by2[q]
            iw = ix2 - ix1 + 1.0
            iw = iw if iw > 0.0 else 0.0
            ih = iy2 - iy1 + 1.0
            ih = ih if ih > 0.0 else 0.0
            inter = iw * ih
            li = lam * (inter / ((ar + barea[q]) - inter))
            cs = psp + ((asp + asb[q]) + li)
            co = pop + ((aop + aob[q]) + li)
            old_s = cur_s[q]
            old_o = cur_o[q]
            up_s = cs > old_s
            up_o = co > old_o
            back_s[q] = p if up_s else back_s[q]
            back_o[q] = p if up_o else back_o[q]
            cur_s[q] = cs if up_s else old_s
            cur_o[q] = co if up_o else old_o


@njit(cache=True, error_model="numpy")
def _live_rows(prev_s, prev_o, sa, oa, sb, ob, lam, rows):  # pragma: no cover - compiled
    """``reference.live_rows``: boxes p that may still win some q; fills ``rows``, returns how many."""
    m = prev_s.shape[0]
    top_s = -np.inf
    top_o = -np.inf
    for p in range(m):
        top_s = max(top_s, prev_s[p] + sa[p])
        top_o = max(top_o, prev_o[p] + oa[p])
    big_s = 0.0
    big_o = 0.0
    for q in range(m):
        big_s = max(big_s, abs(sb[q]))
        big_o = max(big_o, abs(ob[q]))
    thr_s = top_s - abs(lam) - 1e-9 * (1.0 + abs(top_s) + abs(lam) + big_s)
    thr_o = top_o - abs(lam) - 1e-9 * (1.0 + abs(top_o) + abs(lam) + big_o)
    n = 0
    for p in range(m):
        if prev_s[p] + sa[p] >= thr_s or prev_o[p] + oa[p] >= thr_o:
            rows[n] = p
            n += 1
    return n


@njit(cache=True, error_model="numpy")
def _viterbi_pair(boxes, areas, alpha_s, alpha_o, kept, frame_ids, iou_weight):  # pragma: no cover - compiled
    """Steps 4-5 for subject and object over kept indices (K >= 2); same arithmetic as the reference."""
    k_len = kept.shape[0]
    m = boxes.shape[1]
    prev_s = np.zeros(m)
    prev_o = np.zeros(m)
    cur_s = np.empty(m)
    cur_o = np.empty(m)
    bq = np.empty((7, m))
    rows = np.empty(m, np.int64)
    back_s = np.empty((k_len - 1, m), np.int64)
    back_o = np.empty((k_len - 1, m), np.int64)
    for t in range(1, k_len):
        a = kept[t - 1]
        b = kept[t]
        lam = iou_weight / float(frame_ids[b] - frame_ids[a])
        for q in range(m):
            for c in range(4):
                bq[c, q] = boxes[b, q, c]
            bq[4, q] = areas[b, q]
            bq[5, q] = alpha_s[b, q]
            bq[6, q] = alpha_o[b, q]
        n_live = _live_rows(prev_s, prev_o, alpha_s[a], alpha_o[a], alpha_s[b], alpha_o[b], lam, rows)
        _step(rows[:n_live], boxes[a], areas[a], alpha_s[a], alpha_o[a], prev_s, prev_o, lam, bq, cur_s, cur_o,
              back_s[t - 1], back_o[t - 1])
        prev_s[:] = cur_s
        prev_o[:] = cur_o
    path_s = np.empty(k_len, np.int64)
    path_o = np.empty(k_len, np.int64)
    path_s[k_len - 1] = np.argmax(prev_s)
    path_o[k_len - 1] = np.argmax(prev_o)
    for t in range(k_len - 1, 0, -1):
        path_s[t - 1] = back_s[t - 1, path_s[t]]
        path_o[t - 1] = back_o[t - 1, path_o[t]]
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
    areas = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            areas[i, j] = (boxes[i, j, 2] - boxes[i, j, 0] + 1.0) * (boxes[i, j, 3] - boxes[i, j, 1] + 1.0)
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
        sp, ss, op, os_ = _viterbi_pair(boxes, areas, alpha_s, alpha_o, kept, frame_ids, iou_weight)
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
                boxes, areas, alpha_s, alpha_o, best_kept, frame_ids, iou_weight)
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
