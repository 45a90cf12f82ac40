"""Official VidVRD/VidOR annotation JSON: reader on the real files, writer -> reader round trip, ground truth, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vrgv.annotations import (
    RelationInstance,
    VideoAnnotation,
    ground_truth_from_annotations,
    iter_annotation_files,
    load_annotations,
)
from vrgv.errors import AnnotationError
from vrgv.predictions import ground_truth_from_json, load_ground_truth

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VIDOR = SHARED / "data" / "vidor_samples"
TEST10 = SHARED / "data" / "vidvrd" / "test10_full"
TEST10_GT = SHARED / "data" / "vidvrd" / "test10_gt_relation_frame.json"


def needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder)")


def small_annotation() -> VideoAnnotation:
    """Two objects over 6 frames; the dog is missing at frame 3; two relation instances."""
    return VideoAnnotation(
        video_id="toy",
        frame_count=6,
        width=64,
        height=48,
        fps=25.0,
        categories={0: "dog", 1: "frisbee"},
        trajectories={0: {f: [f, 1, 10 + f, 20] for f in range(6) if f != 3}, 1: {f: [30, 2.5, 40, 12.25] for f in range(2, 6)}},
        relations=[RelationInstance(0, 1, "chase", 0, 4), RelationInstance(0, 1, "chase", 4, 6), RelationInstance(1, 0, "faster", 2, 5)],
    )


# ------------------------------------------------------------------------------ real files
@pytest.mark.parametrize("folder", [VIDOR, TEST10], ids=["vidor_samples", "vidvrd_test10"])
def test_reader_on_real_files(folder):
    needs(folder)
    files = list(iter_annotation_files(folder))
    annotations = load_annotations(folder)
    assert len(annotations) == len(files) > 0
    for path, ann in zip(files, annotations):
        raw = json.loads(path.read_text())
        assert ann.video_id == raw["video_id"] == path.stem
        assert (ann.frame_count, ann.width, ann.height) == (raw["frame_count"], raw["width"], raw["height"])
        assert len(ann.relations) == len(raw["relation_instances"])
        assert set(ann.categories) == {o["tid"] for o in raw["subject/objects"]}
        boxes = sum(len(t) for t in ann.trajectories.values())
        assert boxes == sum(len(frame) for frame in raw["trajectories"])
        for inst, r in zip(ann.relations, raw["relation_instances"]):
            assert (inst.subject_tid, inst.object_tid, inst.predicate) == (r["subject_tid"], r["object_tid"], r["predicate"])
            assert 0 <= inst.begin_fid < inst.end_fid <= ann.frame_count
        for fid, frame in enumerate(raw["trajectories"]):
            for entry in frame:
                b = entry["bbox"]
                assert ann.trajectories[entry["tid"]][fid] == [b["xmin"], b["ymin"], b["xmax"], b["ymax"]]


def test_vidvrd_counts():
    needs(TEST10)
    annotations = load_annotations(TEST10)
    assert len(annotations) == 10
    assert sum(len(a.relations) for a in annotations) == 156  # as SOURCES.md states
    assert all(a.fps is None for a in annotations)


@pytest.mark.parametrize("folder", [VIDOR, TEST10], ids=["vidor_samples", "vidvrd_test10"])
def test_real_files_round_trip(folder, tmp_path):
    needs(folder)
    for ann in load_annotations(folder):
        path = ann.save(tmp_path / f"{ann.video_id}.json")
        again = VideoAnnotation.load(path)
        assert again.video_id == ann.video_id and again.frame_count == ann.frame_count and again.fps == ann.fps
        assert again.categories == ann.categories
        assert again.trajectories == ann.trajectories
        assert again.relations == ann.relations
        assert again.relation_strings() == ann.relation_strings()
        assert again.ground_truth() == ann.ground_truth()


def test_ground_truth_matches_released_relation_frames():
    """GT built from the official annotations equals the separately derived per-instance file."""
    needs(TEST10)
    needs(TEST10_GT)
    ours = ground_truth_from_annotations(load_annotations(TEST10))
    released = ground_truth_from_json(json.loads(TEST10_GT.read_text()), "test10_gt_relation_frame.json")
    assert set(ours) == set(released)
    for vid in ours:
        assert set(ours[vid]) == set(released[vid])
        for rel in ours[vid]:
            mine = sorted((tuple(sorted(i["sub"])), tuple(sorted(i["obj"]))) for i in ours[vid][rel])
            theirs = sorted(
                (tuple(sorted(int(f) for f in i["sub"])), tuple(sorted(int(f) for f in i["obj"]))) for i in released[vid][rel]
            )
            assert mine == theirs, (vid, rel)
            for a, b in zip(sorted(ours[vid][rel], key=lambda i: min(i["sub"])),
                            sorted(released[vid][rel], key=lambda i: min(int(f) for f in i["sub"]))):
                assert all(a["sub"][int(f)] == box for f, box in b["sub"].items())
    assert load_ground_truth(TEST10).keys() == ours.keys()


def test_single_official_file_as_ground_truth():
    needs(VIDOR)
    path = next(iter_annotation_files(VIDOR))
    gt = load_ground_truth(path)
    ann = VideoAnnotation.load(path)
    assert list(gt) == [ann.video_id] and set(gt[ann.video_id]) == set(ann.relation_strings())


# ------------------------------------------------------------------------------ writer -> reader
def test_writer_reader_round_trip(tmp_path):
    ann = small_annotation()
    ann.extra["video_path"] = "0001/toy.mp4"
    path = ann.save(tmp_path / "sub" / "toy.json")
    assert not list(tmp_path.rglob(".*.tmp"))  # the atomic write leaves no temp file
    raw = json.loads(path.read_text())
    assert raw["trajectories"][3] == [{"tid": 1, "bbox": {"xmin": 30, "ymin": 2.5, "xmax": 40, "ymax": 12.25}}]
    assert raw["relation_instances"][0] == {"subject_tid": 0, "object_tid": 1, "predicate": "chase", "begin_fid": 0, "end_fid": 4}
    again = VideoAnnotation.load(path)
    assert again == ann
    assert VideoAnnotation.from_dict(ann.to_dict()) == ann
    assert path.read_bytes() == ann.save(tmp_path / "again.json").read_bytes()  # deterministic output


def test_relation_strings_and_ground_truth():
    ann = small_annotation()
    assert ann.relation_strings() == ["dog-chase-frisbee", "frisbee-faster-dog"]
    gt = ann.ground_truth()
    chase = gt["dog-chase-frisbee"]
    assert len(chase) == 2  # two instances of one relation string
    assert sorted(chase[0]["sub"]) == [0, 1, 2]  # frame 3 has no dog box; end_fid 4 is exclusive
    assert sorted(chase[0]["obj"]) == [2, 3]
    assert chase[1]["sub"] == {4: [4, 1, 14, 20], 5: [5, 1, 15, 20]}
    assert gt["frisbee-faster-dog"][0]["sub"] == {f: [30, 2.5, 40, 12.25] for f in (2, 3, 4)}
    assert ground_truth_from_annotations([ann]) == {"toy": gt}


# ------------------------------------------------------------------------------ errors
def test_reader_errors(tmp_path):
    base = small_annotation().to_dict()
    cases = [
        ({k: v for k, v in base.items() if k != "frame_count"}, "does not follow the VidVRD/VidOR format"),
        ({**base, "trajectories": base["trajectories"] + [[]]}, "trajectory frames but frame_count is 6"),
        ({**base, "trajectories": [[{"tid": 7, "bbox": {"xmin": 0, "ymin": 0, "xmax": 1, "ymax": 1}}]]}, "unknown tid 7"),
        ({**base, "relation_instances": [{"subject_tid": 0, "object_tid": 9, "predicate": "chase", "begin_fid": 0,
                                          "end_fid": 2}]}, "names unknown tid 9"),
        ({**base, "relation_instances": [{"subject_tid": 0, "object_tid": 1, "predicate": "chase", "begin_fid": 3,
                                          "end_fid": 3}]}, "empty span"),
        ({**base, "width": "wide"}, "does not follow"),
    ]
    for i, (data, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(AnnotationError, match=message) as info:
            VideoAnnotation.load(path)
        if "empty span" not in message:
            assert str(path) in str(info.value)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        VideoAnnotation.load(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(AnnotationError, match="must hold a JSON object"):
        VideoAnnotation.load(tmp_path / "list.json")
    with pytest.raises(AnnotationError, match="does not exist"):
        VideoAnnotation.load(tmp_path / "missing.json")
    with pytest.raises(AnnotationError, match="does not exist"):
        load_annotations(tmp_path / "no_folder")
