"""The synthetic relation world: determinism, rule-exact ground truth, format round trip, video decoding."""
from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

from vrgv.annotations import VideoAnnotation
from vrgv.errors import ConfigError
from vrgv.synth import (
    CATEGORIES,
    DEMO_SEED,
    PREDICATES,
    demo_video,
    generate_split,
    predicate_mask,
    relations_from_boxes,
    sample_video,
)
from vrgv.synth.predicates import MIN_FRAMES, Pair, Track, rule_mask, runs
from vrgv.vocab import Vocabulary

TINY = dict(width=160, height=120, min_frames=30, max_frames=50)


def _scenes(seed: int, count: int, **opts):
    return [sample_video(seed, i, **opts).annotation for i in range(count)]


# --- vocabulary and scene statistics -------------------------------------------------------------
def test_categories_and_predicates_are_vidvrd_words():
    vocab = Vocabulary.default()
    assert len(CATEGORIES) >= 8 and set(CATEGORIES) <= set(vocab.objects)
    assert len(PREDICATES) >= 12 and set(PREDICATES) <= set(vocab.predicates)
    static = [p for p in PREDICATES if vocab.is_static(p)]
    assert len(static) >= 6 and len(PREDICATES) - len(static) >= 6


def test_scene_statistics_over_many_videos():
    anns = _scenes(11, 50, max_frames=150)
    counts = [len(a.categories) for a in anns]
    assert min(counts) >= 2 and max(counts) <= 6
    same_category = sum(len(set(a.categories.values())) < len(a.categories) for a in anns) / len(anns)
    assert same_category >= 0.3, same_category
    assert all(a.relations for a in anns), "every video must hold at least one relation"
    predicates = Counter(r.predicate for a in anns for r in a.relations)
    assert len(predicates) >= 12, predicates
    cover = [(r.end_fid - r.begin_fid) / a.frame_count for a in anns for r in a.relations]
    assert np.mean(cover) < 0.5
    assert len({a.fps for a in anns}) >= 3 and len({a.frame_count for a in anns}) >= 20
    for a in anns:
        assert {*a.categories.values()} <= set(CATEGORIES)
        for traj in a.trajectories.values():
            boxes = np.array(list(traj.values()))
            assert len(boxes) and (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= a.width - 1).all()
            assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= a.height - 1).all()
            assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_frame_count_and_fps_ranges():
    anns = _scenes(12, 20)
    assert all(60 <= a.frame_count <= 600 for a in anns)
    assert all(10 <= a.fps <= 30 for a in anns)


# --- ground truth = rules on the stored boxes ---------------------------------------------------
def test_every_relation_satisfies_its_rule_on_every_frame(tmp_path):
    for i, original in enumerate(_scenes(13, 12, max_frames=240)):
        ann = VideoAnnotation.load(original.save(tmp_path / f"{i}.json"))  # only what the file stores
        assert ann.relations
        for r in ann.relations:
            mask = predicate_mask(ann, r.subject_tid, r.object_tid, r.predicate)
            assert mask[r.begin_fid : r.end_fid].all(), (ann.video_id, r)
            assert r.end_fid - r.begin_fid >= MIN_FRAMES
            # maximal runs: the rule fails just outside the span
            assert r.begin_fid == 0 or not mask[r.begin_fid - 1]
            assert r.end_fid == ann.frame_count or not mask[r.end_fid]
        # and the annotation lists every run of every rule on every ordered pair
        assert relations_from_boxes(ann) == ann.relations


def _track(boxes, fps=10.0, width=320):
    return Track.from_boxes(np.asarray(boxes, float), fps, width)


def _static(box, n=12):
    return _track([box] * n)


def test_static_rules_on_hand_made_boxes():
    a, b = _static([10, 50, 39, 99]), _static([45, 55, 74, 99])  # a just left of b, same ground line
    assert rule_mask("left", Pair.of(a, b, "person", "dog")).all()
    assert rule_mask("right", Pair.of(b, a, "dog", "person")).all()
    assert not rule_mask("left", Pair.of(b, a, "dog", "person")).any()
    assert rule_mask("next_to", Pair.of(a, b, "person", "dog")).all()
    assert not rule_mask("move_left", Pair.of(a, b, "person", "dog")).any()  # nobody moves
    far = _static([200, 50, 229, 99])
    assert not rule_mask("left", Pair.of(a, far, "person", "dog")).any()
    top, low = _static([50, 20, 69, 39]), _static([45, 41, 74, 80])  # top sits on low
    assert rule_mask("above", Pair.of(top, low, "ball", "dog")).all()
    assert rule_mask("beneath", Pair.of(low, top, "dog", "ball")).all()
    near_, back = _static([40, 40, 80, 100]), _static([50, 30, 90, 90])  # overlapping, near_ lower = in front
    assert rule_mask("front", Pair.of(near_, back, "person", "person")).all()
    assert rule_mask("behind", Pair.of(back, near_, "person", "person")).all()
    big, small = _static([10, 20, 69, 99]), _static([75, 80, 94, 99])
    assert rule_mask("larger", Pair.of(big, small, "horse", "ball")).all()
    assert rule_mask("taller", Pair.of(big, small, "horse", "ball")).all()
    assert not rule_mask("larger", Pair.of(small, big, "ball", "horse")).any()


def test_dynamic_rules_on_hand_made_boxes():
    n = 30
    xs = np.arange(n) * 4.0  # 40 px/s at 10 fps = 0.125 frame widths per second
    walker = _track([[x, 60, x + 19, 99] for x in xs])
    post = _static([140, 60, 159, 99], n)
    toward = rule_mask("move_toward", Pair.of(walker, post, "person", "bicycle"))
    assert toward[2:-2].any() and not toward[:2].any()  # velocity undefined at the track ends
    assert not rule_mask("move_away", Pair.of(walker, post, "person", "bicycle")).any()
    leader = _track([[x + 40, 60, x + 59, 99] for x in xs])
    assert rule_mask("follow", Pair.of(walker, leader, "dog", "person"))[2:-2].all()
    assert not rule_mask("chase", Pair.of(walker, leader, "dog", "person")).any()  # too slow for a chase
    fast, fast_lead = _track([[3 * x, 60, 3 * x + 19, 99] for x in xs]), _track([[3 * x + 40, 60, 3 * x + 59, 99] for x in xs])
    assert rule_mask("chase", Pair.of(fast, fast_lead, "dog", "person"))[2:-2].all()
    assert not rule_mask("chase", Pair.of(fast, fast_lead, "ball", "person")).any()  # balls do not chase
    rider = _track([[x + 5, 30, x + 20, 80] for x in xs])
    mount = _track([[x, 60, x + 30, 99] for x in xs])
    assert rule_mask("ride", Pair.of(rider, mount, "person", "horse"))[2:-2].all()
    assert not rule_mask("ride", Pair.of(rider, mount, "dog", "horse")).any()
    gone = walker.boxes.copy()
    gone[10:20] = np.nan  # a missing box makes every rule false there
    assert not rule_mask("follow", Pair.of(_track(gone), leader, "dog", "person"))[8:22].any()


def test_runs_are_maximal_and_long_enough():
    mask = np.zeros(40, bool)
    mask[0:8] = mask[10:15] = mask[20:40] = True
    assert runs(mask, 8) == [(0, 8), (20, 40)]


# --- files ----------------------------------------------------------------------------------------
def test_reader_reads_what_the_writer_wrote(tmp_path):
    video = sample_video(14, 0, **TINY)
    _, ann_path = video.write(tmp_path)
    back = VideoAnnotation.load(ann_path)
    a = video.annotation
    assert (back.video_id, back.frame_count, back.width, back.height, back.fps) == (
        a.video_id, a.frame_count, a.width, a.height, a.fps)
    assert back.categories == a.categories and back.trajectories == a.trajectories
    assert back.relations == a.relations and back.relation_strings() == a.relation_strings()
    assert back.ground_truth() == a.ground_truth()


def test_mp4_decodes_to_the_annotated_frames(tmp_path):
    video = sample_video(15, 1, **TINY)
    frames = list(video.frames())
    ann = video.annotation
    assert len(frames) == ann.frame_count
    assert frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8
    assert np.array_equal(frames[5], next(iter(list(video.frames())[5:6])))  # rendering is deterministic
    video_path, _ = video.write(tmp_path)
    cap = cv2.VideoCapture(str(video_path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    cap.release()
    assert len(decoded) == ann.frame_count
    assert decoded[0].shape == (120, 160, 3)
    assert abs(fps - ann.fps) < 0.01
    err = np.abs(decoded[3][:, :, ::-1].astype(int) - frames[3].astype(int)).mean()
    assert err < 20, err  # the mp4 holds the rendered frames (up to compression)


def test_frames_are_textured_not_flat():
    frame = next(iter(sample_video(16, 0, **TINY).frames()))
    patch = frame[-30:, :40].reshape(-1, 3).astype(float)
    assert patch.std(axis=0).max() > 3.0  # ground texture and sensor noise


def test_same_seed_gives_byte_identical_annotations(tmp_path):
    a = generate_split(tmp_path / "a", 2, seed=21, workers=1, progress=False, **TINY)
    b = generate_split(tmp_path / "b", 2, seed=21, workers=1, progress=False, **TINY)
    assert [p.name for p in a] == ["synth_s21_00000.json", "synth_s21_00001.json"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
        assert (pa.parents[1] / "videos" / (pa.stem + ".mp4")).is_file()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 21 and manifest["count"] == 2 and manifest["complete"]
    assert manifest["video_ids"] == ["synth_s21_00000", "synth_s21_00001"]
    other = generate_split(tmp_path / "c", 1, seed=22, workers=1, progress=False, **TINY)
    assert other[0].name == "synth_s22_00000.json" and other[0].read_bytes() != a[0].read_bytes()


def test_split_folder_refuses_another_seed_and_resumes(tmp_path):
    generate_split(tmp_path, 1, seed=23, workers=1, progress=False, **TINY)
    with pytest.raises(ConfigError, match="different split"):
        generate_split(tmp_path, 1, seed=24, workers=1, progress=False, **TINY)
    ann = tmp_path / "annotations" / "synth_s23_00000.json"
    before = ann.stat().st_mtime_ns
    generate_split(tmp_path, 1, seed=23, workers=1, progress=False, **TINY)  # already complete: kept
    assert ann.stat().st_mtime_ns == before


def test_invalid_options_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="frame range"):
        sample_video(1, 0, min_frames=100, max_frames=50)
    with pytest.raises(ConfigError, match="split range"):
        generate_split(tmp_path, 1, seed=1000, progress=False)
    with pytest.raises(ConfigError, match="at least 1"):
        generate_split(tmp_path, 0, seed=1, progress=False)


def test_cli_writes_a_split(tmp_path, capsys):
    from vrgv.cli import main

    code = main(["synth", "--out", str(tmp_path), "--videos", "1", "--seed", "25", "--workers", "1",
                 "--width", "160", "--height", "120", "--min-frames", "30", "--max-frames", "40", "--no-progress"])
    assert code == 0
    ann = VideoAnnotation.load(tmp_path / "annotations" / "synth_s25_00000.json")
    assert 30 <= ann.frame_count <= 40 and ann.width == 160
    assert main(["synth", "--out", str(tmp_path / "x"), "--videos", "1", "--seed", "5000"]) != 0
    assert main(["synth", "--out", str(tmp_path / "x")]) != 0  # --videos and --seed missing
    capsys.readouterr()
    assert main(["synth", "--stats", str(tmp_path)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["videos"] == 1 and stats["instances_per_video"] == len(ann.relations)


@pytest.mark.slow
def test_process_pool_matches_one_process(tmp_path):
    one = generate_split(tmp_path / "one", 3, seed=26, workers=1, progress=False, **TINY)
    two = generate_split(tmp_path / "two", 3, seed=26, workers=2, progress=False, **TINY)
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]


@pytest.mark.slow
def test_demo_video_uses_the_reserved_seed(tmp_path):
    video_path, ann_path = demo_video(tmp_path)
    ann = VideoAnnotation.load(ann_path)
    assert ann.video_id == f"synth_s{DEMO_SEED}_00000" and video_path.is_file()
    assert len(ann.relation_strings()) >= 1


def test_runs_bridge_short_gaps_when_asked():
    mask = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1], bool)
    assert runs(mask, 1) == [(0, 2), (4, 7), (10, 11)]
    assert runs(mask, 1, merge_gap=2) == [(0, 7), (10, 11)]
    assert runs(mask, 1, merge_gap=3) == [(0, 11)]
    assert runs(mask, 8, merge_gap=2) == []


def test_grounding_world_has_small_casts_and_long_instances():
    from vrgv.synth.predicates import relations_from_boxes
    from vrgv.synth.world import WORLDS, SynthOptions, simulate_scene

    rules = WORLDS["grounding"]
    counts = []
    for i in range(12):
        scene = simulate_scene(40, i, SynthOptions(world="grounding"))
        ann = scene.annotation
        assert 1 <= len(ann.categories) <= max(rules.cast_sizes)
        assert ann.relations, "every video holds at least one relation"
        for inst in ann.relations:
            assert inst.end_fid - inst.begin_fid >= rules.min_fraction * ann.frame_count
        gap = int(round(rules.merge_gap_s * ann.fps))
        assert relations_from_boxes(ann, merge_gap=gap, min_fraction=rules.min_fraction) == ann.relations
        counts.append(len(ann.relation_strings()))
        standard = simulate_scene(40, i).annotation  # the same (seed, index) in the standard world differs
        assert standard.video_id == ann.video_id
    assert np.mean(counts) < 12


def test_unknown_world_is_refused(tmp_path):
    from vrgv.synth.world import SynthOptions

    with pytest.raises(ConfigError, match="unknown synthetic world"):
        SynthOptions(world="crowded")
    with pytest.raises(ConfigError, match="unknown synthetic world"):
        generate_split(tmp_path / "s", 1, 0, world="crowded", progress=False)
