"""Tests of ``vrgv batch``: inputs, crash-safe records, the local engine (workers, timeouts, crashes, cache,
SIGKILL resume), the Ray engine, and the acceptance run on the default bundle (skipped until it exists)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from test_grounder import D, L, M, N, RELS, FakeBackend, fake_extractor, make_video
from vrgv import Vocabulary
from vrgv.batch import BatchItem, RecordWriter, parse_inputs, read_records, records_to_predictions, run_batch
from vrgv.batch.local import LocalEngine, WorkerSpec
from vrgv.batch.records import Record
from vrgv.errors import AnnotationError, ConfigError
from vrgv.grounder import Grounder, ModelSpec

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SPEC = WorkerSpec("test_batch:make_fake_grounder", {})


# fakes used in worker processes (imported there by name) -----------------------------------------
def special_extractor(frames, frame_ids, *, video_id, **kw):
    """Fake extractor with failure modes chosen by the video id: ``hang``, ``crash``, ``slow``."""
    if "hang" in video_id:
        time.sleep(3600)
    if "crash" in video_id:
        os._exit(13)
    if os.environ.get("VRGV_TEST_SLOW"):
        time.sleep(float(os.environ["VRGV_TEST_SLOW"]))
    return fake_extractor(frames, frame_ids, video_id=video_id, **kw)


def make_fake_grounder(fail_extract: bool = False) -> Grounder:
    """The batch tests' model: fake encoder + fake extractor on real decoding (vrgv.video)."""
    def broken(*a, **k):
        raise RuntimeError("extractor must not run (regions should come from the cache)")

    return Grounder(FakeBackend(), Vocabulary.default(), ModelSpec(N, M, D, L, sigma=0.2),
                    extractor=broken if fail_extract else special_extractor, name="fake")


def write_mp4(path: Path, frames_rgb: np.ndarray, fps: float = 10.0) -> Path:
    h, w = frames_rgb.shape[1:3]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames_rgb:
        wr.write(np.ascontiguousarray(f[..., ::-1]))
    wr.release()
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    for i in range(4):
        write_mp4(root / f"vid{i}.mp4", make_video(100 + i, frames=30 + 3 * i))
    return root


def by_key(records: list[dict]) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for r in records:
        key = (r["video_id"], r["relation"])
        assert key not in out, f"duplicate record {key}"
        out[key] = r
    return out


# inputs -------------------------------------------------------------------------------------------
def test_parse_folder_glob_and_manifests(archive, tmp_path):
    items = parse_inputs(archive, relations=RELS[:2])
    assert [i.video_id for i in items] == ["vid0", "vid1", "vid2", "vid3"]
    assert all(i.relations == RELS[:2] for i in items)
    assert [i.video_id for i in parse_inputs(str(archive / "vid[12].mp4"), relations=RELS)] == ["vid1", "vid2"]
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(f"video,relations\n{archive}/vid0.mp4,{RELS[0]};{RELS[1]}\n{archive}/vid1.mp4,\n")
    items = parse_inputs(csv_path, relations=[RELS[2]])
    assert [(i.video_id, i.relations) for i in items] == [("vid0", RELS[:2]), ("vid1", [RELS[2]])]
    jl = tmp_path / "sub" / "m.jsonl"
    jl.parent.mkdir()
    (jl.parent / "x.mp4").write_bytes((archive / "vid0.mp4").read_bytes())
    jl.write_text(json.dumps({"video": "x.mp4", "relations": RELS, "video_id": "custom"}) + "\n\n")
    (item,) = parse_inputs(jl)
    assert item.video == str(jl.parent / "x.mp4") and item.video_id == "custom" and item.relations == RELS
    rf = tmp_path / "rels.txt"
    rf.write_text(f"# relations\n{RELS[0]}\n\n{RELS[1]}  # second\n")
    assert parse_inputs(archive / "vid0.mp4", relations_file=rf)[0].relations == RELS[:2]


def test_parse_annotations_and_errors(archive, tmp_path):
    from vrgv.annotations import VideoAnnotation

    ann = VideoAnnotation.from_dict({
        "video_id": "vid1", "frame_count": 33, "width": 64, "height": 48, "fps": 10,
        "subject/objects": [{"tid": 0, "category": "person"}, {"tid": 1, "category": "dog"}],
        "trajectories": [[{"tid": 0, "bbox": {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}}]],
        "relation_instances": [{"subject_tid": 1, "object_tid": 0, "predicate": "chase", "begin_fid": 0, "end_fid": 1}],
    })
    ann.save(tmp_path / "ann" / "vid1.json")
    items = parse_inputs(archive, annotations=tmp_path / "ann")
    assert [(i.video_id, i.relations) for i in items] == [("vid1", ["dog-chase-person"])]  # others: no relations
    with pytest.raises(ConfigError, match="does not exist"):
        parse_inputs(tmp_path / "missing", relations=RELS)
    with pytest.raises(ConfigError, match="holds no videos"):
        parse_inputs(tmp_path / "ann", relations=RELS)
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({"video": str(archive / f"vid{i}.mp4"), "video_id": "same"}) + "\n" for i in range(2)))
    with pytest.raises(ConfigError, match="two videos with id 'same'"):
        parse_inputs(dup, relations=RELS)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,relations\nx.mp4,a-b-c\n")
    with pytest.raises(ConfigError, match="'video' column"):
        parse_inputs(bad)


# records ------------------------------------------------------------------------------------------
def _ok(vid: str, rel: str) -> Record:
    return Record(vid, rel, "ok", {"0": [0, 0, 1, 1]}, {"0": [0, 0, 2, 2]}, [0, 0], 0.5)


def test_writer_resumes_truncates_partial_line_and_skips_duplicates(tmp_path):
    path = tmp_path / "r.jsonl"
    with RecordWriter(path) as w:
        assert w.write(_ok("a", RELS[0]))
        assert w.write(Record.failure("b", RELS[0], "broken video"))
        assert not w.write(_ok("a", RELS[0]))
    with open(path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"video_id": "c", "relation": "x-y-z", "sta')
    assert len(read_records(path)) == 2
    with RecordWriter(path) as w:
        assert ("a", RELS[0]) in w and ("b", RELS[0]) in w and w.resumed == 2
        assert path.read_bytes().endswith(b"}\n")  # the partial line is gone
        w.write(_ok("c", RELS[1]))
    recs = read_records(path)
    assert [(r["video_id"], r["status"]) for r in recs] == [("a", "ok"), ("b", "error"), ("c", "ok")]
    assert set(recs[0]) >= {"video_id", "relation", "status", "sub", "obj", "segment", "score", "error"}
    with RecordWriter(path, retry_errors=True) as w:
        assert ("b", RELS[0]) not in w and w.resumed == 2
    assert [r["video_id"] for r in read_records(path)] == ["a", "c"]
    assert records_to_predictions(read_records(path))["a"][RELS[0]]["segment"] == [0, 0]


def test_two_writers_on_one_file_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    with RecordWriter(path):
        with pytest.raises(ConfigError, match="another vrgv batch run"):
            RecordWriter(path)
    with RecordWriter(path) as w:  # released on close
        w.write(_ok("a", RELS[0]))


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("hello\nworld\n")
    with pytest.raises(AnnotationError, match="not written by vrgv batch"):
        RecordWriter(path)
    with pytest.raises(AnnotationError, match="needs an 'error'"):
        Record("a", "b", "error")


# local engine -------------------------------------------------------------------------------------
def test_local_engine_matches_direct_grounding_and_survives_bad_videos(archive, tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    for p in archive.iterdir():
        (vids / p.name).symlink_to(p)
    (vids / "broken.mp4").write_bytes(b"this is not a video" * 50)
    write_mp4(vids / "hang.mp4", make_video(7, frames=12))
    write_mp4(vids / "crash.mp4", make_video(8, frames=12))
    items = parse_inputs(vids, relations=[*RELS, "person-frobnicate-car"])
    g = make_fake_grounder()
    out = tmp_path / "r.jsonl"
    t0 = time.perf_counter()
    summary = LocalEngine(g, SPEC, workers=2, timeout=3.0, progress=False).run(items, out)
    assert time.perf_counter() - t0 < 60
    recs = by_key(read_records(out))
    assert len(recs) == 7 * 4 and summary.skipped == 0
    for vid in ("broken", "hang", "crash"):
        for rel in RELS:
            assert recs[(vid, rel)]["status"] == "error"
    assert "timed out after 3 s" in recs[("hang", RELS[0])]["error"]
    assert "crashed (exit code 13)" in recs[("crash", RELS[0])]["error"]
    assert "broken" in recs[("broken", RELS[0])]["error"]
    assert "unknown predicate 'frobnicate'" in recs[("vid0", "person-frobnicate-car")]["error"]
    for i in range(4):
        expected = g.ground_many(str(archive / f"vid{i}.mp4"), RELS, video_id=f"vid{i}")
        for rel, res in zip(RELS, expected):
            rec = recs[(f"vid{i}", rel)]
            d = res.to_dict()
            assert rec["status"] == "ok" and rec["error"] is None
            assert (rec["sub"], rec["obj"], rec["segment"], rec["score"]) == (d["sub"], d["obj"], d["segment"], d["score"])
    assert (summary.done, summary.failed, summary.videos) == (12, 16, 7)
    # rerun: everything is skipped, nothing new is written
    again = LocalEngine(g, SPEC, workers=2, timeout=3.0, progress=False).run(items, out)
    assert (again.done, again.failed, again.skipped, again.videos) == (0, 0, 28, 0)
    assert len(read_records(out)) == 28


def test_inline_engine_and_region_cache(archive, tmp_path):
    items = parse_inputs(archive, relations=RELS[:1])
    cache = tmp_path / "cache"
    g = make_fake_grounder()
    s1 = LocalEngine(g, SPEC, workers=0, progress=False).run(items, tmp_path / "a.jsonl", cache_regions=str(cache))
    assert s1.done == 4 and len(list(cache.glob("*.npz"))) == 4
    # a later query with other relations reuses the regions: this grounder cannot extract at all
    items2 = parse_inputs(archive, relations=RELS[1:])
    s2 = LocalEngine(make_fake_grounder(fail_extract=True), SPEC, workers=0, progress=False).run(
        items2, tmp_path / "b.jsonl", cache_regions=str(cache))
    assert (s2.done, s2.failed) == (8, 0)
    # regions given as .npz inputs need no extraction either
    npz = tmp_path / "npz"
    for i, f in enumerate(sorted(cache.glob("*.npz"))):
        (npz / f"vid{i}.npz").parent.mkdir(exist_ok=True)
        (npz / f"vid{i}.npz").write_bytes(f.read_bytes())
    s3 = LocalEngine(make_fake_grounder(fail_extract=True), SPEC, workers=2, progress=False).run(
        parse_inputs(npz, relations=RELS[:1]), tmp_path / "c.jsonl")
    assert (s3.done, s3.failed) == (4, 0)
    a, c = by_key(read_records(tmp_path / "a.jsonl")), by_key(read_records(tmp_path / "c.jsonl"))
    assert a == c


def test_worker_that_cannot_start_stops_the_run(archive, tmp_path):
    bad = WorkerSpec("test_batch:no_such_factory", {})
    with pytest.raises(Exception, match="could not start"):
        LocalEngine(make_fake_grounder(), bad, workers=1, progress=False).run(
            parse_inputs(archive, relations=RELS[:1]), tmp_path / "r.jsonl")


def _batch_main(argv: list[str]) -> None:
    """Entry of the SIGKILL test's child process: a local batch with the fake model."""
    src, out = argv
    run_batch(parse_inputs(src, relations=RELS), out, grounder=make_fake_grounder(), worker_spec=SPEC,
              workers=2, timeout=60, progress=False)


@pytest.mark.slow
def test_sigkill_then_resume_writes_each_record_exactly_once(tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    for i in range(10):
        write_mp4(vids / f"k{i:02d}.mp4", make_video(200 + i, frames=20))
    out = tmp_path / "r.jsonl"
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_batch; test_batch._batch_main(sys.argv[1:])"
    env = dict(os.environ, VRGV_TEST_SLOW="0.4", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code, str(vids), str(out)], env=env, cwd=REPO,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len(read_records(out)) >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, mid-flight
    proc.wait()
    first = read_records(out)
    assert 4 <= len(first) < 30
    env.pop("VRGV_TEST_SLOW")
    subprocess.run([sys.executable, "-c", code, str(vids), str(out)], env=env, cwd=REPO, check=True, timeout=120)
    recs = by_key(read_records(out))  # asserts no duplicates
    assert set(recs) == {(f"k{i:02d}", r) for i in range(10) for r in RELS}
    assert all(r["status"] == "ok" for r in recs.values())
    for r in first:  # records written before the kill are kept as they were
        assert recs[(r["video_id"], r["relation"])] == r


# ray engine ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_engine_writes_the_same_records_as_local(archive, tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from vrgv.batch.ray_engine import RayEngine

    items = parse_inputs(archive, relations=RELS[:2])
    items.append(BatchItem(str(tmp_path / "missing.mp4"), "missing", RELS[:1]))
    LocalEngine(make_fake_grounder(), SPEC, workers=0, progress=False).run(items, tmp_path / "local.jsonl")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}})
    try:
        summary = RayEngine(grounder_spec=SPEC, workers=1, progress=False).run(items, tmp_path / "ray.jsonl")
    finally:
        ray.shutdown()
    local, remote = by_key(read_records(tmp_path / "local.jsonl")), by_key(read_records(tmp_path / "ray.jsonl"))
    assert local == remote and len(remote) == 9
    assert (summary.done, summary.failed, summary.videos) == (8, 1, 5)
    assert "does not exist" in remote[("missing", RELS[0])]["error"]


# acceptance on the default bundle (runs once the bundle is committed) ------------------------------
@pytest.mark.slow
def test_acceptance_batch_local_ray_and_ground_agree_on_synthetic_split(tmp_path, capsys):
    """Issue 7 acceptance: 20 synthetic test videos; batch --engine local == --engine ray; eval of batch
    records == eval of `vrgv ground` outputs. All through the CLI entry point, in-process."""
    try:
        from vrgv.bundle import Bundle

        Bundle.default()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"default bundle unavailable: {exc}")
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from vrgv.annotations import VideoAnnotation
    from vrgv.cli import main
    from vrgv.synth import generate_split

    split = tmp_path / "split"
    generate_split(split, 20, seed=3, workers=2, max_frames=150, progress=False)
    videos, anns = split / "videos", split / "annotations"
    common = [str(videos), "--annotations", str(anns), "--workers", "1", "--no-progress"]
    assert main(["batch", *common, "--out", str(tmp_path / "local.jsonl")]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main(["batch", *common, "--out", str(tmp_path / "ray.jsonl"), "--engine", "ray"]) == 0
    finally:
        ray.shutdown()
    local, remote = by_key(read_records(tmp_path / "local.jsonl")), by_key(read_records(tmp_path / "ray.jsonl"))
    assert local == remote and len(local) > 20
    preds: dict = {}
    for video in sorted(videos.glob("*.mp4")):
        rels = VideoAnnotation.load(anns / f"{video.stem}.json").relation_strings()
        out = tmp_path / "ground" / f"{video.stem}.json"
        assert main(["ground", str(video), *rels, "--out", str(out)]) == 0
        for vid, per in json.loads(out.read_text()).items():
            preds.setdefault(vid, {}).update(per)
    (tmp_path / "ground.json").write_text(json.dumps(preds))
    capsys.readouterr()
    scores = []
    for pred in ("local.jsonl", "ray.jsonl", "ground.json"):
        assert main(["eval", "--pred", str(tmp_path / pred), "--gt", str(anns), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0] == scores[1] == scores[2]


# the CLI with the fake model (in-process, inline extraction) --------------------------------------
def test_cli_batch_and_ground_give_equal_eval_on_a_synthetic_split(tmp_path, monkeypatch, capsys):
    synth = pytest.importorskip("vrgv.synth")
    from vrgv.annotations import VideoAnnotation
    from vrgv.cli import main

    monkeypatch.setattr(Grounder, "load", classmethod(lambda cls, *a, **k: make_fake_grounder()))
    split = tmp_path / "split"
    synth.generate_split(split, 3, seed=3, workers=1, max_frames=80, progress=False)
    videos, anns = split / "videos", split / "annotations"
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(videos), "--annotations", str(anns), "--out", str(out), "--workers", "0",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["videos"] == 3 and summary["failed"] == 0 and summary["done"] > 0
    preds: dict = {}
    for video in sorted(videos.glob("*.mp4")):
        rels = VideoAnnotation.load(anns / f"{video.stem}.json").relation_strings()
        pred = tmp_path / f"{video.stem}.json"
        assert main(["ground", str(video), *rels, "--out", str(pred)]) == 0
        for vid, per in json.loads(pred.read_text()).items():
            preds.setdefault(vid, {}).update(per)
    (tmp_path / "ground.json").write_text(json.dumps(preds))
    batch_preds = records_to_predictions(read_records(out))
    assert batch_preds == {v: {r: {k: e[k] for k in ("sub", "obj", "segment", "score")} for r, e in per.items()}
                           for v, per in preds.items()}
    capsys.readouterr()
    scores = []
    for pred in (out, tmp_path / "ground.json"):
        assert main(["eval", "--pred", str(pred), "--gt", str(anns), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0] == scores[1]
    # resume: the same command again writes nothing new
    assert main(["batch", str(videos), "--annotations", str(anns), "--out", str(out), "--workers", "0",
                 "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["done"] == 0 and again["skipped"] == summary["done"]


def test_cli_batch_reports_failures_with_exit_code_3(archive, tmp_path, monkeypatch, capsys):
    from vrgv.cli import main

    monkeypatch.setattr(Grounder, "load", classmethod(lambda cls, *a, **k: make_fake_grounder()))
    vids = tmp_path / "v"
    vids.mkdir()
    (vids / "a.mp4").symlink_to(archive / "vid0.mp4")
    (vids / "broken.mp4").write_bytes(b"\x00" * 100)
    assert main(["batch", str(vids), "--relations", RELS[0], "--out", str(tmp_path / "r.jsonl"), "--workers", "0",
                 "--no-progress"]) == 3
    captured = capsys.readouterr()
    assert "1 done, 1 failed" in captured.err
    assert main(["batch", str(vids), "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "say which relations" in capsys.readouterr().err
