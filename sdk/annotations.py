"""Official ImageNet-VidVRD / VidOR per-video annotation JSON: read, write, and turn into evaluation ground truth.

Format: ``video_id``, ``frame_count``, ``fps``, ``width``, ``height``, ``subject/objects`` (tid, category),
``trajectories`` (one list per frame of ``{"tid", "bbox": {xmin, ymin, xmax, ymax}}``) and
``relation_instances`` (``subject_tid``, ``object_tid``, ``predicate``, ``begin_fid``, ``end_fid`` exclusive).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrgv.errors import AnnotationError

Box = list[float]
FORMAT_VERSION = "VERSION 1.0"  # the "version" field of official annotation files
MAX_FRAME_COUNT = 10**8  # about 39 days at 30 fps; larger counts are corrupt files
GroundTruth = dict[str, dict[str, list[dict[str, dict[int, Box]]]]]


@dataclass(frozen=True)
class RelationInstance:
    """One annotated relation: subject/object track ids, predicate and the frame span [begin, end)."""

    subject_tid: int
    object_tid: int
    predicate: str
    begin_fid: int
    end_fid: int

    def __post_init__(self) -> None:
        if self.end_fid <= self.begin_fid:
            raise AnnotationError(
                f"relation instance {self.predicate!r} has an empty span [{self.begin_fid}, {self.end_fid}) "
                f"(end_fid is exclusive)"
            )


@dataclass
class VideoAnnotation:
    """Everything one official annotation file says about one video."""

    video_id: str
    frame_count: int
    width: int
    height: int
    fps: float | None
    categories: dict[int, str]
    trajectories: dict[int, dict[int, Box]]  # tid -> {fid: [x1, y1, x2, y2]}
    relations: list[RelationInstance] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def relation_string(self, inst: RelationInstance) -> str:
        return f"{self.categories[inst.subject_tid]}-{inst.predicate}-{self.categories[inst.object_tid]}"

    def relation_strings(self) -> list[str]:
        """Distinct relation strings of the video, in first-appearance order (the weak labels)."""
        seen: dict[str, None] = {}
        for inst in self.relations:
            seen.setdefault(self.relation_string(inst), None)
        return list(seen)

    # reading -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "VideoAnnotation":
        try:
            video_id = str(data["video_id"])
            frame_count = int(data["frame_count"])
            if not 0 <= frame_count <= MAX_FRAME_COUNT:  # a corrupt count would make to_dict allocate forever
                raise AnnotationError(
                    f"annotation {source}: frame_count {frame_count} is outside [0, {MAX_FRAME_COUNT}]; the file is corrupt"
                )
            width, height = int(data["width"]), int(data["height"])
            fps = data.get("fps")
            fps = None if fps is None else float(fps)
            categories = {int(o["tid"]): str(o["category"]) for o in data["subject/objects"]}
            trajectories: dict[int, dict[int, Box]] = {tid: {} for tid in categories}
            frames = data.get("trajectories", [])
            if len(frames) > frame_count:
                raise AnnotationError(
                    f"annotation {source}: {len(frames)} trajectory frames but frame_count is {frame_count}"
                )
            for fid, boxes in enumerate(frames):
                for entry in boxes:
                    tid = int(entry["tid"])
                    if tid not in categories:
                        raise AnnotationError(f"annotation {source}: frame {fid} names unknown tid {tid}")
                    b = entry["bbox"]
                    box = [float(b["xmin"]), float(b["ymin"]), float(b["xmax"]), float(b["ymax"])]
                    trajectories[tid][fid] = box
            relations = []
            for r in data.get("relation_instances", []):
                inst = RelationInstance(
                    int(r["subject_tid"]), int(r["object_tid"]), str(r["predicate"]), int(r["begin_fid"]), int(r["end_fid"])
                )
                if inst.begin_fid < 0 or inst.end_fid > frame_count:
                    raise AnnotationError(
                        f"annotation {source}: relation {inst.predicate!r} spans frames [{inst.begin_fid}, "
                        f"{inst.end_fid}) outside the video's [0, {frame_count})"
                    )
                for tid in (inst.subject_tid, inst.object_tid):
                    if tid not in categories:
                        raise AnnotationError(f"annotation {source}: relation {inst.predicate!r} names unknown tid {tid}")
                relations.append(inst)
        except AnnotationError as exc:
            if source in str(exc):
                raise
            raise AnnotationError(f"annotation {source}: {exc}") from None  # name the file, not just the span
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: 1e400 frame ids
            raise AnnotationError(
                f"annotation {source} does not follow the VidVRD/VidOR format ({type(exc).__name__}: {exc})"
            ) from None
        known = {"video_id", "frame_count", "fps", "width", "height", "subject/objects", "trajectories", "relation_instances"}
        extra = {k: v for k, v in data.items() if k not in known}
        if extra.get("version") == FORMAT_VERSION:
            del extra["version"]  # written by to_dict anyway; dropping it makes save -> load exact
        return cls(video_id, frame_count, width, height, fps, categories, trajectories, relations, extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VideoAnnotation":
        path = Path(path)
        if not path.is_file():
            raise AnnotationError(f"annotation file {str(path)!r} does not exist or is not a file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[...]]]]
            raise AnnotationError(f"annotation file {str(path)!r} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise AnnotationError(f"annotation file {str(path)!r} must hold a JSON object")
        return cls.from_dict(data, source=repr(str(path)))

    # writing -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        frames: list[list[dict]] = [[] for _ in range(self.frame_count)]
        for tid in sorted(self.trajectories):
            for fid, box in sorted(self.trajectories[tid].items()):
                x1, y1, x2, y2 = box
                frames[fid].append(
                    {"tid": tid, "bbox": {"xmin": _num(x1), "ymin": _num(y1), "xmax": _num(x2), "ymax": _num(y2)}}
                )
        out = {
            "version": FORMAT_VERSION,
            "video_id": self.video_id,
            "frame_count": self.frame_count,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "subject/objects": [{"tid": t, "category": c} for t, c in sorted(self.categories.items())],
            "trajectories": frames,
            "relation_instances": [
                {
                    "subject_tid": r.subject_tid,
                    "object_tid": r.object_tid,
                    "predicate": r.predicate,
                    "begin_fid": r.begin_fid,
                    "end_fid": r.end_fid,
                }
                for r in self.relations
            ],
        }
        out.update(self.extra)
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write deterministic JSON (sorted tids and frames) atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
        return path

    # ground truth ------------------------------------------------------------------------------
    def ground_truth(self) -> dict[str, list[dict[str, dict[int, Box]]]]:
        """``{relation: [{"sub": {fid: box}, "obj": {fid: box}}, ...]}``, boxes of every frame in [begin, end)."""
        gt: dict[str, list[dict[str, dict[int, Box]]]] = {}
        for inst in self.relations:
            sub_traj, obj_traj = self.trajectories[inst.subject_tid], self.trajectories[inst.object_tid]
            span = range(inst.begin_fid, inst.end_fid)
            gt.setdefault(self.relation_string(inst), []).append(
                {
                    "sub": {f: sub_traj[f] for f in span if f in sub_traj},
                    "obj": {f: obj_traj[f] for f in span if f in obj_traj},
                }
            )
        return gt


def iter_annotation_files(folder: str | os.PathLike) -> Iterator[Path]:
    """The ``*.json`` files of a folder (recursively), sorted."""
    folder = Path(folder)
    if not folder.exists():
        raise AnnotationError(f"annotation folder {str(folder)!r} does not exist")
    if folder.is_file():
        yield folder
        return
    yield from sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))


def load_annotations(folder: str | os.PathLike) -> list[VideoAnnotation]:
    """Every annotation file under ``folder`` (or the single file ``folder``)."""
    return [VideoAnnotation.load(p) for p in iter_annotation_files(folder)]


def ground_truth_from_annotations(annotations: Iterable[VideoAnnotation]) -> GroundTruth:
    """Evaluation ground truth ``{video_id: {relation: [instances]}}`` from annotations."""
    return {a.video_id: a.ground_truth() for a in annotations}


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(float(x), 2)
