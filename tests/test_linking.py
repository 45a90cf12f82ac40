"""vrgv.linking: the three backends agree, Viterbi is optimal, interpolation is eq. 14, edges behave."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vrgv.linking as L
from vrgv.errors import BackendError, LinkingError
from vrgv.grounding import Grounding
from vrgv.linking import cpp as cpp_backend
from vrgv.linking import reference as ref

BACKENDS = L.available_backends()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_inputs(rng: np.random.Generator, n: int, m: int, num_frames: int, beta_high: float = 0.1):
    xy = rng.uniform(0, 300, (n, m, 2))
    wh = rng.uniform(0, 150, (n, m, 2))
    boxes = np.concatenate([xy, xy + wh], -1)
    alpha_s = rng.dirichlet(np.ones(m), n)
    alpha_o = rng.dirichlet(np.ones(m), n)
    beta = rng.uniform(0, beta_high, n)
    fids = np.round(np.linspace(0, num_frames - 1, n)).astype(np.int64)
    return boxes, alpha_s, alpha_o, beta, fids, num_frames


def assert_same(a: L.LinkResult | None, b: L.LinkResult | None) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    assert a.segment == b.segment and a.fallback == b.fallback
    np.testing.assert_array_equal(a.kept_indices, b.kept_indices)
    np.testing.assert_array_equal(a.sub_indices, b.sub_indices)
    np.testing.assert_array_equal(a.obj_indices, b.obj_indices)
    for x, y in ((a.score, b.score), (a.sub_score, b.sub_score), (a.obj_score, b.obj_score)):
        assert abs(x - y) <= 1e-9
    np.testing.assert_allclose(a.sub_boxes, b.sub_boxes, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.obj_boxes, b.obj_boxes, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------- backends
def test_numpy_always_available_and_auto_is_first() -> None:
    assert BACKENDS[-1] == "numpy" and set(BACKENDS) <= {"cpp", "numba", "numpy"}
    assert L.resolve_backend("auto") == BACKENDS[0]
    assert list(BACKENDS) == [b for b in ("cpp", "numba", "numpy") if b in BACKENDS]


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(BackendError, match="unknown linking backend"):
        L.resolve_backend("cuda")


def test_missing_cpp_extension_is_reported(monkeypatch) -> None:
    from vrgv.linking import cpp

    monkeypatch.setattr(cpp, "_ext", None)
    L._works.cache_clear()
    try:
        assert "cpp" not in L.available_backends() and "numpy" in L.available_backends()
        with pytest.raises(BackendError, match="'cpp' is not available"):
            L.resolve_backend("cpp")
        assert L.resolve_backend("auto") != "cpp"
    finally:
        L._works.cache_clear()


def test_numba_warmup_returns_seconds() -> None:
    if "numba" not in BACKENDS:
        pytest.skip("numba not installed")
    assert L.warmup("numba") >= 0.0


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    m=st.integers(1, 6),
    num_frames=st.integers(1, 500),
    beta_high=st.sampled_from([0.03, 0.06, 0.1, 1.0]),
    iou_weight=st.sampled_from([0.0, 1.0, 2.5]),
    strict=st.booleans(),
    quantize=st.booleans(),
)
def test_all_backends_agree(seed, n, m, num_frames, beta_high, iou_weight, strict, quantize) -> None:
    rng = np.random.default_rng(seed)
    boxes, a_s, a_o, beta, fids, nf = make_inputs(rng, n, m, num_frames, beta_high)
    if quantize:  # coarse values make exact ties in attention, boxes and beta likely
        boxes, a_s, a_o = np.round(boxes / 50) * 50, np.round(a_s * 4) / 4, np.round(a_o * 4) / 4
        beta = np.round(beta * 50) / 50
    results = [L.link(boxes, a_s, a_o, beta, fids, nf, iou_weight=iou_weight, strict=strict, backend=b)
               for b in BACKENDS]
    for other in results[1:]:
        assert_same(results[0], other)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), r=st.integers(1, 6), threads=st.sampled_from([None, 1, 3]))
def test_link_many_matches_link(seed, r, threads) -> None:
    rng = np.random.default_rng(seed)
    boxes, _, _, _, fids, nf = make_inputs(rng, 30, 5, 300)
    a_s = rng.dirichlet(np.ones(5), (r, 30))
    a_o = rng.dirichlet(np.ones(5), (r, 30))
    beta = rng.uniform(0, 0.1, (r, 30))
    for b in BACKENDS:
        many = L.link_many(boxes, a_s, a_o, beta, fids, nf, backend=b, threads=threads)
        assert len(many) == r
        for k in range(r):
            assert_same(many[k], L.link(boxes, a_s[k], a_o[k], beta[k], fids, nf, backend="numpy"))
            assert many[k].backend == b


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_calls_match_sequential(backend) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(13)
    cases = [make_inputs(rng, 40, 6, 400) for _ in range(8)]
    want = [L.link(*c, backend=backend) for c in cases]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: L.link(*c, backend=backend), cases))
    for a, b in zip(want, got):
        assert_same(a, b)


# ------------------------------------------------------------------------------------- Viterbi optimality
def brute_force(boxes, alpha, kept, fids, iou_weight):
    """Best (score, path) over all M^K paths, scoring exactly as step 4-5 describe."""
    m = boxes.shape[1]
    areas = ref.box_areas(boxes)
    best = (-np.inf, None)
    for path in itertools.product(range(m), repeat=len(kept)):
        total = 0.0
        for t in range(1, len(kept)):
            a, b, p, q = kept[t - 1], kept[t], path[t - 1], path[t]
            iou = ref.pairwise_iou(boxes[a, p:p + 1], boxes[b, q:q + 1], areas[a, p:p + 1], areas[b, q:q + 1])[0, 0]
            total += alpha[a, p] + alpha[b, q] + iou_weight * iou / (fids[b] - fids[a])
        if total > best[0] + 1e-12:
            best = (total, path)
    return best[0] / (len(kept) - 1), best[1]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 5), m=st.integers(1, 4),
       iou_weight=st.sampled_from([0.0, 1.0, 3.0]))
def test_viterbi_equals_brute_force(seed, k, m, iou_weight) -> None:
    rng = np.random.default_rng(seed)
    boxes, a_s, a_o, _, _, _ = make_inputs(rng, k, m, 10 * k)
    fids = np.cumsum(rng.integers(1, 4, k)) - 1
    nf = int(fids[-1]) + 10 * k  # r small enough that min_len = 1 and D = 1
    beta = np.ones(k)
    want_s, _ = brute_force(boxes, a_s, np.arange(k), fids, iou_weight)
    want_o, _ = brute_force(boxes, a_o, np.arange(k), fids, iou_weight)
    for b in BACKENDS:
        res = L.link(boxes, a_s, a_o, beta, fids, nf, iou_weight=iou_weight, backend=b)
        assert not res.fallback and list(res.kept_indices) == list(range(k))
        assert res.sub_score == pytest.approx(want_s, abs=1e-12)
        assert res.obj_score == pytest.approx(want_o, abs=1e-12)
        # the returned path achieves the optimum
        path = res.sub_indices
        got = sum(a_s[t - 1, path[t - 1]] + a_s[t, path[t]] + iou_weight * ref.pairwise_iou(
            boxes[t - 1, path[t - 1]:path[t - 1] + 1], boxes[t, path[t]:path[t] + 1],
            ref.box_areas(boxes[t - 1, path[t - 1]:path[t - 1] + 1]),
            ref.box_areas(boxes[t, path[t]:path[t] + 1]))[0, 0] / (fids[t] - fids[t - 1]) for t in range(1, k))
        assert got / (k - 1) == pytest.approx(want_s, abs=1e-12)


def full_search_viterbi(boxes, alpha, kept, fids, iou_weight):
    """Viterbi over all M x M pairs (no pruning), same arithmetic as the reference."""
    m = boxes.shape[1]
    areas = ref.box_areas(boxes)
    prev, backs = np.zeros(m), []
    for t in range(1, len(kept)):
        a, b = kept[t - 1], kept[t]
        lam = iou_weight / float(fids[b] - fids[a])
        cand = (prev + alpha[a])[:, None] + lam * ref.pairwise_iou(boxes[a], boxes[b], areas[a], areas[b])
        best = np.argmax(cand, axis=0)
        backs.append(best)
        prev = cand[best, np.arange(m)] + alpha[b]
    path = [int(np.argmax(prev))]
    for best in reversed(backs):
        path.append(int(best[path[-1]]))
    return path[::-1], float(np.max(prev)) / (len(kept) - 1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 24), quantize=st.booleans(),
       iou_weight=st.sampled_from([0.0, 1.0, -1.0, 20.0]))
def test_pruned_viterbi_equals_full_search(seed, m, quantize, iou_weight) -> None:
    """Skipping boxes that cannot win (live_rows) gives exactly the full M x M search's paths and scores."""
    rng = np.random.default_rng(seed)
    k = 25
    boxes, a_s, a_o, _, _, _ = make_inputs(rng, k, m, 10 * k)
    if quantize:
        boxes, a_s, a_o = np.round(boxes / 40) * 40, np.round(a_s * 8) / 8, np.round(a_o * 8) / 8
    fids = np.arange(k) * 3
    want_s, score_s = full_search_viterbi(boxes, a_s, np.arange(k), fids, iou_weight)
    want_o, score_o = full_search_viterbi(boxes, a_o, np.arange(k), fids, iou_weight)
    for b in BACKENDS:
        res = L.link(boxes, a_s, a_o, np.ones(k), fids, 10 * k * 3, iou_weight=iou_weight, backend=b)
        assert res.sub_indices.tolist() == want_s and res.obj_indices.tolist() == want_o
        assert res.sub_score == score_s and res.obj_score == score_o


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40), uniform=st.booleans(), quantize=st.booleans(),
       shift=st.sampled_from([0.0, -200.0, 1e4]), iou_weight=st.sampled_from([1e-6, 0.5, 1.0, 20.0]))
def test_screened_viterbi_steps_change_nothing(seed, m, uniform, quantize, shift, iou_weight) -> None:
    """The division-free screen of the C++ Viterbi step (divide only where a pair can beat max U) changes no
    path and no score: several lane blocks and padding (M up to 40), near-uniform attention (where the screen
    runs: many live rows and near-ties), exact ties, negative and large coordinates, tiny and large weights. Every
    backend matches NumPy, and C++ matches itself with the screen switched off, bit for bit."""
    rng = np.random.default_rng(seed)
    n = 30
    boxes, a_s, a_o, _, _, _ = make_inputs(rng, n, m, 10 * n)
    boxes = boxes + shift
    if uniform:
        a_s = 1.0 / m + rng.uniform(0, 1e-4, (n, m))
        a_o = 1.0 / m + rng.uniform(0, 1e-4, (n, m))
    if quantize:
        boxes, a_s, a_o = np.round(boxes / 40) * 40, np.round(a_s * 8) / 8, np.round(a_o * 8) / 8
    fids = np.arange(n) * 3
    args = (boxes, a_s, a_o, np.ones(n), fids, 10 * n * 3)
    want = L.link(*args, iou_weight=iou_weight, backend="numpy")
    for b in BACKENDS:
        assert_same(L.link(*args, iou_weight=iou_weight, backend=b), want)
    if cpp_backend.screen_active():
        screened = L.link(*args, iou_weight=iou_weight, backend="cpp")
        previous = cpp_backend._ext._set_screen(False)
        try:
            plain = L.link(*args, iou_weight=iou_weight, backend="cpp")
        finally:
            cpp_backend._ext._set_screen(previous)
        assert screened.sub_indices.tolist() == plain.sub_indices.tolist()
        assert screened.obj_indices.tolist() == plain.obj_indices.tolist()
        assert (screened.sub_score, screened.obj_score) == (plain.sub_score, plain.obj_score)


# ----------------------------------------------------------------------------------------- interpolation
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 30))
def test_interpolation_exact_at_kept_frames_and_linear_between(seed, n) -> None:
    rng = np.random.default_rng(seed)
    boxes, a_s, a_o, _, _, _ = make_inputs(rng, n, 3, 100)
    fids = np.sort(rng.choice(1000, n, replace=False)).astype(np.int64)
    beta = np.ones(n)
    for b in BACKENDS:
        res = L.link(boxes, a_s, a_o, beta, fids, 10_000, backend=b)
        assert res.sub_boxes.shape == (res.end_fid - res.start_fid + 1, 4)
        kept_f = fids[res.kept_indices]
        for traj, path in ((res.sub_boxes, res.sub_indices), (res.obj_boxes, res.obj_indices)):
            kept_boxes = boxes[res.kept_indices, path]
            np.testing.assert_array_equal(traj[kept_f - res.start_fid], kept_boxes)  # exact
            for c in range(4):
                np.testing.assert_allclose(traj[:, c], np.interp(res.frame_ids, kept_f, kept_boxes[:, c]),
                                           rtol=0, atol=1e-9)


def test_interpolation_formula_eq14() -> None:
    out = ref.interpolate(np.array([10, 14]), np.array([[0.0, 0, 4, 8], [4.0, 8, 8, 16]]))
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(out[2], [2, 4, 6, 12])


# --------------------------------------------------------------------------------------------- tie rules
@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_go_to_lowest_box(backend) -> None:
    n, m = 6, 4
    boxes = np.tile(np.array([10.0, 10, 50, 50]), (n, m, 1))  # identical boxes, identical attention
    alpha = np.full((n, m), 0.25)
    res = L.link(boxes, alpha, alpha, np.ones(n), np.arange(n) * 10, 600, backend=backend)
    assert res.sub_indices.tolist() == [0] * n and res.obj_indices.tolist() == [0] * n


@pytest.mark.parametrize("backend", BACKENDS)
def test_tied_segments_take_the_earliest(backend) -> None:
    n, m = 40, 3
    rng = np.random.default_rng(1)
    half = make_inputs(rng, 10, m, 100)
    boxes = np.concatenate([half[0]] * 4)
    a_s, a_o = np.concatenate([half[1]] * 4), np.concatenate([half[2]] * 4)
    beta = np.zeros(n)
    beta[2:8] = 0.5
    beta[22:28] = 0.5  # same content shifted by 20 samples = same score
    fids = np.arange(n) * 10
    res = L.link(boxes, a_s, a_o, beta, fids, 400, backend=backend)
    assert res.kept_indices.tolist() == list(range(2, 8)) and not res.fallback


@pytest.mark.parametrize("backend", BACKENDS)
def test_best_segment_wins(backend) -> None:
    n, m = 40, 2
    boxes = np.tile(np.array([0.0, 0, 10, 10]), (n, m, 1))
    a = np.full((n, m), 0.1)
    a[25:32] = 0.4  # the second segment has stronger attention
    beta = np.zeros(n)
    beta[2:8] = 0.5
    beta[25:32] = 0.5
    res = L.link(boxes, a, a, beta, np.arange(n) * 10, 400, backend=backend)
    assert res.kept_indices.tolist() == list(range(25, 32))
    assert res.score == pytest.approx((0.8 + 1.0 / 10), abs=1e-12)  # 2 alpha + IoU(=1) / gap per link


# ------------------------------------------------------------------------------------------------ edges
@pytest.mark.parametrize("backend", BACKENDS)
def test_segment_rules(backend) -> None:
    """D = max(1, 10 r) joins candidates; a segment needs more than min_len candidates."""
    n, nf = 120, 600  # r = 0.2: D = 2, min_len = 2
    rng = np.random.default_rng(3)
    boxes, a_s, a_o, _, fids, _ = make_inputs(rng, n, 3, nf)
    beta = np.zeros(n)
    beta[[10, 12, 14]] = 0.1  # gaps of 2 <= D: one segment of 3 > min_len
    beta[[50, 51]] = 0.9  # only 2 candidates: dropped despite high beta
    res = L.link(boxes, a_s, a_o, beta, fids, nf, backend=backend)
    assert res.kept_indices.tolist() == [10, 12, 14] and not res.fallback
    beta[12] = 0.0  # gap 4 > D: two segments of 1 each -> fallback around argmax (50, 51)
    res = L.link(boxes, a_s, a_o, beta, fids, nf, backend=backend)
    assert res.fallback and res.kept_indices.tolist() == [50, 51]


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_frame_ids_when_video_is_short(backend) -> None:
    n, nf = 120, 30
    rng = np.random.default_rng(4)
    boxes, a_s, a_o, _, fids, _ = make_inputs(rng, n, 4, nf)
    assert len(np.unique(fids)) == nf
    beta = np.full(n, 0.1)
    res = L.link(boxes, a_s, a_o, beta, fids, nf, backend=backend)
    kept_f = fids[res.kept_indices]
    assert np.all(np.diff(kept_f) > 0) and res.segment == (0, nf - 1)
    assert res.sub_boxes.shape == (nf, 4)
    assert_same(res, L.link(boxes, a_s, a_o, beta, fids, nf, backend="numpy"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_frame_video_falls_back_to_argmax_boxes(backend) -> None:
    n, m = 8, 5
    rng = np.random.default_rng(5)
    boxes, a_s, a_o, _, _, _ = make_inputs(rng, n, m, 1)
    fids = np.zeros(n, np.int64)
    beta = np.full(n, 0.2)
    assert L.link(boxes, a_s, a_o, beta, fids, 1, strict=True, backend=backend) is None
    res = L.link(boxes, a_s, a_o, beta, fids, 1, backend=backend)
    assert res.fallback and res.segment == (0, 0) and res.kept_indices.tolist() == [0]
    p, q = int(np.argmax(a_s[0])), int(np.argmax(a_o[0]))
    np.testing.assert_array_equal(res.sub_boxes, boxes[0, p][None])
    np.testing.assert_array_equal(res.obj_boxes, boxes[0, q][None])
    assert res.sub_score == a_s[0, p] and res.obj_score == a_o[0, q]


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_beta_below_sigma(backend) -> None:
    n = 60
    rng = np.random.default_rng(6)
    boxes, a_s, a_o, _, fids, nf = make_inputs(rng, n, 3, 600)
    beta = np.full(n, 0.001)
    beta[30:34] = [0.02, 0.03, 0.018, 0.01]  # max 0.03 < sigma; sigma' = 0.015 keeps 30..32
    assert L.link(boxes, a_s, a_o, beta, fids, nf, strict=True, backend=backend) is None
    res = L.link(boxes, a_s, a_o, beta, fids, nf, backend=backend)
    assert res.fallback and res.kept_indices.tolist() == [30, 31, 32]
    assert_same(res, L.link(boxes, a_s, a_o, beta, fids, nf, backend="numpy"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_candidate(backend) -> None:
    n = 60
    rng = np.random.default_rng(7)
    boxes, a_s, a_o, _, fids, nf = make_inputs(rng, n, 3, 600)
    beta = np.zeros(n)
    beta[17] = 0.5
    assert L.link(boxes, a_s, a_o, beta, fids, nf, strict=True, backend=backend) is None
    res = L.link(boxes, a_s, a_o, beta, fids, nf, backend=backend)
    assert res.fallback and res.kept_indices.tolist() == [17] and res.segment == (fids[17], fids[17])
    assert res.sub_indices.tolist() == [int(np.argmax(a_s[17]))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_region_per_frame(backend) -> None:
    n = 30
    rng = np.random.default_rng(8)
    boxes, a_s, a_o, _, fids, nf = make_inputs(rng, n, 1, 300)
    res = L.link(boxes, a_s, a_o, np.full(n, 0.5), fids, nf, backend=backend)
    assert res.sub_indices.tolist() == [0] * n and res.obj_indices.tolist() == [0] * n
    assert res.segment == (0, 299) and res.sub_boxes.shape == (300, 4)


@pytest.mark.parametrize("name", ["boxes", "alpha_s", "alpha_o", "beta"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_names_the_array(name, bad) -> None:
    rng = np.random.default_rng(9)
    args = dict(zip(["boxes", "alpha_s", "alpha_o", "beta", "frame_ids", "num_frames"], make_inputs(rng, 10, 3, 100)))
    args[name] = np.array(args[name], dtype=np.float64)
    args[name].reshape(-1)[3] = bad
    with pytest.raises(LinkingError, match=rf"\b{name}\b.*NaN or infinite") as info:
        L.link(**args)
    assert isinstance(info.value, ValueError)


def test_numpy_validation_path_without_the_extension(monkeypatch) -> None:
    from vrgv.linking import validate

    monkeypatch.setattr(validate, "_all_finite_cpp", None)
    monkeypatch.setattr(validate, "_corners_ordered_cpp", None)
    rng = np.random.default_rng(12)
    boxes, a_s, a_o, beta, fids, nf = make_inputs(rng, 10, 3, 100)
    assert L.link(boxes, a_s, a_o, beta, fids, nf, backend="numpy") is not None
    bad = beta.copy()
    bad[4] = np.nan
    with pytest.raises(LinkingError, match="beta holds 1 NaN"):
        L.link(boxes, a_s, a_o, bad, fids, nf, backend="numpy")
    with pytest.raises(LinkingError, match="x2 < x1"):
        L.link(boxes[..., [2, 1, 0, 3]] + np.array([0, 0, -1, 0]), a_s, a_o, beta, fids, nf, backend="numpy")


def test_shape_and_frame_id_errors_name_the_input() -> None:
    rng = np.random.default_rng(10)
    boxes, a_s, a_o, beta, fids, nf = make_inputs(rng, 10, 3, 100)
    with pytest.raises(LinkingError, match="boxes must have shape"):
        L.link(boxes[..., :3], a_s, a_o, beta, fids, nf)
    with pytest.raises(LinkingError, match="alpha_o must have shape"):
        L.link(boxes, a_s, a_o[:, :2], beta, fids, nf)
    with pytest.raises(LinkingError, match="beta must have shape"):
        L.link(boxes, a_s, a_o, beta[:5], fids, nf)
    with pytest.raises(LinkingError, match="frame_ids must be non-decreasing"):
        L.link(boxes, a_s, a_o, beta, fids[::-1], nf)
    with pytest.raises(LinkingError, match=r"frame_ids must lie in \[0, num_frames"):
        L.link(boxes, a_s, a_o, beta, fids, 5)
    with pytest.raises(LinkingError, match="x2 < x1"):
        L.link(boxes[..., [2, 1, 0, 3]] + np.array([0, 0, -1, 0]), a_s, a_o, beta, fids, nf)
    with pytest.raises(LinkingError, match="alpha_s must have shape"):
        L.link_many(boxes, a_s, a_o, beta, fids, nf)
    with pytest.raises(LinkingError, match="sigma must be finite"):
        L.link(boxes, a_s, a_o, beta, fids, nf, sigma=float("nan"))


# ----------------------------------------------------------------------------------------- result types
def test_result_round_trips_and_becomes_a_grounding() -> None:
    rng = np.random.default_rng(11)
    boxes, a_s, a_o, _, fids, nf = make_inputs(rng, 20, 3, 200)
    res = L.link(boxes, a_s, a_o, np.full(20, 0.5), fids, nf)
    data = json.loads(json.dumps(res.to_dict()))
    back = L.LinkResult.from_dict(data)
    assert_same(res, back)
    g = L.to_grounding(res, "person-ride-bicycle", "vid1")
    assert isinstance(g, Grounding) and g.segment == res.segment and g.video_id == "vid1"
    assert len(g.subject) == res.end_fid - res.start_fid + 1
    np.testing.assert_array_equal(g.object.boxes, res.obj_boxes)
    assert g.to_dict()["segment"] == [res.start_fid, res.end_fid]
    with pytest.raises(LinkingError, match="needs a LinkResult"):
        L.to_grounding(None, "person-ride-bicycle")


def test_importing_linking_does_not_import_torch() -> None:
    code = "import sys, vrgv.linking as L; L.available_backends(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_backends_agree_on_the_bundled_models_attention() -> None:
    """Real inputs, not random ones: the shipped model's attention for the synthetic demo clip's relations
    (the `model` scenario of benchmarks/bench_linking.py) links to the same boxes and scores on every backend."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_linking", Path(__file__).parents[1] / "benchmarks" / "bench_linking.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    boxes, a_s, a_o, beta, fids, nf, n_rel = bench.model_inputs(6)
    assert boxes.shape == (120, 40, 4) and a_s.shape == (6, 120, 40) and beta.shape == (6, 120) and n_rel >= 1
    results = {b: L.link_many(boxes, a_s, a_o, beta, fids, nf, backend=b) for b in L.available_backends()}
    ref_results = results["numpy"]
    for b, res in results.items():
        for r, q in zip(res, ref_results):
            assert (r.start_fid, r.end_fid) == (q.start_fid, q.end_fid), b
            np.testing.assert_array_equal(r.sub_indices, q.sub_indices)
            np.testing.assert_array_equal(r.obj_indices, q.obj_indices)
            assert abs(r.score - q.score) <= 1e-9


def _valid_inputs(rng: np.random.Generator, n: int = 6, m: int = 4) -> tuple:
    xy = rng.uniform(0, 50, (n, m, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (n, m, 2))], -1)
    return (boxes, rng.dirichlet(np.ones(m), n), rng.dirichlet(np.ones(m), n), rng.uniform(0, 0.3, n),
            np.arange(n, dtype=np.int64) * 2, 2 * n, 0.04, 1.0)


@pytest.mark.skipif("cpp" not in L.available_backends(), reason="the one-pass check is part of the C++ extension")
def test_one_pass_input_check_agrees_with_the_detailed_checks(monkeypatch) -> None:
    """The C++ one-pass check accepts what the detailed checks accept and hands everything else to them."""
    from vrgv.linking import validate as V

    args = _valid_inputs(np.random.default_rng(0))
    quick = V._quick_check(*args, many=False)
    assert quick is not None and quick.boxes is args[0] and quick.alpha_s.shape == (1, 6, 4)
    with monkeypatch.context() as patch:
        patch.setattr(V, "_inputs_ok_cpp", None)
        assert V._quick_check(*args, many=False) is None
        detailed = V.check_inputs(*args, many=False)
    for a, b in zip(vars(quick).values(), vars(detailed).values()):
        assert np.array_equal(a, b)
    spoiled = []
    for index, fix in [(0, lambda b: b.__setitem__((2, 1, 0), np.nan)), (1, lambda a: a.__setitem__((0, 0), np.inf)),
                       (0, lambda b: b.__setitem__((1, 1, 2), b[1, 1, 0] - 1)), (3, lambda x: x.__setitem__(0, np.nan))]:
        bad = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        fix(bad[index])
        spoiled.append(bad)
    for fids in (np.array([0, 2, 1, 6, 8, 10]), np.array([-1, 2, 4, 6, 8, 10]), np.array([0, 2, 4, 6, 8, 12])):
        spoiled.append([*args[:4], fids.astype(np.int64), *args[5:]])
    spoiled.append([*args[:4], args[4].astype(np.int32), *args[5:]])  # other dtypes go the detailed way
    spoiled.append([args[0][:, :, ::-1].copy()[:, :, ::-1], *args[1:]])  # not C-contiguous
    for bad in spoiled:
        assert V._quick_check(*bad, many=False) is None
    for bad in spoiled[:7]:
        with pytest.raises(LinkingError):
            V.check_inputs(*bad, many=False)
    many = V._quick_check(args[0], args[1][None], args[2][None], args[3][None], *args[4:], many=True)
    assert many is not None and many.alpha_s.shape == (1, 6, 4)
