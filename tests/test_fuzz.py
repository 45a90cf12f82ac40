"""Short hypothesis runs over the input readers: only documented ``vrgv.errors`` exceptions may escape.

Five targets: the relation parser, ``Regions`` construction, ``Regions.load`` of mutated ``.npz`` bytes, the
annotation reader on mutated JSON, and the linking inputs. Each ``check_*`` function is one case: it
either gets a valid object (and checks its invariants) or the target's documented error; anything else
(another exception, a crash) fails. ``benchmarks/fuzz_long.py`` runs the same strategies 10,000+ times.
"""
from __future__ import annotations

import atexit
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vrgv.annotations import VideoAnnotation
from vrgv.errors import AnnotationError, LinkingError, RegionsError, RelationError
from vrgv.regions import BOX_TOLERANCE, Regions
from vrgv.vocab import Vocabulary

VOCAB = Vocabulary.default()
SHORT = settings(max_examples=int(os.environ.get("VRGV_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
                 suppress_health_check=list(HealthCheck), derandomize=True)
_TMP = Path(tempfile.mkdtemp(prefix="vrgv-fuzz-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


# relations ---------------------------------------------------------------------------------------
_WORDS = VOCAB.objects + [w for p in VOCAB.predicates for w in p.split("_")] + ["", " ", "x", "Ä", "ß", "—", "_", "-"]
relation_texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_WORDS), min_size=0, max_size=5).flatmap(
        lambda words: st.tuples(st.just(words), st.lists(st.sampled_from(["-", "_", " ", "- ", "--", "\t", "ー"]),
                                                          min_size=len(words), max_size=len(words)),
                                st.sampled_from([str.lower, str.upper, str.title, str.swapcase]))
    ).map(lambda t: t[2]("".join(w + s for w, s in zip(t[0], t[1])))),
    st.tuples(st.sampled_from(VOCAB.objects), st.sampled_from(VOCAB.predicates), st.sampled_from(VOCAB.objects),
              st.sampled_from(["", " ", "  \n"])).map(lambda t: f"{t[3]}{t[0].upper()}-{t[1]}-{t[2]}{t[3]}"),
)


def check_relation(text: str) -> None:
    try:
        rel = VOCAB.canonical(text)
    except RelationError as exc:
        assert str(exc), "empty error message"
        return
    s = str(rel)
    assert s.isascii() and s.count("-") == 2 and s == s.lower()
    assert VOCAB.canonical(s) == rel  # canonical form is a fixed point
    ids = VOCAB.encode_query([rel])
    assert ids.shape == (1, 5) and ids.min() >= 0 and ids.max() < len(VOCAB)


# Regions construction ----------------------------------------------------------------------------
_dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_, np.float16])
_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def regions_kwargs(draw) -> dict:
    n, m, d = draw(st.integers(0, 4)), draw(st.integers(0, 3)), draw(st.integers(0, 3))
    shape = draw(st.sampled_from([(n, m, 4), (n, m), (n, m, 3), (n, m, 4, 1)]))
    width = draw(st.one_of(st.integers(-1, 64), st.sampled_from([float("inf"), 2**70, "64"])))
    height = draw(st.integers(-1, 64))
    num_frames = draw(st.one_of(st.integers(-2, 40), st.sampled_from([1.5, "7", None, float("nan")])))
    sane = draw(st.booleans())
    if sane:  # mostly valid boxes, so the later checks are reached too
        xy = draw(hnp.arrays(np.float32, (n, m, 2), elements=st.floats(0, 30, width=32)))
        wh = draw(hnp.arrays(np.float32, (n, m, 2), elements=st.floats(0, 30, width=32)))
        boxes = np.concatenate([xy, xy + wh], -1) if shape == (n, m, 4) else np.zeros(shape, np.float32)
    else:
        boxes = draw(hnp.arrays(draw(_dtypes), shape, elements=None))
    features = draw(hnp.arrays(draw(_dtypes), draw(st.sampled_from([(n, m, d), (n, m), (n, max(m - 1, 0), d)])),
                               elements=None))
    fid_len = draw(st.sampled_from([n, max(n - 1, 0), n + 1]))
    frame_ids = np.sort(draw(hnp.arrays(np.int64, fid_len, elements=st.integers(-2, 45))))
    if draw(st.booleans()):
        frame_ids = frame_ids[::-1]
    if draw(st.booleans()):
        frame_ids = frame_ids.astype(draw(st.sampled_from([np.float64, np.float32, object, str])))
    scores = draw(st.one_of(st.none(), hnp.arrays(np.float32, draw(st.sampled_from([(n, m), (n,)])), elements=_floats)))
    return dict(boxes=boxes, features=features, frame_ids=frame_ids, width=width, height=height,
                num_frames=num_frames, scores=scores, video_id=draw(st.text(max_size=8)),
                fps=draw(st.one_of(st.none(), st.floats(0, 60))))


def check_regions_construction(kwargs: dict) -> None:
    try:
        r = Regions(**kwargs)
    except RegionsError as exc:
        assert str(exc).startswith("regions of video"), str(exc)
        return
    assert r.boxes.dtype == np.float32 and r.frame_ids.dtype == np.int64 and np.isfinite(r.boxes).all()
    assert 0 <= r.frame_ids.min() and r.frame_ids.max() < r.num_frames and np.all(np.diff(r.frame_ids) >= 0)
    norm = r.normalized_boxes()
    assert norm.shape == (*r.boxes.shape[:2], 5) and np.isfinite(norm).all()
    tol = BOX_TOLERANCE / min(r.width, r.height)
    assert norm[..., :4].min() >= -tol - 1e-6 and norm[..., :4].max() <= 1 + tol + 1e-6


# Regions.load of mutated npz files ---------------------------------------------------------------
def _base_npz() -> bytes:
    r = Regions(np.tile(np.array([1, 2, 5, 6], np.float32), (3, 2, 1)), np.ones((3, 2, 2), np.float32), [0, 1, 4],
                8, 8, 5, video_id="v", scores=np.ones((3, 2), np.float32), fps=10.0)
    buf = io.BytesIO()
    np.savez(buf, **r.to_arrays())
    return buf.getvalue()


BASE_NPZ = _base_npz()
npz_mutations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, len(BASE_NPZ) - 1), st.integers(0, 255)),
        st.tuples(st.just("cut"), st.integers(0, len(BASE_NPZ)), st.just(0)),
        st.tuples(st.just("insert"), st.integers(0, len(BASE_NPZ)), st.integers(0, 255)),
        st.tuples(st.just("digit"), st.integers(0, len(BASE_NPZ) - 1), st.integers(0, 9)),
    ),
    min_size=1, max_size=6,
)


_FIELDS = ["boxes", "features", "frame_ids", "width", "height", "num_frames", "video_id", "scores", "fps",
           "format_version"]
_odd_values = st.one_of(
    st.sampled_from([np.array(np.inf), np.array(np.nan), np.array("x"), np.array(-1), np.array(2**62), np.array(1e30),
                     np.array([1, 2]), np.zeros((0,)), np.array(True), np.zeros((2, 2), "V2"), np.array(3 + 1j)]),
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
               hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)),
)
npz_field_edits = st.dictionaries(st.sampled_from(_FIELDS), st.one_of(st.none(), _odd_values), min_size=1, max_size=3)


def edit_npz(edits: dict) -> bytes:
    """The base file with fields replaced by odd arrays (None deletes the field)."""
    with np.load(io.BytesIO(BASE_NPZ)) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in edits.items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


npz_cases = st.one_of(npz_mutations.map(lambda ops: ("bytes", ops)), npz_field_edits.map(lambda e: ("fields", e)))


def npz_case_bytes(case: tuple) -> bytes:
    kind, payload = case
    return mutate(BASE_NPZ, payload) if kind == "bytes" else edit_npz(payload)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, val in ops:
        pos = min(pos, len(buf))
        if op == "set" and pos < len(buf):
            buf[pos] = val
        elif op == "cut":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = bytes([val])
        elif op == "digit" and pos < len(buf) and chr(buf[pos]).isdigit():  # numbers in the .npy headers
            buf[pos] = ord(str(val))
    return bytes(buf)


def check_regions_load(data: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".npz", dir=_TMP)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    try:
        r = Regions.load(name)
    except RegionsError as exc:
        assert name in str(exc), str(exc)
        return
    finally:
        os.unlink(name)
    assert r.num_samples >= 1 and np.isfinite(r.boxes).all() and r.frame_ids.max() < r.num_frames


# annotation reader on mutated JSON ---------------------------------------------------------------
BASE_ANNOTATION = {
    "version": "VERSION 1.0", "video_id": "v", "frame_count": 4, "fps": 10, "width": 32, "height": 24,
    "subject/objects": [{"tid": 0, "category": "person"}, {"tid": 1, "category": "dog"}],
    "trajectories": [[{"tid": 0, "bbox": {"xmin": 1, "ymin": 2, "xmax": 9, "ymax": 9}},
                      {"tid": 1, "bbox": {"xmin": 3, "ymin": 3, "xmax": 7, "ymax": 8}}],
                     [{"tid": 0, "bbox": {"xmin": 2, "ymin": 2, "xmax": 10, "ymax": 9}}], [], []],
    "relation_instances": [{"subject_tid": 1, "object_tid": 0, "predicate": "chase", "begin_fid": 0, "end_fid": 2}],
}
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def annotation_documents(draw) -> str:
    """The base annotation with 1-4 nodes replaced or deleted, serialised; sometimes also byte-mangled."""
    doc = json.loads(json.dumps(BASE_ANNOTATION))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_values)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.one_of(json_values, st.sampled_from([10**400, -1, 0, 2**63, "3", [], {}])))
    text = json.dumps(doc, allow_nan=True) if not _has_bigint(doc) else json.dumps(doc).replace(str(10**400), "1e400")
    if draw(st.integers(0, 4)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=3)) + text[cut + 1:]
    return text


def _has_bigint(node) -> bool:
    return any(isinstance(v, int) and abs(v) >= 10**300 for v in _leaves(node))


def _leaves(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    else:
        yield node


def check_annotation(text: str) -> None:
    fd, name = tempfile.mkstemp(suffix=".json", dir=_TMP)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write(text)
    try:
        ann = VideoAnnotation.load(name)
    except AnnotationError as exc:
        assert name in str(exc), str(exc)
        return
    finally:
        os.unlink(name)
    ann.ground_truth()
    ann.relation_strings()
    again = VideoAnnotation.from_dict(json.loads(json.dumps(ann.to_dict())))
    assert again.relations == ann.relations and again.categories == ann.categories


# linking inputs ----------------------------------------------------------------------------------
@st.composite
def linking_inputs(draw) -> dict:
    n, m = draw(st.integers(1, 7)), draw(st.integers(1, 4))
    valid = draw(st.integers(0, 3)) > 0
    num_frames = draw(st.integers(1, 60)) if valid else draw(st.one_of(st.integers(-2, 60), st.just(3.0), st.none()))
    elems = st.floats(0, 1, width=32) if valid else _floats
    xy = draw(hnp.arrays(np.float64, (n, m, 2), elements=st.floats(0, 100)))
    wh = draw(hnp.arrays(np.float64, (n, m, 2), elements=st.floats(0, 50)))
    boxes = np.concatenate([xy, xy + wh], -1)
    if not valid and draw(st.booleans()):
        boxes = draw(hnp.arrays(np.float64, draw(st.sampled_from([(n, m, 4), (n, m), (n + 1, m, 4)])), elements=_floats))
    fids = np.sort(draw(hnp.arrays(np.int64, n, elements=st.integers(0, max(int(num_frames or 1) - 1, 0)))))
    if not valid and draw(st.booleans()):
        fids = draw(hnp.arrays(np.int64, draw(st.sampled_from([n, n + 1])), elements=st.integers(-3, 70)))
    shape_a = (n, m) if valid or draw(st.booleans()) else (n, m + 1)
    return dict(boxes=boxes, alpha_s=draw(hnp.arrays(np.float64, shape_a, elements=elems)),
                alpha_o=draw(hnp.arrays(np.float64, (n, m), elements=elems)),
                beta=draw(hnp.arrays(np.float64, n if valid else draw(st.sampled_from([n, n + 1])), elements=elems)),
                frame_ids=fids, num_frames=num_frames,
                sigma=draw(st.floats(0, 1)) if valid else draw(st.one_of(st.floats(), st.just("0.1"))),
                iou_weight=draw(st.sampled_from([0.0, 1.0, 2.5])), strict=draw(st.booleans()))


def check_linking(kwargs: dict, backend: str = "auto") -> None:
    from vrgv.linking import link

    try:
        res = link(**kwargs, backend=backend)
    except LinkingError as exc:
        assert str(exc).startswith("linking "), str(exc)
        return
    if res is None:
        assert kwargs["strict"]
        return
    nf = int(kwargs["num_frames"])
    assert 0 <= res.start_fid <= res.end_fid < nf
    length = res.end_fid - res.start_fid + 1
    assert res.sub_boxes.shape == res.obj_boxes.shape == (length, 4)
    assert np.isfinite(res.sub_boxes).all() and math.isfinite(res.score)


# the short runs ----------------------------------------------------------------------------------
@SHORT
@given(relation_texts)
def test_fuzz_relation_parser(text):
    check_relation(text)


@SHORT
@given(regions_kwargs())
def test_fuzz_regions_construction(kwargs):
    check_regions_construction(kwargs)


@SHORT
@given(npz_cases)
def test_fuzz_regions_load_of_mutated_npz(case):
    check_regions_load(npz_case_bytes(case))


def test_unmutated_npz_and_annotation_are_valid():
    """The seeds the mutators start from load cleanly (so the fuzzers mutate valid files)."""
    check_regions_load(BASE_NPZ)
    check_annotation(json.dumps(BASE_ANNOTATION))
    assert VideoAnnotation.from_dict(BASE_ANNOTATION).relation_strings() == ["dog-chase-person"]


def test_regressions_found_by_fuzzing():
    """Inputs that once escaped as OverflowError, RecursionError or a hang, or gave a message without the file."""
    def doc(**changes) -> str:
        d = json.loads(json.dumps(BASE_ANNOTATION))
        d.update(changes)
        return json.dumps(d)

    huge_box = json.loads(json.dumps(BASE_ANNOTATION))
    huge_box["trajectories"][0][0]["bbox"]["xmin"] = 10**400
    inverted = json.loads(json.dumps(BASE_ANNOTATION))
    inverted["relation_instances"][0]["begin_fid"] = 3
    for text, message in ((doc(frame_count=1).replace('"frame_count": 1', '"frame_count": 1e400'), "format"),
                          (json.dumps(huge_box), "format"), ("[" * 100_000, "not valid JSON"),
                          (doc(frame_count=2**70), "frame_count .* is outside"),
                          (doc(relation_instances=[{**BASE_ANNOTATION["relation_instances"][0], "end_fid": 10**12}]),
                           r"spans frames \[0, 1000000000000\) outside the video"),
                          (json.dumps(inverted), "empty span")):
        with pytest.raises(AnnotationError, match=message) as info:
            check_annotation_raising(text)
        assert "fuzz-case" in str(info.value)
    for edits in ({"width": np.array(np.inf)}, {"num_frames": np.array(np.inf)}, {"format_version": np.array("x")}):
        check_regions_load(edit_npz(edits))  # a RegionsError naming the file, nothing else
        with pytest.raises(RegionsError):
            _load_bytes(edit_npz(edits))


def check_annotation_raising(text: str) -> VideoAnnotation:
    path = _TMP / "fuzz-case.json"
    path.write_text(text, encoding="utf-8")
    return VideoAnnotation.load(path)


def _load_bytes(data: bytes) -> Regions:
    path = _TMP / "fuzz-case.npz"
    path.write_bytes(data)
    return Regions.load(path)


@SHORT
@given(annotation_documents())
def test_fuzz_annotation_reader(text):
    check_annotation(text)


@SHORT
@given(linking_inputs())
def test_fuzz_linking_inputs(kwargs):
    check_linking(kwargs)


@pytest.mark.parametrize("backend", ["numpy", "numba", "cpp"])
def test_fuzz_linking_backends(backend):
    from vrgv.linking import available_backends

    if backend not in available_backends():
        pytest.skip(f"linking backend {backend} not available here")

    @settings(SHORT, max_examples=max(10, SHORT.max_examples // 3))
    @given(linking_inputs())
    def run(kwargs):
        check_linking(kwargs, backend)

    run()
