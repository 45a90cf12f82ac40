"""Result types: ``Trajectory`` (one box per frame) and ``Grounding`` (the answer to one relation query).

``Grounding.to_dict()`` is the prediction format the metric reads:
``{"sub": {fid: box}, "obj": {fid: box}, "segment": [start, end], "score": s, "fallback": bool, ...}``
with ``segment`` inclusive on both ends.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vrgv.errors import AnnotationError, VrgvError
from vrgv.relation import Relation


@dataclass
class Trajectory:
    """Boxes of one object over frames: ``frame_ids`` int64 [T] strictly increasing, ``boxes`` float64 [T,4]."""

    frame_ids: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        self.frame_ids = np.asarray(self.frame_ids, dtype=np.int64).reshape(-1)
        try:
            self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4) if np.size(self.boxes) else np.zeros((0, 4))
        except (TypeError, ValueError) as exc:
            raise AnnotationError(f"trajectory boxes must be 4 numbers [x1, y1, x2, y2] each ({exc})") from None
        if self.boxes.shape != (len(self.frame_ids), 4):
            raise AnnotationError(
                f"trajectory needs one box [x1,y1,x2,y2] per frame id: {len(self.frame_ids)} frame ids, "
                f"boxes of shape {list(self.boxes.shape)}"
            )
        if len(self.frame_ids) > 1 and np.any(np.diff(self.frame_ids) <= 0):
            raise AnnotationError("trajectory frame ids must be strictly increasing")
        if not np.all(np.isfinite(self.boxes)):
            raise AnnotationError("trajectory boxes hold NaN or infinite values")

    def __len__(self) -> int:
        return len(self.frame_ids)

    @classmethod
    def from_dict(cls, data: dict) -> "Trajectory":
        """From ``{fid: [x1,y1,x2,y2]}`` (keys may be strings, as in JSON)."""
        try:
            items = sorted((int(k), v) for k, v in data.items())
        except (TypeError, ValueError, AttributeError) as exc:
            raise AnnotationError(f"trajectory must map frame ids to boxes ({exc})") from None
        if not items:
            return cls(np.zeros(0, np.int64), np.zeros((0, 4)))
        fids, boxes = zip(*items)
        try:
            arr = np.asarray(boxes, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise AnnotationError(f"trajectory boxes must be 4 numbers each ({exc})") from None
        return cls(np.asarray(fids), arr)

    def to_dict(self, decimals: int = 2) -> dict[str, list[float]]:
        return {str(int(f)): [round(float(v), decimals) for v in b] for f, b in zip(self.frame_ids, self.boxes)}

    def box_at(self, fid: int) -> np.ndarray | None:
        i = int(np.searchsorted(self.frame_ids, fid))
        if i < len(self.frame_ids) and self.frame_ids[i] == fid:
            return self.boxes[i]
        return None


@dataclass
class Grounding:
    """Where ``relation`` holds in one video: a segment and the subject's and object's trajectories.

    ``fallback`` is True when no segment passed the temporal threshold and the answer comes from the
    lowered threshold of the linking step (see ``vrgv.linking``). ``beta``/``beta_frame_ids`` keep the
    temporal attention for plots; ``backend`` names the encoder and linker that produced the result.
    """

    relation: Relation
    subject: Trajectory
    object: Trajectory
    start_fid: int
    end_fid: int
    score: float
    fallback: bool = False
    video_id: str = "video"
    beta: np.ndarray | None = None
    beta_frame_ids: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.relation = Relation.parse(self.relation) if not isinstance(self.relation, Relation) else self.relation
        if isinstance(self.subject, dict):
            self.subject = Trajectory.from_dict(self.subject)
        if isinstance(self.object, dict):
            self.object = Trajectory.from_dict(self.object)
        self.start_fid, self.end_fid = int(self.start_fid), int(self.end_fid)
        if self.end_fid < self.start_fid:
            raise AnnotationError(f"grounding segment [{self.start_fid}, {self.end_fid}] ends before it starts")
        self.score = float(self.score)
        self.fallback = bool(self.fallback)
        self.video_id = str(self.video_id)
        if self.beta is not None:
            self.beta = np.asarray(self.beta, dtype=np.float64)
            self.beta_frame_ids = (
                np.arange(len(self.beta)) if self.beta_frame_ids is None else np.asarray(self.beta_frame_ids, np.int64)
            )
            if self.beta_frame_ids.shape != self.beta.shape:
                raise AnnotationError("beta and beta_frame_ids must have the same length")

    @property
    def segment(self) -> tuple[int, int]:
        """Inclusive ``(start_fid, end_fid)``."""
        return self.start_fid, self.end_fid

    def to_dict(self, include_attention: bool = False) -> dict[str, Any]:
        """The metric's prediction format (JSON-ready)."""
        out: dict[str, Any] = {
            "sub": self.subject.to_dict(),
            "obj": self.object.to_dict(),
            "segment": [self.start_fid, self.end_fid],
            "score": None if math.isnan(self.score) else round(self.score, 6),
            "fallback": self.fallback,
            "relation": str(self.relation),
            "video_id": self.video_id,
        }
        if self.extra:
            out["extra"] = self.extra
        if include_attention and self.beta is not None:
            out["beta"] = [round(float(b), 6) for b in self.beta]
            out["beta_frame_ids"] = [int(f) for f in self.beta_frame_ids]
        return out

    def to_json(self, include_attention: bool = False, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(include_attention=include_attention), **kwargs)

    @classmethod
    def from_dict(cls, data: dict, relation: "str | Relation | None" = None, video_id: str | None = None) -> "Grounding":
        """Inverse of :meth:`to_dict`; ``relation``/``video_id`` fill in when the dict lacks them."""
        try:
            rel = data.get("relation", relation)
            if rel is None:
                raise AnnotationError("grounding dict has no 'relation'; pass relation=")
            sub, obj = Trajectory.from_dict(data["sub"]), Trajectory.from_dict(data["obj"])
            if "segment" in data:
                start, end = data["segment"]
            else:
                fids = np.concatenate([sub.frame_ids, obj.frame_ids])
                start, end = (int(fids.min()), int(fids.max())) if len(fids) else (0, 0)
            score = data.get("score")
            return cls(
                relation=rel,
                subject=sub,
                object=obj,
                start_fid=start,
                end_fid=end,
                score=float("nan") if score is None else score,
                fallback=bool(data.get("fallback", False)),
                video_id=data.get("video_id", video_id or "video"),
                beta=data.get("beta"),
                beta_frame_ids=data.get("beta_frame_ids"),
                extra=dict(data.get("extra", {})),
            )
        except KeyError as exc:
            raise AnnotationError(f"grounding dict lacks key {exc}; expected 'sub', 'obj' and 'segment'") from None
        except VrgvError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise AnnotationError(
                f"grounding dict is malformed ({exc}); expected {{'sub': {{fid: box}}, 'obj': {{fid: box}}, "
                f"'segment': [start, end], 'score': number}}"
            ) from None

    @classmethod
    def from_json(cls, text: str) -> "Grounding":
        return cls.from_dict(json.loads(text))

    # Pictures live in vrgv.render / vrgv.plot; these thin methods keep the facade discoverable.
    def render(self, video: Any, out_path: str, **kwargs: Any) -> str:
        """Draw subject (red), object (green), the relation and a β strip onto the video; returns out_path."""
        from vrgv.render import render_groundings

        return render_groundings(video, [self], out_path, **kwargs)

    def plot(self, path: str | None = None, **kwargs: Any) -> Any:
        """β over time with the chosen segment (needs matplotlib); saves to ``path`` if given."""
        from vrgv.plot import plot_beta

        return plot_beta(self, path=path, **kwargs)
