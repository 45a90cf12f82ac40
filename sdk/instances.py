"""Choose each relation's subject and object *instances* with the temporal head, after attention (NumPy, no torch).

The spatial attention's query is a category word, so where a video holds two objects of one category (two persons)
α finds the category but flips between the two from frame to frame, and the linked track hops between them. With
``instance_choice`` (a ``ModelConfig`` switch on bundles with a temporal head) grounding links two candidate tracks
per role on α^(1/T), which is flat enough between two same-category objects for a continuity term to keep one of
them; the second candidate is linked with the first one's boxes masked out. The continuity is the linking's IoU, plus
(``instance_proximity`` ν > 0) the nearness of consecutive boxes, because objects that move more than their own size
between two sampled frames have no IoU with themselves. Every (subject, object) candidate
pair that is not one object is scored by the head for the query's predicate (its top-k bag score, as fitted) plus
γ · log of each track's mean attention, and the best pair is linked with its own head curve as β, cut to that curve's largest segment above σ.

The head's forward is written out here in NumPy (the same maths as ``vrgv.training.model.TemporalHead``; a test
checks them against each other), so ONNX Runtime, TensorRT and PyTorch bundles share it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from vrgv.errors import BundleError

GEOMETRY_DIM = 27
RELATIVE_DIM = GEOMETRY_DIM + 30
MASK_IOU = 0.3  # boxes overlapping the first candidate track this much are masked for the second
MASKED = 1e3  # a masked box scores -MASKED in the second candidate's nearness Viterbi: barred, not only zeroed
SAME_OBJECT_IOU = 0.5  # a (subject, object) candidate pair whose tracks overlap this much on average is one object


def _velocity(v: Any, step: int, per_step: Any, xp: Any) -> Any:
    """Differences over ±step samples along axis 1 (clamped at the ends), times ``per_step``."""
    after = xp.concatenate([v[:, step:], *[v[:, -1:]] * step], 1)
    before = xp.concatenate([*[v[:, :1]] * step, v[:, :-step]], 1)
    return (after - before) * per_step


def pair_geometry_features(box_s: Any, box_o: Any, step: int = 2, velocity_scale: Any = None, xp: Any = np) -> Any:
    """Per-frame geometry of an attended pair from pooled normalised boxes [B,N,5] (x1, y1, x2, y2, area): both
    boxes, their offset, their velocities over ±``step`` samples (times 10, or times ``velocity_scale`` [B]), and
    log ratios of area and height -> [B,N,27]. ``xp`` is the array module (NumPy here; ``torch`` for the model,
    which exports this same code), so the runtime and the model compute one thing."""
    per_step = 10.0 if velocity_scale is None else velocity_scale.reshape(-1, 1, 1)
    eps = 1e-4  # sizes are clamped at 0 so that a malformed box (x2 < x1) gives a finite ratio, not NaN
    area = xp.log((box_s[..., 4:5].clip(0) + eps) / (box_o[..., 4:5].clip(0) + eps))
    height = xp.log(((box_s[..., 3:4] - box_s[..., 1:2]).clip(0) + eps)
                    / ((box_o[..., 3:4] - box_o[..., 1:2]).clip(0) + eps))
    return xp.concatenate([box_s, box_o, box_s - box_o, _velocity(box_s, step, per_step, xp),
                           _velocity(box_o, step, per_step, xp), area, height], -1)


def pair_relative_features(box_s: Any, box_o: Any, step: int = 2, velocity_scale: Any = None, xp: Any = np) -> Any:
    """``pair_geometry_features`` plus the pair's relative layout and motion in the pair's own size unit, the
    "relativity" cues of video relation detection (Shang et al., 2017): centre offsets, gaps and overlaps, edge
    tests, log size ratios, speeds, heading toward the other box, closing speed, how far one is ahead of the other
    along its motion. Every ratio has a floor and a clamp, so malformed boxes give finite numbers -> [B,N,57]."""
    eps = 1e-4
    per_step = 10.0 if velocity_scale is None else velocity_scale.reshape(-1, 1)

    def parts(b: Any) -> tuple[Any, ...]:
        x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        return x1, y1, x2, y2, (x2 - x1).clip(0), (y2 - y1).clip(0), (x1 + x2) / 2, (y1 + y2) / 2

    def norm(x: Any, y: Any) -> Any:  # eps outside the root: an exported sqrt(x + 1e-8) lost its 1e-8
        return xp.sqrt(x * x + y * y) + eps

    sx1, sy1, sx2, sy2, sw, sh, scx, scy = parts(box_s)
    ox1, oy1, ox2, oy2, ow, oh, ocx, ocy = parts(box_o)
    scale = 0.5 * (xp.sqrt(sw * sh) + xp.sqrt(ow * oh)) + eps
    min_w, min_h = xp.minimum(sw, ow) + eps, xp.minimum(sh, oh) + eps
    over_x = xp.minimum(sx2, ox2) - xp.maximum(sx1, ox1)
    over_y = xp.minimum(sy2, oy2) - xp.maximum(sy1, oy1)
    inter = over_x.clip(0) * over_y.clip(0)
    svx, svy, ovx, ovy = (_velocity(v, step, per_step, xp) for v in (scx, scy, ocx, ocy))
    s_speed, o_speed = norm(svx, svy), norm(ovx, ovy)
    dx, dy = ocx - scx, ocy - scy  # subject -> object
    dist = norm(dx, dy)
    rel = [
        (scx - ocx) / scale, (scy - ocy) / scale, (sy2 - oy2) / scale,  # offsets; bottom edges (ground depth)
        -over_x / scale, -over_y / scale, over_x / min_w, over_y / min_h, inter / (min_w * min_h),
        (scx - ox1) / scale, (sx2 - ocx) / scale, (scx - ox2) / scale, (sx1 - ocx) / scale,  # left / right edges
        (sy2 - oy1) / (oh + eps), (oy2 - sy1) / (sh + eps),  # above / beneath
        (scx - ocx) / (ow + eps), (sy1 - oy1) / (oh + eps),  # riding: centred on the mount, top above its top
        xp.log((sw + eps) / (ow + eps)), xp.log((sh + eps) / (oh + eps)),
        s_speed, o_speed, xp.log(s_speed / o_speed),
        svx - ovx, svy - ovy, norm(svx - ovx, svy - ovy) / (o_speed + s_speed),
        (svx * ovx + svy * ovy) / (s_speed * o_speed),  # cosine of the two headings
        (svx * dx + svy * dy) / (s_speed * dist), (ovx * dx + ovy * dy) / (o_speed * dist),  # heading to the other
        ((svx - ovx) * dx + (svy - ovy) * dy) / dist,  # closing speed
        (dx * svx + dy * svy) / (s_speed * scale), (-dx * ovx - dy * ovy) / (o_speed * scale),  # ahead along motion
    ]
    extra = xp.stack(rel, -1).clip(-20.0, 20.0)
    return xp.concatenate([pair_geometry_features(box_s, box_o, step, velocity_scale, xp), extra], -1)


@dataclass(frozen=True)
class HeadWeights:
    """A fitted temporal head (``temporal_head.*`` of a checkpoint or bundle) and the config values it runs with."""

    w1: np.ndarray  # [K,F,h]
    b1: np.ndarray  # [K,1,h]
    w2: np.ndarray  # [K,h,h]
    b2: np.ndarray  # [K,1,h]
    w_out: np.ndarray  # [K,P,h]
    b_out: np.ndarray  # [K,P]
    mean: np.ndarray  # [F]
    std: np.ndarray  # [F]
    predicate_tokens: np.ndarray  # i64 [P,3]
    features: str = "geometry"
    smooth: int = 9
    topk: float = 0.2

    def __post_init__(self) -> None:
        k, f, h = self.w1.shape
        want = RELATIVE_DIM if self.features == "relative" else GEOMETRY_DIM
        if f != want or self.w_out.shape[0] != k or self.w_out.shape[2] != h or self.mean.shape != (f,):
            raise BundleError(f"temporal head weights do not fit together: w1 {list(self.w1.shape)}, w_out "
                              f"{list(self.w_out.shape)}, mean {list(self.mean.shape)}, features {self.features!r}")

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: Mapping[str, Any]) -> "HeadWeights":
        """From a state dict (``model.safetensors`` as NumPy) and the model config (``manifest.model``)."""
        try:
            get = {k: np.asarray(state[f"temporal_head.{k}"]) for k in
                   ("w1", "b1", "w2", "b2", "w_out", "b_out", "mean", "std", "predicate_tokens")}
        except KeyError as exc:
            raise BundleError(f"the weights have no temporal head ({exc.args[0]} missing); instance choice needs "
                              f"a model with temporal_head") from None
        return cls(**{k: (v.astype(np.int64) if k == "predicate_tokens" else v.astype(np.float64)) for k, v in get.items()},
                   features=str(config.get("temporal_head_features", "geometry")),
                   smooth=int(config.get("temporal_head_smooth", 9)), topk=float(config.get("temporal_head_topk", 0.2)))

    def features_of(self, box_s: np.ndarray, box_o: np.ndarray) -> np.ndarray:
        fn = pair_relative_features if self.features == "relative" else pair_geometry_features
        return fn(np.asarray(box_s, np.float64), np.asarray(box_o, np.float64))

    def firing_and_score(self, box_s: np.ndarray, box_o: np.ndarray,
                         predicate_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The head's curve [R,N] (smoothed, peak 1) and log bag score [R] for pooled boxes [R,N,5] and the
        queries' predicate token ids [R,3]; ``TemporalHead.firing_and_score`` written out."""
        x = (self.features_of(box_s, box_o) - self.mean) / self.std  # [R,N,F]
        match = (np.asarray(predicate_ids)[:, None, :] == self.predicate_tokens[None]).all(-1).astype(np.float64)  # [R,P]
        # batched matmuls (BLAS), not einsum: [1,R,N,F] @ [K,1,F,h] -> [K,R,N,h]
        h = np.maximum(x[None] @ self.w1[:, None] + self.b1[:, None], 0)
        h = np.maximum(h @ self.w2[:, None] + self.b2[:, None], 0)
        weight = match @ self.w_out  # [K,R,h]: each member's output row of the query's predicate
        bias = self.b_out @ match.T  # [K,R]
        logits = (h @ weight[..., None])[..., 0] + bias[..., None]  # [K,R,N]
        log_sig = np.minimum(logits, 0) - np.log1p(np.exp(-np.abs(logits)))
        top = log_sig.max(0)
        log_fire = np.log(np.exp(log_sig - top).sum(0)) + top  # [R,N]
        fire = np.exp(log_fire - log_fire.max(-1, keepdims=True))
        # box filter over `smooth` samples, averaging only the samples inside the video (count_include_pad=False)
        n, half = fire.shape[-1], self.smooth // 2
        csum = np.concatenate([np.zeros((fire.shape[0], 1)), np.cumsum(fire, -1)], -1)
        lo, hi = np.clip(np.arange(n) - half, 0, n), np.clip(np.arange(n) + half + 1, 0, n)
        smoothed = (csum[:, hi] - csum[:, lo]) / (hi - lo)
        k = max(1, int(round(self.topk * n)))
        top_k = -np.sort(-smoothed, axis=-1)[:, :k]
        log_score = np.log(top_k.mean(-1)) + log_fire.max(-1)
        return smoothed / smoothed.max(-1, keepdims=True), log_score


def _tracks(boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, frame_ids: np.ndarray, num_frames: int,
            linker: str, iou_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each relation's subject and object Viterbi tracks over the whole video (continuity weight λ =
    ``iou_weight``), by the linking backend: (kept sampled-frame indices [K], subject box per kept frame [R,K],
    object box per kept frame [R,K])."""
    from vrgv.linking import link_many

    ones = np.ones(alpha_s.shape[:2])
    res = link_many(boxes, alpha_s, alpha_o, ones, frame_ids, num_frames, sigma=0.5, iou_weight=iou_weight,
                    backend=linker)
    return res[0].kept_indices, np.stack([x.sub_indices for x in res]), np.stack([x.obj_indices for x in res])


def _track_steps(boxes: np.ndarray, frame_ids: np.ndarray, iou_weight: float,
                 proximity: float) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices [K], step scores [K-1,M,M], indexed [step, to q, from p]) for tracks over the video's distinct
    frames: a step from box p to box q scores λ/gap · IoU(p, q), as in the linking's Viterbi, plus λ ·
    ``proximity`` ν · exp(-d²/2s²), d the two boxes' centre distance and s their mean side (so λ = 0, vRGV*, stays
    greedy). Objects that move more than their size between two sampled frames have IoU 0 with themselves, so IoU
    alone cannot keep a track on one of two objects of a category; nearness can."""
    from vrgv.linking.reference import box_areas, keep_distinct_frames

    kept = keep_distinct_frames(np.arange(boxes.shape[0]), frame_ids)
    b1, b2 = boxes[kept[:-1]][:, None], boxes[kept[1:]][:, :, None]  # [K-1,1,M,4] from p, [K-1,M,1,4] to q
    area1, area2 = box_areas(b1), box_areas(b2)
    # reference.pairwise_iou's operations, batched over the steps (the same floats)
    ix1 = np.maximum(b1[..., 0], b2[..., 0])
    iy1 = np.maximum(b1[..., 1], b2[..., 1])
    iw = np.maximum(np.minimum(b1[..., 2] + 1.0, b2[..., 2] + 1.0) - ix1, 0.0)
    ih = np.maximum(np.minimum(b1[..., 3] + 1.0, b2[..., 3] + 1.0) - iy1, 0.0)
    inter = iw * ih
    lam = iou_weight / (frame_ids[kept[1:]] - frame_ids[kept[:-1]]).astype(np.float64)
    steps = lam[:, None, None] * (inter / ((area1 + area2) - inter))
    if proximity:
        d2 = (((b1[..., :2] + b1[..., 2:]) / 2 - (b2[..., :2] + b2[..., 2:]) / 2) ** 2).sum(-1)
        s2 = (0.5 * (np.sqrt(np.maximum(area1, 1.0)) + np.sqrt(np.maximum(area2, 1.0)))) ** 2
        steps = steps + (iou_weight * proximity) * np.exp(-0.5 * d2 / s2)
    return kept, np.ascontiguousarray(steps)


@njit(cache=True, nogil=True, error_model="numpy")
def _viterbi_many(unary: np.ndarray, steps: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Best path of each of T tracks, unary [T,K,M] (each box's score on the kept frames) and steps [K-1,M,M]
    ([step, q, p]), the linking's recursion U[q] = max_p (U[p] + unary[p]) + step[p -> q], first maximum on
    ties -> [T,K]."""
    n_tracks, k_len, m = unary.shape
    paths = np.empty((n_tracks, k_len), np.int64)
    back = np.empty((k_len - 1, m), np.int64)
    prev = np.empty(m)
    here = np.empty(m)
    cur = np.empty(m)
    for t in range(n_tracks):
        prev[:] = 0.0
        for k in range(1, k_len):
            for p in range(m):
                here[p] = prev[p] + unary[t, k - 1, p]
            for q in range(m):
                best = -np.inf
                arg = 0
                for p in range(m):
                    v = here[p] + steps[k - 1, q, p]
                    if v > best:
                        best = v
                        arg = p
                back[k - 1, q] = arg
                cur[q] = best + unary[t, k, q]
            prev[:] = cur
        last = 0
        for q in range(1, m):
            if prev[q] > prev[last]:
                last = q
        paths[t, k_len - 1] = last
        for k in range(k_len - 1, 0, -1):
            paths[t, k - 1] = back[k - 1, paths[t, k]]
    return paths


def _masked(alpha: np.ndarray, boxes: np.ndarray, kept: np.ndarray, path: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """α [R,N,M] with every box that overlaps the track ``path`` [R,K] (IoU ≥ MASK_IOU) set to ``fill`` on kept
    frames."""
    out = alpha.copy()
    chosen = boxes[kept[None], path]  # [R,K,4]
    iou = _paired_iou(np.broadcast_to(chosen[:, :, None], (*path.shape, boxes.shape[1], 4)),
                      np.broadcast_to(boxes[kept][None], (path.shape[0], len(kept), boxes.shape[1], 4)))
    view = out[:, kept]
    view[iou >= MASK_IOU] = fill
    out[:, kept] = view
    return out


@dataclass(frozen=True)
class CandidatePair:
    """One (subject track, object track) candidate of relation ``relation``: a region index per sampled frame for
    each role, and the attention's evidence for it (log mean α_s on the subject track + log mean α_o on the
    object track)."""

    relation: int
    subject: np.ndarray  # i64 [N]
    object: np.ndarray  # i64 [N]
    evidence: float


def candidate_pairs(boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, frame_ids: np.ndarray,
                    temperature: float = 16.0, *, num_frames: int | None = None, linker: str = "auto",
                    iou_weight: float = 1.0, proximity: float = 0.0) -> list[CandidatePair]:
    """Every relation's (subject, object) candidate pairs that are two objects: two tracks per role, linked over
    the whole video on α^(1/T) (the second with the first one's boxes masked out), paired four ways, pairs whose
    tracks overlap by mean IoU > ``SAME_OBJECT_IOU`` dropped. boxes [N,M,4] pixels, α [R,N,M], frame_ids [N].
    With ``proximity`` ν > 0 a track's steps also score the two boxes' nearness (``_track_steps``, then one Numba
    Viterbi over all tracks, ``_viterbi_many``); otherwise the tracks come from ``linker``.
    Empty where the video has fewer than two distinct frames."""
    from vrgv.linking.reference import keep_distinct_frames

    boxes = np.asarray(boxes, np.float64)
    frame_ids = np.asarray(frame_ids, np.int64)
    a_s, a_o = np.asarray(alpha_s, np.float64), np.asarray(alpha_o, np.float64)
    n = boxes.shape[0]
    if len(keep_distinct_frames(np.arange(n), frame_ids)) < 2 or a_s.shape[0] == 0:
        return []
    num_frames = int(frame_ids[-1]) + 1 if num_frames is None else int(num_frames)
    flat = [a ** (1.0 / float(temperature)) for a in (a_s, a_o)]
    flat = [f / np.maximum(f.sum(-1, keepdims=True), 1e-300) for f in flat]
    if proximity > 0:
        r_len = a_s.shape[0]
        kept, steps = _track_steps(boxes, frame_ids, iou_weight, proximity)
        paths = _viterbi_many(np.ascontiguousarray(np.concatenate(flat)[:, kept]), steps)
        s1, o1 = paths[:r_len], paths[r_len:]
        # masked boxes are barred (a score of -MASKED), not only zeroed: nearness would pay for staying on them
        masked = np.concatenate([_masked(flat[0], boxes, kept, s1, -MASKED), _masked(flat[1], boxes, kept, o1, -MASKED)])
        paths = _viterbi_many(np.ascontiguousarray(masked[:, kept]), steps)
        s2, o2 = paths[:r_len], paths[r_len:]
    else:
        kept, s1, o1 = _tracks(boxes, flat[0], flat[1], frame_ids, num_frames, linker, iou_weight)
        _, s2, o2 = _tracks(boxes, _masked(flat[0], boxes, kept, s1), _masked(flat[1], boxes, kept, o1), frame_ids,
                            num_frames, linker, iou_weight)
    expand = np.clip(np.searchsorted(frame_ids[kept], frame_ids, side="right") - 1, 0, len(kept) - 1)
    rows = np.arange(n)
    out: list[CandidatePair] = []
    for r in range(a_s.shape[0]):
        for sp in (s1[r], s2[r]):
            for op in (o1[r], o2[r]):
                s_n, o_n = sp[expand], op[expand]  # box per sampled frame
                if _paired_iou(boxes[rows, s_n], boxes[rows, o_n]).mean() > SAME_OBJECT_IOU:
                    continue  # one object cannot be both
                evidence = np.log(a_s[r][rows, s_n].mean() + 1e-12) + np.log(a_o[r][rows, o_n].mean() + 1e-12)
                out.append(CandidatePair(r, s_n, o_n, float(evidence)))
    return out


def choose_instances(boxes: np.ndarray, boxes_norm: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray,
                     beta: np.ndarray, frame_ids: np.ndarray, predicate_ids: np.ndarray, head: HeadWeights,
                     temperature: float = 16.0, gamma: float = 0.5, *, num_frames: int | None = None,
                     linker: str = "auto", sigma: float | None = None, iou_weight: float = 1.0,
                     proximity: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(α_s, α_o, β) to link, per relation: one-hot α on the chosen subject and object tracks and that pair's head
    curve as β. boxes [N,M,4] pixels, boxes_norm [N,M,5], α [R,N,M], β [R,N], frame_ids [N], predicate token ids
    [R,3]. Candidate tracks come from ``candidate_pairs`` (``linker`` or, with ``proximity`` > 0, its own NumPy
    Viterbi) with the linking's continuity weight ``iou_weight`` (λ; 0 is the paper's greedy vRGV*). A relation
    keeps its inputs
    where no candidate pair is two objects, or the video has one distinct frame.

    With ``sigma`` (the linking threshold), the chosen curve keeps only its segment above σ with the largest area:
    on one-hot α every segment's Viterbi score is about the same, so the linking's own choice among segments
    would be arbitrary, while the head's curve says where the predicate holds most."""
    a_s, a_o = np.array(alpha_s, np.float64), np.array(alpha_o, np.float64)
    out_beta = np.array(beta, np.float64)
    frame_ids = np.asarray(frame_ids, np.int64)
    num_frames = int(frame_ids[-1]) + 1 if num_frames is None and len(frame_ids) else num_frames
    cands = candidate_pairs(boxes, a_s, a_o, frame_ids, temperature, num_frames=num_frames, linker=linker,
                            iou_weight=iou_weight, proximity=proximity)
    if not cands:
        return a_s, a_o, out_beta
    rows = np.arange(a_s.shape[1])
    bn = np.asarray(boxes_norm, np.float64)
    curves, scores = head.firing_and_score(np.stack([bn[rows, c.subject] for c in cands]),
                                           np.stack([bn[rows, c.object] for c in cands]),
                                           np.asarray(predicate_ids)[[c.relation for c in cands]])
    best: dict[int, tuple[float, int]] = {}
    for i, c in enumerate(cands):
        value = float(scores[i]) + float(gamma) * c.evidence
        if c.relation not in best or value > best[c.relation][0]:
            best[c.relation] = (value, i)
    for r, (_, i) in best.items():
        c = cands[i]
        a_s[r] = 0.0
        a_o[r] = 0.0
        a_s[r][rows, c.subject] = 1.0
        a_o[r][rows, c.object] = 1.0
        out_beta[r] = curves[i] if sigma is None else largest_segment(curves[i], float(sigma), int(num_frames))
    return a_s, a_o, out_beta


def largest_segment(curve: np.ndarray, sigma: float, num_frames: int) -> np.ndarray:
    """``curve`` [N] with everything outside its largest-area segment above ``sigma`` set to 0; segments as the
    linking finds them (gaps bridged, too-short ones dropped). Unchanged when there are fewer than two segments."""
    from vrgv.linking.reference import find_segments, segment_params

    max_gap, min_len = segment_params(len(curve), num_frames)
    segments = [seg for seg in find_segments(curve, sigma, max_gap) if len(seg) > min_len]
    if len(segments) < 2:
        return curve
    best = max(segments, key=lambda seg: float(curve[seg].sum()))
    out = np.zeros_like(curve)
    out[best[0]:best[-1] + 1] = curve[best[0]:best[-1] + 1]
    return out


def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inclusive-pixel IoU of boxes a[...] and b[...] ([..., 4] each) -> [...]."""
    from vrgv.metric import box_iou

    return box_iou(a, b)
