"""Core types: Relation, Vocabulary, Regions, Trajectory, Grounding (construction, validation messages, round trips)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vrgv.errors import AnnotationError, RegionsError, RelationError, VrgvError
from vrgv.grounding import Grounding, Trajectory
from vrgv.regions import Regions, sample_frame_ids
from vrgv.relation import Relation
from vrgv.vocab import BOS, EOS, PAD, QUERY_LEN, UNK, Vocabulary


# ------------------------------------------------------------------------------ Relation
def test_relation_parse_and_words():
    rel = Relation.parse("person-ride-bicycle")
    assert (rel.subject, rel.predicate, rel.object) == ("person", "ride", "bicycle")
    assert str(rel) == "person-ride-bicycle"
    multi = Relation.parse("  Domestic_Cat - Stand_Next_To - dog ")
    assert str(multi) == "domestic_cat-stand_next_to-dog"
    assert multi.predicate_words == ["stand", "next", "to"]
    assert multi.words == ["domestic_cat", "stand", "next", "to", "dog"]
    assert Relation.parse(multi) is multi
    assert Relation("Red Panda", "move  toward", "bus").subject == "red_panda"  # spaces become '_'
    assert Relation.from_dict(multi.to_dict()) == multi
    assert json.loads(json.dumps(multi.to_dict())) == {"subject": "domestic_cat", "predicate": "stand_next_to", "object": "dog"}
    assert Relation.parse("dog-chase-cat") == Relation("DOG", "chase", "cat")
    assert len({Relation.parse("dog-chase-cat"), Relation("dog", "chase", "cat")}) == 1  # hashable, value-equal


@pytest.mark.parametrize(
    "text, message",
    [
        ("person-ride", "has 2 part\\(s\\) separated by '-'; expected exactly 3"),
        ("a-b-c-d", "has 4 part"),
        ("", "relation is empty"),
        ("   ", "relation is empty"),
        ("person--bicycle", "predicate is empty"),
        ("person-ride-bicycle!", "characters other than ASCII"),
        ("persön-ride-bicycle", "characters other than ASCII"),
        (42, "must be a string"),
    ],
)
def test_relation_errors(text, message):
    with pytest.raises(RelationError, match=message):
        Relation.parse(text)


def test_relation_field_errors():
    with pytest.raises(RelationError, match="subject must be a string"):
        Relation(1, "ride", "bicycle")  # type: ignore[arg-type]
    with pytest.raises(RelationError, match="contains '-'"):
        Relation("per-son", "ride", "bicycle")
    with pytest.raises(ValueError):  # RelationError is also a ValueError
        Relation.parse("x")
    with pytest.raises(VrgvError):
        Relation.parse("x")


# ------------------------------------------------------------------------------ Vocabulary
def test_default_vocabulary():
    vocab = Vocabulary.default()
    assert len(vocab.objects) == 35 and len(vocab.predicates) == 132
    assert vocab.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert len(vocab) == len(vocab.tokens) == len(set(vocab.tokens))
    assert "domestic_cat" in vocab.tokens and "stand_next_to" not in vocab.tokens  # predicates are split into words
    assert {"stand", "next", "to"} <= set(vocab.tokens)


def test_encode_query_and_words():
    vocab = Vocabulary.default()
    q = vocab.encode_query(["person-ride-bicycle", "dog-stand_next_to-person"])
    assert q.shape == (2, QUERY_LEN) and q.dtype == np.int64
    t = vocab.token_id
    assert q[0].tolist() == [t("person"), t("ride"), 0, 0, t("bicycle")]
    assert q[1].tolist() == [t("dog"), t("stand"), t("next"), t("to"), t("person")]
    assert vocab.encode_query("person-ride-bicycle").tolist() == q[:1].tolist()
    words = vocab.encode_words("dog-stand_next_to-person")
    assert words[-1] == EOS and vocab.decode(words) == ["dog", "stand", "next", "to", "person"]
    assert vocab.token_id("no_such_word") == UNK
    assert vocab.canonical(" Person-RIDE-bicycle") == Relation("person", "ride", "bicycle")


def test_unknown_words_suggest_known_ones():
    vocab = Vocabulary.default()
    with pytest.raises(RelationError, match=r"unknown subject 'persn'; did you mean 'person'") as info:
        vocab.canonical("persn-ride-bicycle")
    assert "persn-ride-bicycle" in str(info.value)
    with pytest.raises(RelationError, match="unknown predicate 'rides'.*'ride'"):
        vocab.encode_query(["person-rides-bicycle"])
    with pytest.raises(RelationError, match="unknown object 'spaceship'"):
        Relation.parse("person-ride-spaceship", vocab)


def test_vocabulary_aliases_round_trip_and_limits():
    vocab = Vocabulary(objects=["Person", "bicycle"], predicates=["ride", "stand_next_to"], aliases={"bike": "bicycle"},
                       static_predicate_words=["stand"])
    assert vocab.objects == ["person", "bicycle"]
    assert str(vocab.canonical("person-ride-bike")) == "person-ride-bicycle"
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again.tokens == vocab.tokens and again.aliases == vocab.aliases
    with pytest.raises(RelationError, match="more than 3 words"):
        Vocabulary(objects=["a"], predicates=["one_two_three_four"])


def test_static_predicates_follow_appendix_c():
    vocab = Vocabulary.default()
    for pred in ("above", "stand_left", "sit_next_to", "lie_above", "stop_behind", "hold", "larger", "next_to"):
        assert vocab.is_static(pred), pred
    for pred in ("walk_left", "run_past", "move_toward", "chase", "fly_above", "jump_beneath", "follow"):
        assert not vocab.is_static(pred), pred


# ------------------------------------------------------------------------------ Regions
def make_regions(n=4, m=3, d=5, **kwargs) -> Regions:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (n, m, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (n, m, 2))], axis=-1)
    args = dict(boxes=boxes, features=rng.normal(size=(n, m, d)), frame_ids=sample_frame_ids(20, n), width=100,
                height=100, num_frames=20, video_id="vid", scores=rng.uniform(size=(n, m)), fps=29.97)
    args.update(kwargs)
    return Regions(**args)


def test_sample_frame_ids():
    assert sample_frame_ids(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_frame_ids(1, 3).tolist() == [0, 0, 0]
    short = sample_frame_ids(5)
    assert short.shape == (120,) and short.dtype == np.int64 and short.min() == 0 and short.max() == 4
    assert np.all(np.diff(short) >= 0)
    with pytest.raises(RegionsError, match="num_frames must be at least 1"):
        sample_frame_ids(0)
    with pytest.raises(RegionsError, match="at least 1"):
        sample_frame_ids(10, 0)


def test_regions_construction_and_normalized_boxes():
    r = make_regions()
    assert r.boxes.dtype == np.float32 and r.features.dtype == np.float32 and r.frame_ids.dtype == np.int64
    assert (r.num_samples, r.num_regions, r.feature_dim) == (4, 3, 5)
    nb = r.normalized_boxes()
    assert nb.shape == (4, 3, 5) and nb.dtype == np.float32
    b = r.boxes[1, 2]
    expected = [b[0] / 100, b[1] / 100, b[2] / 100, b[3] / 100, (b[2] - b[0]) * (b[3] - b[1]) / 10000]
    np.testing.assert_allclose(nb[1, 2], expected, rtol=1e-6)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(boxes=np.zeros((4, 3))), r"boxes must have shape \[N, M, 4\]"),
        (dict(features=np.zeros((4, 2, 5))), r"features must have shape \[N=4, M=3, D\]"),
        (dict(frame_ids=np.arange(3)), r"frame_ids must have shape \[N=4\]"),
        (dict(scores=np.zeros((4, 4))), r"scores must have shape \[N=4, M=3\]"),
        (dict(features=np.full((4, 3, 5), np.nan)), "features holds 60 NaN or infinite"),
        (dict(frame_ids=np.array([0, 5, 3, 9])), r"non-decreasing, but frame_ids\[1\]=5 > frame_ids\[2\]=3"),
        (dict(frame_ids=np.array([0, 5, 9, 20])), r"must lie in \[0, num_frames-1\] = \[0, 19\]"),
        (dict(frame_ids=np.array([0, 1.5, 2, 3])), "must hold integers"),
        (dict(boxes=np.tile([10.0, 10, 5, 20], (4, 3, 1))), "inverted"),
        (dict(boxes=np.tile([10.0, 10, 500, 20], (4, 3, 1))), "outside the 100x100 frame"),
        (dict(width=0), "width and height must be positive"),
        (dict(num_frames=0), "num_frames must be at least 1"),
        (dict(features=np.array([["a"]])), "must be numeric"),
    ],
)
def test_regions_validation_messages(change, message):
    with pytest.raises(RegionsError, match=message) as info:
        make_regions(**change)
    assert "'vid'" in str(info.value)  # names the video


def test_regions_save_load_round_trip(tmp_path):
    r = make_regions()
    path = r.save(tmp_path / "vid")  # the .npz suffix is added
    assert path.name == "vid.npz"
    again = Regions.load(path)
    for name in ("boxes", "features", "frame_ids", "scores"):
        np.testing.assert_array_equal(getattr(again, name), getattr(r, name))
    assert (again.width, again.height, again.num_frames, again.video_id, again.fps) == (100, 100, 20, "vid", 29.97)
    bare = make_regions(scores=None, fps=None)
    again = Regions.load(bare.save(tmp_path / "bare.npz"))
    assert again.scores is None and again.fps is None


def test_regions_load_errors(tmp_path):
    with pytest.raises(RegionsError, match="does not exist"):
        Regions.load(tmp_path / "missing.npz")
    with pytest.raises(RegionsError, match="is a directory"):
        Regions.load(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RegionsError, match="not a readable .npz"):
        Regions.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", boxes=np.zeros((1, 1, 4), np.float32))
    with pytest.raises(RegionsError, match=r"lacks array\(s\) \['features'"):
        Regions.load(tmp_path / "partial.npz")
    arrays = make_regions().to_arrays()
    np.savez(tmp_path / "pickled.npz", **{**arrays, "features": np.array([object()], dtype=object)})
    with pytest.raises(RegionsError, match="without pickled objects"):
        Regions.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "future.npz", **{**arrays, "format_version": np.array(99)})
    with pytest.raises(RegionsError, match="newer than this vrgv"):
        Regions.load(tmp_path / "future.npz")
    np.savez(tmp_path / "badshape.npz", **{**arrays, "frame_ids": np.arange(2)})
    with pytest.raises(RegionsError, match="badshape.npz.*frame_ids must have shape"):
        Regions.load(tmp_path / "badshape.npz")


# ------------------------------------------------------------------------------ Trajectory and Grounding
def test_trajectory_from_dict_and_back():
    t = Trajectory.from_dict({"5": [1, 2, 3, 4], "2": [0.123, 0, 10, 10]})
    assert t.frame_ids.tolist() == [2, 5] and len(t) == 2  # keys may be strings and unsorted
    assert t.to_dict() == {"2": [0.12, 0.0, 10.0, 10.0], "5": [1.0, 2.0, 3.0, 4.0]}
    assert t.box_at(5).tolist() == [1, 2, 3, 4] and t.box_at(3) is None
    assert Trajectory.from_dict(json.loads(json.dumps(t.to_dict()))).to_dict() == t.to_dict()
    assert len(Trajectory.from_dict({})) == 0


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Trajectory(np.array([1, 1]), np.zeros((2, 4))), "strictly increasing"),
        (lambda: Trajectory(np.array([1, 2]), np.zeros((3, 4))), "one box"),
        (lambda: Trajectory(np.array([1]), np.array([[0, 0, np.inf, 1]])), "NaN or infinite"),
        (lambda: Trajectory.from_dict({"a": [0, 0, 1, 1]}), "map frame ids to boxes"),
        (lambda: Trajectory.from_dict({"1": [0, 0, 1]}), "4 numbers"),
    ],
)
def test_trajectory_errors(build, message):
    with pytest.raises(AnnotationError, match=message):
        build()


def make_grounding(**kwargs) -> Grounding:
    args = dict(relation="person-ride-bicycle", subject={"3": [0, 0, 5, 5], "4": [1, 1, 6, 6]},
                object={"3": [2, 2, 9, 9], "4": [2, 2, 9, 9]}, start_fid=3, end_fid=4, score=0.75, fallback=True,
                video_id="v1", beta=[0.1, 0.9], beta_frame_ids=[3, 4], extra={"backend": "numpy"})
    args.update(kwargs)
    return Grounding(**args)


def test_grounding_dict_and_json_round_trip():
    g = make_grounding()
    assert isinstance(g.relation, Relation) and isinstance(g.subject, Trajectory) and g.segment == (3, 4)
    d = g.to_dict()
    assert d["sub"] == {"3": [0.0, 0.0, 5.0, 5.0], "4": [1.0, 1.0, 6.0, 6.0]}
    assert d["segment"] == [3, 4] and d["score"] == 0.75 and d["fallback"] is True
    assert d["relation"] == "person-ride-bicycle" and d["video_id"] == "v1" and "beta" not in d
    again = Grounding.from_json(g.to_json(include_attention=True))
    assert again.to_dict(include_attention=True) == g.to_dict(include_attention=True)
    assert again.beta.tolist() == [0.1, 0.9] and again.beta_frame_ids.tolist() == [3, 4]
    nan = make_grounding(score=float("nan"))
    assert nan.to_dict()["score"] is None and np.isnan(Grounding.from_dict(nan.to_dict()).score)
    # relation and video id may come from outside (the metric's prediction dicts lack them)
    bare = Grounding.from_dict({"sub": d["sub"], "obj": d["obj"]}, relation="dog-chase-cat", video_id="x")
    assert str(bare.relation) == "dog-chase-cat" and bare.segment == (3, 4) and bare.video_id == "x"


def test_grounding_errors():
    with pytest.raises(AnnotationError, match=r"segment \[5, 4\] ends before it starts"):
        make_grounding(start_fid=5, end_fid=4)
    with pytest.raises(AnnotationError, match="beta and beta_frame_ids must have the same length"):
        make_grounding(beta=[0.1, 0.2, 0.3])
    with pytest.raises(AnnotationError, match="lacks key 'obj'"):
        Grounding.from_dict({"relation": "a-b-c", "sub": {}})
    with pytest.raises(AnnotationError, match="has no 'relation'"):
        Grounding.from_dict({"sub": {}, "obj": {}})
    with pytest.raises(RelationError, match="expected exactly 3"):
        make_grounding(relation="person-ride")
    with pytest.raises(RelationError, match="expected exactly 3"):
        Grounding.from_dict({"relation": "a-b", "sub": {}, "obj": {}})
    for bad in ({"relation": "a-b-c", "sub": {}, "obj": {}, "segment": [1]},
                {"relation": "a-b-c", "sub": {}, "obj": {}, "segment": [0, 1], "score": "high"}, "not a dict"):
        with pytest.raises(AnnotationError, match="grounding dict is malformed"):
            Grounding.from_dict(bad)  # type: ignore[arg-type]
