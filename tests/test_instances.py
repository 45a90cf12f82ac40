"""Instance choice (``vrgv.instances``): candidate tracks that keep one object, the head's choice, the runtime."""
from __future__ import annotations

import numpy as np
import pytest

from vrgv.errors import BundleError
from vrgv.instances import GEOMETRY_DIM, RELATIVE_DIM, HeadWeights, choose_instances, pair_relative_features
from vrgv.vocab import Vocabulary

VOCAB = Vocabulary.default()
N, M = 24, 3
W, H = 640.0, 480.0


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Two persons (regions 0 left, 1 right) and a dog (region 2), static; pixel and normalised boxes."""
    px = np.array([[60, 200, 130, 400], [450, 200, 520, 400], [250, 330, 330, 400]], np.float64)
    boxes = np.broadcast_to(px, (N, M, 4)).copy()
    norm = np.concatenate([boxes / [W, H, W, H], ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
                                                  / (W * H))[..., None]], -1)
    return boxes, norm


def _left_head() -> HeadWeights:
    """One member, one hidden unit: fires for ``left`` when the subject's centre is left of the object's."""
    P = len(VOCAB.predicates)
    w1 = np.zeros((1, RELATIVE_DIM, 1))
    w1[0, GEOMETRY_DIM, 0] = -1.0  # (subject cx - object cx) / scale, negated: positive when the subject is left
    w_out = np.zeros((1, P, 1))
    w_out[0, VOCAB.predicates.index("left"), 0] = 5.0
    tokens = VOCAB.encode_query([f"person-{p}-person" for p in VOCAB.predicates])[:, 1:4]
    return HeadWeights(w1=w1, b1=np.zeros((1, 1, 1)), w2=np.ones((1, 1, 1)), b2=np.zeros((1, 1, 1)), w_out=w_out,
                       b_out=np.full((1, P), -2.0), mean=np.zeros(RELATIVE_DIM), std=np.ones(RELATIVE_DIM),
                       predicate_tokens=tokens, features="relative", smooth=3, topk=0.25)


def test_flipping_attention_gets_one_track_per_role_and_the_head_orders_them():
    boxes, norm = _scene()
    flip = np.zeros((1, N, M))
    flip[0, ::2, 1], flip[0, 1::2, 0] = 0.98, 0.98  # α on the right person at even frames, the left at odd ones
    flip[0, ::2, 0], flip[0, 1::2, 1] = 0.019, 0.019
    flip[0, :, 2] = 0.001
    from vrgv.linking import link_many

    raw = link_many(boxes, flip, flip, np.ones((1, N)), np.arange(N) * 5, N * 5, sigma=0.5)[0]
    assert len(set(raw.sub_indices.tolist())) == 2  # the plain link hops between the two persons
    q = VOCAB.encode_query(["person-left-person"])[:, 1:4]
    a_s, a_o, beta = choose_instances(boxes, norm, flip, flip, np.full((1, N), 0.5), np.arange(N) * 5, q,
                                      _left_head(), temperature=16.0, gamma=0.5, num_frames=N * 5)
    np.testing.assert_array_equal(a_s[0].argmax(-1), 0)  # the left person is the subject in every frame
    np.testing.assert_array_equal(a_o[0].argmax(-1), 1)
    assert set(np.unique(a_s)) == {0.0, 1.0} and np.isclose(beta.max(), 1.0) and beta.min() >= 0


def test_without_a_distinct_pair_or_with_one_frame_the_inputs_stand():
    boxes, norm = _scene()
    one = np.zeros((1, N, 1))
    one[..., 0] = 1.0
    a_s, a_o, beta = choose_instances(boxes[:, :1], norm[:, :1], one, one, np.full((1, N), 0.3), np.arange(N), 
                                      VOCAB.encode_query(["person-left-person"])[:, 1:4], _left_head())
    np.testing.assert_array_equal(beta, 0.3)  # one region: subject and object would be one object
    alpha = np.full((1, N, M), 1.0 / M)
    same_frame = np.zeros(N, np.int64)
    out = choose_instances(boxes, norm, alpha, alpha, np.full((1, N), 0.3), same_frame,
                           VOCAB.encode_query(["person-left-person"])[:, 1:4], _left_head())
    np.testing.assert_array_equal(out[2], 0.3)


def test_head_weights_name_what_is_missing_and_check_shapes():
    with pytest.raises(BundleError, match="no temporal head"):
        HeadWeights.from_state({}, {})
    head = _left_head()
    with pytest.raises(BundleError, match="do not fit"):
        HeadWeights(**{**head.__dict__, "features": "geometry"})


def test_relative_features_are_finite_for_degenerate_boxes():
    z = np.zeros((2, 6, 5))
    assert np.isfinite(pair_relative_features(z, z)).all()


def test_largest_segment_keeps_the_run_with_the_most_curve_above_sigma():
    from vrgv.instances import largest_segment

    curve = np.zeros(120)
    curve[10:30] = 0.5  # area 10
    curve[60:100] = 0.9  # area 36: kept
    curve[100:102] = 0.1  # below σ, outside every segment
    out = largest_segment(curve, 0.2, num_frames=120)
    np.testing.assert_array_equal(out[60:100], 0.9)
    assert out[:60].max() == 0 and out[100:].max() == 0
    single = np.zeros(120)
    single[5:40] = 1.0
    np.testing.assert_array_equal(largest_segment(single, 0.2, num_frames=120), single)  # one segment: unchanged


def test_choose_instances_with_sigma_cuts_the_chosen_curve_to_one_segment():
    boxes, norm = _scene()
    flip = np.zeros((1, N, M))
    flip[0, :, 0], flip[0, :, 1], flip[0, :, 2] = 0.5, 0.49, 0.01
    q = VOCAB.encode_query(["person-left-person"])[:, 1:4]
    head = _left_head()
    full = choose_instances(boxes, norm, flip, flip, np.ones((1, N)), np.arange(N) * 5, q, head, num_frames=N * 5)[2]
    cut = choose_instances(boxes, norm, flip, flip, np.ones((1, N)), np.arange(N) * 5, q, head, num_frames=N * 5,
                           sigma=0.2)[2]
    assert np.all((cut == full) | (cut == 0))  # values kept or zeroed, never changed


def test_proximity_tracks_equal_the_linkings_without_proximity():
    from vrgv.instances import _track_steps, _tracks, _viterbi_many

    rng = np.random.default_rng(3)
    n, m, r = 30, 6, 3
    xy = rng.uniform(0, 500, (n, m, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 120, (n, m, 2))], -1)
    a_s, a_o = rng.dirichlet(np.ones(m), (r, n)), rng.dirichlet(np.ones(m), (r, n))
    frame_ids = np.sort(rng.choice(200, n, replace=False))
    kept, s_ref, o_ref = _tracks(boxes, a_s, a_o, frame_ids, 200, "numpy", 1.0)
    kept2, steps = _track_steps(boxes, frame_ids, 1.0, 0.0)
    paths = _viterbi_many(np.ascontiguousarray(np.concatenate([a_s, a_o])[:, kept2]), steps)
    np.testing.assert_array_equal(kept, kept2)
    np.testing.assert_array_equal(paths, np.concatenate([s_ref, o_ref]))


def _crossing_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two persons running side by side, faster than their own width per sample (IoU 0 with themselves between
    samples), 150 px apart; α flips between them in runs of 3 frames. A static dog is region 2."""
    x = 20.0 + 60.0 * np.arange(N)
    boxes = np.zeros((N, M, 4))
    boxes[:, 0] = np.stack([x, np.full(N, 100.0), x + 50, np.full(N, 200.0)], -1)
    boxes[:, 1] = np.stack([x, np.full(N, 250.0), x + 50, np.full(N, 350.0)], -1)
    boxes[:, 2] = np.stack([x, np.full(N, 600.0), x + 50, np.full(N, 650.0)], -1)
    alpha = np.full((1, N, M), 0.001)
    on_first = (np.arange(N) // 3) % 2 == 0
    alpha[0, on_first, 0], alpha[0, ~on_first, 1] = 0.98, 0.98
    alpha[0, on_first, 1], alpha[0, ~on_first, 0] = 0.019, 0.019
    return boxes, alpha, np.arange(N) * 2


def test_proximity_keeps_a_fast_objects_track_where_iou_cannot():
    from vrgv.instances import candidate_pairs

    boxes, alpha, frame_ids = _crossing_scene()
    hops = candidate_pairs(boxes, alpha, alpha, frame_ids, 16.0, num_frames=2 * N)
    held = candidate_pairs(boxes, alpha, alpha, frame_ids, 16.0, num_frames=2 * N, proximity=4.0)
    assert any(len(set(c.subject.tolist())) > 1 for c in hops)  # without nearness the tracks follow α's flips
    assert held and all(len(set(c.subject.tolist())) == 1 and len(set(c.object.tolist())) == 1 for c in held)
    assert {(int(c.subject[0]), int(c.object[0])) for c in held} == {(0, 1), (1, 0)}
    # λ = 0 (vRGV*) stays greedy: nearness is scaled by λ too
    greedy = candidate_pairs(boxes, alpha, alpha, frame_ids, 16.0, num_frames=2 * N, proximity=4.0, iou_weight=0.0)
    ref = candidate_pairs(boxes, alpha, alpha, frame_ids, 16.0, num_frames=2 * N, iou_weight=0.0)
    assert [(c.subject.tolist(), c.object.tolist()) for c in greedy] == [(c.subject.tolist(), c.object.tolist())
                                                                          for c in ref]
