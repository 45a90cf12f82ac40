"""The paper's grounding accuracy (§4.1): AccS, AccO, AccR, computed as the authors' released evaluation does.

For a predicted trajectory P and a ground-truth trajectory G (frame -> box), with inclusive-pixel box IoU
(area = (x2-x1+1)(y2-y1+1)), ``t(P, G) = (n_0.3 + n_0.5 + n_0.7) / (3 |frames(P) ∪ frames(G)|)`` where
``n_θ`` counts common frames with IoU ≥ θ; the single-threshold column sIoU=θ uses ``n_θ / |union|``.
A relation's subject (object) is correct if some ground-truth instance has t ≥ τ, the relation if one
instance has ``min(t_sub, t_obj) ≥ τ``. Per video: correct / number of ground-truth relation strings;
the accuracies are means over ground-truth videos (no prediction scores 0), in percent. Predictions for
videos or relations absent from the ground truth are ignored and counted; a ground-truth video listing
no relation is left out of the mean (the released code would divide by zero there).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from vrgv.errors import AnnotationError, ConfigError
from vrgv.predictions import load_ground_truth, load_predictions, relation_key

__all__ = [
    "COLUMNS", "THRESHOLDS", "Accuracy", "EvalReport", "RelationResult", "box_iou", "evaluate",
    "load_ground_truth", "load_predictions", "per_relation", "trajectory_tiou",
]

log = logging.getLogger(__name__)

THRESHOLDS = (0.3, 0.5, 0.7)
COLUMNS = ("siou_0.3", "siou_0.5", "siou_0.7", "average")
_COLUMN_TITLES = {"siou_0.3": "sIoU=0.3", "siou_0.5": "sIoU=0.5", "siou_0.7": "sIoU=0.7", "average": "Average"}
_Track = tuple[np.ndarray, np.ndarray]  # frame ids int64 [T], boxes float64 [T, 4]
_EMPTY: _Track = (np.zeros(0, np.int64), np.zeros((0, 4), np.float64))


# ------------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Accuracy:
    """Subject, object and relation accuracy in percent."""

    AccS: float
    AccO: float
    AccR: float

    def __post_init__(self) -> None:
        for name in ("AccS", "AccO", "AccR"):
            value = getattr(self, name)
            if not (0.0 <= value <= 100.0):
                raise AnnotationError(f"{name} must be a percentage in [0, 100], got {value}")

    def to_dict(self) -> dict[str, float]:
        return {"AccS": self.AccS, "AccO": self.AccO, "AccR": self.AccR}

    def values(self) -> tuple[float, float, float]:
        return self.AccS, self.AccO, self.AccR


@dataclass(frozen=True)
class EvalReport:
    """Table 2 (AccS/AccO/AccR at sIoU 0.3, 0.5, 0.7 and their average) and Table 5 (static/dynamic split)."""

    tiou: float
    columns: dict[str, Accuracy]  # keys: COLUMNS
    static: Accuracy
    dynamic: Accuracy
    num_videos: int
    num_relations: int
    num_predicted: int = 0
    num_static_relations: int = 0
    num_dynamic_relations: int = 0
    num_ignored_predictions: int = 0

    def __post_init__(self) -> None:
        if set(self.columns) != set(COLUMNS):
            raise AnnotationError(f"EvalReport columns must be {COLUMNS}, got {sorted(self.columns)}")
        if self.num_static_relations + self.num_dynamic_relations != self.num_relations:
            raise AnnotationError("static + dynamic relation counts must add up to num_relations")
        if not 0 <= self.num_predicted <= self.num_relations:
            raise AnnotationError(f"num_predicted ({self.num_predicted}) must lie in [0, num_relations={self.num_relations}]")

    @property
    def average(self) -> Accuracy:
        return self.columns["average"]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: self.columns[name].to_dict() for name in ("average", *COLUMNS[:3])}
        out.update(
            static=self.static.to_dict(),
            dynamic=self.dynamic.to_dict(),
            num_videos=self.num_videos,
            num_relations=self.num_relations,
            num_predicted=self.num_predicted,
            num_static_relations=self.num_static_relations,
            num_dynamic_relations=self.num_dynamic_relations,
            num_ignored_predictions=self.num_ignored_predictions,
            tiou=self.tiou,
        )
        return out

    # tables -------------------------------------------------------------------------------------
    def _table2(self) -> tuple[list[str], list[str]]:
        groups = [_COLUMN_TITLES[c] for c in COLUMNS]
        cells = [f"{v:.2f}" for c in COLUMNS for v in self.columns[c].values()]
        return groups, cells

    def _table5(self) -> tuple[list[str], list[str]]:
        groups = ["Dynamic", "Static", "Overall"]
        cells = [f"{v:.2f}" for acc in (self.dynamic, self.static, self.average) for v in acc.values()]
        return groups, cells

    def to_markdown(self, name: str = "vrgv") -> str:
        """Both tables as Markdown (group titles in the first header row, AccS/AccO/AccR in the second)."""
        parts = [f"Grounding accuracy (%), tIoU ≥ {self.tiou:g}, {self.num_videos} videos, {self.num_relations} relations"]
        for title, (groups, cells) in (("Table 2 layout", self._table2()), ("Table 5 layout", self._table5())):
            head = "| Method |" + "".join(f" {g} | | |" for g in groups)
            sep = "|---|" + "---:|" * (3 * len(groups))
            sub = "| |" + " AccS | AccO | AccR |" * len(groups)
            row = f"| {name} | " + " | ".join(cells) + " |"
            parts += ["", f"**{title}**", "", head, sep, sub, row]
        return "\n".join(parts) + "\n"

    def to_table(self, name: str = "vrgv") -> str:
        """Both tables as fixed-width plain text (for logs and terminals without rich)."""
        lines = [f"Grounding accuracy (%), tIoU >= {self.tiou:g}, {self.num_videos} videos, {self.num_relations} relations"]
        width = max(8, len(name))
        for groups, cells in (self._table2(), self._table5()):
            lines.append("")
            lines.append(" " * width + "".join(f" {g:^20}" for g in groups))
            lines.append(" " * width + " ".join(f" {'AccS':>6}{'AccO':>7}{'AccR':>7}" for _ in groups))
            lines.append(f"{name:<{width}}" + " ".join(f" {a:>6}{b:>7}{c:>7}" for a, b, c in zip(*[iter(cells)] * 3)))
        return "\n".join(lines) + "\n"

    def rich_tables(self, name: str = "vrgv", compact: bool = False) -> list[Any]:
        """The two tables as ``rich.table.Table`` objects; ``compact`` puts the column groups in rows (narrow terminals)."""
        from rich import box
        from rich.table import Table

        tables = []
        for title, (groups, cells) in (
            (f"Table 2: {name} accuracy (%), tIoU ≥ {self.tiou:g}", self._table2()),
            (f"Table 5: {name} dynamic / static", self._table5()),
        ):
            table = Table(title=title, box=box.SIMPLE_HEAD)
            if compact:
                table.add_column("")
                for acc in ("AccS", "AccO", "AccR"):
                    table.add_column(acc, justify="right")
                for g, i in zip(groups, range(0, len(cells), 3)):
                    table.add_row(g, *cells[i : i + 3])
            else:
                table.add_column("Method")
                for g in groups:
                    for acc in ("AccS", "AccO", "AccR"):
                        table.add_column(f"{g}\n{acc}", justify="right")
                table.add_row(name, *cells)
            tables.append(table)
        return tables


@dataclass(frozen=True)
class RelationResult:
    """Scores of one (video, ground-truth relation) pair; t values are the best over the relation's instances."""

    video_id: str
    relation: str
    num_instances: int
    predicted: bool
    t_sub: float
    t_obj: float
    t_rel: float
    sub: bool
    obj: bool
    rel: bool
    static: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------------ public API
def evaluate(
    gt: "Mapping[str, Mapping[str, list]] | str | os.PathLike",
    pred: "Mapping[str, Mapping[str, Any]] | str | os.PathLike",
    tiou: float = 0.5,
    static_words: Iterable[str] | None = None,
) -> EvalReport:
    """AccS/AccO/AccR (percent) of ``pred`` against ``gt`` at temporal threshold ``tiou`` (paper §4.1).

    ``gt``/``pred`` are dicts in the documented formats or paths that ``load_ground_truth``/``load_predictions`` read.
    """
    tiou = _check_tiou(tiou)
    table = _build_table(*_inputs(gt, pred), _static_rule(static_words))
    columns = {c: Accuracy(*_accuracies(table, c, tiou)) for c in COLUMNS}
    static_mask = table.static
    return EvalReport(
        tiou=tiou,
        columns=columns,
        static=Accuracy(*_accuracies(table, "average", tiou, static_mask)),
        dynamic=Accuracy(*_accuracies(table, "average", tiou, ~static_mask)),
        num_videos=int(np.count_nonzero(np.bincount(table.rel_video, minlength=len(table.video_ids)))),
        num_relations=len(table.relations),
        num_predicted=int(np.count_nonzero(table.predicted)),
        num_static_relations=int(np.count_nonzero(static_mask)),
        num_dynamic_relations=int(np.count_nonzero(~static_mask)),
        num_ignored_predictions=table.num_ignored,
    )


def per_relation(
    gt: "Mapping[str, Mapping[str, list]] | str | os.PathLike",
    pred: "Mapping[str, Mapping[str, Any]] | str | os.PathLike",
    tiou: float = 0.5,
    static_words: Iterable[str] | None = None,
) -> list[RelationResult]:
    """One :class:`RelationResult` per (video, ground-truth relation), in ground-truth order."""
    tiou = _check_tiou(tiou)
    table = _build_table(*_inputs(gt, pred), _static_rule(static_words))
    t_sub, t_obj = table.t("average")
    best_s, best_o, best_r = _best_per_relation(table, t_sub, t_obj)
    out = []
    for r, (video, relation) in enumerate(table.relations):
        predicted = bool(table.predicted[r])
        s, o, rr = (float(x[r]) if np.isfinite(x[r]) else 0.0 for x in (best_s, best_o, best_r))
        out.append(
            RelationResult(
                video_id=table.video_ids[video], relation=relation, num_instances=int(table.num_instances[r]),
                predicted=predicted, t_sub=s, t_obj=o, t_rel=rr,
                sub=bool(best_s[r] >= tiou), obj=bool(best_o[r] >= tiou), rel=bool(best_r[r] >= tiou),
                static=bool(table.static[r]),
            )
        )
    return out


def trajectory_tiou(pred: Any, gt: Any) -> float:
    """``t(P, G)`` for two trajectories (dicts frame -> box, or :class:`vrgv.Trajectory`)."""
    preds, gts = _TrackStore(), _TrackStore()
    preds.add(pred, "predicted trajectory")
    gts.add(gt, "ground-truth trajectory")
    zero = np.zeros(1, dtype=np.int64)
    counts, union = _pair_counts(preds.arrays(), zero, gts.arrays(), zero)
    return float(counts[0].sum() / (3.0 * union[0])) if union[0] else 0.0


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inclusive-pixel IoU of boxes ``a`` [..., 4] and ``b`` [..., 4] (the authors' convention, +1 on sides)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    ow = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    oh = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    overlap = ow * oh
    return overlap / (area_a + area_b - overlap)


# ------------------------------------------------------------------------------------------------ internals
@dataclass
class _Table:
    """Per (video, relation) rows and per (relation, GT instance) pair counts for the subject and object."""

    video_ids: list[str]
    relations: list[tuple[int, str]]  # (video index, relation key)
    rel_video: np.ndarray  # int64 [R]
    predicted: np.ndarray  # bool [R]
    static: np.ndarray  # bool [R]
    num_instances: np.ndarray  # int64 [R]
    pair_rel: np.ndarray  # int64 [K], non-decreasing
    counts_sub: np.ndarray  # int64 [K, 3]: n_0.3, n_0.5, n_0.7
    union_sub: np.ndarray  # int64 [K]
    counts_obj: np.ndarray
    union_obj: np.ndarray
    num_ignored: int

    def t(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """t_sub, t_obj per pair for one column (``average`` or ``siou_θ``)."""
        if column == "average":
            num_s, den_s = self.counts_sub.sum(axis=1), 3 * self.union_sub
            num_o, den_o = self.counts_obj.sum(axis=1), 3 * self.union_obj
        else:
            j = COLUMNS.index(column)
            num_s, den_s = self.counts_sub[:, j], self.union_sub
            num_o, den_o = self.counts_obj[:, j], self.union_obj
        return _ratio(num_s, den_s), _ratio(num_o, den_o)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(num), dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok].astype(np.float64) / den[ok].astype(np.float64)
    return out


def _inputs(gt: Any, pred: Any) -> tuple[Any, Any]:
    """Paths are read with the documented readers; dicts pass through."""
    if isinstance(gt, (str, os.PathLike)):
        gt = load_ground_truth(gt)
    if isinstance(pred, (str, os.PathLike)):
        pred = load_predictions(pred)
    return gt, pred


def _check_tiou(tiou: float) -> float:
    try:
        value = float(tiou)
    except (TypeError, ValueError):
        raise ConfigError(f"tiou must be a number in (0, 1], got {tiou!r}") from None
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"tiou must lie in (0, 1] (the paper uses 0.3, 0.5, 0.7), got {value}")
    return value


def _static_rule(static_words: Iterable[str] | None) -> Callable[[str], bool]:
    """Predicate -> static? The paper's appendix C split (first predicate word is a static word)."""
    if static_words is None:
        from vrgv.vocab import Vocabulary

        return Vocabulary.default().is_static
    if isinstance(static_words, str):
        raise ConfigError("static_words must be an iterable of words such as ['above', 'left'], not one string")
    words = {str(w).lower() for w in static_words}
    return lambda predicate: predicate.lower().split("_")[0] in words


def _predicate_of(relation: str) -> str:
    parts = relation.split("-")
    return parts[1] if len(parts) == 3 else ""


def _build_table(gt: Mapping, pred: Mapping, is_static: Callable[[str], bool]) -> _Table:
    if not isinstance(gt, Mapping):
        raise AnnotationError(f"ground truth must be a dict video_id -> relation -> instances, got {type(gt).__name__}")
    if not isinstance(pred, Mapping):
        raise AnnotationError(f"predictions must be a dict video_id -> relation -> prediction, got {type(pred).__name__}")
    pred_by_video = {str(v): rels for v, rels in pred.items()}
    video_ids: list[str] = []
    relations: list[tuple[int, str]] = []
    predicted: list[bool] = []
    static: list[bool] = []
    num_instances: list[int] = []
    pair_rel: list[int] = []
    pairs: list[tuple[int, int, int, int]] = []  # (pred sub, pred obj, gt sub, gt obj) track indices
    preds, gts = _TrackStore(), _TrackStore()
    matched = 0
    for video_id, gt_rels in gt.items():
        video_id = str(video_id)
        if not isinstance(gt_rels, Mapping):
            raise AnnotationError(f"ground truth of video {video_id!r} must map relation strings to instance lists")
        v = len(video_ids)
        video_ids.append(video_id)
        vpred = pred_by_video.get(video_id) or {}
        if not isinstance(vpred, Mapping):
            raise AnnotationError(f"predictions of video {video_id!r} must map relation strings to predictions")
        vpred = {relation_key(k): p for k, p in vpred.items()}
        merged: dict[str, list] = {}
        for rel, instances in gt_rels.items():
            if isinstance(instances, Mapping):
                instances = [instances]
            if not isinstance(instances, list):
                raise AnnotationError(f"ground truth of video {video_id!r} relation {rel!r} must be a list of instances")
            merged.setdefault(relation_key(rel), []).extend(instances)
        if not merged:
            log.warning("ground truth of video %r has no relations; it is left out of the mean", video_id)
        for rel, instances in merged.items():
            r = len(relations)
            relations.append((v, rel))
            static.append(bool(is_static(_predicate_of(rel))))
            num_instances.append(len(instances))
            p = vpred.get(rel)
            has_pred = p is not None and not (isinstance(p, Mapping) and p.get("status") == "error")
            predicted.append(has_pred)
            if not has_pred:
                continue
            matched += 1
            where = f"prediction for video {video_id!r} relation {rel!r}"
            if hasattr(p, "subject") and hasattr(p, "object"):  # a vrgv.Grounding
                p_sub, p_obj = p.subject, p.object
            elif isinstance(p, Mapping) and "sub" in p and "obj" in p:
                p_sub, p_obj = p["sub"], p["obj"]
            else:
                raise AnnotationError(f"{where} must have 'sub' and 'obj' trajectories ({{fid: [x1, y1, x2, y2]}})")
            ps, po = preds.add(p_sub, f"{where} subject"), preds.add(p_obj, f"{where} object")
            for i, inst in enumerate(instances):
                gwhere = f"ground truth of video {video_id!r} relation {rel!r} instance {i}"
                if not isinstance(inst, Mapping) or "sub" not in inst or "obj" not in inst:
                    raise AnnotationError(f"{gwhere} needs 'sub' and 'obj' trajectories")
                pair_rel.append(r)
                pairs.append((ps, po, gts.add(inst["sub"], f"{gwhere} subject"), gts.add(inst["obj"], f"{gwhere} object")))
    total_preds = sum(len(r) for r in pred_by_video.values() if isinstance(r, Mapping))
    idx = np.asarray(pairs, dtype=np.int64).reshape(-1, 4)
    p_arrays, g_arrays = preds.arrays(), gts.arrays()
    counts_sub, union_sub = _pair_counts(p_arrays, idx[:, 0], g_arrays, idx[:, 2])
    counts_obj, union_obj = _pair_counts(p_arrays, idx[:, 1], g_arrays, idx[:, 3])
    return _Table(
        video_ids=video_ids,
        relations=relations,
        rel_video=np.asarray([v for v, _ in relations], dtype=np.int64),
        predicted=np.asarray(predicted, dtype=bool),
        static=np.asarray(static, dtype=bool),
        num_instances=np.asarray(num_instances, dtype=np.int64),
        pair_rel=np.asarray(pair_rel, dtype=np.int64),
        counts_sub=counts_sub, union_sub=union_sub, counts_obj=counts_obj, union_obj=union_obj,
        num_ignored=max(0, total_preds - matched),
    )


_Store = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # fids [T], boxes [T,4], offsets [n], lengths [n]


class _TrackStore:
    """Trajectories collected for one bulk conversion (converting 10^6 boxes one dict at a time is slow)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.wheres: list[str] = []

    def add(self, traj: Any, where: str) -> int:
        if not (isinstance(traj, Mapping) or (hasattr(traj, "frame_ids") and hasattr(traj, "boxes"))):
            raise AnnotationError(f"{where} must map frame ids to boxes ({{fid: [x1, y1, x2, y2]}}), got {type(traj).__name__}")
        self.items.append(traj)
        self.wheres.append(where)
        return len(self.items) - 1

    def _raise_first_bad(self, ids: list[int]) -> None:
        for i in ids:
            _track(self.items[i], self.wheres[i])  # raises the precise error for the bad trajectory
        raise AnnotationError("trajectories hold invalid frame ids or boxes")  # pragma: no cover - defensive

    def arrays(self) -> _Store:
        """Concatenated (validated) frame ids and boxes, with each trajectory's offset and length."""
        dict_ids = [i for i, t in enumerate(self.items) if isinstance(t, Mapping)]
        other_ids = [i for i, t in enumerate(self.items) if not isinstance(t, Mapping)]
        dicts = [self.items[i] for i in dict_ids]
        lens_d = np.fromiter(map(len, dicts), dtype=np.int64, count=len(dicts))
        n = int(lens_d.sum())
        try:
            fids_d = np.fromiter(map(int, chain.from_iterable(d.keys() for d in dicts)), dtype=np.int64, count=n)
            values = list(chain.from_iterable(d.values() for d in dicts))
            if n and set(map(len, values)) != {4}:
                raise ValueError("box length")
            boxes_d = np.fromiter(chain.from_iterable(values), dtype=np.float64, count=4 * n).reshape(n, 4)
        except (TypeError, ValueError, OverflowError):
            self._raise_first_bad(dict_ids)
        parts = [_track(self.items[i], self.wheres[i]) for i in other_ids]
        fids = np.concatenate([fids_d, *(f for f, _ in parts)])
        boxes = np.concatenate([boxes_d, *(b for _, b in parts)]) if parts else boxes_d
        lens_storage = np.concatenate([lens_d, np.asarray([len(f) for f, _ in parts], dtype=np.int64)])
        starts_storage = np.cumsum(lens_storage) - lens_storage
        bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if np.any(bad):
            first = int(np.searchsorted(starts_storage, int(np.argmax(bad)), side="right") - 1)
            self._raise_first_bad([(dict_ids + other_ids)[first]])
        order = np.asarray(dict_ids + other_ids, dtype=np.int64)
        offsets = np.zeros(len(self.items), dtype=np.int64)
        lengths = np.zeros(len(self.items), dtype=np.int64)
        offsets[order], lengths[order] = starts_storage, lens_storage
        return fids, boxes, offsets, lengths


def _track(traj: Any, where: str) -> _Track:
    """(frame ids int64 [T], boxes float64 [T,4]) from ``{fid: box}`` or a ``Trajectory``; validates boxes."""
    if hasattr(traj, "frame_ids") and hasattr(traj, "boxes"):
        fids = np.asarray(traj.frame_ids, dtype=np.int64).reshape(-1)
        boxes = np.asarray(traj.boxes, dtype=np.float64).reshape(-1, 4)
    elif isinstance(traj, Mapping):
        n = len(traj)
        if n == 0:
            return _EMPTY
        try:
            fids = np.fromiter(map(int, traj.keys()), dtype=np.int64, count=n)
        except (TypeError, ValueError, OverflowError) as exc:
            raise AnnotationError(f"{where}: frame ids must be integers ({exc})") from None
        values = traj.values()
        try:
            lengths = set(map(len, values))
        except TypeError as exc:
            raise AnnotationError(f"{where}: every box must be a list [x1, y1, x2, y2] ({exc})") from None
        if lengths != {4}:
            raise AnnotationError(f"{where}: every box must be [x1, y1, x2, y2], found boxes of length(s) {sorted(lengths)}")
        try:
            boxes = np.array(list(values), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise AnnotationError(f"{where}: every box must be 4 numbers [x1, y1, x2, y2] ({exc})") from None
    else:
        raise AnnotationError(f"{where} must map frame ids to boxes, got {type(traj).__name__}")
    if len(fids) != len(boxes):
        raise AnnotationError(f"{where}: {len(fids)} frame ids but {len(boxes)} boxes")
    if not np.all(np.isfinite(boxes)):
        raise AnnotationError(f"{where}: boxes hold NaN or infinite values")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        i = int(np.argmax((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])))
        raise AnnotationError(
            f"{where}: box at frame {fids[i]} is inverted {boxes[i].tolist()}; boxes are [x1, y1, x2, y2] with x2 >= x1, y2 >= y1"
        )
    return fids, boxes


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l), without a Python loop."""
    total = int(lens.sum())
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(lens) - lens), lens)


def _pair_counts(preds: _Store, pidx: np.ndarray, gts: _Store, gidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For K pairs (preds[pidx[k]], gts[gidx[k]]): n_θ for θ in THRESHOLDS (int64 [K,3]) and the frame-union size.

    All pairs at once: keys ``pair * span + fid`` make one sorted intersection find every common frame.
    """
    k = len(pidx)
    counts = np.zeros((k, len(THRESHOLDS)), dtype=np.int64)
    if k == 0:
        return counts, np.zeros(0, dtype=np.int64)
    fids_p, boxes_p, off_p, len_p_all = preds
    fids_g, boxes_g, off_g, len_g_all = gts
    len_p, len_g = len_p_all[pidx], len_g_all[gidx]
    pos_p, pos_g = _ranges(off_p[pidx], len_p), _ranges(off_g[gidx], len_g)
    fp, fg = fids_p[pos_p], fids_g[pos_g]
    if len(fp) == 0 or len(fg) == 0:
        return counts, len_p + len_g
    lo = min(int(fp.min()), int(fg.min()))
    span = max(int(fp.max()), int(fg.max())) - lo + 1
    keys_p = np.repeat(np.arange(k, dtype=np.int64), len_p) * span + (fp - lo)
    keys_g = np.repeat(np.arange(k, dtype=np.int64), len_g) * span + (fg - lo)
    order_p, order_g = _sorted_unique(keys_p, span, lo, "predicted"), _sorted_unique(keys_g, span, lo, "ground-truth")
    _, ip, ig = np.intersect1d(keys_p[order_p], keys_g[order_g], assume_unique=True, return_indices=True)
    ip, ig = order_p[ip], order_g[ig]
    iou = box_iou(boxes_g[pos_g[ig]], boxes_p[pos_p[ip]])  # the authors' argument order: iou(gt_box, pred_box)
    pair = keys_p[ip] // span
    common = np.bincount(pair, minlength=k)
    for j, theta in enumerate(THRESHOLDS):
        counts[:, j] = np.bincount(pair[iou >= theta], minlength=k)
    return counts, len_p + len_g - common


def _sorted_unique(keys: np.ndarray, span: int, lo: int, label: str) -> np.ndarray:
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    dup = np.flatnonzero(sk[1:] == sk[:-1])
    if len(dup):
        raise AnnotationError(
            f"a {label} trajectory lists frame {int(sk[dup[0]] % span) + lo} twice (e.g. keys '5' and '05'); "
            f"give each frame id once"
        )
    return order


def _best_per_relation(table: _Table, t_sub: np.ndarray, t_obj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best t_sub, t_obj and min(t_sub, t_obj) over each relation's instances (-inf where none)."""
    r = len(table.relations)
    best = np.full((3, r), -np.inf)
    if len(table.pair_rel):
        starts = np.flatnonzero(np.r_[True, table.pair_rel[1:] != table.pair_rel[:-1]])
        rows = table.pair_rel[starts]
        best[0, rows] = np.maximum.reduceat(t_sub, starts)
        best[1, rows] = np.maximum.reduceat(t_obj, starts)
        best[2, rows] = np.maximum.reduceat(np.minimum(t_sub, t_obj), starts)
    return best[0], best[1], best[2]


def _accuracies(table: _Table, column: str, tiou: float, mask: np.ndarray | None = None) -> tuple[float, float, float]:
    """Mean over videos (with at least one selected relation) of the per-video correct fraction, in percent."""
    best = _best_per_relation(table, *table.t(column))
    sel = np.ones(len(table.relations), dtype=bool) if mask is None else mask
    nv = len(table.video_ids)
    per_video_total = np.bincount(table.rel_video[sel], minlength=nv)
    videos = per_video_total > 0
    if not np.any(videos):
        return 0.0, 0.0, 0.0
    out = []
    for b in best:
        correct = np.bincount(table.rel_video[sel], weights=(b[sel] >= tiou).astype(np.float64), minlength=nv)
        out.append(float(np.mean(correct[videos] / per_video_total[videos]) * 100.0))
    return out[0], out[1], out[2]
