"""Faults in batch processing: SIGKILL at random moments, workers that crash or hang, and output locations
that cannot be written. The model is the fake one of ``test_grounder`` (real decoding, real linking)."""
from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_batch import write_mp4
from test_grounder import RELS, fake_extractor, make_video
from vrgv import Vocabulary
from vrgv.batch import parse_inputs, read_records, run_batch
from vrgv.batch.local import WorkerSpec
from vrgv.errors import ConfigError
from vrgv.grounder import Grounder

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SPEC = WorkerSpec("test_faults:faulty_grounder", {})


# test-only extractor hook: the video's file name says how extraction fails -----------------------
def faulty_extractor(frames, frame_ids, *, video_id, **kw):
    """``segv*`` kills the worker with SIGSEGV, ``exit*`` calls ``os._exit(3)``, ``hang*`` sleeps forever,
    ``oom*`` raises MemoryError; ``$VRGV_FAULT_SLOW`` seconds of delay let a test kill the run mid-flight."""
    if video_id.startswith("segv"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if video_id.startswith("exit"):
        os._exit(3)
    if video_id.startswith("hang"):
        time.sleep(3600)
    if video_id.startswith("oom"):
        raise MemoryError("cannot allocate 64 GiB")
    time.sleep(float(os.environ.get("VRGV_FAULT_SLOW", "0")))
    return fake_extractor(frames, frame_ids, video_id=video_id, **kw)


def faulty_grounder() -> Grounder:
    from test_grounder import D, L, M, N, FakeBackend
    from vrgv.grounder import ModelSpec

    return Grounder(FakeBackend(), Vocabulary.default(), ModelSpec(N, M, D, L, sigma=0.2), extractor=faulty_extractor,
                    name="faulty")


def _batch_child(argv: list[str]) -> None:
    """Child process of the SIGKILL test: one resumable batch run over ``argv[0]`` into ``argv[1]``."""
    src, out, workers = argv
    run_batch(parse_inputs(src, relations=RELS[:2]), out, grounder=faulty_grounder(), worker_spec=SPEC,
              workers=int(workers), timeout=60, progress=False)


def _keys(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["video_id"], r["relation"]) for r in records]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    for i in range(8):
        write_mp4(root / f"v{i}.mp4", make_video(300 + i, frames=16))
    return root


# SIGKILL at random points ------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_gives_every_record_exactly_once(archive, tmp_path):
    out = tmp_path / "r.jsonl"
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_faults; test_faults._batch_child(sys.argv[1:])"
    env = dict(os.environ, VRGV_FAULT_SLOW="0.6", OMP_NUM_THREADS="1")
    rng = random.Random(9)
    snapshots = []
    for round_, workers in enumerate(("2", "0", "1")):
        proc = subprocess.Popen([sys.executable, "-c", code, str(archive), str(out), workers], env=env, cwd=REPO,
                                start_new_session=True, stderr=subprocess.DEVNULL)
        if round_ == 0:  # make sure one kill lands mid-run however fast the machine is
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (out.exists() and read_records(out)):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            time.sleep(rng.uniform(1.5, 4.0))  # a random moment: start-up, extraction, inference or a write
        os.killpg(proc.pid, signal.SIGKILL)  # the run and all its workers
        proc.wait()
        snapshots.append(read_records(out) if out.exists() else [])
    done = subprocess.run([sys.executable, "-c", code, str(archive), str(out), "2"], env=dict(env, VRGV_FAULT_SLOW="0"),
                          cwd=REPO, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    final = read_records(out)
    keys = _keys(final)
    assert len(keys) == len(set(keys)), "a record was written twice"
    assert set(keys) == {(f"v{i}", r) for i in range(8) for r in RELS[:2]}
    assert all(r["status"] == "ok" for r in final)
    assert out.read_bytes().endswith(b"\n")  # no partial last line left behind
    by_key = {k: r for k, r in zip(keys, final)}
    for snap in snapshots:  # what a killed run wrote stays exactly as it was
        for r in snap:
            assert by_key[(r["video_id"], r["relation"])] == r
    sizes = [len(s) for s in snapshots]
    assert sizes == sorted(sizes) and any(0 < n < len(final) for n in sizes), sizes  # a kill landed mid-run


# a worker that crashes or hangs ------------------------------------------------------------------
def test_crashing_and_hanging_workers_give_error_records_and_the_run_continues(archive, tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("v0", "v1", "v2"):
        (vids / f"{name}.mp4").symlink_to(archive / f"{name}.mp4")
    for name in ("segv", "exit", "hang", "oom"):
        write_mp4(vids / f"{name}.mp4", make_video(1, frames=8))
    out = tmp_path / "r.jsonl"
    t0 = time.monotonic()
    summary = run_batch(parse_inputs(vids, relations=RELS[:2]), out, grounder=faulty_grounder(), worker_spec=SPEC,
                        workers=2, timeout=2.0, progress=False)
    assert time.monotonic() - t0 < 45
    recs = {(r["video_id"], r["relation"]): r for r in read_records(out)}
    assert len(recs) == 14 and (summary.done, summary.failed) == (6, 8)
    for rel in RELS[:2]:
        assert recs[("segv", rel)]["status"] == "error"
        assert f"exit code {-signal.SIGSEGV}" in recs[("segv", rel)]["error"] and "crashed" in recs[("segv", rel)]["error"]
        assert "worker process crashed (exit code 3)" in recs[("exit", rel)]["error"]
        assert "timed out after 2 s decoding/extracting regions (--timeout)" in recs[("hang", rel)]["error"]
        assert recs[("oom", rel)]["error"] == "MemoryError: cannot allocate 64 GiB"
        for name in ("v0", "v1", "v2"):
            assert recs[(name, rel)]["status"] == "ok"
    # the failures are final for this file; --retry-errors tries them again (and they fail again)
    again = run_batch(parse_inputs(vids, relations=RELS[:2]), out, grounder=faulty_grounder(), worker_spec=SPEC,
                      workers=1, timeout=1.0, progress=False)
    assert (again.done, again.failed, again.skipped) == (0, 0, 14)


# output locations that cannot be written ---------------------------------------------------------
_FULL_DISK_CHILD = """
import json, resource, signal, sys
sys.path.insert(0, {tests!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like ENOSPC on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
import test_faults
from vrgv.cli import main
from vrgv.grounder import Grounder
Grounder.load = classmethod(lambda cls, *a, **k: test_faults.faulty_grounder())
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_gives_a_clear_error_and_no_partial_record(archive, tmp_path):
    out = tmp_path / "r.jsonl"
    child = _FULL_DISK_CHILD.format(tests=str(TESTS), limit=4000)
    proc = subprocess.run([sys.executable, "-c", child, "batch", str(archive), "--relations", *RELS[:2], "--out",
                           str(out), "--workers", "0", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("vrgv batch: error: ") and str(out) in message and "disk" in message, message
    data = out.read_bytes()
    assert 0 < len(data) <= 4000 and data.endswith(b"\n")  # only whole records
    written = read_records(out)
    assert written and all(r["status"] == "ok" for r in written)
    assert len(data.splitlines()) == len(written)
    # with room again, the same command resumes and completes
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD.format(tests=str(TESTS), limit=10**9), "batch",
                           str(archive), "--relations", *RELS[:2], "--out", str(out), "--workers", "0", "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    keys = _keys(read_records(out))
    assert len(keys) == len(set(keys)) == 16


def test_output_that_is_not_a_regular_file_is_refused(tmp_path):
    from vrgv.batch import RecordWriter

    with pytest.raises(ConfigError, match=r"results file '/dev/full' is not a regular file"):
        RecordWriter("/dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and not Path("/dev/.full.lock").exists()
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(ConfigError, match=r"dir\.jsonl' is not a regular file"):
        RecordWriter(tmp_path / "dir.jsonl")


def test_output_below_a_file_is_a_clear_error(archive, tmp_path, capsys, monkeypatch):
    from vrgv.cli import main

    monkeypatch.setattr(Grounder, "load", classmethod(lambda cls, *a, **k: faulty_grounder()))
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "r.jsonl"
    code = main(["batch", str(archive), "--relations", RELS[0], "--out", str(out), "--workers", "0", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("vrgv batch: error: ") and str(out) in err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder_is_a_clear_error(archive, tmp_path, capsys, monkeypatch):
    from vrgv.cli import main

    monkeypatch.setattr(Grounder, "load", classmethod(lambda cls, *a, **k: faulty_grounder()))
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code = main(["batch", str(archive), "--relations", RELS[0], "--out", str(folder / "r.jsonl"), "--workers", "0",
                     "--no-progress"])
    finally:
        folder.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "r.jsonl" in err[0] and "ermission" in err[0]
    assert list(folder.iterdir()) == []


def test_ground_to_dev_full_reports_no_space_and_leaves_the_device_alone(archive, capsys, monkeypatch):
    from vrgv.cli import main

    monkeypatch.setattr(Grounder, "load", classmethod(lambda cls, *a, **k: faulty_grounder()))
    code = main(["ground", str(archive / "v0.mp4"), RELS[0], "--out", "/dev/full"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("vrgv ground: error: ") and "No space left on device" in err[-1]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert not [p for p in Path("/dev").glob(".full.*")]
