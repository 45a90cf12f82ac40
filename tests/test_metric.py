"""The paper's metric (§4.1, as the authors' released evaluation computes it), its input readers and `vrgv eval`."""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrgv.cli import main as cli_main
from vrgv.errors import AnnotationError, ConfigError
from vrgv.grounding import Grounding, Trajectory
from vrgv.metric import COLUMNS, box_iou, evaluate, per_relation, trajectory_tiou
from vrgv.predictions import (
    load_ground_truth,
    load_predictions,
    read_predictions,
    save_ground_truth,
    save_predictions,
)
from vrgv.vocab import Vocabulary

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDVRD = SHARED / "data" / "vidvrd"


def traj(frames, box=(0, 0, 9, 9)) -> dict[str, list[float]]:
    """A JSON-style trajectory with the same box at every frame."""
    return {str(f): [float(v) for v in box] for f in frames}


# ------------------------------------------------------------------------------ slow literal reference
def literal_iou(b1, b2) -> float:
    """Box IoU written exactly like the authors' ``evaluations/common.py`` (inclusive pixels)."""
    w1, h1 = b1[2] - b1[0] + 1, b1[3] - b1[1] + 1
    w2, h2 = b2[2] - b2[0] + 1, b2[3] - b2[1] + 1
    ow = max(0, min(b1[2], b2[2]) - max(b1[0], b2[0]) + 1)
    oh = max(0, min(b1[3], b2[3]) - max(b1[1], b2[1]) + 1)
    overlap = ow * oh
    return overlap * 1.0 / (w1 * h1 + w2 * h2 - overlap)


def literal_t(pred: dict, gt: dict, thresholds) -> float:
    total = len(set(gt) | set(pred))
    hits = 0
    for fid in gt:
        if fid in pred:
            iou = literal_iou(gt[fid], pred[fid])
            hits += sum(iou >= th for th in thresholds)
    return hits * 1.0 / (len(thresholds) * total)


def literal_evaluate(gt: dict, pred: dict, tiou: float, thresholds=(0.3, 0.5, 0.7)) -> tuple[float, float, float]:
    """The released ``eval_ground.py`` loop: per video, per GT relation, any instance over the threshold."""
    acc_s = acc_o = acc_r = 0.0
    for vid, rels in gt.items():
        preds = pred.get(vid, {})
        if not preds:
            continue
        s = o = r = 0
        for rel, instances in rels.items():
            if rel not in preds:
                continue
            p = preds[rel]
            fs = fo = fr = False
            for inst in instances:
                ts = literal_t(p["sub"], inst["sub"], thresholds)
                to = literal_t(p["obj"], inst["obj"], thresholds)
                fs |= ts >= tiou
                fo |= to >= tiou
                fr |= min(ts, to) >= tiou
            s, o, r = s + fs, o + fo, r + fr
        acc_s += s / len(rels)
        acc_o += o / len(rels)
        acc_r += r / len(rels)
    n = len(gt)
    return 100 * acc_s / n, 100 * acc_o / n, 100 * acc_r / n


def random_case(seed: int):
    """GT with several videos, relations and instances; predictions with misses, jitter and shifted spans."""
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for v in range(int(rng.integers(1, 6))):
        vid = f"video{v}"
        gt[vid], pred[vid] = {}, {}
        for r in range(int(rng.integers(1, 5))):
            rel = f"dog-{['chase', 'stand_left', 'walk_past', 'above'][r]}-cat"
            instances = []
            for _ in range(int(rng.integers(1, 4))):
                start, length = int(rng.integers(0, 20)), int(rng.integers(1, 15))
                box = rng.integers(0, 40, 2)
                size = rng.integers(8, 30, 2)
                instances.append({k: {str(f): [float(box[0]), float(box[1]), float(box[0] + size[0]), float(box[1] + size[1])]
                                      for f in range(start, start + length)} for k in ("sub", "obj")})
            gt[vid][rel] = instances
            if rng.random() < 0.2 or v == 0 and r == 0 and seed % 3 == 0:
                continue  # a miss (and sometimes a video without predictions)
            base = instances[int(rng.integers(len(instances)))]
            p = {}
            for k in ("sub", "obj"):
                frames = [int(f) for f in base[k]]
                shift = int(rng.integers(-2, 3))
                p[k] = {}
                for f in range(frames[0] + shift, frames[-1] + shift + int(rng.integers(0, 4))):
                    ref = base[k].get(str(f), base[k][str(frames[0])])
                    d = rng.integers(-int(rng.integers(0, 5)), 3, 2).astype(float)
                    p[k][str(f)] = [ref[0] + d[0], ref[1] + d[1], ref[2] + d[0], ref[3] + d[1]]
            pred[vid][rel] = p
    return gt, pred


# ------------------------------------------------------------------------------ hand-computed cases
def test_box_iou_uses_inclusive_pixels():
    # 10x10 boxes sharing 5 columns: +1 convention gives 50 / 150 = 1/3 (without it: 36 / 126 < 0.3)
    assert box_iou([0, 0, 9, 9], [5, 0, 14, 9]) == pytest.approx(1 / 3, abs=1e-15)
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 1.0  # a one-pixel box has area 1, not 0
    assert box_iou([0, 0, 9, 9], [10, 10, 19, 19]) == 0.0  # touching corners do not overlap
    # one frame with IoU 1/3 counts at sIoU 0.3 only: t = 1 / 3
    assert trajectory_tiou({0: [0, 0, 9, 9]}, {0: [5, 0, 14, 9]}) == pytest.approx(1 / 3)


def test_union_denominator():
    # P on frames 0-3, G on 2-5, identical boxes where both exist: 2 common frames, union of 6 frames
    assert trajectory_tiou(traj(range(0, 4)), traj(range(2, 6))) == pytest.approx(2 * 3 / (3 * 6))
    assert trajectory_tiou(traj(range(4)), traj(range(4))) == 1.0
    assert trajectory_tiou(traj([0]), traj([1])) == 0.0
    assert trajectory_tiou({}, {}) == 0.0  # nothing to compare: no credit, no division by zero
    # a Trajectory object and int keys give the same answer as JSON string keys
    t = Trajectory(np.arange(4), np.tile([0.0, 0, 9, 9], (4, 1)))
    assert trajectory_tiou(t, {f: [0, 0, 9, 9] for f in range(2, 6)}) == pytest.approx(1 / 3)


def test_misses_and_video_without_predictions():
    gt = {
        "a": {"dog-chase-cat": [{"sub": traj(range(10)), "obj": traj(range(10))}],
              "dog-above-cat": [{"sub": traj(range(10)), "obj": traj(range(10))}]},
        "b": {"dog-chase-cat": [{"sub": traj(range(5)), "obj": traj(range(5))}]},
    }
    pred = {"a": {"dog-chase-cat": {"sub": traj(range(10)), "obj": traj(range(10))}}}
    report = evaluate(gt, pred)
    # video a: 1 of 2 relations correct = 50 %; video b: no prediction = 0 %; mean 25 %
    for column in COLUMNS:
        assert report.columns[column].values() == (25.0, 25.0, 25.0)
    assert report.num_videos == 2 and report.num_relations == 3 and report.num_predicted == 1
    rows = per_relation(gt, pred)
    assert [(r.video_id, r.relation, r.predicted, r.rel) for r in rows] == [
        ("a", "dog-chase-cat", True, True), ("a", "dog-above-cat", False, False), ("b", "dog-chase-cat", False, False)]


def test_video_without_ground_truth_relations_is_left_out():
    good = {"sub": traj(range(3)), "obj": traj(range(3))}
    gt = {"a": {"dog-chase-cat": [good]}, "empty": {}}
    report = evaluate(gt, {"a": {"dog-chase-cat": good}})
    assert report.num_videos == 1 and report.average.AccR == 100.0


def test_several_instances_relation_needs_one_instance_for_both():
    # subject matches instance 0 only, object matches instance 1 only: AccS = AccO = 100, AccR = 0
    inst0 = {"sub": traj(range(10), (0, 0, 9, 9)), "obj": traj(range(10), (50, 50, 59, 59))}
    inst1 = {"sub": traj(range(10), (100, 0, 109, 9)), "obj": traj(range(10), (200, 0, 209, 9))}
    gt = {"v": {"person-ride-bicycle": [inst0, inst1]}}
    pred = {"v": {"person-ride-bicycle": {"sub": inst0["sub"], "obj": inst1["obj"]}}}
    assert evaluate(gt, pred).average.values() == (100.0, 100.0, 0.0)
    both = {"v": {"person-ride-bicycle": {"sub": inst1["sub"], "obj": inst1["obj"]}}}
    assert evaluate(gt, both).average.values() == (100.0, 100.0, 100.0)
    (row,) = per_relation(gt, pred)
    assert row.num_instances == 2 and row.t_sub == 1.0 and row.t_obj == 1.0 and row.t_rel == 0.0


def test_single_threshold_columns_and_tiou():
    # every frame has IoU 0.6 (10x10 boxes shifted by 2.5 px): n_0.3 = n_0.5 = N, n_0.7 = 0 -> t = 2/3
    g, p = traj(range(6), (0, 0, 9, 9)), traj(range(6), (0, 2.5, 9, 11.5))
    assert box_iou([0, 0, 9, 9], [0, 2.5, 9, 11.5]) == pytest.approx(0.6)
    gt, pred = {"v": {"a-chase-b": [{"sub": g, "obj": g}]}}, {"v": {"a-chase-b": {"sub": p, "obj": g}}}
    report = evaluate(gt, pred, tiou=0.5)
    assert report.columns["siou_0.3"].AccS == 100.0
    assert report.columns["siou_0.5"].AccS == 100.0
    assert report.columns["siou_0.7"].values() == (0.0, 100.0, 0.0)
    assert report.average.values() == (100.0, 100.0, 100.0)  # 2/3 >= 0.5
    assert evaluate(gt, pred, tiou=0.7).average.values() == (0.0, 100.0, 0.0)  # 2/3 < 0.7
    assert evaluate(gt, pred, tiou=2 / 3).average.AccS == 100.0  # the threshold is inclusive


def test_static_dynamic_split_follows_appendix_c():
    good = {"sub": traj(range(4)), "obj": traj(range(4))}
    gt = {"v": {"person-stand_left-dog": [good], "person-walk_left-dog": [good]},
          "w": {"person-walk_past-dog": [good]}}
    pred = {"v": {"person-stand_left-dog": good}, "w": {"person-walk_past-dog": good}}
    report = evaluate(gt, pred)
    assert report.static.values() == (100.0, 100.0, 100.0)  # only video v has a static relation
    assert report.dynamic.AccR == pytest.approx(50.0)  # v: 0 of 1 dynamic, w: 1 of 1
    assert report.average.AccR == pytest.approx(75.0)  # v: 1/2, w: 1/1
    assert (report.num_static_relations, report.num_dynamic_relations) == (1, 2)
    custom = evaluate(gt, pred, static_words=["walk"])
    assert custom.num_static_relations == 2 and custom.static.AccR == pytest.approx(50.0)
    with pytest.raises(ConfigError, match="iterable of words"):
        evaluate(gt, pred, static_words="walk")


def test_relation_keys_are_canonicalized_and_extra_predictions_ignored():
    good = {"sub": traj(range(4)), "obj": traj(range(4))}
    gt = {"v": {"person-ride-bicycle": [good]}}
    pred = {"v": {" Person-RIDE-bicycle ": good, "person-ride-horse": good}, "unknown_video": {"a-b-c": good}}
    report = evaluate(gt, pred)
    assert report.average.AccR == 100.0
    assert report.num_ignored_predictions == 2


def test_grounding_objects_and_error_status_as_predictions():
    good = {"sub": traj(range(4)), "obj": traj(range(4))}
    gt = {"v": {"person-ride-bicycle": [good], "person-ride-horse": [good]}}
    grounding = Grounding("person-ride-bicycle", good["sub"], good["obj"], 0, 3, 0.9, video_id="v")
    pred = {"v": {"person-ride-bicycle": grounding, "person-ride-horse": {"status": "error", "error": "boom"}}}
    report = evaluate(gt, pred)
    assert report.average.values() == (50.0, 50.0, 50.0) and report.num_predicted == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"0": [5, 0, 1, 9]}, "inverted"),
        ({"x": [0, 0, 9, 9]}, "frame ids must be integers"),
        ({"0": [0, 0, 9]}, r"\[x1, y1, x2, y2\]"),
        ({"0": [0, 0, 9, float("nan")]}, "NaN"),
        ({"5": [0, 0, 9, 9], "05": [0, 0, 9, 9]}, "twice"),
        ([[0, 0, 9, 9]], "must map frame ids"),
    ],
)
def test_bad_predicted_trajectories_name_video_and_relation(bad, message):
    good = {"sub": traj(range(4)), "obj": traj(range(4))}
    gt = {"vid7": {"person-ride-bicycle": [good]}}
    with pytest.raises(AnnotationError, match=message) as info:
        evaluate(gt, {"vid7": {"person-ride-bicycle": {"sub": bad, "obj": good["obj"]}}})
    if message != "twice":
        assert "vid7" in str(info.value) and "person-ride-bicycle" in str(info.value)


def test_bad_arguments():
    gt = {"v": {"a-b-c": [{"sub": traj([0]), "obj": traj([0])}]}}
    for tiou in (0, -0.1, 1.5, "x"):
        with pytest.raises(ConfigError, match="tiou"):
            evaluate(gt, {}, tiou=tiou)
    with pytest.raises(AnnotationError, match="needs 'sub' and 'obj'"):
        evaluate({"v": {"a-b-c": [{"sub": traj([0])}]}}, {"v": {"a-b-c": {"sub": traj([0]), "obj": traj([0])}}})
    with pytest.raises(AnnotationError, match="must have 'sub' and 'obj'"):
        evaluate(gt, {"v": {"a-b-c": {"sub": traj([0])}}})
    with pytest.raises(AnnotationError, match="ground truth must be a dict"):
        evaluate([], {})


def test_report_dict_and_tables():
    gt, pred = random_case(1)
    report = evaluate(gt, pred)
    d = report.to_dict()
    assert {"average", "siou_0.3", "siou_0.5", "siou_0.7", "static", "dynamic", "num_videos", "num_relations"} <= set(d)
    assert set(d["average"]) == {"AccS", "AccO", "AccR"}
    assert json.loads(json.dumps(d)) == d
    md = report.to_markdown(name="ours")
    assert "| ours |" in md and "sIoU=0.7" in md and "Dynamic" in md
    assert f"{report.average.AccR:.2f}" in md
    text = report.to_table()
    assert "Average" in text and "Overall" in text and f"{report.columns['siou_0.3'].AccS:.2f}" in text
    assert len(report.rich_tables()) == 2 and len(report.rich_tables(compact=True)) == 2


# ------------------------------------------------------------------------------ randomized vs literal
@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_literal_implementation(seed):
    gt, pred = random_case(seed)
    for tiou in (0.3, 0.5, 0.7):
        report = evaluate(gt, pred, tiou=tiou)
        expected = {"average": literal_evaluate(gt, pred, tiou)}
        for th in (0.3, 0.5, 0.7):
            expected[f"siou_{th}"] = literal_evaluate(gt, pred, tiou, thresholds=(th,))
        for column, values in expected.items():
            assert report.columns[column].values() == pytest.approx(values, abs=1e-9), (seed, tiou, column)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-20, 60), min_size=8, max_size=8))
def test_box_iou_matches_literal(coords):
    a = [min(coords[0], coords[2]), min(coords[1], coords[3]), max(coords[0], coords[2]), max(coords[1], coords[3])]
    b = [min(coords[4], coords[6]), min(coords[5], coords[7]), max(coords[4], coords[6]), max(coords[5], coords[7])]
    assert box_iou(a, b) == literal_iou(a, b)
    assert box_iou(np.array([a, b]), np.array([b, a])).tolist() == [literal_iou(a, b), literal_iou(b, a)]


# ------------------------------------------------------------------------------ readers
def test_prediction_json_round_trip(tmp_path):
    gt, pred = random_case(2)
    path = save_predictions(pred, tmp_path / "pred.json")
    loaded = load_predictions(path)
    assert evaluate(gt, loaded).to_dict() == evaluate(gt, pred).to_dict()
    gpath = save_ground_truth(gt, tmp_path / "gt.json")
    assert evaluate(load_ground_truth(gpath), pred).to_dict() == evaluate(gt, pred).to_dict()
    assert evaluate(str(gpath), path).to_dict() == evaluate(gt, pred).to_dict()  # paths are read too
    assert per_relation(gpath, path) == per_relation(gt, pred)


def test_prediction_jsonl_records(tmp_path):
    good = {"sub": traj(range(4)), "obj": traj(range(4))}
    gt = {"v": {"person-ride-bicycle": [good], "person-ride-horse": [good], "dog-chase-cat": [good]}}
    records = [
        {"video_id": "v", "relation": "person-ride-bicycle", "status": "ok", **good, "segment": [0, 3], "score": 0.5, "error": None},
        {"video_id": "v", "relation": "person-ride-horse", "status": "error", "sub": None, "obj": None,
         "segment": None, "score": None, "error": "VideoError: cannot decode"},
        {"video_id": "v", "relation": "dog-chase-cat", "status": "error", "error": "first try failed"},
        {"video_id": "v", "relation": "dog-chase-cat", "status": "ok", **good, "segment": [0, 3], "score": 0.1},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    loaded = read_predictions(path)
    assert (loaded.num_records, loaded.num_errors) == (4, 2)
    assert set(loaded.predictions["v"]) == {"person-ride-bicycle", "dog-chase-cat"}
    assert evaluate(gt, loaded.predictions).average.AccR == pytest.approx(200 / 3)
    # the same content without the .jsonl suffix is recognized too
    other = tmp_path / "results.json"
    other.write_text(path.read_text())
    assert load_predictions(other) == loaded.predictions


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("p.json", "{not json", "neither valid JSON"),
        ("p.json", "{not json\n{nor this", "neither valid JSON"),
        ("p.json", "", "is empty"),
        ("p.json", "[1, 2]", "must be a JSON object"),
        ("p.json", '{"v": [1]}', "video 'v' must map relation strings"),
        ("p.json", '{"v": {"a-b-c": {"sub": {}}}}', "lacks 'obj'"),
        ("p.json", '{"v": {"a-b-c": {"sub": {}, "obj": [1]}}}', "'obj' must map frame ids"),
        ("p.jsonl", '{"video_id": "v", "relation": "a-b-c", "status": "ok", "sub": {}, "obj": {}}\n{oops', "line 2"),
        ("p.jsonl", '{"relation": "a-b-c"}', "lacks key"),
        ("p.jsonl", '{"video_id": "v", "relation": "a-b-c", "status": "ok"}', "lacks 'sub'"),
    ],
)
def test_bad_prediction_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AnnotationError, match=message) as info:
        read_predictions(path)
    assert str(path) in str(info.value)


def test_ground_truth_from_dataset_root(tmp_path):
    from vrgv.annotations import RelationInstance, VideoAnnotation

    ann = VideoAnnotation("clip", 3, 32, 32, 10.0, {0: "dog", 1: "cat"}, {0: {0: [0, 0, 5, 5]}, 1: {0: [9, 9, 20, 20]}},
                          [RelationInstance(0, 1, "chase", 0, 2)])
    ann.save(tmp_path / "annotations" / "clip.json")
    (tmp_path / "manifest.json").write_text("{}")  # other JSON next to annotations/ is not ground truth
    gt = load_ground_truth(tmp_path)
    assert gt == {"clip": {"dog-chase-cat": [{"sub": {0: [0, 0, 5, 5]}, "obj": {0: [9, 9, 20, 20]}}]}}
    assert load_ground_truth(tmp_path / "annotations" / "clip.json") == gt


def test_bad_ground_truth_files(tmp_path):
    with pytest.raises(AnnotationError, match="does not exist"):
        load_ground_truth(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match="no \\*.json annotation files"):
        load_ground_truth(tmp_path / "empty")
    for content, message in (("{}", "non-empty JSON object"), ('{"v": 3}', "must map relation strings"),
                             ('{"v": {"a-b-c": [{"sub": {}}]}}', "needs 'sub' and 'obj'"),
                             ('{"v": [{"triplet": ["a", "b", "c"]}]}', "needs 'triplet', 'sub_traj'")):
        path = tmp_path / "gt.json"
        path.write_text(content)
        with pytest.raises(AnnotationError, match=message) as info:
            load_ground_truth(path)
        assert str(path) in str(info.value)


# ------------------------------------------------------------------------------ the CLI
def test_cli_eval_json_and_tables(tmp_path, capsys):
    gt, pred = random_case(5)
    gpath, ppath = save_ground_truth(gt, tmp_path / "gt.json"), save_predictions(pred, tmp_path / "p.json")
    assert cli_main(["eval", "--gt", str(gpath), "--pred", str(ppath), "--json", "--tiou", "0.3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["average"] == evaluate(gt, pred, tiou=0.3).average.to_dict()
    assert out["siou_0.7"] == evaluate(gt, pred, tiou=0.3).columns["siou_0.7"].to_dict()
    assert cli_main(["eval", "--gt", str(gpath), "--pred", str(ppath), "--per-relation"]) == 0
    text = capsys.readouterr().out
    assert "AccR" in text and "Dynamic" in text and "dog-chase-cat" in text


def test_cli_eval_errors_without_traceback(tmp_path, capsys):
    bad = tmp_path / "p.json"
    bad.write_text("{oops")
    gt = save_ground_truth({"v": {"a-b-c": [{"sub": traj([0]), "obj": traj([0])}]}}, tmp_path / "gt.json")
    assert cli_main(["eval", "--gt", str(gt), "--pred", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "vrgv eval: error:" in err and str(bad) in err and "Traceback" not in err
    inverted = save_predictions({"v": {"a-b-c": {"sub": {"0": [9, 0, 0, 9]}, "obj": traj([0])}}}, tmp_path / "q.json")
    assert cli_main(["eval", "--gt", str(gt), "--pred", str(inverted)]) == 2
    err = capsys.readouterr().err
    assert "inverted" in err and str(inverted) in err


# ------------------------------------------------------------------------------ real ImageNet-VidVRD files
def test_static_split_reproduces_paper_counts():
    path = VIDVRD / "relations_test.json"
    if not path.exists():
        pytest.skip("needs ../shared/data/vidvrd/relations_test.json")
    vocab = Vocabulary.default()
    predicates = [r[4].split("-")[1] for r in json.loads(path.read_text())]
    static = sum(vocab.is_static(p) for p in predicates)
    assert (static, len(predicates) - static) == (2343, 2492)  # appendix B of the paper


def test_official_annotations_scored_against_themselves():
    folder = VIDVRD / "test10_full"
    if not folder.exists():
        pytest.skip("needs ../shared/data/vidvrd/test10_full")
    gt = load_ground_truth(folder)
    perfect = {v: {r: inst[0] for r, inst in rels.items()} for v, rels in gt.items()}
    report = evaluate(gt, perfect)
    assert report.num_videos == 10 and report.num_relations == 76
    assert all(acc.values() == (100.0, 100.0, 100.0) for acc in report.columns.values())
    # swapping subject and object of every prediction: correct only where the two boxes coincide
    swapped = {v: {r: {"sub": p["obj"], "obj": p["sub"]} for r, p in rels.items()} for v, rels in perfect.items()}
    assert evaluate(gt, swapped).average.AccR < 20.0


@pytest.mark.slow
def test_evaluating_200_vidvrd_size_videos_is_fast():
    """Real test-set trajectories and relation counts (4835 instances, ~1M boxes); CPU time well under 1 s."""
    tpath, rpath = VIDVRD / "test_object_trajectories_gt.json", VIDVRD / "relations_test.json"
    if not (tpath.exists() and rpath.exists()):
        pytest.skip("needs ../shared/data/vidvrd trajectories and relations")
    trajs, rels = json.loads(tpath.read_text()), json.loads(rpath.read_text())
    rng = np.random.default_rng(0)
    gt, pred = defaultdict(dict), defaultdict(dict)
    for vid, _, _, _, rel in rels:
        s, _, o = rel.split("-")
        a = [t for t in trajs[vid] if t["category"] == s] or trajs[vid]
        b = [t for t in trajs[vid] if t["category"] == o] or trajs[vid]
        a, b = a[rng.integers(len(a))], b[rng.integers(len(b))]
        lo, hi = a["begin_fid"], a["end_fid"]
        span = int((hi - lo) * rng.uniform(0.1, 0.6)) + 1
        start = int(rng.integers(lo, max(lo + 1, hi - span)))
        frames = [str(f) for f in range(start, start + span)]
        inst = {k: {f: t["trajectory"][f] for f in frames if f in t["trajectory"]} for k, t in (("sub", a), ("obj", b))}
        gt[vid].setdefault(rel, []).append(inst)
        pred[vid].setdefault(rel, {k: {f: [x + 3 for x in t["trajectory"][f]] for f in list(t["trajectory"])[: 2 * span]}
                                   for k, t in (("sub", a), ("obj", b))})
    assert len(gt) == 200
    cpu = []
    for _ in range(2):
        start = time.process_time()
        report = evaluate(gt, pred)
        cpu.append(time.process_time() - start)
    assert report.num_relations == 2068
    print(f"evaluate CPU time over 200 videos: {min(cpu):.3f} s")
    assert min(cpu) < 1.5, f"evaluate took {min(cpu):.2f} s of CPU for 200 videos"
