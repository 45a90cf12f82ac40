"""``LinkResult``: the trajectory pair one linking call returns, plus ``to_grounding`` to wrap it for users.

Boxes cover every real frame from ``start_fid`` to ``end_fid`` inclusive (interpolated between the kept
sampled frames, paper eq. 14); the index arrays say which sampled frames and which boxes were linked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vrgv.errors import LinkingError


@dataclass
class LinkResult:
    """One linked segment: subject/object boxes per real frame, Viterbi scores, and the fallback flag.

    ``kept_indices`` int64 [K] are the sampled-frame indices the path visits; ``sub_indices`` and
    ``obj_indices`` int64 [K] the box chosen at each. ``score = (sub_score + obj_score) / 2``; sub/obj scores are
    the Viterbi path scores divided by K - 1, except for a single-frame fallback (K = 1), where they are the
    subject's and object's largest attention values at that frame.
    """

    start_fid: int
    end_fid: int
    sub_boxes: np.ndarray
    obj_boxes: np.ndarray
    score: float
    sub_score: float
    obj_score: float
    fallback: bool = False
    kept_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sub_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    obj_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    backend: str = ""

    def __post_init__(self) -> None:
        self.start_fid, self.end_fid = int(self.start_fid), int(self.end_fid)
        if self.end_fid < self.start_fid:
            raise LinkingError(f"LinkResult segment [{self.start_fid}, {self.end_fid}] ends before it starts")
        length = self.end_fid - self.start_fid + 1
        self.sub_boxes = np.asarray(self.sub_boxes, dtype=np.float64)
        self.obj_boxes = np.asarray(self.obj_boxes, dtype=np.float64)
        for name, arr in (("sub_boxes", self.sub_boxes), ("obj_boxes", self.obj_boxes)):
            if arr.shape != (length, 4):
                raise LinkingError(
                    f"LinkResult {name} must hold one box per frame of [{self.start_fid}, {self.end_fid}], "
                    f"i.e. shape [{length}, 4]; got {list(arr.shape)}"
                )
        self.kept_indices = np.asarray(self.kept_indices, dtype=np.int64).reshape(-1)
        self.sub_indices = np.asarray(self.sub_indices, dtype=np.int64).reshape(-1)
        self.obj_indices = np.asarray(self.obj_indices, dtype=np.int64).reshape(-1)
        if not (len(self.kept_indices) == len(self.sub_indices) == len(self.obj_indices)):
            raise LinkingError(
                "LinkResult kept_indices, sub_indices and obj_indices must have the same length, got "
                f"{len(self.kept_indices)}, {len(self.sub_indices)}, {len(self.obj_indices)}"
            )
        self.score, self.sub_score, self.obj_score = float(self.score), float(self.sub_score), float(self.obj_score)
        self.fallback = bool(self.fallback)

    @property
    def segment(self) -> tuple[int, int]:
        """Inclusive ``(start_fid, end_fid)``."""
        return self.start_fid, self.end_fid

    @property
    def frame_ids(self) -> np.ndarray:
        """Real frame ids ``start_fid..end_fid`` (int64), one per row of ``sub_boxes``/``obj_boxes``."""
        return np.arange(self.start_fid, self.end_fid + 1, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats/ints); :meth:`from_dict` inverts it exactly."""
        return {
            "start_fid": self.start_fid,
            "end_fid": self.end_fid,
            "sub_boxes": self.sub_boxes.tolist(),
            "obj_boxes": self.obj_boxes.tolist(),
            "score": self.score,
            "sub_score": self.sub_score,
            "obj_score": self.obj_score,
            "fallback": self.fallback,
            "kept_indices": self.kept_indices.tolist(),
            "sub_indices": self.sub_indices.tolist(),
            "obj_indices": self.obj_indices.tolist(),
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LinkResult":
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(**{k: data[k] for k in ("start_fid", "end_fid", "sub_boxes", "obj_boxes", "score",
                                                "sub_score", "obj_score")},
                       fallback=data.get("fallback", False),
                       kept_indices=data.get("kept_indices", []),
                       sub_indices=data.get("sub_indices", []),
                       obj_indices=data.get("obj_indices", []),
                       backend=data.get("backend", ""))
        except KeyError as exc:
            raise LinkingError(f"LinkResult dict lacks key {exc}; pass a dict made by LinkResult.to_dict()") from None


def to_grounding(result: LinkResult, relation: Any, video_id: str = "video", **kwargs: Any) -> Any:
    """Wrap ``result`` as a :class:`vrgv.grounding.Grounding` (subject/object over frames start..end inclusive).

    Extra keyword arguments (``beta``, ``beta_frame_ids``, ``extra``) pass through to ``Grounding``.
    """
    from vrgv.grounding import Grounding, Trajectory

    if not isinstance(result, LinkResult):
        raise LinkingError(
            f"to_grounding needs a LinkResult, got {type(result).__name__}; link() returns None when strict=True "
            "and no segment passes the threshold, so check for None first"
        )
    fids = result.frame_ids
    extra = dict(kwargs.pop("extra", {}) or {})
    if result.backend:
        extra.setdefault("linker", result.backend)
    return Grounding(
        relation=relation,
        subject=Trajectory(fids, result.sub_boxes),
        object=Trajectory(fids, result.obj_boxes),
        start_fid=result.start_fid,
        end_fid=result.end_fid,
        score=result.score,
        fallback=result.fallback,
        video_id=video_id,
        extra=extra,
        **kwargs,
    )
