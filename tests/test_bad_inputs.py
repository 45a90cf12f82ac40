"""The bad-input matrix: every bad video, relation and Regions input raises one documented ``vrgv.errors``
type whose message names the input and says what is wrong; the CLI prints it as one line and exits non-zero.

Bundle cases live in ``test_untrusted.py`` (whose tiny exported bundle the CLI cases here reuse).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from vrgv import Regions, Vocabulary
from vrgv.errors import ConfigError, RegionsError, RelationError, VideoError, VrgvError
from vrgv.relation import Relation
from vrgv.video import VideoFrames, read_video

TESTS = Path(__file__).resolve().parent
RNG = np.random.default_rng(0)


def write_video(path: Path, frames_rgb: np.ndarray, fourcc: str = "mp4v", fps: float = 10.0,
                color: bool = True) -> Path:
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), color)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for f in frames_rgb:
        writer.write(np.ascontiguousarray(f[..., ::-1]) if color else f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Good and broken videos: a synthetic clip (vrgv.synth) and hand-made ones (cv2.VideoWriter)."""
    from vrgv.synth import sample_video

    root = tmp_path_factory.mktemp("videos")
    good, _ = sample_video(5, 0, width=96, height=72, min_frames=20, max_frames=30).write(root / "synth")
    out = {"good": good}
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # mp4v writes its index (moov) last
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is a text file with a video suffix\n" * 20)
    (root / "folder_without_frames").mkdir()
    avi = write_video(root / "full.avi", RNG.integers(0, 255, (30, 48, 64, 3), dtype=np.uint8), "MJPG")
    (root / "truncated.avi").write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])  # header first: opens
    write_video(root / "one.mp4", RNG.integers(0, 255, (1, 48, 64, 3), dtype=np.uint8))
    write_video(root / "five.mp4", RNG.integers(0, 255, (5, 48, 64, 3), dtype=np.uint8))
    gray = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :], 48, axis=1)
    write_video(root / "gray.avi", np.repeat(gray, 6, axis=0), "MJPG", color=False)  # single-channel frames
    for k in ("truncated.mp4", "empty.mp4", "text.mp4", "folder_without_frames", "one.mp4", "five.mp4"):
        out[k.removesuffix(".mp4")] = root / k
    out.update(truncated_avi=root / "truncated.avi", full_avi=avi, gray=root / "gray.avi")
    return out


# videos ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", r"video '.*missing\.mp4' does not exist; check the path"),
    ("folder_without_frames", r"frame folder '.*folder_without_frames' holds no images .*give a video file or a folder of frames"),
    ("empty", r"video '.*empty\.mp4' is an empty \(0-byte\) file; re-export or re-download it"),
    ("truncated", r"video '.*truncated\.mp4' cannot be opened: .*truncated or corrupted; check it with ffprobe, re-encode"),
    ("text", r"video '.*text\.mp4' cannot be opened: it is not a video OpenCV can decode"),
])
def test_unreadable_videos(videos, tmp_path, case, message):
    path = tmp_path / "missing.mp4" if case == "missing" else videos[case]
    with pytest.raises(VideoError, match=message):
        read_video(path, 16)


def test_truncated_video_that_still_opens_uses_the_frames_that_decode(videos, caplog):
    full = read_video(videos["full_avi"], 16)
    with caplog.at_level("WARNING", logger="vrgv.video"):
        cut = read_video(videos["truncated_avi"], 16)
    assert full.num_frames == 30 and 0 < cut.num_frames < 30
    assert cut.frame_ids[-1] == cut.num_frames - 1  # sampled over what really decodes, not the container's count
    assert "container says 30 frames but" in caplog.text


def test_one_frame_and_fewer_frames_than_n_repeat_frames(videos):
    one = read_video(videos["one"], 24)
    assert one.num_frames == 1 and one.frames.shape == (24, 48, 64, 3) and not one.frame_ids.any()
    five = read_video(videos["five"], 24)
    assert five.num_frames == 5 and sorted(set(five.frame_ids.tolist())) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(five.frame_ids) >= 0) and len(five.frame_ids) == 24


def test_grayscale_and_rgba_frames_become_rgb(videos, tmp_path):
    gray = np.tile(np.arange(64, dtype=np.uint8)[None, None, :] * 4, (3, 48, 1))  # [T, H, W]
    rgba = np.concatenate([RNG.integers(0, 255, (3, 48, 64, 3), dtype=np.uint8), np.full((3, 48, 64, 1), 7, np.uint8)], -1)
    for arr, expect in ((gray, np.repeat(gray[..., None], 3, -1)), (gray[..., None], np.repeat(gray[..., None], 3, -1)),
                        (rgba, rgba[..., :3])):
        v = read_video(arr, 3)
        assert v.frames.shape == (3, 48, 64, 3) and v.frames.dtype == np.uint8
        np.testing.assert_array_equal(v.frames, expect)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000000.png"), gray[0])
    cv2.imwrite(str(folder / "000001.png"), cv2.cvtColor(rgba[1], cv2.COLOR_RGBA2BGRA))
    v = read_video(folder, 2)
    np.testing.assert_array_equal(v.frames[0], np.repeat(gray[0][..., None], 3, -1))
    np.testing.assert_array_equal(v.frames[1], rgba[1, ..., :3])
    g = read_video(videos["gray"], 4)  # a single-channel video file
    assert g.frames.shape == (4, 48, 64, 3)


@pytest.mark.parametrize("arr, message", [
    (np.zeros((2, 8, 8, 3), np.float32), r"frame array has dtype float32; give uint8 RGB frames"),
    (np.zeros((2, 8, 8, 2), np.uint8), r"frame array has shape \[2, 8, 8, 2\]; expected \[T,H,W,3\] RGB"),
    (np.zeros((8, 8), np.uint8), r"frame array has shape \[8, 8\]; .*for a single image use arr\[None\]"),
    (np.zeros((0, 8, 8, 3), np.uint8), r"frame array has shape \[0, 8, 8, 3\]: it holds no frames"),
])
def test_bad_frame_arrays(arr, message):
    with pytest.raises(VideoError, match=message):
        read_video(arr, 4)


def test_bad_video_frames_object():
    with pytest.raises(VideoError, match=r"frames of video 'v': frames must be uint8 \[N,H,W,3\] RGB"):
        VideoFrames(np.zeros((2, 4, 4), np.uint8), [0, 1], num_frames=2, width=4, height=4, video_id="v")
    with pytest.raises(VideoError, match=r"frame_ids must be non-decreasing and lie in \[0, 1\]"):
        VideoFrames(np.zeros((2, 4, 4, 3), np.uint8), [1, 0], num_frames=2, width=4, height=4, video_id="v")


_MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from vrgv.grounder import Grounder
    from vrgv.video import read_video
    g = Grounder.load(sys.argv[2])
    regions = g.extract(sys.argv[1])
    kept = read_video(sys.argv[1], 120, max_side=g.extractor.read_max_side).frames
    print(json.dumps({"kept": list(kept.shape), "boxes": list(regions.boxes.shape), "width": regions.width, "height": regions.height,
                      "max_x": float(regions.boxes[..., 2].max()), "max_side": g.extractor.read_max_side,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


@pytest.mark.slow
def test_8k_frames_are_resized_for_the_detector_and_memory_stays_bounded(tmp_path):
    """Two 7680x4320 frames through the built-in detector path: decoded frames are kept at the detector's
    read size, boxes come back in 8K pixels, and peak memory stays far below 120 full 8K frames (12 GB):
    what remains is the decoder's own buffers for one 8K frame (about 1.3 GB peak measured on 2 cores)."""
    from test_untrusted import tiny_bundle

    bundle = tiny_bundle()
    frames = np.zeros((2, 4320, 7680, 3), np.uint8)
    frames[:, ::9] = 180
    video = write_video(tmp_path / "8k.mp4", frames)
    del frames
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(video), str(bundle)], capture_output=True,
                         text=True, timeout=120, cwd=TESTS)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["boxes"] == [12, 5, 4] and (info["width"], info["height"]) == (7680, 4320)
    assert info["max_side"] and info["max_side"] < 1000 and info["max_x"] <= 7680
    assert info["kept"] == [120, info["max_side"] * 9 // 16, info["max_side"], 3]  # 120 small frames, not 8K ones
    print(f"8K probe: {info}")
    assert info["rss_mb"] < 2500, f"peak RSS {info['rss_mb']:.0f} MB while reading two 8K frames"


# relations ---------------------------------------------------------------------------------------
VOCAB = Vocabulary.default()


@pytest.mark.parametrize("text, message", [
    ("", r"relation is empty; write it like 'person-ride-bicycle'"),
    ("   \t", r"relation is empty; write it like 'person-ride-bicycle'"),
    ("person-ride", r"relation 'person-ride' has 2 part\(s\) separated by '-'; expected exactly 3"),
    ("person-ride-bicycle-fast", r"relation 'person-ride-bicycle-fast' has 4 part\(s\).*join multi-word predicates with '_'"),
    ("person--bicycle", r"relation predicate is empty; write the relation like 'person-ride-bicycle'"),
    ("persn-ride-bicycle", r"relation 'persn-ride-bicycle': unknown subject 'persn'; did you mean 'person'\?"),
    ("person-rdie-bicycle", r"unknown predicate 'rdie'; did you mean 'ride'.*--list-vocabulary"),
    ("person-ride-bicyle", r"unknown object 'bicyle'; did you mean 'bicycle'"),
    ("person-ride-xyzzy", r"unknown object 'xyzzy' \(the model knows 35 objects"),
    ("persön-ride-bicycle", r"relation subject 'persön' has characters other than ASCII letters, digits and '_'"),
    ("person-ride-🚲", r"relation object '🚲' has characters other than ASCII"),
    ("person—ride—bicycle", r"relation 'person—ride—bicycle' has 1 part\(s\) separated by '-'"),  # em dashes
    (None, r"relation must be a string like 'person-ride-bicycle', got NoneType"),
    (42, r"relation must be a string like 'person-ride-bicycle', got int"),
])
def test_bad_relations(text, message):
    with pytest.raises(RelationError, match=message):
        VOCAB.canonical(text)


@pytest.mark.parametrize("text", ["  Person - RIDE - Bicycle ", "PERSON-Ride-BICYCLE", "ｐｅｒｓｏｎ-ride-bicycle",
                                  "person-ride-bicycle\n"])
def test_odd_case_whitespace_and_fullwidth_unicode_normalise(text):
    assert str(VOCAB.canonical(text)) == "person-ride-bicycle"


def test_multi_word_predicates_accept_spaces_and_underscores():
    for text in ("person-sit next to-car", "person-Sit_Next_To-car", "person- sit  next  to -car"):
        assert str(VOCAB.canonical(text)) == "person-sit_next_to-car"
    assert Relation.parse("a-b-c").words == ["a", "b", "c"]  # parse alone checks syntax, not vocabulary


# regions -----------------------------------------------------------------------------------------
def _regions(**over):
    n, m, d = 4, 3, 2
    boxes = np.tile(np.array([1.0, 2.0, 10.0, 12.0], np.float32), (n, m, 1))
    kw = dict(boxes=boxes, features=np.ones((n, m, d), np.float32), frame_ids=np.array([0, 3, 3, 9]),
              width=32, height=24, num_frames=10, video_id="clip", scores=np.ones((n, m), np.float32))
    kw.update(over)
    return Regions(**kw)


def _set(arr, index, value):
    arr = np.array(arr, dtype=np.float32)
    arr[index] = value
    return arr


BOXES = _regions().boxes
NAME = r"regions of video 'clip': "


@pytest.mark.parametrize("over, message", [
    (dict(boxes=np.zeros((4, 3), np.float32)), r"boxes must have shape \[N, M, 4\], got \[4, 3\]"),
    (dict(boxes=np.zeros((4, 3, 5), np.float32)), r"boxes must have shape \[N, M, 4\], got \[4, 3, 5\]"),
    (dict(boxes=np.zeros((0, 3, 4), np.float32)), r"boxes must hold at least one frame and one region, got \[0, 3, 4\]"),
    (dict(features=np.ones((4, 2, 2), np.float32)), r"features must have shape \[N=4, M=3, D\], got \[4, 2, 2\]"),
    (dict(features=np.ones((4, 3, 0), np.float32)), r"features must have shape \[N=4, M=3, D\]"),
    (dict(frame_ids=np.array([0, 1, 2])), r"frame_ids must have shape \[N=4\], got \[3\]"),
    (dict(scores=np.ones((4, 2), np.float32)), r"scores must have shape \[N=4, M=3\], got \[4, 2\]"),
    (dict(boxes=BOXES.astype(str)), r"boxes must be numeric, got dtype <U"),
    (dict(features=np.ones((4, 3, 2), complex)), r"features must be numeric, got dtype complex128"),
    (dict(frame_ids=np.array([0.0, 3.5, 4.0, 9.0])), r"frame_ids must hold integers, got non-integer floats"),
    (dict(boxes=_set(BOXES, (1, 2, 0), np.nan)), r"boxes holds 1 NaN or infinite value\(s\); fix the detector output"),
    (dict(features=_set(np.ones((4, 3, 2)), (0, 0, 0), np.inf)), r"features holds 1 NaN or infinite value\(s\)"),
    (dict(scores=_set(np.ones((4, 3)), (0, 0), -np.inf)), r"scores holds 1 NaN or infinite"),
    (dict(boxes=_set(BOXES, (0, 0, 2), 0.5)), r"some boxes are inverted \(x2 < x1 or y2 < y1\); boxes are x1,y1,x2,y2"),
    (dict(boxes=_set(BOXES, (0, 0, 2), 40.0)), r"some boxes lie outside the 32x24 frame; boxes must be in original pixels"),
    (dict(boxes=_set(BOXES, (3, 1, 1), -5.0)), r"some boxes lie outside the 32x24 frame"),
    (dict(frame_ids=np.array([0, 5, 3, 9])), r"frame_ids must be non-decreasing, but frame_ids\[1\]=5 > frame_ids\[2\]=3"),
    (dict(frame_ids=np.array([-1, 3, 3, 9])), r"frame_ids must lie in \[0, num_frames-1\] = \[0, 9\], got \[-1, 9\]"),
    (dict(frame_ids=np.array([0, 3, 3, 10])), r"frame_ids must lie in \[0, num_frames-1\] = \[0, 9\], got \[0, 10\]; check num_frames"),
    (dict(num_frames=5), r"frame_ids must lie in \[0, num_frames-1\] = \[0, 4\]"),
    (dict(num_frames=0), r"num_frames must be at least 1, got 0"),
    (dict(width=0), r"width and height must be positive, got 0x24"),
    (dict(height="tall"), r"width, height and num_frames must be integers"),
    (dict(boxes=[[1, 2, 3]]), r"boxes must have shape \[N, M, 4\]"),
    (dict(boxes=[[[1, 2, 3, 4]], [[1, 2]]]), r"boxes is not array-like"),
])
def test_bad_regions(over, message):
    with pytest.raises(RegionsError, match=NAME + message):
        _regions(**over)


def test_boxes_may_touch_the_border_within_one_pixel():
    r = _regions(boxes=_set(_set(BOXES, (0, 0, 2), 32.9), (0, 0, 0), -0.9))
    assert r.boxes[0, 0, 2] == np.float32(32.9)


def _npz(path: Path, **arrays) -> Path:
    base = _regions().to_arrays()
    base.update(arrays)
    for k in [k for k, v in base.items() if v is None]:
        del base[k]
    np.savez(path, **base)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.npz", r"regions file '.*missing\.npz' does not exist"),
    (lambda p: p, r"regions path '.*' is a directory; give one \.npz file"),
    (lambda p: (p / "t.npz").write_text("not a zip") and p / "t.npz", r"t\.npz' is not a readable \.npz"),
    (lambda p: _npz(p / "o.npz", boxes=np.array([None], dtype=object)), r"o\.npz' is not a readable \.npz without pickled objects"),
    (lambda p: _npz(p / "m.npz", features=None), r"m\.npz' lacks array\(s\) \['features'\]; see the Regions format"),
    (lambda p: _npz(p / "v.npz", format_version=np.array(7)), r"v\.npz' has format version 7, newer than this vrgv \(1\); upgrade vrgv"),
    (lambda p: _npz(p / "s.npz", width=np.array([1, 2])), r"s\.npz': invalid scalar field"),
    (lambda p: _npz(p / "n.npz", num_frames=np.array(3)), r"n\.npz': regions of video 'clip': frame_ids must lie in"),
])
def test_bad_regions_files(tmp_path, make, message):
    with pytest.raises(RegionsError, match=message):
        Regions.load(make(tmp_path))


def test_regions_file_whose_header_claims_terabytes(tmp_path):
    """A 2 kB file whose .npy header claims a 7 TiB array: a RegionsError, not a MemoryError."""
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(_npz(tmp_path / "ok.npz").read_bytes()))
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            out.writestr(info.filename, data.replace(b"(4, 3, 2)", b"(9999999, 99999, 2)") if info.filename ==
                         "features.npy" else data)
    with pytest.raises(RegionsError, match=r"huge\.npz' is not a readable \.npz .*Unable to allocate"):
        Regions.load(tmp_path / "huge.npz")


def test_regions_file_round_trip(tmp_path):
    r = _regions(fps=12.5)
    back = Regions.load(r.save(tmp_path / "r.npz"))
    assert back.video_id == "clip" and back.fps == 12.5 and np.array_equal(back.boxes, r.boxes)


# the CLI: one message, no traceback, non-zero exit (--debug shows the traceback) -----------------
@pytest.fixture(scope="module")
def bundle_path() -> Path:
    from test_untrusted import tiny_bundle

    return tiny_bundle()


def _cli_cases(videos: dict, bundle: Path, tmp: Path) -> list[tuple[list[str], type, str]]:
    good = str(videos["good"])
    b = ["--model", str(bundle)]
    return [
        (["ground", str(tmp / "missing.mp4"), "person-ride-bicycle", *b], VideoError, r"missing\.mp4' does not exist"),
        (["ground", str(videos["text"]), "person-ride-bicycle", *b], VideoError, r"text\.mp4' cannot be opened"),
        (["ground", str(videos["empty"]), "person-ride-bicycle", *b], VideoError, r"empty \(0-byte\) file"),
        (["ground", good, "persn-ride-bicycle", *b], RelationError, r"unknown subject 'persn'; did you mean 'person'"),
        (["ground", good, "person-ride", *b], RelationError, r"'person-ride' has 2 part\(s\)"),
        (["ground", good, "person-ride-bicycle", "--model", str(tmp / "nope.vrgv")], VrgvError, r"nope\.vrgv' does not exist"),
        (["ground", str(tmp / "bad.npz"), "person-ride-bicycle", *b], RegionsError, r"bad\.npz' is not a readable \.npz"),
        (["ground", good, "person-ride-bicycle", "--backend", "nonsense", *b], VrgvError, r"backend 'nonsense' is unknown"),
        (["extract", str(videos["truncated"]), "--out", str(tmp / "x.npz"), "--detector", str(bundle)],
         VideoError, r"truncated\.mp4' cannot be opened"),
        (["eval", "--gt", str(tmp / "gt.json"), "--pred", str(tmp / "p.json")], VrgvError, r"gt\.json"),
        (["batch", str(tmp / "latin1.csv"), "--out", str(tmp / "r.jsonl")], ConfigError,
         r"manifest '.*latin1\.csv' cannot be read \('utf-8' codec.*save it as UTF-8 CSV or JSONL"),
        (["batch", good, "--relations-file", str(tmp / "rels.bin"), "--out", str(tmp / "r.jsonl")], ConfigError,
         r"relations file '.*rels\.bin' is not UTF-8 text"),
        (["batch", good, "--relations", "person-ride-bicycle", "--out", str(tmp / "r.jsonl"), "--workers", "-1", *b],
         ConfigError, r"--workers must be 0 or more, got -1"),
    ]


def test_cli_errors_are_one_line_without_traceback_and_debug_raises(videos, bundle_path, tmp_path, capsys):
    from vrgv.cli import main

    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "latin1.csv").write_bytes("video,relations\ncaf\u00e9.mp4,person-ride-bicycle\n".encode("latin-1"))
    (tmp_path / "rels.bin").write_bytes(b"\xff\xfe\x00person-ride-bicycle")
    for argv, error, message in _cli_cases(videos, bundle_path, tmp_path):
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0, argv
        lines = [ln for ln in err if not ln.startswith(("INFO", "WARNING", "["))]
        assert len(lines) == 1 and lines[0].startswith(f"vrgv {argv[0]}: error: "), (argv, err)
        assert "Traceback" not in "\n".join(err)
        assert re.search(message, lines[0]), (argv, lines[0])
        with pytest.raises(error, match=message):  # --debug lets the exception (and its traceback) through
            main(["--debug", *argv])
        capsys.readouterr()


def test_cli_error_as_a_user_sees_it(videos, bundle_path):
    """The real ``vrgv`` process: one stderr line, exit code 2; ``--debug`` prints the traceback."""
    argv = [sys.executable, "-m", "vrgv", "-q", "ground", str(videos["good"]), "persn-ride-bicycle", "--model", str(bundle_path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "vrgv ground: error: relation 'persn-ride-bicycle': unknown subject 'persn'; did you mean 'person'? "
        "(the model knows 35 objects; list them with `vrgv ground --list-vocabulary`)"]
    debug = subprocess.run([*argv[:3], "--debug", *argv[4:]], capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "RelationError" in debug.stderr


def test_ground_works_on_the_edge_cases_that_are_valid(videos, bundle_path):
    """1 frame, fewer frames than N, grayscale: grounded, not rejected (real bundle, real detector)."""
    from vrgv.grounder import Grounder

    g = Grounder.load(bundle_path, threads=1)
    for key in ("one", "five", "gray", "good"):
        res = g.ground(videos[key], "  Person - RIDE - Bicycle ")
        assert 0 <= res.start_fid <= res.end_fid < read_video(videos[key], 1).num_frames
        assert str(res.relation) == "person-ride-bicycle"
