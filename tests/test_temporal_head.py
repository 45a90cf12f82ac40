"""The temporal head (``ModelConfig.temporal_head``): its curve at inference, its fit from weak labels, export."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_model import D, L, M, N, QUERIES, make_model, small_config, video  # noqa: E402
from vrgv.errors import ConfigError  # noqa: E402
from vrgv.training.config import ModelConfig  # noqa: E402
from vrgv.training.data import Sample, VideoRegions  # noqa: E402
from vrgv.training.model import pair_geometry_features  # noqa: E402
from vrgv.training.temporal_head import (  # noqa: E402
    HEAD_SIGMA, fit_temporal_head, geometry_bags, predicate_token_table, with_temporal_head,
)
from vrgv.vocab import Vocabulary  # noqa: E402

VOCAB = Vocabulary.default()
P = len(VOCAB.predicates)


def head_model(seed: int = 0, **kw):
    model = make_model(seed=seed, temporal_head=True, num_predicates=P, **{"spatial_scoring": "dot", **kw})
    with torch.no_grad():
        model.temporal_head.predicate_tokens.copy_(torch.from_numpy(predicate_token_table(VOCAB)))
        for p in model.temporal_head.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(seed))
    return model


def expected_curve(model, emb: torch.Tensor, alpha_s: torch.Tensor, alpha_o: torch.Tensor, relations: list[str]):
    """The head's curve written out with NumPy: all-predicate scores, the query's column, box filter, / max."""
    box = emb[..., model.config.region_dim:]
    b_s = torch.einsum("rnm,nmk->rnk", alpha_s, box)
    b_o = torch.einsum("rnm,nmk->rnk", alpha_o, box)
    scores = model.temporal_head.scores(pair_geometry_features(b_s, b_o)).numpy()  # [K,R,N,P]
    assert scores.shape[0] == model.config.temporal_head_members
    k = model.config.temporal_head_smooth
    out = []
    for r, rel in enumerate(relations):
        logits = scores[:, r, :, VOCAB.predicates.index(VOCAB.canonical(rel).predicate)]  # [K,N]
        fire = (1.0 / (1.0 + np.exp(-logits))).mean(0)
        smooth = np.convolve(fire, np.ones(k), mode="same") / np.convolve(np.ones_like(fire), np.ones(k), mode="same")
        out.append(smooth / smooth.max())
    return np.stack(out)


@pytest.mark.parametrize("spatial", ["dot", "additive"])
def test_head_curve_is_the_query_predicates_smoothed_firing_divided_by_its_peak(spatial):
    model = head_model(seed=3, **({} if spatial == "dot" else {"spatial_scoring": "additive"}))
    boxes, feats = video(3)
    q = torch.from_numpy(VOCAB.encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0])
        a_s, a_o, b1, b2 = model.attend(emb, q)
        want = expected_curve(model, emb, a_s, a_o, QUERIES)
    assert emb.shape == (N, M, model.config.region_dim + 5)
    assert b1.shape == (len(QUERIES), N) and b2.shape == (len(QUERIES), N // L)
    assert torch.all(b2 == 0)
    np.testing.assert_allclose(b1.numpy(), want, rtol=1e-5, atol=1e-6)
    assert np.allclose(b1.numpy().max(1), 1.0) and b1.min() >= 0
    assert not np.allclose(want[0], want[1])  # different predicates, different curves


def test_head_keeps_the_spatial_attention_and_an_unknown_predicate_gives_a_flat_curve():
    plain = make_model(seed=4, spatial_scoring="dot", num_predicates=P)
    model = with_temporal_head(plain)
    boxes, feats = video(4)
    q = torch.from_numpy(VOCAB.encode_query(QUERIES))
    with torch.no_grad():
        ref = plain.attend(plain.embed_regions(boxes[0], feats[0]), q)
        got = model.attend(model.embed_regions(boxes[0], feats[0]), q)
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    # a fresh head has an all-zero predicate table: no query matches a row, so the curve is flat (link everything)
    torch.testing.assert_close(got[2], torch.ones_like(got[2]))


def test_config_validation_and_variants_without_a_predicate():
    with pytest.raises(ConfigError, match="num_predicates"):
        small_config(temporal_head=True)
    with pytest.raises(ConfigError, match="odd"):
        small_config(temporal_head=True, num_predicates=P, temporal_head_smooth=4)
    with pytest.raises(ConfigError, match="temporal_head_members"):
        small_config(temporal_head=True, num_predicates=P, temporal_head_members=0)
    with pytest.raises(ConfigError, match="temporal_head_topk"):
        small_config(temporal_head=True, num_predicates=P, temporal_head_topk=0.0)
    for variant in ("cooccurrence", "no_temporal"):
        with pytest.raises(ConfigError, match="temporal_head"):
            small_config(variant, temporal_head=True, num_predicates=P)
    assert ModelConfig.from_dict(small_config(temporal_head=True, num_predicates=P).to_dict()).temporal_head


def _store(seed: int = 0, videos: int = 12) -> tuple[list[Sample], dict[str, VideoRegions]]:
    """Toy videos where region 0 is a person, region 1 a dog; in the first half of each positive video the person
    stands left of the dog, in the second half far right. Label: person-left-dog for the positive videos."""
    rng = np.random.default_rng(seed)
    samples, store = [], {}
    for v in range(videos):
        boxes = rng.uniform(0.0, 0.3, (N, M, 5)).astype(np.float32)
        boxes[..., 2:4] = boxes[..., :2] + 0.1
        left = np.arange(N) < N // 2 if v % 2 == 0 else np.zeros(N, bool)
        person_x = np.where(left, 0.2, 0.8)
        boxes[:, 0, :4] = np.stack([person_x, np.full(N, 0.5), person_x + 0.1, np.full(N, 0.7)], -1)
        boxes[:, 1, :4] = [0.35, 0.5, 0.45, 0.7]
        boxes[..., 4] = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
        feats = rng.normal(size=(N, M, D)).astype(np.float32)
        feats[:, 0, 0] += 8.0  # person appearance
        feats[:, 1, 1] += 8.0  # dog appearance
        vid = f"toy{v}"
        store[vid] = VideoRegions(boxes, feats.astype(np.float16), np.arange(N, dtype=np.int64) * 2, 640, 480, 2 * N)
        samples.append(Sample(vid, "person-left-dog" if v % 2 == 0 else "person-right-dog"))
    return samples, store


def test_bags_come_from_the_labels_only_and_the_fit_lowers_the_bag_loss():
    samples, store = _store()
    model = with_temporal_head(make_model(seed=5, spatial_scoring="dot", num_predicates=P))
    geometry, labels = geometry_bags(model, VOCAB, samples, store)
    assert geometry.shape == (len(samples), N, 27) and labels.shape == (len(samples), P)
    assert labels.sum().item() == len(samples)  # one (subject, object) pair per toy video, one predicate each
    assert labels[0, VOCAB.predicates.index("left")] == 1 and labels[1, VOCAB.predicates.index("right")] == 1
    neg_geometry, neg_labels = geometry_bags(model, VOCAB, samples, store, negative_pairs=True)
    assert neg_geometry.shape[0] == 2 * len(samples) and neg_labels.sum().item() == len(samples)  # dog-person: none
    record = fit_temporal_head(model, VOCAB, samples, store, steps=150)
    assert record["loss_last"] < 0.5 * record["loss_first"]
    assert record["bags"] == len(samples) and record["predicates_fitted"] == 2 and record["sigma"] == HEAD_SIGMA
    # predicates no bag names keep a zero output row: the flat curve
    head = model.temporal_head
    unseen = [i for i, p in enumerate(VOCAB.predicates) if p not in ("left", "right")]
    assert torch.all(head.w_out[:, unseen] == 0) and torch.all(head.b_out[:, unseen] == 0)
    assert record["members"] == head.members == 5
    assert not torch.allclose(head.w1[0], head.w1[1])  # each member from its own seed
    # the fitted head tells the two halves of a positive toy video apart: left-of in the first half only
    vr = store["toy0"]
    q = torch.from_numpy(VOCAB.encode_query(["person-left-dog"]))
    with torch.no_grad():
        curve = model.attend(model.embed_regions(torch.from_numpy(vr.boxes_norm),
                                                 torch.from_numpy(vr.features.astype(np.float32))), q)[2][0].numpy()
    assert curve[: N // 2 - 4].mean() > curve[N // 2 + 4:].mean() + 0.3


def test_fitted_head_checkpoint_round_trip_gives_identical_curves(tmp_path):
    from vrgv.training.checkpoint import load_checkpoint, save_checkpoint

    samples, store = _store(1, videos=6)
    model = with_temporal_head(make_model(seed=6, spatial_scoring="dot", num_predicates=P))
    fit_temporal_head(model, VOCAB, samples, store, steps=20)
    save_checkpoint(model, VOCAB, tmp_path / "ck", {"sigma": HEAD_SIGMA})
    loaded, _, meta = load_checkpoint(tmp_path / "ck")
    vr = store["toy0"]
    q = torch.from_numpy(VOCAB.encode_query(["person-left-dog", "person-right-dog"]))
    with torch.no_grad():
        outs = [m.attend(m.embed_regions(torch.from_numpy(vr.boxes_norm), torch.from_numpy(vr.features.astype(np.float32))), q)
                for m in (model, loaded)]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert meta["sigma"] == HEAD_SIGMA


def test_head_exports_to_onnx_with_parity(tmp_path):
    pytest.importorskip("onnxruntime")
    from _export_helpers import small_model

    from vrgv.export import export_bundle

    from vrgv.bundle import Bundle

    model, vocab, meta = small_model(seed=7, temporal_head=True, num_predicates=P, spatial_scoring="dot")
    with torch.no_grad():
        model.temporal_head.predicate_tokens.copy_(torch.from_numpy(predicate_token_table(vocab)))
        for p in model.temporal_head.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(7))
    result = export_bundle((model, vocab, {**meta, "sigma": HEAD_SIGMA}), tmp_path / "b.vrgv", parity_sizes=(1, 7))
    bundle = Bundle.load(tmp_path / "b.vrgv")
    assert bundle.manifest.sigma == HEAD_SIGMA
    assert bundle.manifest.embed_dim == model.config.region_dim + 5
    assert result.parity["fp32"]["max_abs_error"] <= 1e-4  # export raises above atol; the head is in the graph
    from vrgv.grounder import spec_from_bundle

    spec = spec_from_bundle(bundle)  # the runtime knows β is the head's curve (plots label it so)
    assert spec.temporal_head and spec.sigma == HEAD_SIGMA and spec.beta_label == "temporal head curve"
    assert spec.instance_proximity == model.config.instance_proximity  # instance choice settings travel too


def test_with_temporal_head_resizes_the_ensemble_and_keeps_the_encoder():
    model = head_model(seed=8)
    smaller = with_temporal_head(model, members=2)
    assert smaller.temporal_head.members == 2 and smaller.config.temporal_head_members == 2
    assert with_temporal_head(model) is model
    for key, value in model.state_dict().items():
        if not key.startswith("temporal_head."):
            torch.testing.assert_close(smaller.state_dict()[key], value)


def test_cli_names_a_missing_checkpoint_without_a_traceback(tmp_path, capsys):
    from vrgv.training.temporal_head import main

    rc = main(["--checkpoint", str(tmp_path / "nope"), "--annotations", str(tmp_path), "--regions", str(tmp_path),
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and "Traceback" not in err


def test_building_the_head_leaves_the_encoder_init_and_the_random_stream_unchanged():
    """Adding the head to a config must not change how the rest of the model trains (it draws its own RNG)."""
    from vrgv.training.model import VRGVModel

    states = []
    for head in (False, True):
        torch.manual_seed(11)
        model = VRGVModel(small_config(temporal_head=head, num_predicates=P))
        states.append((model.state_dict(), torch.rand(4)))
    (plain, after_plain), (with_head, after_head) = states
    assert torch.equal(after_plain, after_head)
    assert set(with_head) - set(plain) and all(k.startswith("temporal_head.") for k in set(with_head) - set(plain))
    for key, value in plain.items():
        assert torch.equal(with_head[key], value), key


# --- relative features and same-category queries (session 11) ---------------------------------------------------
SAME = ["person-chase-person", "person-ride-bicycle", "dog-follow-dog"]


def test_relative_features_extend_the_geometry_and_read_left_of_and_approach():
    from vrgv.training.model import GEOMETRY_DIM, RELATIVE_DIM, pair_relative_features

    t = torch.arange(8, dtype=torch.float32) / 8
    subject = torch.stack([0.1 + 0.2 * t, torch.full_like(t, 0.5), 0.2 + 0.2 * t, torch.full_like(t, 0.7)], -1)
    obj = torch.tensor([0.6, 0.5, 0.7, 0.7]).expand(8, 4)
    area = lambda b: ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None]  # noqa: E731
    box_s, box_o = torch.cat([subject, area(subject)], -1)[None], torch.cat([obj, area(obj)], -1)[None]
    g = pair_relative_features(box_s, box_o, step=2)
    assert g.shape == (1, 8, RELATIVE_DIM)
    torch.testing.assert_close(g[..., :GEOMETRY_DIM], pair_geometry_features(box_s, box_o, step=2))
    rel = g[0, :, GEOMETRY_DIM:]
    assert torch.all(rel[:, 0] < 0)  # centre offset in the pair's size unit: the subject is left of the object
    assert torch.all(rel[3:5, 25] > 0.9)  # heading: the subject moves toward the object
    assert torch.all(rel[3:5, 27] > 0)  # closing speed
    # the subject's speed is the norm of its centre velocity, the same differences as the geometry's box velocities
    vx = (g[0, :, 15] + g[0, :, 17]) / 2  # velocity of x1 and x2 -> of the centre
    vy = (g[0, :, 16] + g[0, :, 18]) / 2
    torch.testing.assert_close(rel[:, 18], torch.sqrt(vx * vx + vy * vy) + 1e-4)
    timed = pair_relative_features(box_s, box_o, step=2, velocity_scale=torch.tensor([20.0]))
    torch.testing.assert_close(timed[0, :, GEOMETRY_DIM + 18], 2.0 * (rel[:, 18] - 1e-4) + 1e-4)  # per-video scale
    degenerate = torch.zeros(2, 6, 5)  # zero-size, motionless boxes: finite numbers, not NaN or inf
    assert torch.isfinite(pair_relative_features(degenerate, degenerate)).all()


def test_distinct_same_category_moves_the_object_off_the_subjects_box_only_for_same_category_queries():
    plain = with_temporal_head(make_model(seed=9, spatial_scoring="dot", num_predicates=P))
    model = with_temporal_head(plain, distinct_same_category=True)
    boxes, feats = video(9)
    q = torch.from_numpy(VOCAB.encode_query(SAME))
    with torch.no_grad():
        ref = plain.attend(plain.embed_regions(boxes[0], feats[0]), q)
        got = model.attend(model.embed_regions(boxes[0], feats[0]), q)
    for i in (1,):  # person-ride-bicycle: untouched
        for a, b in zip(got, ref):
            torch.testing.assert_close(a[i], b[i])
    for i in (0, 2):  # same category: the subject keeps its attention, the object never peaks on its box
        subject, obj = got[0][i], got[1][i]
        # a fresh head scores both orders alike (flat curve), so no swap: the subject is the plain model's
        torch.testing.assert_close(subject, ref[0][i])
        assert torch.all(subject.argmax(-1) != obj.argmax(-1))
        torch.testing.assert_close(obj.sum(-1), torch.ones(N))


def test_same_category_roles_follow_the_heads_higher_score():
    model = head_model(seed=10, distinct_same_category=True, temporal_head_features="relative")
    boxes, feats = video(10)
    q = torch.from_numpy(VOCAB.encode_query(SAME))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0])
        a_s, a_o, b1, _ = model.attend(emb, q)
        # the same attention without the ordering step: subject as scored, object moved off the subject's box
        plain = with_temporal_head(model, distinct_same_category=False)
        plain.load_state_dict(model.state_dict())
        p_s, p_o = plain.attend(emb, q)[:2]
        box = emb[..., model.config.region_dim:]
        from vrgv.training.model import distinct_attention
        swapped = []
        for i in (0, 2):
            moved = distinct_attention(p_o[i:i + 1], p_s[i:i + 1])
            pool = lambda a: torch.einsum("rnm,nmk->rnk", a, box)  # noqa: E731
            k = max(1, round(model.config.temporal_head_topk * N))
            pred = q[i:i + 1, 1:4]
            fwd = model.temporal_head.firing_and_score(model.head_features(pool(p_s[i:i + 1]), pool(moved)), pred, 9, k)
            rev = model.temporal_head.firing_and_score(model.head_features(pool(moved), pool(p_s[i:i + 1])), pred, 9, k)
            swap = bool(rev[1] > fwd[1])
            swapped.append(swap)
            want_s, want_o, want_b = (moved, p_s[i:i + 1], rev[0]) if swap else (p_s[i:i + 1], moved, fwd[0])
            torch.testing.assert_close(a_s[i:i + 1], want_s)
            torch.testing.assert_close(a_o[i:i + 1], want_o)
            torch.testing.assert_close(b1[i:i + 1], want_b)
    assert model.config.temporal_head_features == "relative"
    assert len(swapped) == 2


def test_relative_head_with_distinct_roles_exports_to_onnx_with_parity(tmp_path):
    pytest.importorskip("onnxruntime")
    from _export_helpers import small_model

    from vrgv.export import export_bundle

    model, vocab, meta = small_model(seed=11, temporal_head=True, num_predicates=P, spatial_scoring="dot",
                                     temporal_head_features="relative", distinct_same_category=True)
    with torch.no_grad():
        model.temporal_head.predicate_tokens.copy_(torch.from_numpy(predicate_token_table(vocab)))
        for p in model.temporal_head.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(11))
    result = export_bundle((model, vocab, {**meta, "sigma": HEAD_SIGMA}), tmp_path / "b.vrgv", parity_sizes=(1, 7))
    assert result.parity["fp32"]["max_abs_error"] <= 1e-4


def test_head_feature_choice_is_validated_and_round_trips():
    with pytest.raises(ConfigError, match="temporal_head_features"):
        small_config(temporal_head=True, num_predicates=P, temporal_head_features="pixels")
    c = small_config(temporal_head=True, num_predicates=P, temporal_head_features="relative", distinct_same_category=True)
    back = ModelConfig.from_dict(c.to_dict())
    assert back.temporal_head_features == "relative" and back.distinct_same_category


def test_fit_records_the_linking_threshold_and_rejects_one_outside_the_curve():
    samples, store = _store(2, videos=4)
    model = with_temporal_head(make_model(seed=12, spatial_scoring="dot", num_predicates=P))
    with pytest.raises(ConfigError, match="sigma"):
        fit_temporal_head(model, VOCAB, samples, store, steps=5, sigma=1.5)
    assert fit_temporal_head(model, VOCAB, samples, store, steps=5, sigma=0.3)["sigma"] == 0.3
    assert 0.0 < HEAD_SIGMA < 1.0


def test_numpy_head_of_the_runtime_matches_the_torch_head():
    from vrgv.instances import HeadWeights
    from vrgv.instances import pair_relative_features as np_relative

    from vrgv.training.model import pair_relative_features

    model = head_model(seed=13, temporal_head_features="relative")
    boxes, _ = video(13)
    tracks = boxes[0].permute(1, 0, 2)  # [M,N,5]: each region index as a track
    b_s, b_o = tracks[:3], tracks.flip(0)[:3]
    np.testing.assert_allclose(np_relative(b_s.double().numpy(), b_o.double().numpy()),
                               pair_relative_features(b_s, b_o).numpy(), rtol=1e-4, atol=2e-4)
    head = HeadWeights.from_state({k: v.numpy() for k, v in model.state_dict().items()}, model.config.to_dict())
    q = torch.from_numpy(VOCAB.encode_query(QUERIES))[:, 1:4]
    k = max(1, round(model.config.temporal_head_topk * N))
    with torch.no_grad():
        curve, score = model.temporal_head.firing_and_score(model.head_features(b_s, b_o), q, 9, k)
    np_curve, np_score = head.firing_and_score(b_s.double().numpy(), b_o.double().numpy(), q.numpy())
    np.testing.assert_allclose(np_curve, curve.numpy(), atol=1e-4)
    np.testing.assert_allclose(np_score, score.numpy(), atol=1e-3)


def test_instance_choice_needs_the_head_and_sane_settings():
    with pytest.raises(ConfigError, match="instance_choice"):
        small_config(instance_choice=True)
    with pytest.raises(ConfigError, match="instance_temperature"):
        small_config(temporal_head=True, num_predicates=P, instance_choice=True, instance_temperature=0.5)
    with pytest.raises(ConfigError, match="instance_proximity"):
        small_config(temporal_head=True, num_predicates=P, instance_choice=True, instance_proximity=-1.0)
    model = with_temporal_head(make_model(seed=14, spatial_scoring="dot", num_predicates=P), instance_choice=True)
    assert model.config.instance_choice and model.config.temporal_head and model.config.instance_proximity == 0.0
    tuned = with_temporal_head(model, topk=0.3, instance_proximity=4.0)  # the head tool's --topk, --instance-proximity
    assert tuned.config.temporal_head_topk == 0.3 and tuned.config.instance_proximity == 4.0
    encoder = [k for k in model.state_dict() if not k.startswith("temporal_head.")]
    assert all(torch.equal(tuned.state_dict()[k], model.state_dict()[k]) for k in encoder)


def test_evaluate_with_instance_choice_grounds_every_relation(tmp_path):
    from vrgv.training.evaluate import ground_split

    samples, store = _store(3, videos=4)
    model = with_temporal_head(make_model(seed=15, spatial_scoring="dot", num_predicates=P), instance_choice=True)
    fit_temporal_head(model, VOCAB, samples, store, steps=20)

    class Ann:  # the two fields ground_split reads
        def __init__(self, vid: str, rel: str) -> None:
            self.video_id, self._rel = vid, rel

        def relation_strings(self) -> list[str]:
            return [self._rel, "person-left-person"]

    preds = ground_split(model, VOCAB, [Ann(s.video_id, s.relation) for s in samples], store, sigma=HEAD_SIGMA)
    assert set(preds) == {s.video_id for s in samples}
    assert all(len(v) == 2 for v in preds.values())


def test_track_bags_hold_the_candidate_pairs_on_their_hard_boxes():
    from vrgv.instances import candidate_pairs
    from vrgv.training.temporal_head import track_bags

    samples, store = _store(4, videos=4)
    model = with_temporal_head(make_model(seed=16, spatial_scoring="dot", num_predicates=P), instance_choice=True)
    feats, mask, labels = track_bags(model, VOCAB, samples, store, margin=50.0)
    _, ref_labels = geometry_bags(model, VOCAB, samples, store)
    assert feats.shape == (len(samples), 4, N, 27) and mask.shape == (len(samples), 4)
    assert torch.equal(labels, ref_labels) and mask[:, 0].all()
    # slot by slot, the pairs of vrgv.instances.candidate_pairs featurised on their hard (one-hot) boxes
    vr = store[samples[0].video_id]
    q = torch.from_numpy(VOCAB.encode_query([samples[0].relation]))
    with torch.no_grad():
        bn = torch.from_numpy(vr.boxes_norm)
        a_s, a_o = model.attend(model.embed_regions(bn, torch.from_numpy(vr.features.astype(np.float32))), q)[:2]
    cands = candidate_pairs(vr.pixel_boxes(), a_s.numpy(), a_o.numpy(), vr.frame_ids,
                            model.config.instance_temperature, num_frames=vr.num_frames)
    assert int(mask[0].sum()) == len(cands) >= 1
    rows = torch.arange(N)
    for slot, cand in enumerate(cands):
        want = model.head_features(bn[rows, cand.subject][None], bn[rows, cand.object][None])[0]
        assert torch.allclose(feats[0, slot], want)
    # a margin of 0 keeps only each bag's best-evidence pair (ties aside)
    _, tight, _ = track_bags(model, VOCAB, samples, store, margin=0.0)
    assert torch.all(tight.sum(1) >= 1) and tight.sum() <= mask.sum()


def test_fit_on_tracks_lowers_the_loss_and_scores_a_bag_by_its_best_pair():
    from vrgv.training.temporal_head import _fit_member

    samples, store = _store(5)
    model = with_temporal_head(make_model(seed=17, spatial_scoring="dot", num_predicates=P), instance_choice=True)
    record = fit_temporal_head(model, VOCAB, samples, store, steps=150, fit_on="tracks", track_margin=2.0)
    assert record["fit_on"] == "tracks" and record["track_margin"] == 2.0 and record["pairs"] >= record["bags"]
    # an untrained encoder's α is nearly flat, so its tracks carry less of the toy's signal than α-pooled boxes
    assert record["loss_last"] < 0.8 * record["loss_first"]
    with pytest.raises(ConfigError, match="fit_on"):
        fit_temporal_head(model, VOCAB, samples, store, fit_on="frames")
    # one bag with two pairs: a positive bag is satisfied once either pair fires, so the fit can leave the other low
    head = with_temporal_head(make_model(seed=18, spatial_scoring="dot", num_predicates=P)).temporal_head
    x = torch.zeros(1, 2, N, head.w1.shape[1])
    x[0, 0, :, 0] = 3.0  # pair 0 carries a signal, pair 1 is blank
    labels = torch.zeros(1, P)
    labels[0, 0] = 1.0
    losses = _fit_member(head, 0, x, labels, torch.tensor([0]), 24, 100, 1e-2, 0, torch.tensor([[True, True]]))
    assert losses[-1] < 0.1 * losses[0]
    with pytest.raises(ConfigError, match="negative_pairs"):
        fit_temporal_head(model, VOCAB, samples, store, fit_on="tracks", negative_pairs=True)
