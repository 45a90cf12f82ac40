"""Readers and writers for the metric's inputs: predictions (JSON or batch JSONL) and evaluation ground truth.

Predictions: ``{video_id: {relation: {"sub": {fid: box}, "obj": {fid: box}, ...}}}`` (extra keys allowed), or
the JSONL that ``vrgv batch`` writes, one record per line with ``video_id``, ``relation``, ``status``, ``sub``,
``obj``, ``segment``, ``score``, ``error``; records with status ``error`` are misses. Ground truth: a JSON
``{video_id: {relation: [{"sub": {fid: box}, "obj": {fid: box}}, ...]}}``, a folder of official
VidVRD/VidOR annotation files, or one such file.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vrgv.annotations import GroundTruth, VideoAnnotation, ground_truth_from_annotations, load_annotations
from vrgv.errors import AnnotationError, RelationError
from vrgv.relation import Relation

log = logging.getLogger(__name__)

Predictions = dict[str, dict[str, dict[str, Any]]]
ERROR_STATUS = "error"
_PRED_EXAMPLE = '{"<video_id>": {"person-ride-bicycle": {"sub": {"0": [x1, y1, x2, y2]}, "obj": {...}}}}'
_GT_EXAMPLE = '{"<video_id>": {"person-ride-bicycle": [{"sub": {"0": [x1, y1, x2, y2]}, "obj": {...}}]}}'


@lru_cache(maxsize=65536)
def relation_key(text: str) -> str:
    """Canonical relation string used to match predictions to ground truth (lower case, trimmed words)."""
    try:
        return str(Relation.parse(text))
    except RelationError:
        return str(text).strip().lower()


@dataclass
class PredictionFile:
    """What a prediction file holds: the predictions plus how many records it had and how many failed."""

    predictions: Predictions
    source: str
    num_records: int = 0
    num_errors: int = 0
    errors: list[str] = field(default_factory=list)  # first few error messages, for the CLI

    def __post_init__(self) -> None:
        if not isinstance(self.predictions, dict):
            raise AnnotationError(f"predictions of {self.source} must be a dict video_id -> relation -> prediction")
        if self.num_records < 0 or self.num_errors < 0 or self.num_errors > self.num_records:
            raise AnnotationError(
                f"predictions of {self.source}: inconsistent counts ({self.num_errors} errors of {self.num_records} records)"
            )


# ------------------------------------------------------------------------------------------------ predictions
def load_predictions(path: str | os.PathLike) -> Predictions:
    """Predictions ``{video_id: {relation: {"sub", "obj", ...}}}`` from a JSON or JSONL file."""
    return read_predictions(path).predictions


def read_predictions(path: str | os.PathLike) -> PredictionFile:
    """Read a prediction JSON or JSONL file (``.jsonl``/``.ndjson``, or sniffed from the content)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"prediction file {str(path)!r} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"prediction file {str(path)!r} is not UTF-8 text ({exc})") from None
    source = repr(str(path))
    if not text.strip():
        raise AnnotationError(f"prediction file {source} is empty; expected JSON like {_PRED_EXAMPLE} or JSONL")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return predictions_from_jsonl(text.splitlines(), source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if len(text.strip().splitlines()) > 1:  # JSONL under another suffix?
            try:
                return predictions_from_jsonl(text.splitlines(), source)
            except AnnotationError:
                pass
        raise AnnotationError(
            f"prediction file {source} is neither valid JSON ({exc}) nor JSONL with one record per line"
        ) from None
    if isinstance(data, dict) and "video_id" in data and "relation" in data and not isinstance(data["relation"], dict):
        return predictions_from_jsonl(text.splitlines(), source)  # a one-record JSONL file
    return predictions_from_json(data, source)


def predictions_from_json(data: Any, source: str = "<dict>") -> PredictionFile:
    """Validate the structure of a prediction dict; relation keys are canonicalized, ``null`` values dropped."""
    if not isinstance(data, Mapping):
        raise AnnotationError(f"predictions {source} must be a JSON object like {_PRED_EXAMPLE}, got {type(data).__name__}")
    out: Predictions = {}
    records = errors = 0
    for video_id, relations in data.items():
        if not isinstance(relations, Mapping):
            raise AnnotationError(
                f"predictions {source}: video {video_id!r} must map relation strings to predictions, "
                f"got {type(relations).__name__}; expected {_PRED_EXAMPLE}"
            )
        video = out.setdefault(str(video_id), {})
        for relation, pred in relations.items():
            records += 1
            if pred is None or (isinstance(pred, Mapping) and pred.get("status") == ERROR_STATUS):
                errors += 1
                continue
            video[relation_key(relation)] = _check_prediction(pred, f"predictions {source}: video {video_id!r} relation {relation!r}")
    return PredictionFile(out, source, records, errors)


def predictions_from_jsonl(lines: list[str] | Iterator[str], source: str = "<lines>") -> PredictionFile:
    """Batch JSONL: one record per line; ``status == "error"`` records are misses; a later success wins."""
    out: Predictions = {}
    records = errors = 0
    messages: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"predictions {source} line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{where} is not valid JSON ({exc}); each line must hold one record") from None
        if not isinstance(rec, Mapping):
            raise AnnotationError(f"{where} must be a JSON object with video_id, relation, status, sub, obj")
        missing = [k for k in ("video_id", "relation") if k not in rec]
        if missing:
            raise AnnotationError(f"{where} lacks key(s) {missing}; every record needs video_id and relation")
        records += 1
        video_id, relation = str(rec["video_id"]), relation_key(str(rec["relation"]))
        video = out.setdefault(video_id, {})
        if rec.get("status") == ERROR_STATUS:
            errors += 1
            if len(messages) < 5:
                messages.append(f"{video_id} {relation}: {rec.get('error')}")
            continue
        if relation in video:
            log.warning("%s repeats video %r relation %r; the later record wins", where, video_id, relation)
        video[relation] = _check_prediction(rec, where)
    if records == 0:
        raise AnnotationError(f"predictions {source} hold no records; expected one JSON record per line")
    return PredictionFile(out, source, records, errors, messages)


def _check_prediction(pred: Any, where: str) -> Any:
    """A prediction is a Grounding-like object or a dict whose ``sub`` and ``obj`` map frame ids to boxes."""
    if hasattr(pred, "subject") and hasattr(pred, "object"):
        return pred
    if not isinstance(pred, Mapping):
        raise AnnotationError(f"{where} must be an object with 'sub' and 'obj', got {type(pred).__name__}")
    for key in ("sub", "obj"):
        if key not in pred:
            raise AnnotationError(f"{where} lacks '{key}'; a prediction is {{'sub': {{fid: box}}, 'obj': {{fid: box}}}}")
        if not isinstance(pred[key], Mapping):
            raise AnnotationError(f"{where}: '{key}' must map frame ids to [x1, y1, x2, y2], got {type(pred[key]).__name__}")
    return pred


def save_predictions(predictions: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write predictions as JSON (``Grounding`` values are written with ``to_dict()``), atomically."""
    path = Path(path)
    data = {
        str(v): {str(r): (p.to_dict() if hasattr(p, "to_dict") else p) for r, p in rels.items()}
        for v, rels in predictions.items()
    }
    return _write_json(data, path)


# ------------------------------------------------------------------------------------------------ ground truth
def load_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Ground truth from a GT JSON, a folder of official annotation files (or its parent), or one annotation file."""
    path = Path(path)
    if path.is_dir() and (path / "annotations").is_dir():
        path = path / "annotations"  # a dataset root such as `vrgv synth --out DIR`
    if path.is_dir():
        annotations = load_annotations(path)
        if not annotations:
            raise AnnotationError(f"ground-truth folder {str(path)!r} holds no *.json annotation files")
        return ground_truth_from_annotations(annotations)
    if not path.is_file():
        raise AnnotationError(f"ground truth {str(path)!r} does not exist; give a GT JSON or a folder of annotation files")
    source = repr(str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"ground-truth file {source} is not valid JSON ({exc})") from None
    if isinstance(data, dict) and "subject/objects" in data:
        return ground_truth_from_annotations([VideoAnnotation.from_dict(data, source=source)])
    return ground_truth_from_json(data, source)


def ground_truth_from_json(data: Any, source: str = "<dict>") -> GroundTruth:
    """Validate a GT dict; also accepts the per-video instance lists ``[{triplet, sub_traj, obj_traj}, ...]``."""
    if not isinstance(data, Mapping) or not data:
        raise AnnotationError(f"ground truth {source} must be a non-empty JSON object like {_GT_EXAMPLE}")
    out: GroundTruth = {}
    for video_id, relations in data.items():
        where = f"ground truth {source}: video {video_id!r}"
        video: dict[str, list] = out.setdefault(str(video_id), {})
        if isinstance(relations, list):  # [{"triplet": [s, p, o], "sub_traj": {...}, "obj_traj": {...}}, ...]
            for i, inst in enumerate(relations):
                if not isinstance(inst, Mapping) or not {"triplet", "sub_traj", "obj_traj"} <= set(inst):
                    raise AnnotationError(f"{where} instance {i} needs 'triplet', 'sub_traj' and 'obj_traj'")
                triplet = inst["triplet"]
                name = "-".join(triplet) if isinstance(triplet, (list, tuple)) else str(triplet)
                video.setdefault(relation_key(name), []).append(
                    {"sub": _check_traj(inst["sub_traj"], f"{where} instance {i} sub_traj"),
                     "obj": _check_traj(inst["obj_traj"], f"{where} instance {i} obj_traj")}
                )
            continue
        if not isinstance(relations, Mapping):
            raise AnnotationError(f"{where} must map relation strings to instance lists, got {type(relations).__name__}")
        for relation, instances in relations.items():
            rwhere = f"{where} relation {relation!r}"
            if isinstance(instances, Mapping):
                instances = [instances]  # a single instance written without the list
            if not isinstance(instances, list):
                raise AnnotationError(f"{rwhere} must be a list of instances like [{{'sub': ..., 'obj': ...}}]")
            target = video.setdefault(relation_key(relation), [])
            for i, inst in enumerate(instances):
                if not isinstance(inst, Mapping) or "sub" not in inst or "obj" not in inst:
                    raise AnnotationError(f"{rwhere} instance {i} needs 'sub' and 'obj' trajectories")
                target.append({"sub": _check_traj(inst["sub"], f"{rwhere} instance {i} sub"),
                               "obj": _check_traj(inst["obj"], f"{rwhere} instance {i} obj")})
    return out


def _check_traj(traj: Any, where: str) -> Any:
    if not isinstance(traj, Mapping):
        raise AnnotationError(f"{where} must map frame ids to [x1, y1, x2, y2], got {type(traj).__name__}")
    return traj


def save_ground_truth(gt: Mapping[str, Mapping[str, list]], path: str | os.PathLike) -> Path:
    """Write ground truth ``{video_id: {relation: [instances]}}`` as JSON (frame ids become strings)."""
    return _write_json({str(v): {str(r): list(inst) for r, inst in rels.items()} for v, rels in gt.items()}, Path(path))


def _write_json(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
    return path
