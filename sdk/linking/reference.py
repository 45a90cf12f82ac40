"""NumPy reference of the linking algorithm (paper §3.4 eq. 12-13, appendix eq. 14): the readable spec.

The numba and C++ backends follow this file operation by operation (same floating-point order), so all
three return identical segments and box indices. Steps, as numbered in issue 4:
1. r = N / num_frames; max_gap D = max(1, 10 r); min_len = max(1, int(10 r)).
2. Candidates beta[i] >= sigma; consecutive candidates within D share a segment; keep segments with
   more than min_len candidates.
3. Drop a candidate whose frame id equals the previous kept one's; skip segments with K < 2.
4. s(p, q) = alpha[a,p] + alpha[b,q] + lam * IoU(p, q) with lam = iou_weight / (F_b - F_a),
   inclusive-pixel IoU (x2 + 1 and y2 + 1 are formed per box, then min/max per pair).
5. Viterbi maximising the summed link scores, divided by K - 1; ties to the lowest box index. In floating
   point, one step is U[p] = prev[p] + alpha[a,p], best[q] = max_p (U[p] + lam * IoU(p, q)) and
   prev[q] = best[q] + alpha[b,q]: the tie rule applies to U[p] + lam * IoU(p, q).
   Boxes p that cannot win any q at a step (``live_rows``: prev + alpha more than |lam| below the best)
   are skipped; they are strictly worse, so the result is the same as the full M x M search.
6. Segment score = (sub + obj) / 2; the best segment wins, ties to the earliest.
7. Linear interpolation between kept frames (eq. 14).
8. Nothing survives: None if strict, else the segment holding argmax(beta) at sigma' = max(beta) / 2
   (no min_len), flagged ``fallback``; a single kept frame gives the argmax box of each attention.
"""
from __future__ import annotations

import numpy as np

# (kept, sub_path, obj_path, sub_score, obj_score, fallback, start_fid, end_fid, sub_boxes, obj_boxes)
RawLink = tuple


def segment_params(num_samples: int, num_frames: int) -> tuple[float, int]:
    """Step 1: ``(max_gap D, min_len)`` for N sampled frames of a ``num_frames``-frame video."""
    ten_r = 10.0 * (num_samples / num_frames)
    return max(1.0, ten_r), max(1, int(ten_r))


def fallback_threshold(beta: np.ndarray) -> float:
    """Step 8's sigma' = max(beta) / 2 (capped at max(beta), so argmax stays a candidate for negative beta)."""
    top = float(np.max(beta))
    return min(top / 2.0, top)


def find_segments(beta: np.ndarray, threshold: float, max_gap: float) -> list[np.ndarray]:
    """Step 2: runs of candidate indices (beta >= threshold) whose consecutive gaps are <= max_gap."""
    cand = np.flatnonzero(beta >= threshold)
    if cand.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(cand) > max_gap) + 1
    return np.split(cand, cuts)


def keep_distinct_frames(segment: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
    """Step 3: drop indices repeating the previous kept frame id (frame ids are non-decreasing)."""
    fids = frame_ids[segment]
    keep = np.ones(len(segment), dtype=bool)
    keep[1:] = fids[1:] != fids[:-1]
    return segment[keep]


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Inclusive-pixel areas (x2 - x1 + 1)(y2 - y1 + 1) of boxes [..., 4]."""
    return (boxes[..., 2] - boxes[..., 0] + 1.0) * (boxes[..., 3] - boxes[..., 1] + 1.0)


def pairwise_iou(b1: np.ndarray, b2: np.ndarray, area1: np.ndarray, area2: np.ndarray) -> np.ndarray:
    """IoU [M1, M2] between boxes b1 [M1,4] and b2 [M2,4], inclusive-pixel convention."""
    ix1 = np.maximum(b1[:, None, 0], b2[None, :, 0])
    iy1 = np.maximum(b1[:, None, 1], b2[None, :, 1])
    iw = np.maximum(np.minimum(b1[:, None, 2] + 1.0, b2[None, :, 2] + 1.0) - ix1, 0.0)
    ih = np.maximum(np.minimum(b1[:, None, 3] + 1.0, b2[None, :, 3] + 1.0) - iy1, 0.0)
    inter = iw * ih
    return inter / ((area1[:, None] + area2[None, :]) - inter)


def live_rows(prev_s: np.ndarray, prev_o: np.ndarray, alpha_s_a: np.ndarray, alpha_o_a: np.ndarray,
              alpha_s_b: np.ndarray, alpha_o_b: np.ndarray, lam: float) -> np.ndarray:
    """Boxes p of frame a that may still be the best predecessor of some q (subject or object), ascending.

    With U[p] = prev[p] + alpha_a[p], every link adds alpha_b[q] plus lam * IoU in [min(0, lam), max(0, lam)],
    so p with U[p] < max(U) - |lam| - eps loses to argmax(U) for every q, strictly (eps >> rounding error).
    """
    keep = np.zeros(len(prev_s), dtype=bool)
    for prev, a_a, a_b in ((prev_s, alpha_s_a, alpha_s_b), (prev_o, alpha_o_a, alpha_o_b)):
        u = prev + a_a
        top = float(np.max(u))
        eps = 1e-9 * (1.0 + abs(top) + abs(lam) + float(np.max(np.abs(a_b))))
        keep |= u >= top - abs(lam) - eps
    return np.flatnonzero(keep)


def viterbi_pair(
    boxes: np.ndarray, areas: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray,
    kept: np.ndarray, frame_ids: np.ndarray, iou_weight: float,
) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Steps 4-5 for subject and object over kept indices (K >= 2), sharing each step's IoU matrix."""
    k_len, m = len(kept), boxes.shape[1]
    cols = np.arange(m)
    prev = [np.zeros(m), np.zeros(m)]
    back = [np.empty((k_len - 1, m), np.int64), np.empty((k_len - 1, m), np.int64)]
    for t in range(1, k_len):
        a, b = kept[t - 1], kept[t]
        lam = iou_weight / float(frame_ids[b] - frame_ids[a])
        rows = live_rows(prev[0], prev[1], alpha_s[a], alpha_o[a], alpha_s[b], alpha_o[b], lam)
        link_iou = lam * pairwise_iou(boxes[a, rows], boxes[b], areas[a, rows], areas[b])
        for j, alpha in enumerate((alpha_s, alpha_o)):
            cand = (prev[j] + alpha[a])[rows, None] + link_iou  # U[p] + lam * IoU(p, q)
            best = np.argmax(cand, axis=0)  # first maximum: lowest previous box on ties
            back[j][t - 1] = rows[best]
            prev[j] = cand[best, cols] + alpha[b]
    out: list = []
    for j in range(2):
        path = np.empty(k_len, np.int64)
        path[-1] = int(np.argmax(prev[j]))  # lowest box index among the best final states
        for t in range(k_len - 1, 0, -1):
            path[t - 1] = back[j][t - 1, path[t]]
        out += [path, float(prev[j][path[-1]]) / (k_len - 1)]
    return out[0], out[1], out[2], out[3]


def interpolate(kept_fids: np.ndarray, kept_boxes: np.ndarray) -> np.ndarray:
    """Step 7 (eq. 14): one box per real frame from kept_fids[0] to kept_fids[-1] inclusive."""
    if len(kept_fids) == 1:
        return kept_boxes.astype(np.float64).copy()
    c = np.arange(kept_fids[0], kept_fids[-1] + 1, dtype=np.int64)
    k = np.minimum(np.searchsorted(kept_fids, c, side="right") - 1, len(kept_fids) - 2)
    lo, hi = kept_fids[k], kept_fids[k + 1]
    gap = (hi - lo).astype(np.float64)
    w_lo = (hi - c).astype(np.float64) / gap
    w_hi = (c - lo).astype(np.float64) / gap
    return w_lo[:, None] * kept_boxes[k] + w_hi[:, None] * kept_boxes[k + 1]


def _finish(boxes, frame_ids, kept, sub_path, obj_path, sub_score, obj_score, fallback) -> RawLink:
    kept_fids = frame_ids[kept]
    sub = interpolate(kept_fids, boxes[kept, sub_path])
    obj = interpolate(kept_fids, boxes[kept, obj_path])
    return (kept, sub_path, obj_path, sub_score, obj_score, fallback,
            int(kept_fids[0]), int(kept_fids[-1]), sub, obj)


def link_arrays(
    boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, beta: np.ndarray,
    frame_ids: np.ndarray, num_frames: int, sigma: float, iou_weight: float, strict: bool,
) -> RawLink | None:
    """Steps 1-8 for one relation on validated float64/int64 arrays; None when strict and nothing passes."""
    n = boxes.shape[0]
    areas = box_areas(boxes)
    max_gap, min_len = segment_params(n, num_frames)
    best = None
    for seg in find_segments(beta, sigma, max_gap):
        if len(seg) <= min_len:
            continue
        kept = keep_distinct_frames(seg, frame_ids)
        if len(kept) < 2:
            continue
        sp, ss, op, os_ = viterbi_pair(boxes, areas, alpha_s, alpha_o, kept, frame_ids, iou_weight)
        score = (ss + os_) / 2.0
        if best is None or score > best[0]:
            best = (score, kept, sp, op, ss, os_)
    if best is not None:
        _, kept, sp, op, ss, os_ = best
        return _finish(boxes, frame_ids, kept, sp, op, ss, os_, False)
    if strict:
        return None
    peak = int(np.argmax(beta))
    seg = next(s for s in find_segments(beta, fallback_threshold(beta), max_gap) if s[0] <= peak <= s[-1])
    kept = keep_distinct_frames(seg, frame_ids)
    if len(kept) >= 2:
        sp, ss, op, os_ = viterbi_pair(boxes, areas, alpha_s, alpha_o, kept, frame_ids, iou_weight)
        return _finish(boxes, frame_ids, kept, sp, op, ss, os_, True)
    i = int(kept[0])
    sp = np.array([np.argmax(alpha_s[i])], np.int64)
    op = np.array([np.argmax(alpha_o[i])], np.int64)
    return _finish(boxes, frame_ids, kept, sp, op, float(alpha_s[i, sp[0]]), float(alpha_o[i, op[0]]), True)
