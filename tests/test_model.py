"""VRGVModel units: shapes, masking, attention normalisation, variants, checkpoint round trip, word vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vrgv.errors import ConfigError  # noqa: E402
from vrgv.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from vrgv.training.config import VARIANTS, ModelConfig, TrainConfig  # noqa: E402
from vrgv.training.model import VRGVModel, beta_per_frame  # noqa: E402
from vrgv.training.word_vectors import WordVectorTable, default_table, load_text_vectors, vocabulary_matrix  # noqa: E402
from vrgv.vocab import Vocabulary  # noqa: E402

N, L, M, D = 24, 6, 7, 16


def small_config(variant: str = "full", **kw) -> ModelConfig:
    vocab = Vocabulary.default()
    return ModelConfig(vocab_size=len(vocab), feature_dim=D, word_dim=256, region_dim=32, attention_dim=16,
                       hidden_dim=24, num_frames=N, clip_len=L, num_regions=M, variant=variant, **kw)


def make_model(variant: str = "full", seed: int = 0, **kw) -> VRGVModel:
    torch.manual_seed(seed)
    vocab = Vocabulary.default()
    model = VRGVModel(small_config(variant, **kw), vocabulary_matrix(vocab, default_table()))
    return model.eval()


def video(seed: int = 0, v: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(v, N, M, 2, generator=g) * 0.5
    wh = torch.rand(v, N, M, 2, generator=g) * 0.5
    boxes = torch.cat([xy, xy + wh, (wh[..., :1] * wh[..., 1:])], dim=-1)
    return boxes, torch.randn(v, N, M, D, generator=g)


QUERIES = ["person-ride-bicycle", "dog-stand_next_to-car", "domestic_cat-sit_behind-sofa"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_attend_shapes_and_normalisation(variant):
    model = make_model(variant)
    boxes, feats = video()
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0])
        a_s, a_o, b1, b2 = model.attend(emb, q)
    H = N // L
    assert emb.shape == (N, M, 32)
    assert a_s.shape == a_o.shape == (3, N, M) and b1.shape == (3, N) and b2.shape == (3, H)
    torch.testing.assert_close(a_s.sum(-1), torch.ones(3, N))
    torch.testing.assert_close(a_o.sum(-1), torch.ones(3, N))
    torch.testing.assert_close(b1.sum(-1), torch.ones(3))
    if variant == "no_clip":
        assert torch.all(b2 == 0)
    else:
        torch.testing.assert_close(b2.sum(-1), torch.ones(3))
    if variant == "no_temporal":
        torch.testing.assert_close(b1, torch.full((3, N), 1.0 / N))
    beta = beta_per_frame(b1.numpy(), b2.numpy(), L)
    assert beta.shape == (3, N)
    np.testing.assert_allclose(beta[:, :L] - b1.numpy()[:, :L], np.repeat(b2.numpy()[:, :1], L, axis=1), atol=1e-6)


def test_attend_is_per_query_independent_of_batch():
    """Each query's attention depends only on that query: batching R queries changes nothing."""
    model = make_model()
    boxes, feats = video(1)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0])
        batch = model.attend(emb, q)
        single = model.attend(emb, q[1:2])
    for full, one in zip(batch, single):
        torch.testing.assert_close(full[1:2], one, atol=1e-5, rtol=1e-5)


def test_predicate_padding_is_masked():
    """The predicate vector is the mean over non-pad words: padding ids never change the result."""
    model = make_model()
    q = torch.from_numpy(Vocabulary.default().encode_query(["person-ride-bicycle"]))
    _, g_p, _ = model._words(q)
    vec = model.word_table(q[:, 1])
    torch.testing.assert_close(g_p, torch.relu(model.word(vec)))
    q2 = torch.from_numpy(Vocabulary.default().encode_query(["person-stand_next_to-bicycle"]))
    _, g_p2, _ = model._words(q2)
    mean = model.word_table(q2[:, 1:4]).mean(1)
    torch.testing.assert_close(g_p2, torch.relu(model.word(mean)))


def test_predicate_changes_full_but_not_cooccurrence_attention():
    boxes, feats = video(2)
    vocab = Vocabulary.default()
    q = torch.from_numpy(vocab.encode_query(["person-ride-bicycle", "person-walk_behind-bicycle"]))
    for variant, differs in (("full", True), ("cooccurrence", False)):
        model = make_model(variant)
        with torch.no_grad():
            _, _, b1, b2 = model.attend(model.embed_regions(boxes[0], feats[0]), q)
        assert (not torch.allclose(b2[0], b2[1])) == differs, variant


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_forward_and_tiny_training_lowers_loss(variant):
    vocab = Vocabulary.default()
    model = make_model(variant, seed=1).train()
    boxes, feats = video(3, v=2)
    rels = ["person-ride-bicycle", "dog-chase-domestic_cat", "person-stand_next_to-car", "dog-chase-domestic_cat"]
    idx = torch.tensor([0, 0, 1, 1])
    q = torch.from_numpy(vocab.encode_query(rels))
    words = [vocab.encode_words(r) for r in rels]
    if variant == "cooccurrence":
        words = [[w[0], w[-2], w[-1]] for w in words]
    t = torch.zeros(len(words), max(map(len, words)), dtype=torch.int64)
    for i, w in enumerate(words):
        t[i, : len(w)] = torch.tensor(w)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(boxes, feats, idx, q, t)
        assert out["logits"].shape == (4, t.shape[1], len(vocab))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.word_table.weight.grad is None  # frozen word vectors


def test_checkpoint_round_trip(tmp_path):
    vocab = Vocabulary.default()
    model = make_model("full", seed=3)
    folder = save_checkpoint(model, vocab, tmp_path / "ckpt", {"seed": 3})
    loaded, vocab2, meta = load_checkpoint(folder)
    assert meta == {"seed": 3} and vocab2.tokens == vocab.tokens and loaded.config == model.config
    boxes, feats = video(4)
    q = torch.from_numpy(vocab.encode_query(QUERIES))
    with torch.no_grad():
        a = model.attend(model.embed_regions(boxes[0], feats[0]), q)
        b = loaded.attend(loaded.embed_regions(boxes[0], feats[0]), q)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not any(p.name.endswith((".pt", ".pth", ".pkl")) for p in folder.iterdir())


def test_checkpoint_rejects_mismatched_config(tmp_path):
    vocab = Vocabulary.default()
    folder = save_checkpoint(make_model(), vocab, tmp_path / "c")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["hidden_dim"] = 40
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="do not match"):
        load_checkpoint(folder)
    cfg["variant"] = "bogus"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="variant"):
        load_checkpoint(folder)
    with pytest.raises(ConfigError, match="not a folder"):
        load_checkpoint(tmp_path / "missing")


def test_config_validation():
    with pytest.raises(ConfigError, match="multiple"):
        ModelConfig(vocab_size=10, feature_dim=4, num_frames=100, clip_len=12)
    with pytest.raises(ConfigError, match="positive"):
        ModelConfig(vocab_size=0, feature_dim=4)
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({"vocab_size": 10, "feature_dim": 4, "bogus": 1})
    with pytest.raises(ConfigError, match="unknown ModelConfig"):
        TrainConfig(model={"nope": 1})
    assert ModelConfig.from_dict(small_config().to_dict()) == small_config()


def test_default_word_vectors_cover_vocabulary_and_separate_words():
    vocab = Vocabulary.default()
    table = default_table()
    assert table.dim == 256
    for token in vocab.tokens[4:]:
        assert table.get(token) is not None, token
    assert table.aliases["bike"] == "bicycle" and table.get("bike") is not None

    def cos(a: str, b: str) -> float:
        x, y = table.get(a), table.get(b)
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert cos("dog", "cat") < 0.99 and cos("above", "below") < 0.99  # distinct words, distinct vectors
    assert cos("bike", "bicycle") > cos("bike", "zebra")


def test_text_word_vectors(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("2 3\ndog 1 0 0\ncat 0 1 0\n")
    table = WordVectorTable.load(path)
    assert table.words == ["dog", "cat"] and table.dim == 3
    np.testing.assert_array_equal(load_text_vectors(path, {"cat"}).vectors, [[0, 1, 0]])
    (tmp_path / "bad.txt").write_text("dog 1 x\n")
    with pytest.raises(ConfigError, match="non-numeric"):
        WordVectorTable.load(tmp_path / "bad.txt")


def _batch(variant: str = "full"):
    vocab = Vocabulary.default()
    boxes, feats = video(5, v=2)
    rels = ["person-ride-bicycle", "dog-chase-domestic_cat", "person-stand_next_to-car"]
    q = torch.from_numpy(vocab.encode_query(rels))
    if variant == "cooccurrence":
        q[:, 1:-1] = 0
    words = [vocab.encode_words(r) for r in rels]
    t = torch.zeros(len(words), max(map(len, words)), dtype=torch.int64)
    for i, w in enumerate(words):
        t[i, : len(w)] = torch.tensor(w)
    return boxes, feats, torch.tensor([0, 1, 1]), q, t


@pytest.mark.parametrize("variant", VARIANTS)
def test_auxiliary_losses_add_to_the_reconstruction_and_reach_the_attention(variant):
    model = make_model(variant, seed=2, word_aux_weight=0.5, temporal_aux_weight=2.0, clip_pooling=True).train()
    out = model(*_batch(variant))
    aux = 0.5 * out["word_aux_loss"]
    if model.config.uses_predicate:
        aux = aux + 2.0 * out["temporal_aux_loss"]
        assert out["temporal_aux_loss"].item() > 0
    else:
        assert "temporal_aux_loss" not in out and not hasattr(model, "predicate_aux")
    assert torch.isclose(out["loss"], out["reconstruction_loss"] + aux)
    out["loss"].backward()
    assert model.sau_out_s.weight.grad.abs().sum() > 0 and model.sau_out_o.weight.grad.abs().sum() > 0
    if model.config.clip_attention:  # clip pooling gives β2 a direct gradient
        assert model.tau_clip.inp.weight.grad.abs().sum() > 0


def test_switches_off_by_default_and_inference_outputs_unchanged():
    base = make_model(seed=4)
    assert not hasattr(base, "word_aux") and not hasattr(base, "predicate_aux")
    switched = make_model(seed=4, word_aux_weight=1.0, temporal_aux_weight=1.0, clip_pooling=True)
    switched.load_state_dict(base.state_dict(), strict=False)
    boxes, feats = video(6)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        a = base.attend(base.embed_regions(boxes[0], feats[0]), q)
        b = switched.attend(switched.embed_regions(boxes[0], feats[0]), q)
    for x, y in zip(a, b):  # the switches only change training; the exported attention is the same function
        torch.testing.assert_close(x, y)


def test_clip_pooling_mixes_both_levels_and_sums_to_one():
    model = make_model(seed=3, clip_pooling=True)
    with torch.no_grad():
        out = model._encode(model.embed_regions(*video(7)), torch.from_numpy(Vocabulary.default().encode_query(QUERIES)))
    expected = 0.5 * (out["beta1"] + out["beta2"].repeat_interleave(L, dim=1) / L)
    torch.testing.assert_close(out["pool"], expected)
    torch.testing.assert_close(out["pool"].sum(1), torch.ones(len(QUERIES)))


@pytest.mark.parametrize("field", ["word_aux_weight", "temporal_aux_weight"])
def test_auxiliary_weights_are_validated(field):
    with pytest.raises(ConfigError, match=field):
        small_config(**{field: -1.0})


def test_word_norm_gives_unit_vectors_and_keeps_padding_zero():
    model = make_model(seed=5, word_norm=True)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    vec = model._word_vectors(q)
    norms = vec.norm(dim=-1)
    torch.testing.assert_close(norms[q != 0], torch.ones(int((q != 0).sum())))
    assert torch.all(norms[q == 0] == 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_normalisation_switches_keep_attention_distributions(variant):
    model = make_model(variant, seed=6, word_norm=True, region_norm=True, node_norm=True, frame_skip=True)
    boxes, feats = video(8)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        a_s, a_o, b1, b2 = model.attend(model.embed_regions(boxes[0], feats[0]), q)
    assert a_s.shape == (len(QUERIES), N, M) and b2.shape == (len(QUERIES), N // L)
    torch.testing.assert_close(a_s.sum(-1), torch.ones(len(QUERIES), N))
    torch.testing.assert_close(b1.sum(-1), torch.ones(len(QUERIES)))


def test_dot_temporal_scoring_builds_normalised_attention_and_is_validated():
    model = make_model(seed=9, temporal_scoring="dot")
    from vrgv.training.model import DotAttention

    assert isinstance(model.tau_clip, DotAttention) and isinstance(model.tau_frame, DotAttention)
    with torch.no_grad():
        _, _, b1, b2 = model.attend(model.embed_regions(*(t[0] for t in video(9))),
                                    torch.from_numpy(Vocabulary.default().encode_query(QUERIES)))
    torch.testing.assert_close(b2.sum(-1), torch.ones(len(QUERIES)))
    with pytest.raises(ConfigError, match="temporal_scoring"):
        small_config(temporal_scoring="cosine")


def test_pair_geometry_carries_the_boxes_through_the_region_embedding():
    model = make_model(seed=10, pair_geometry=True, node_norm=True)
    boxes, feats = video(10)
    emb = model.embed_regions(boxes[0], feats[0])
    assert emb.shape == (N, M, model.config.region_dim + 5)
    torch.testing.assert_close(emb[..., -5:], boxes[0])
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        moved = boxes[0].clone()
        moved[..., [0, 2]] += 0.1  # the same regions shifted right: the temporal attention sees the geometry
        b_a = model.attend(emb, q)[2]
        b_b = model.attend(model.embed_regions(moved, feats[0]), q)[2]
    assert not torch.allclose(b_a, b_b)


# ------------------------------------------------------------------------------- dot spatial scoring, MIL head
def test_dot_spatial_scoring_equals_the_projected_bilinear_form():
    """spatial_scoring="dot" moves the query into region space; α must equal softmax((W f + b)·(W' g)/sqrt(A))."""
    model = make_model(seed=8, spatial_scoring="dot")
    assert not hasattr(model, "sau_out_s")
    boxes, feats = video(8)
    vocab = Vocabulary.default()
    q = torch.from_numpy(vocab.encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0])
        a_s, a_o, _, _ = model.attend(emb, q)
        g_s, _, g_o = model._words(q)
        proj_s, proj_o = model.sau_region(emb).chunk(2, dim=-1)  # [N,M,A], bias included
        scale = model.config.attention_dim ** -0.5
        want_s = torch.softmax(torch.einsum("nma,ra->rnm", proj_s, model.sau_word_s(g_s)) * scale, dim=-1)
        want_o = torch.softmax(torch.einsum("nma,ra->rnm", proj_o, model.sau_word_o(g_o)) * scale, dim=-1)
    torch.testing.assert_close(a_s, want_s, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a_o, want_o, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("switches", [{}, {"node_norm": True, "frame_skip": True, "context_norm": True},
                                      {"temporal_scoring": "dot", "clip_pooling": True}])
def test_time_major_inference_equals_the_training_encoder(variant, switches):
    """``attend`` (the exported, time-major inference path) computes exactly what training's ``_encode`` does."""
    model = make_model(variant, seed=12, spatial_scoring="dot", **switches)
    boxes, feats = video(12)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0])
        got = model.attend(emb, q)
        ref = model._encode(emb.unsqueeze(0), q)
    for name, tensor in zip(("alpha_s", "alpha_o", "beta1", "beta2"), got):
        assert tensor.shape == ref[name].shape, name
        torch.testing.assert_close(tensor, ref[name], atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_attend_never_returns_subnormal_attention():
    """Scores spread far apart (real detections do this) must not push α into subnormal floats, whose arithmetic
    is ~100x slower on x86; the floor at best - SCORE_RANGE changes α by < 1e-26."""
    from vrgv.training.model import SCORE_RANGE

    model = make_model(seed=5, spatial_scoring="dot")
    boxes, feats = video(5)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes[0], feats[0]) * 5000.0  # scores now differ by hundreds within a frame
        alpha_s, alpha_o, _, _ = model.attend(emb, q)
        plain = model._encode(emb.unsqueeze(0), q)["alpha_s"]
    tiny = torch.finfo(torch.float32).tiny
    assert bool(((plain > 0) & (plain < tiny)).any()), "the test input must produce subnormals without the floor"
    for alpha in (alpha_s, alpha_o):
        assert not bool(((alpha > 0) & (alpha < tiny)).any())
        assert float(alpha.min()) >= float(np.exp(-SCORE_RANGE)) / alpha.shape[-1] * 0.99
    torch.testing.assert_close(alpha_s, plain, atol=1e-5, rtol=1e-3)  # scores x5000 magnify rounding differences


def test_dot_spatial_scoring_training_batch_matches_per_video_inference():
    """Several videos in one training batch: each relation's α is computed against its own video."""
    model = make_model(seed=9, spatial_scoring="dot")
    boxes, feats = video(9, v=2)
    q = torch.from_numpy(Vocabulary.default().encode_query(QUERIES))
    with torch.no_grad():
        emb = model.embed_regions(boxes, feats)
        batch = model._encode(emb, q, torch.tensor([1, 0, 1]))
        for r, v in enumerate([1, 0, 1]):
            single = model._encode(emb[v:v + 1], q[r:r + 1])
            torch.testing.assert_close(batch["alpha_s"][r], single["alpha_s"][0])
            torch.testing.assert_close(batch["beta1"][r], single["beta1"][0])


def test_predicate_targets_come_from_video_labels_of_the_same_pair():
    from vrgv.training.data import Sample, predicate_targets, video_labels

    vocab = Vocabulary.default()
    samples = [Sample("v1", "person-ride-bicycle"), Sample("v1", "person-stand_next_to-bicycle"),
               Sample("v1", "dog-chase-person"), Sample("v2", "person-ride-bicycle")]
    multi, own = predicate_targets(samples, vocab, video_labels(samples))
    idx = {p: i for i, p in enumerate(vocab.predicates)}
    assert own.tolist() == [idx["ride"], idx["stand_next_to"], idx["chase"], idx["ride"]]
    assert set(np.flatnonzero(multi[0])) == {idx["ride"], idx["stand_next_to"]}  # same (person, bicycle) pair
    assert set(np.flatnonzero(multi[2])) == {idx["chase"]}  # other pair: its own predicate only
    assert set(np.flatnonzero(multi[3])) == {idx["ride"]}  # other video: its own labels only


@pytest.mark.parametrize("frame_input,target", [("node", "pool"), ("geometry", "pool"), ("geometry", "distill")])
def test_temporal_mil_loss_trains_the_frame_classifier_and_reaches_the_attention(frame_input, target):
    from vrgv.training.data import Sample, predicate_targets, video_labels

    vocab = Vocabulary.default()
    model = make_model(seed=10, temporal_mil_weight=1.0, num_predicates=len(vocab.predicates), clip_pooling=True,
                       temporal_mil_input=frame_input, temporal_mil_target=target)
    model.train()
    boxes, feats, vi, q, t = _batch("full")
    rels = ["person-ride-bicycle", "dog-chase-domestic_cat", "person-stand_next_to-car"]  # _batch's relations
    samples = [Sample(f"v{int(v)}", r) for v, r in zip(vi.tolist(), rels)]
    multi, own = predicate_targets(samples, vocab, video_labels(samples))
    out = model(boxes, feats, vi, q, t, torch.from_numpy(multi), torch.from_numpy(own))
    assert out["temporal_mil_loss"].item() > 0
    assert torch.isclose(out["loss"], out["reconstruction_loss"] + out["temporal_mil_loss"])
    out["loss"].backward()
    assert all(p.grad.abs().sum() > 0 for p in model.predicate_mil.parameters())
    assert model.tau_frame.inp.weight.grad.abs().sum() > 0 and model.tau_clip.inp.weight.grad.abs().sum() > 0
    if frame_input == "geometry":  # the bag loss also trains where the spatial attention looks
        assert model.sau_word_s.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="predicate_labels"):
        model(boxes, feats, vi, q, t)


def test_temporal_mil_needs_the_predicate_count():
    with pytest.raises(ConfigError, match="num_predicates"):
        small_config(temporal_mil_weight=1.0)
    with pytest.raises(ConfigError, match="temporal_mil_input"):
        small_config(temporal_mil_input="pixels")
    with pytest.raises(ConfigError, match="temporal_mil_target"):
        small_config(temporal_mil_target="sum")


def test_pair_geometry_features_are_offsets_ratios_and_velocities():
    from vrgv.training.model import GEOMETRY_DIM, pair_geometry_features

    t = torch.arange(8, dtype=torch.float32)[None, :, None]  # subject moves right by 0.01 per frame
    box_s = torch.cat([0.1 + 0.01 * t, 0.2 + 0 * t, 0.3 + 0.01 * t, 0.6 + 0 * t, 0.08 + 0 * t], dim=-1)
    box_o = torch.tensor([0.5, 0.1, 0.7, 0.5, 0.08]).expand(1, 8, 5)
    g = pair_geometry_features(box_s, box_o, step=2)
    assert g.shape == (1, 8, GEOMETRY_DIM)
    torch.testing.assert_close(g[0, :, 10:15], box_s[0] - box_o[0])
    torch.testing.assert_close(g[0, 2:6, 15], torch.full((4,), 0.4))  # (x(t+2) - x(t-2)) * 10 inside the clip
    torch.testing.assert_close(g[0, :, 20:25], torch.zeros(8, 5))  # the object stands still
    torch.testing.assert_close(g[0, :, 25], torch.zeros(8), atol=2e-3, rtol=0)  # equal areas
    torch.testing.assert_close(g[0, :, 26], torch.full((8,), float(np.log(0.4 / 0.4))), atol=1e-3, rtol=0)


def test_clip_entropy_penalty_adds_to_the_loss_and_reaches_the_clip_attention():
    model = make_model(seed=11, clip_entropy_weight=0.5, clip_pooling=True).train()
    out = model(*_batch("full"))
    beta2 = out["beta2"]
    entropy = -(beta2 * beta2.log()).sum(-1).mean()
    torch.testing.assert_close(out["clip_entropy"], entropy)
    assert torch.isclose(out["loss"], out["reconstruction_loss"] + 0.5 * out["clip_entropy"])
    out["clip_entropy"].backward()
    assert model.tau_clip.inp.weight.grad.abs().sum() > 0
    assert "clip_entropy" not in make_model("no_clip", seed=11, clip_entropy_weight=0.5).train()(*_batch("no_clip"))


def test_object_targets_come_from_video_level_labels_only():
    from vrgv.training.data import Sample, object_targets, video_labels

    vocab = Vocabulary.default()
    samples = [Sample("a", "person-ride-bicycle"), Sample("a", "dog-chase-person"), Sample("b", "car-faster-bicycle")]
    multi, pair = object_targets(samples, ["a", "b"], vocab, video_labels(samples))
    idx = {o: i for i, o in enumerate(vocab.objects)}
    assert set(np.flatnonzero(multi[0])) == {idx["person"], idx["bicycle"], idx["dog"]}
    assert set(np.flatnonzero(multi[1])) == {idx["car"], idx["bicycle"]}
    assert pair.tolist() == [[idx["person"], idx["bicycle"]], [idx["dog"], idx["person"]], [idx["car"], idx["bicycle"]]]


@pytest.mark.parametrize("variant", ["full", "cooccurrence"])
def test_region_mil_loss_trains_the_region_classifier_and_reaches_the_spatial_attention(variant):
    from vrgv.training.data import Sample, object_targets, video_labels

    vocab = Vocabulary.default()
    model = make_model(variant, seed=12, region_mil_weight=1.0, num_objects=len(vocab.objects)).train()
    boxes, feats, vi, q, t = _batch(variant)
    rels = ["person-ride-bicycle", "dog-chase-domestic_cat", "person-stand_next_to-car"]
    samples = [Sample(f"v{int(v)}", r) for v, r in zip(vi.tolist(), rels)]
    objects, pair = object_targets(samples, ["v0", "v1"], vocab, video_labels(samples))
    out = model(boxes, feats, vi, q, t, None, None, torch.from_numpy(objects), torch.from_numpy(pair))
    assert out["region_mil_loss"].item() > 0
    assert torch.isclose(out["loss"], out["reconstruction_loss"] + out["region_mil_loss"])
    out["loss"].backward()
    assert model.region_cls.weight.grad.abs().sum() > 0
    assert model.sau_word_s.weight.grad.abs().sum() > 0 and model.sau_word_o.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="object_labels"):
        model(boxes, feats, vi, q, t)
    with pytest.raises(ConfigError, match="num_objects"):
        small_config(region_mil_weight=1.0)
