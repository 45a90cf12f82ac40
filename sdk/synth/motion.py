"""Motion programs: what each object does over time (idle, wander, approach, chase, jump over, ride, ...).

An ``Actor`` holds continuous state (centre x, ground line y, height in the air); a ``Task`` moves it for a
window of frames. Episodes that make a relation salient (A chases B, A jumps over B, a person rides a horse)
are pairs of tasks; fill tasks (idle, wander) cover the rest of the timeline. Speeds are in frame widths per
second and are converted to pixels per frame with the video's fps, so motion looks alike at any fps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vrgv.synth.categories import CategorySpec, Sprite


@dataclass
class Stage:
    """The playing field: frame size, fps and the band of the ground plane."""

    width: int
    height: int
    fps: float
    horizon: float  # y of the horizon (pixels)

    def px(self, speed_wps: float) -> float:
        """Speed in frame widths per second -> pixels per frame."""
        return speed_wps * self.width / self.fps

    def ground_band(self, actor: "Actor") -> tuple[float, float]:
        """Allowed ground-line y range for an actor (flyers: the sky and a bit below the horizon)."""
        if actor.spec.kind == "flyer":
            return actor.height + 2.0, self.horizon + 0.15 * self.height
        return max(self.horizon + 0.12 * self.height, actor.height * 0.6), self.height - 2.0

    def random_point(self, actor: "Actor", rng: np.random.Generator) -> tuple[float, float]:
        lo, hi = self.ground_band(actor)
        m = 0.5 * actor.width
        return float(rng.uniform(m, self.width - m)), float(rng.uniform(lo, max(lo + 1, hi)))


@dataclass
class Actor:
    """One object: its look (sprites per pose), size, speeds and state; the simulation records its path."""

    tid: int
    category: str
    spec: CategorySpec
    sprites: list[Sprite]
    walk: float  # frame widths / s
    run: float
    x: float = 0.0
    y: float = 0.0  # ground line (bottom of the sprite when not in the air)
    air: float = 0.0
    facing: int = 1
    odometer: float = 0.0
    tasks: list["Task"] = field(default_factory=list)

    @property
    def width(self) -> float:
        return float(self.sprites[0].width)

    @property
    def height(self) -> float:
        return float(self.sprites[0].height)

    def move_to(self, tx: float, ty: float, step: float) -> bool:
        """Move at most ``step`` pixels toward (tx, ty); True once there."""
        dx, dy = tx - self.x, ty - self.y
        d = math.hypot(dx, dy)
        if d <= max(step, 1e-9):
            self._shift(dx, dy)
            return True
        self._shift(dx / d * step, dy / d * step)
        return False

    def _shift(self, dx: float, dy: float) -> None:
        self.x += dx
        self.y += dy
        self.odometer += math.hypot(dx, dy)
        if abs(dx) > 0.05:
            self.facing = 1 if dx > 0 else -1

    def task_at(self, t: int) -> "Task | None":
        for task in self.tasks:
            if task.start <= t < task.end:
                return task
        return None

    def busy(self, start: int, end: int) -> bool:
        return any(task.start < end and start < task.end for task in self.tasks if task.episode)


class Task:
    """Moves an actor during frames [start, end). ``follows`` names the actor it reacts to (updated first)."""

    episode = True
    follows: Actor | None = None

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = int(start), int(end)

    def step(self, me: Actor, stage: Stage, t: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Hold(Task):
    """Stand still."""

    episode = False

    def step(self, me, stage, t):
        pass


class Goto(Task):
    """Walk (or run) to a point, then stand."""

    def __init__(self, start, end, target, speed, episode=False):
        super().__init__(start, end)
        self.target, self.speed, self.episode = target, speed, episode

    def step(self, me, stage, t):
        me.move_to(*self.target, stage.px(self.speed))


class Wander(Task):
    """Stroll between random points of the actor's band."""

    episode = False

    def __init__(self, start, end, speed, rng: np.random.Generator):
        super().__init__(start, end)
        self.speed, self.rng, self.target = speed, rng, None

    def step(self, me, stage, t):
        if self.target is None:
            self.target = stage.random_point(me, self.rng)
        if me.move_to(*self.target, stage.px(self.speed)):
            self.target = stage.random_point(me, self.rng)


def _beside(me: Actor, other: Actor, side: int, gap: float) -> tuple[float, float]:
    return other.x + side * (0.5 * other.width + 0.5 * me.width + gap), other.y


class Approach(Task):
    """Go next to ``other`` (on the side it is already on), stay there, then walk away for the last part."""

    def __init__(self, start, end, other, speed, leave_at, rng):
        super().__init__(start, end)
        self.other, self.speed, self.leave_at = other, speed, int(leave_at)
        self.gap = float(rng.uniform(0.0, 0.15))
        self.away = None
        self.follows = other

    def step(self, me, stage, t):
        side = 1 if me.x >= self.other.x else -1
        if t < self.leave_at:
            tx, ty = _beside(me, self.other, side, self.gap * me.height)
            me.move_to(tx, ty, stage.px(self.speed))
            return
        if self.away is None:
            lo, hi = stage.ground_band(me)
            self.away = (float(np.clip(me.x + side * 0.6 * stage.width, 0.5 * me.width, stage.width - 0.5 * me.width)),
                         float(np.clip(me.y + 0.1 * stage.height * side, lo, hi)))
        me.move_to(*self.away, stage.px(self.speed))


class Follow(Task):
    """Keep ``dist`` behind ``other`` (a chase when the speeds are running speeds)."""

    def __init__(self, start, end, other, speed, dist):
        super().__init__(start, end)
        self.other, self.speed, self.dist = other, speed, dist
        self.follows = other

    def step(self, me, stage, t):
        o = self.other
        tx = o.x - o.facing * (self.dist + 0.5 * (o.width + me.width))
        me.move_to(tx, o.y, stage.px(self.speed))


class RunPast(Task):
    """Walk to one side of ``other``, then run past it to the other side."""

    def __init__(self, start, end, other, walk, run, side):
        super().__init__(start, end)
        self.other, self.walk, self.run, self.side, self.phase = other, walk, run, side, 0
        self.end_point = None

    def step(self, me, stage, t):
        o = self.other
        if self.phase == 0:
            start = (o.x - self.side * (0.5 * o.width + 0.5 * me.width + 0.3 * stage.width), o.y + 0.5)
            if me.move_to(*start, stage.px(self.walk)):
                self.phase = 1
                self.end_point = (o.x + self.side * (0.5 * o.width + 0.5 * me.width + 0.35 * stage.width), o.y + 0.5)
        elif self.phase == 1:
            if me.move_to(*self.end_point, stage.px(self.run)):
                self.phase = 2


class JumpOver(Task):
    """Walk up to ``other``, leap over it in an arc, land on the far side."""

    def __init__(self, start, end, other, walk, run, side):
        super().__init__(start, end)
        self.other, self.walk, self.run, self.side, self.phase = other, walk, run, side, 0
        self.a = self.b = None
        self.peak = 0.0

    def step(self, me, stage, t):
        o = self.other
        if self.phase == 0:
            start = (o.x - self.side * (0.5 * o.width + 0.5 * me.width + 0.5 * me.height), o.y + 1.0)
            if me.move_to(*start, stage.px(self.walk)):
                self.phase = 1
                self.a = me.x
                self.b = o.x + self.side * (0.5 * o.width + 0.5 * me.width + 0.5 * me.height)
                self.peak = o.height + 0.35 * me.height
        elif self.phase == 1:
            done = me.move_to(self.b, me.y, stage.px(0.75 * self.run))
            s = (me.x - self.a) / (self.b - self.a) if self.b != self.a else 1.0
            me.air = 0.0 if done else self.peak * 4.0 * s * (1.0 - s)
            if done:
                self.phase = 2


class FlyAbove(Task):
    """A flyer goes above ``other`` and hovers over it, bobbing."""

    def __init__(self, start, end, other, speed, gap):
        super().__init__(start, end)
        self.other, self.speed, self.gap = other, speed, gap
        self.follows = other

    def step(self, me, stage, t):
        o = self.other
        bob = 0.15 * me.height * math.sin(2 * math.pi * t / stage.fps)
        top = o.y - o.air - o.height
        me.move_to(o.x + 0.3 * me.width * math.sin(math.pi * t / stage.fps), top - self.gap + bob, stage.px(self.speed))


class Ride(Task):
    """A rider walks to its mount, climbs on, rides while the mount moves, and gets off at the end."""

    def __init__(self, start, end, mount, walk, off_at, mounted=False):
        super().__init__(start, end)
        self.mount, self.walk, self.off_at, self.phase = mount, walk, int(off_at), 1 if mounted else 0
        self.climb_by = start + int(0.35 * (end - start))  # jump on at the latest here
        self.follows = mount

    def saddle(self, me):
        m = self.mount
        return m.x + 0.05 * m.facing * m.width, m.y - 0.45 * m.height

    def step(self, me, stage, t):
        m = self.mount
        if self.phase == 0:
            tx, ty = _beside(me, m, 1 if me.x >= m.x else -1, 0.0)
            if me.move_to(tx, ty, stage.px(self.walk)) or t >= self.climb_by:
                self.phase = 1
        if self.phase == 1:
            me.x, me.y = self.saddle(me)
            me.facing = m.facing
            me.odometer = 0.0
            if t >= self.off_at:
                self.phase = 2
                me.x, me.y = _beside(me, m, 1, 0.1 * me.height)


class MountMove(Task):
    """The mount of a ride: waits for its rider to climb on, then travels with it."""

    def __init__(self, start, end, rider_task: Ride, speed, rng):
        super().__init__(start, end)
        self.rider_task, self.speed, self.rng, self.target = rider_task, speed, rng, None

    def step(self, me, stage, t):
        if self.rider_task.phase != 1:
            return
        if self.target is None or me.move_to(*self.target, stage.px(self.speed)):
            self.target = stage.random_point(me, self.rng)


class Escort(Task):
    """Stay beside ``other`` and move along with it (move_with)."""

    def __init__(self, start, end, other, speed, side):
        super().__init__(start, end)
        self.other, self.speed, self.side = other, speed, side
        self.follows = other

    def step(self, me, stage, t):
        tx, ty = _beside(me, self.other, self.side, 0.05 * me.height)
        me.move_to(tx, ty + 1.0, stage.px(self.speed))
