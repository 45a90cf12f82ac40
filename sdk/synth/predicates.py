"""Ground truth of the synthetic world: one geometric rule per predicate, evaluated on every frame.

A rule sees only what an annotation file stores (the boxes of the two tracks, their categories, the video's
fps and frame size), so anyone can re-check a relation from the JSON. Boxes are inclusive pixel boxes
``[x1, y1, x2, y2]``; a missing box is NaN and makes every rule false on that frame. Velocities are central
differences of box centres over ``k = max(1, round(fps / 5))`` frames (undefined near a track's ends), in
frame widths per second. A relation instance is a maximal run of frames where the rule holds, kept if it
lasts at least ``MIN_FRAMES`` frames. There is no hysteresis: each frame is judged on its own.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from vrgv.annotations import RelationInstance, VideoAnnotation
from vrgv.errors import AnnotationError

MIN_FRAMES = 8
V_MOVE = 0.05  # frame widths per second: slower counts as standing still
V_FAST = 0.22  # running / driving fast
FLYERS = frozenset({"bird"})
RIDERS = frozenset({"person"})
MOUNTS = frozenset({"horse", "zebra", "bicycle"})
JUMPERS = frozenset({"person", "dog", "domestic_cat", "horse", "zebra", "sheep"})
CHASERS = frozenset({"person", "dog", "domestic_cat", "horse", "zebra", "car"})


@dataclass(frozen=True)
class Track:
    """Per-frame geometry of one object derived from its boxes (NaN where the object is not visible)."""

    boxes: np.ndarray  # f64 [F, 4]
    cx: np.ndarray
    cy: np.ndarray
    w: np.ndarray
    h: np.ndarray
    area: np.ndarray
    vx: np.ndarray  # frame widths / s
    vy: np.ndarray
    speed: np.ndarray

    @classmethod
    def from_boxes(cls, boxes: np.ndarray, fps: float, width: int) -> "Track":
        b = np.asarray(boxes, np.float64)
        if b.ndim != 2 or b.shape[1] != 4:
            raise AnnotationError(f"track boxes must be [F, 4], got shape {b.shape}")
        w, h = b[:, 2] - b[:, 0] + 1.0, b[:, 3] - b[:, 1] + 1.0
        cx, cy = (b[:, 0] + b[:, 2]) / 2.0, (b[:, 1] + b[:, 3]) / 2.0
        k = velocity_window(fps)
        vx, vy = np.full(len(b), np.nan), np.full(len(b), np.nan)
        if len(b) > 2 * k:
            scale = fps / (2.0 * k * width)
            vx[k:-k] = (cx[2 * k:] - cx[: -2 * k]) * scale
            vy[k:-k] = (cy[2 * k:] - cy[: -2 * k]) * scale
        return cls(b, cx, cy, w, h, w * h, vx, vy, np.hypot(vx, vy))


def velocity_window(fps: float) -> int:
    """Half-width (frames) of the central difference used for velocities."""
    return max(1, int(round(float(fps) / 5.0)))


@dataclass(frozen=True)
class Pair:
    """Relative geometry of subject ``a`` and object ``b`` per frame."""

    a: Track
    b: Track
    cat_a: str
    cat_b: str
    scale: np.ndarray  # mean sqrt(area): the pair's size unit in pixels
    gap_x: np.ndarray  # pixels between the boxes along x (0 when they overlap in x)
    gap_y: np.ndarray
    gap: np.ndarray
    over_x: np.ndarray  # overlap length along x (negative = gap)
    over_y: np.ndarray
    inter: np.ndarray  # intersection area
    min_area: np.ndarray

    @classmethod
    def of(cls, a: Track, b: Track, cat_a: str, cat_b: str) -> "Pair":
        ba, bb = a.boxes, b.boxes
        over_x = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0]) + 1.0
        over_y = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1]) + 1.0
        gap_x, gap_y = np.maximum(-over_x, 0.0), np.maximum(-over_y, 0.0)
        return cls(
            a, b, cat_a, cat_b,
            scale=0.5 * (np.sqrt(a.area) + np.sqrt(b.area)),
            gap_x=gap_x, gap_y=gap_y, gap=np.maximum(gap_x, gap_y),
            over_x=over_x, over_y=over_y,
            inter=np.maximum(over_x, 0.0) * np.maximum(over_y, 0.0),
            min_area=np.minimum(a.area, b.area),
        )

    # shared conditions ---------------------------------------------------------------------------
    def near(self, k: float = 0.5) -> np.ndarray:
        return self.gap < k * self.scale

    def same_row(self) -> np.ndarray:
        return self.over_y > 0.3 * np.minimum(self.a.h, self.b.h)

    def same_depth(self, k: float = 0.4) -> np.ndarray:
        """Bottom edges (ground contact) close: the two stand side by side rather than one behind the other."""
        return np.abs(self.a.boxes[:, 3] - self.b.boxes[:, 3]) < k * self.scale

    def same_col(self) -> np.ndarray:
        return self.over_x > 0.3 * np.minimum(self.a.w, self.b.w)

    def moving(self, t: Track) -> np.ndarray:
        return t.speed > V_MOVE

    def direction_to_b(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dx, dy = self.b.cx - self.a.cx, self.b.cy - self.a.cy
        d = np.hypot(dx, dy)
        d = np.where(d > 0, d, np.nan)
        return dx / d, dy / d, d

    def aligned(self) -> np.ndarray:
        """Both move, in nearly the same direction."""
        a, b = self.a, self.b
        cos = (a.vx * b.vx + a.vy * b.vy) / (a.speed * b.speed)
        return self.moving(a) & self.moving(b) & (cos > 0.85)

    def b_ahead(self) -> np.ndarray:
        """How far (pixels) ``b`` is ahead of ``a`` along ``a``'s direction of motion."""
        a = self.a
        return ((self.b.cx - a.cx) * a.vx + (self.b.cy - a.cy) * a.vy) / a.speed


Rule = Callable[[Pair], np.ndarray]


# static ------------------------------------------------------------------------------------------
def _left(p: Pair) -> np.ndarray:
    a, b = p.a.boxes, p.b.boxes
    return p.near() & p.same_row() & p.same_depth() & (p.a.cx < b[:, 0]) & (a[:, 2] < p.b.cx)


def _right(p: Pair) -> np.ndarray:
    a, b = p.a.boxes, p.b.boxes
    return p.near() & p.same_row() & p.same_depth() & (p.a.cx > b[:, 2]) & (a[:, 0] > p.b.cx)


def _above(p: Pair) -> np.ndarray:
    a, b = p.a.boxes, p.b.boxes
    return ((p.gap_y < 0.4 * p.scale) & (p.over_x > 0.5 * np.minimum(p.a.w, p.b.w))
            & (a[:, 3] <= b[:, 1] + 0.1 * p.b.h))


def _beneath(p: Pair) -> np.ndarray:
    a, b = p.a.boxes, p.b.boxes
    return ((p.gap_y < 0.4 * p.scale) & (p.over_x > 0.5 * np.minimum(p.a.w, p.b.w))
            & (b[:, 3] <= a[:, 1] + 0.1 * p.a.h))


def _next_to(p: Pair) -> np.ndarray:
    return p.same_row() & p.same_depth(0.15) & (p.gap_x < 0.2 * p.scale) & (p.inter < 0.25 * p.min_area)


def _front(p: Pair) -> np.ndarray:
    """Drawing order follows the bottom edge (ground-plane depth): the lower box is nearer and drawn later."""
    return (p.inter > 0.25 * p.min_area) & (p.a.boxes[:, 3] >= p.b.boxes[:, 3] + 3)


def _behind(p: Pair) -> np.ndarray:
    return (p.inter > 0.25 * p.min_area) & (p.b.boxes[:, 3] >= p.a.boxes[:, 3] + 3)


def _larger(p: Pair) -> np.ndarray:
    return p.near(0.25) & p.same_depth() & (p.a.area > 2.0 * p.b.area)


def _taller(p: Pair) -> np.ndarray:
    return p.near(0.25) & p.same_depth() & (p.a.h > 1.5 * p.b.h)


# dynamic -----------------------------------------------------------------------------------------
def _move_toward(p: Pair) -> np.ndarray:
    ux, uy, _ = p.direction_to_b()
    a = p.a
    closing = (a.vx - p.b.vx) * ux + (a.vy - p.b.vy) * uy
    return (p.moving(a) & ((a.vx * ux + a.vy * uy) > 0.8 * a.speed) & (closing > V_MOVE)
            & (p.gap > 0) & (p.gap < 1.5 * p.scale))


def _move_away(p: Pair) -> np.ndarray:
    ux, uy, _ = p.direction_to_b()
    a = p.a
    opening = -((a.vx - p.b.vx) * ux + (a.vy - p.b.vy) * uy)
    return (p.moving(a) & ((a.vx * ux + a.vy * uy) < -0.8 * a.speed) & (opening > V_MOVE)
            & (p.gap < 1.5 * p.scale))


def _move_left(p: Pair) -> np.ndarray:
    return p.moving(p.a) & _left(p)


def _move_right(p: Pair) -> np.ndarray:
    return p.moving(p.a) & _right(p)


def _follow(p: Pair) -> np.ndarray:
    return p.aligned() & (p.a.speed < V_FAST) & (p.b_ahead() > 0.3 * p.scale) & (p.gap < 2.0 * p.scale)


def _chase(p: Pair) -> np.ndarray:
    return ((p.cat_a in CHASERS) & p.aligned() & (p.a.speed >= V_FAST) & (p.b.speed >= 0.6 * V_FAST)
            & (p.b_ahead() > 0.3 * p.scale) & (p.gap < 3.0 * p.scale))


def _run_past(p: Pair) -> np.ndarray:
    a = p.a
    return ((a.speed >= V_FAST) & (p.b.speed < 0.5 * a.speed) & (np.abs(a.vx) > 0.7 * a.speed)
            & p.same_row() & (p.gap_x < 0.5 * p.scale))


def _jump_above(p: Pair) -> np.ndarray:
    a, b = p.a.boxes, p.b.boxes
    return ((p.cat_a in JUMPERS) & p.moving(p.a) & (p.over_x > 0.5 * np.minimum(p.a.w, p.b.w))
            & (a[:, 3] < b[:, 1] + 0.25 * p.b.h) & (p.gap_y < 0.3 * p.scale))


def _fly_above(p: Pair) -> np.ndarray:
    return (p.cat_a in FLYERS) & _above(p)


def _ride(p: Pair) -> np.ndarray:
    a, b, ta, tb = p.a.boxes, p.b.boxes, p.a, p.b
    if p.cat_a not in RIDERS or p.cat_b not in MOUNTS:
        return np.zeros(len(a), bool)
    dv = np.hypot(ta.vx - tb.vx, ta.vy - tb.vy)
    return ((np.abs(ta.cx - tb.cx) < 0.25 * tb.w) & (a[:, 1] < b[:, 1]) & (a[:, 3] > b[:, 1])
            & (a[:, 3] <= b[:, 3]) & p.moving(tb) & (dv < 0.3 * tb.speed))


def _faster(p: Pair) -> np.ndarray:
    return p.moving(p.a) & p.moving(p.b) & (p.a.speed > 1.5 * p.b.speed) & (p.gap < 0.5 * p.scale)


def _move_with(p: Pair) -> np.ndarray:
    a, b = p.a, p.b
    similar = np.abs(a.speed - b.speed) < 0.3 * np.maximum(a.speed, b.speed)
    return p.aligned() & similar & (p.gap < 0.3 * p.scale) & (p.inter < 0.25 * p.min_area)


RULES: Mapping[str, Rule] = {
    "left": _left,
    "right": _right,
    "above": _above,
    "beneath": _beneath,
    "next_to": _next_to,
    "front": _front,
    "behind": _behind,
    "larger": _larger,
    "taller": _taller,
    "move_toward": _move_toward,
    "move_away": _move_away,
    "move_left": _move_left,
    "move_right": _move_right,
    "follow": _follow,
    "chase": _chase,
    "run_past": _run_past,
    "jump_above": _jump_above,
    "fly_above": _fly_above,
    "ride": _ride,
    "faster": _faster,
    "move_with": _move_with,
}
PREDICATES: tuple[str, ...] = tuple(RULES)


def rule_mask(predicate: str, pair: Pair) -> np.ndarray:
    """bool [F]: frames where ``predicate`` holds for the pair (false wherever a box is missing)."""
    rule = RULES.get(predicate)
    if rule is None:
        raise AnnotationError(f"no synthetic rule for predicate {predicate!r}; known: {', '.join(PREDICATES)}")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(rule(pair), bool)
    present = ~(np.isnan(pair.a.boxes).any(axis=1) | np.isnan(pair.b.boxes).any(axis=1))
    return out & present


def boxes_array(trajectory: Mapping[int, list[float]], frame_count: int) -> np.ndarray:
    """f64 [F, 4] boxes of a ``{fid: box}`` trajectory, NaN where the object has no box."""
    out = np.full((frame_count, 4), np.nan)
    for fid, box in trajectory.items():
        out[int(fid)] = box
    return out


def runs(mask: np.ndarray, min_len: int = MIN_FRAMES, merge_gap: int = 0) -> list[tuple[int, int]]:
    """Maximal runs ``[begin, end)`` of True in ``mask`` lasting at least ``min_len`` frames, after bridging
    gaps of at most ``merge_gap`` False frames between two runs (0: no bridging)."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    spans = [[int(b), int(e)] for b, e in zip(edges[::2], edges[1::2])]
    if merge_gap > 0 and spans:
        merged = [spans[0]]
        for b, e in spans[1:]:
            if b - merged[-1][1] <= merge_gap:
                merged[-1][1] = e
            else:
                merged.append([b, e])
        spans = merged
    return [(b, e) for b, e in spans if e - b >= min_len]


def annotation_tracks(ann: VideoAnnotation) -> dict[int, Track]:
    """Per-track geometry of an annotation (what every rule sees)."""
    fps = float(ann.fps or 30.0)
    return {tid: Track.from_boxes(boxes_array(traj, ann.frame_count), fps, ann.width)
            for tid, traj in sorted(ann.trajectories.items())}


def predicate_mask(ann: VideoAnnotation, subject_tid: int, object_tid: int, predicate: str,
                   tracks: Mapping[int, Track] | None = None) -> np.ndarray:
    """bool [frame_count]: where ``subject predicate object`` holds in an annotation, by the stored boxes only."""
    tracks = tracks if tracks is not None else annotation_tracks(ann)
    pair = Pair.of(tracks[subject_tid], tracks[object_tid], ann.categories[subject_tid], ann.categories[object_tid])
    return rule_mask(predicate, pair)


def relations_from_boxes(ann: VideoAnnotation, min_frames: int = MIN_FRAMES, merge_gap: int = 0,
                         min_fraction: float = 0.0) -> list[RelationInstance]:
    """Every rule on every ordered pair of tracks: the maximal runs (gaps of up to ``merge_gap`` frames
    bridged) of at least ``min_frames`` frames and at least ``min_fraction`` of the video."""
    tracks = annotation_tracks(ann)
    min_frames = max(int(min_frames), int(np.ceil(float(min_fraction) * ann.frame_count)))
    out: list[RelationInstance] = []
    for s in tracks:
        for o in tracks:
            if s == o:
                continue
            pair = Pair.of(tracks[s], tracks[o], ann.categories[s], ann.categories[o])
            for predicate in PREDICATES:
                for begin, end in runs(rule_mask(predicate, pair), min_frames, merge_gap):
                    out.append(RelationInstance(s, o, predicate, begin, end))
    out.sort(key=lambda r: (r.begin_fid, r.subject_tid, r.object_tid, PREDICATES.index(r.predicate), r.end_fid))
    return out
