"""Scene sampling: cast, timeline of motion episodes, simulation, and the annotation derived from it.

Everything a video contains follows from ``(seed, index)`` alone (``numpy.random.SeedSequence([seed, index,
stream])``), so splits generated with different seeds never share a video and reruns are byte-identical.
The annotation's relations come from the rules in :mod:`vrgv.synth.predicates` applied to the stored boxes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vrgv.annotations import VideoAnnotation
from vrgv.errors import ConfigError
from vrgv.synth import motion as mo
from vrgv.synth.categories import CATEGORY_SPECS, render_sprite
from vrgv.synth.predicates import CHASERS, JUMPERS, MOUNTS, relations_from_boxes

SCENE_STREAM, RENDER_STREAM = 0, 1
MAX_ATTEMPTS = 20
FPS_CHOICES = (10.0, 12.0, 15.0, 20.0, 24.0, 25.0, 30.0)
CATEGORY_WEIGHTS = {
    "person": 3.0, "dog": 2.0, "car": 1.5, "horse": 1.2, "bicycle": 1.0, "ball": 1.0, "bird": 1.0,
    "domestic_cat": 1.0, "zebra": 0.7, "sheep": 0.8,
}
HURDLES = frozenset({"ball", "dog", "domestic_cat", "sheep", "bicycle"})
MOVERS = frozenset({"person", "dog", "domestic_cat", "horse", "zebra", "sheep", "car"})


@dataclass(frozen=True)
class WorldRules:
    """What distinguishes one synthetic world from another: cast size and how relation runs become instances.

    ``standard`` is the world of generator version 1 (crowded scenes, every run of at least 8 frames is an
    instance, so relations flicker). ``grounding`` keeps scenes to 2-3 actors, bridges gaps of up to
    ``merge_gap_s`` seconds in a rule's run (hysteresis) and keeps a run only if it covers at least
    ``min_fraction`` of the video: fewer, longer relation instances, closer to how ImageNet-VidVRD is annotated.
    """

    cast_sizes: tuple[int, ...] = (2, 3, 4, 5, 6)
    cast_probs: tuple[float, ...] = (0.35, 0.32, 0.18, 0.09, 0.06)
    merge_gap_s: float = 0.0
    min_fraction: float = 0.0


WORLDS: dict[str, WorldRules] = {
    "standard": WorldRules(),
    "grounding": WorldRules(cast_sizes=(2, 3), cast_probs=(0.5, 0.5), merge_gap_s=1.5, min_fraction=0.2),
}


@dataclass(frozen=True)
class SynthOptions:
    """Knobs of one generated video (frame size and the range of its length)."""

    width: int = 320
    height: int = 240
    min_frames: int = 60
    max_frames: int = 600
    world: str = "standard"

    def __post_init__(self) -> None:
        if self.world not in WORLDS:
            raise ConfigError(f"unknown synthetic world {self.world!r}; choose one of {sorted(WORLDS)}")
        if not (64 <= self.width <= 4096 and 64 <= self.height <= 4096):
            raise ConfigError(f"synth frame size {self.width}x{self.height} is out of range; use 64..4096 pixels")
        if not (16 <= self.min_frames <= self.max_frames <= 100_000):
            raise ConfigError(
                f"synth frame range [{self.min_frames}, {self.max_frames}] is invalid; need 16 <= min <= max"
            )


@dataclass(frozen=True)
class ActorPath:
    """What the renderer needs per actor: sprites and, per frame, top-left corner, pose, facing, visibility."""

    tid: int
    category: str
    sprites: list
    x0: np.ndarray  # int64 [T] unclipped top-left x of the sprite
    y0: np.ndarray
    pose: np.ndarray  # int64 [T]
    facing: np.ndarray  # int8 [T] (+1 right, -1 left)
    boxes: np.ndarray  # f64 [T, 4] clipped inclusive boxes, NaN when invisible


@dataclass(frozen=True)
class Scene:
    """A simulated video: its geometry and the annotation computed from it."""

    video_id: str
    seed: int
    index: int
    options: SynthOptions
    fps: float
    frame_count: int
    horizon: float
    paths: list[ActorPath]
    annotation: VideoAnnotation


def video_id_for(seed: int, index: int) -> str:
    return f"synth_s{int(seed)}_{int(index):05d}"


def rng_for(seed: int, index: int, stream: int) -> np.random.Generator:
    """Independent random stream ``stream`` of video ``index`` of split ``seed``."""
    if seed < 0 or index < 0:
        raise ConfigError(f"synth seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))


# ------------------------------------------------------------------------------------------------
# cast


def _sample_cast(rng: np.random.Generator, rules: WorldRules = WORLDS["standard"]) -> list[str]:
    n = int(rng.choice(list(rules.cast_sizes), p=list(rules.cast_probs)))
    names = list(CATEGORY_WEIGHTS)
    weights = np.array([CATEGORY_WEIGHTS[c] for c in names])
    weights = weights / weights.sum()
    cast: list[str] = []
    if rng.random() < 0.3:
        dup = str(rng.choice(names, p=weights))
        cast += [dup] * min(n, int(rng.choice([2, 3], p=[0.75, 0.25])))
    if len(cast) + 2 <= n and rng.random() < 0.2:  # a rider and a mount
        cast += ["person", str(rng.choice(sorted(MOUNTS)))]
    while len(cast) < n:
        cast.append(str(rng.choice(names, p=weights)))
    order = rng.permutation(len(cast))
    return [cast[i] for i in order]


def _make_actor(tid: int, category: str, stage: mo.Stage, rng: np.random.Generator) -> mo.Actor:
    spec = CATEGORY_SPECS[category]
    style = spec.style(rng)
    height = stage.height * rng.uniform(*spec.height_range)
    aspect = spec.aspect * rng.uniform(0.88, 1.12)
    sprites = [render_sprite(category, style, int(round(height)), aspect, pose) for pose in range(spec.poses)]
    if spec.kind == "flyer":
        walk, run = rng.uniform(0.12, 0.2), rng.uniform(0.28, 0.4)
    elif spec.kind == "vehicle":
        walk, run = rng.uniform(0.1, 0.16), rng.uniform(0.3, 0.45)
    else:
        walk, run = rng.uniform(0.07, 0.12), rng.uniform(0.28, 0.4)
    return mo.Actor(tid, category, spec, sprites, float(walk), float(run))


# ------------------------------------------------------------------------------------------------
# timeline


EPISODE_WEIGHTS = {"ride": 3.0, "fly_above": 2.0, "jump_over": 2.0, "chase": 1.5, "follow": 1.5, "move_with": 1.0,
                   "approach": 1.5, "run_past": 1.5}


def _plan_episodes(actors: list[mo.Actor], stage: mo.Stage, T: int, rng: np.random.Generator) -> None:
    """Add salient pair episodes (chase, jump over, ride, ...) to the actors' task lists."""
    duration = T / stage.fps
    wanted = max(1, int(round(duration / 6.0 * rng.uniform(0.7, 1.4))))
    wanted = min(wanted, 2 * len(actors))
    for _ in range(wanted * 4):
        if wanted <= 0:
            break
        length = int(np.clip(rng.uniform(3.0, 9.0) * stage.fps, 30, max(30, 0.8 * T)))
        length = min(length, T)
        start = int(rng.integers(0, max(1, T - length + 1)))
        end = start + length
        candidates = [(kind, a, b) for a in actors for b in actors if a is not b and not a.busy(start, end)
                      for kind in _episode_kinds(a, b) if kind == "fly_above" or not b.busy(start, end)]
        if not candidates:
            continue
        weights = np.array([EPISODE_WEIGHTS[k] for k, _, _ in candidates])
        kind, a, b = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
        _add_episode(kind, a, b, start, end, stage, rng)
        wanted -= 1


def _episode_kinds(a: mo.Actor, b: mo.Actor) -> list[str]:
    """The episodes subject ``a`` can play with object ``b``."""
    ca, cb, kb = a.category, b.category, b.spec.kind
    options: list[str] = []
    if ca == "bird" and kb != "flyer":
        options.append("fly_above")
    if ca == "person" and cb in MOUNTS:
        options.append("ride")
    if ca in JUMPERS and cb in HURDLES and b.height < 0.9 * a.height:
        options.append("jump_over")
    if ca in CHASERS and cb in MOVERS:
        options += ["chase", "follow"]
    if ca in MOVERS and cb in MOVERS and ca != "car" and cb != "car":
        options.append("move_with")
    if ca in MOVERS and kb != "flyer":
        options += ["approach", "run_past"]
    return options


def _add_episode(kind: str, a: mo.Actor, b: mo.Actor, start: int, end: int, stage: mo.Stage,
                 rng: np.random.Generator) -> None:
    side = int(rng.choice([-1, 1]))
    if kind == "fly_above":
        a.tasks.append(mo.FlyAbove(start, end, b, a.walk, rng.uniform(0.05, 0.4) * b.height))
        return
    if kind == "ride":
        ride = mo.Ride(start, end, b, a.walk, start + int((end - start) * rng.uniform(0.75, 0.95)),
                       mounted=start == 0 or rng.random() < 0.4)
        speed = b.run * 0.7 if (b.category != "bicycle" and rng.random() < 0.3) else max(b.walk, 0.1)
        a.tasks.append(ride)
        b.tasks.append(mo.MountMove(start, end, ride, speed, rng))
        return
    if kind == "jump_over":
        a.tasks.append(mo.JumpOver(start, end, b, a.walk, a.run, side))
        b.tasks.append(mo.Hold(start, end))
        b.tasks[-1].episode = True
        return
    if kind == "run_past":
        a.tasks.append(mo.RunPast(start, end, b, a.walk, a.run, side))
        b.tasks.append(mo.Hold(start, end))
        b.tasks[-1].episode = True
        return
    if kind == "approach":
        a.tasks.append(mo.Approach(start, end, b, a.walk * 1.2, start + int((end - start) * rng.uniform(0.5, 0.8)), rng))
        b.tasks.append(mo.Hold(start, end))
        b.tasks[-1].episode = True
        return
    if kind == "chase":
        flee = mo.Wander(start, end, min(b.run, a.run) * 0.8, rng)
        flee.episode = True
        b.tasks.append(flee)
        a.tasks.append(mo.Follow(start, end, b, a.run, 0.3 * b.width))
        return
    if kind == "follow":
        lead = mo.Wander(start, end, min(b.walk, 0.11), rng)
        lead.episode = True
        b.tasks.append(lead)
        a.tasks.append(mo.Follow(start, end, b, 0.16, rng.uniform(0.4, 1.0) * b.width))
        return
    if kind == "move_with":
        lead = mo.Wander(start, end, min(b.walk, 0.11), rng)
        lead.episode = True
        b.tasks.append(lead)
        a.tasks.append(mo.Escort(start, end, b, 0.18, side))
        return
    raise ConfigError(f"unknown synthetic episode kind {kind!r}")


def _fill(actor: mo.Actor, stage: mo.Stage, T: int, rng: np.random.Generator) -> None:
    """Cover the gaps between episodes with idling and strolling; sometimes enter or leave the frame."""
    actor.tasks.sort(key=lambda task: task.start)
    fills: list[mo.Task] = []
    t = 0
    busy = [(task.start, task.end) for task in actor.tasks] + [(T, T)]
    kind = actor.spec.kind
    for bs, be in busy:
        while t < bs:
            seg = int(min(bs - t, max(2, rng.uniform(1.0, 4.0) * stage.fps)))
            moving = rng.random() < {"walker": 0.3, "vehicle": 0.3, "roller": 0.2, "flyer": 0.9}[kind]
            if actor.category == "bicycle":
                moving = False
            if moving and kind == "walker":
                fills.append(mo.Wander(t, t + seg, actor.walk * rng.uniform(0.6, 1.3), rng))
            elif moving:
                target = stage.random_point(actor, rng)
                speed = actor.walk * rng.uniform(1.0, 2.5) if kind != "flyer" else actor.walk
                fills.append(mo.Goto(t, t + seg, target, speed))
            else:
                fills.append(mo.Hold(t, t + seg))
            t += seg
        t = max(t, be)
    actor.tasks = sorted(actor.tasks + fills, key=lambda task: task.start)
    # exits: the last idle stretch may become a walk out of the frame
    last = actor.tasks[-1] if actor.tasks else None
    if (last is not None and not last.episode and actor.category != "bicycle"
            and last.end - last.start > 2 * stage.fps and rng.random() < 0.15):
        off = -2.0 * actor.width if rng.random() < 0.5 else stage.width + 2.0 * actor.width
        actor.tasks[-1] = mo.Goto(last.start, last.end, (off, actor.y if actor.y else stage.height * 0.8),
                                  max(actor.walk, 0.1) * 1.5)


def _place(actors: list[mo.Actor], stage: mo.Stage, rng: np.random.Generator) -> None:
    for actor in actors:
        actor.x, actor.y = stage.random_point(actor, rng)
        actor.facing = int(rng.choice([-1, 1]))
        if actor.category != "bicycle" and rng.random() < 0.15:  # enters from outside the frame
            actor.x = -actor.width if rng.random() < 0.5 else stage.width + actor.width


# ------------------------------------------------------------------------------------------------
# simulation


def _simulate(actors: list[mo.Actor], stage: mo.Stage, T: int) -> dict[int, dict[str, np.ndarray]]:
    rec = {a.tid: {k: np.zeros(T) for k in ("x", "y", "air", "facing", "pose")} for a in actors}
    flap = max(1, int(round(stage.fps / 8)))
    cursor = {a.tid: 0 for a in actors}
    for t in range(T):
        current = []
        for a in actors:
            i = cursor[a.tid]
            while i < len(a.tasks) and a.tasks[i].end <= t:
                i += 1
            cursor[a.tid] = i
            task = a.tasks[i] if i < len(a.tasks) and a.tasks[i].start <= t else None
            depth = 2 if isinstance(task, mo.Ride) else (1 if task is not None and task.follows is not None else 0)
            current.append((depth, a.tid, a, task))
        current.sort(key=lambda item: (item[0], item[1]))
        for _, _, a, task in current:
            a.air = 0.0
            if task is not None:
                task.step(a, stage, t)
            a.x = float(np.clip(a.x, -3 * stage.width, 4 * stage.width))
            a.y = float(np.clip(a.y, -stage.height, 2 * stage.height))
        for a in actors:
            r = rec[a.tid]
            r["x"][t], r["y"][t], r["air"][t], r["facing"][t] = a.x, a.y, a.air, a.facing
            if a.spec.kind == "flyer":
                r["pose"][t] = (t // flap) % a.spec.poses
            else:
                r["pose"][t] = int(a.odometer / max(2.0, 0.18 * a.height)) % a.spec.poses
    return rec


def _paths(actors: list[mo.Actor], rec, stage: mo.Stage) -> list[ActorPath]:
    W, H = stage.width, stage.height
    out = []
    for a in actors:
        r = rec[a.tid]
        pose = r["pose"].astype(np.int64)
        sw = np.array([s.width for s in a.sprites])[pose]
        sh = np.array([s.height for s in a.sprites])[pose]
        x0 = np.round(r["x"] - sw / 2.0).astype(np.int64)
        y0 = np.round(r["y"] - r["air"] - sh).astype(np.int64)
        x1, y1 = x0 + sw - 1, y0 + sh - 1
        cx0, cy0 = np.clip(x0, 0, W - 1), np.clip(y0, 0, H - 1)
        cx1, cy1 = np.clip(x1, 0, W - 1), np.clip(y1, 0, H - 1)
        visible = (x1 >= 0) & (x0 <= W - 1) & (y1 >= 0) & (y0 <= H - 1) & (cx1 - cx0 >= 2) & (cy1 - cy0 >= 2)
        boxes = np.stack([cx0, cy0, cx1, cy1], axis=1).astype(np.float64)
        boxes[~visible] = np.nan
        out.append(ActorPath(a.tid, a.category, a.sprites, x0, y0, pose, r["facing"].astype(np.int8), boxes))
    return out


def simulate_scene(seed: int, index: int, options: SynthOptions | None = None) -> Scene:
    """Sample and simulate video ``index`` of split ``seed`` (geometry and annotation; no pixels)."""
    options = options or SynthOptions()
    for attempt in range(MAX_ATTEMPTS):  # a video must hold at least one relation to be a training example
        scene = _simulate_attempt(seed, index, options, attempt)
        if scene.annotation.relations:
            break
    return scene


def _simulate_attempt(seed: int, index: int, options: SynthOptions, attempt: int) -> Scene:
    rng = rng_for(seed, index, SCENE_STREAM + 10 * attempt)
    W, H = options.width, options.height
    lo, hi = math.log(options.min_frames), math.log(options.max_frames)
    T = int(round(math.exp(rng.uniform(lo, hi)))) if hi > lo else options.min_frames
    T = int(np.clip(T, options.min_frames, options.max_frames))
    fps = float(rng.choice(FPS_CHOICES))
    stage = mo.Stage(W, H, fps, horizon=float(rng.uniform(0.22, 0.45) * H))
    rules = WORLDS[options.world]
    actors = [_make_actor(tid, cat, stage, rng) for tid, cat in enumerate(_sample_cast(rng, rules))]
    _place(actors, stage, rng)
    _plan_episodes(actors, stage, T, rng)
    for actor in actors:
        _fill(actor, stage, T, rng)
    paths = [p for p in _paths(actors, _simulate(actors, stage, T), stage) if not np.isnan(p.boxes).all()]
    vid = video_id_for(seed, index)
    annotation = annotate(vid, paths, T, fps, W, H, rules)
    return Scene(vid, seed, index, options, fps, T, stage.horizon, paths, annotation)


def annotate(video_id: str, paths: Sequence[ActorPath], frame_count: int, fps: float, width: int,
             height: int, rules: WorldRules = WORLDS["standard"]) -> VideoAnnotation:
    """The official-format annotation of simulated paths: visible boxes and rule-derived relations."""
    trajectories = {}
    for p in paths:
        keep = np.flatnonzero(~np.isnan(p.boxes).any(axis=1))
        trajectories[p.tid] = {int(f): [int(v) for v in p.boxes[f]] for f in keep}
    ann = VideoAnnotation(video_id, frame_count, width, height, fps, {p.tid: p.category for p in paths}, trajectories)
    ann.relations = relations_from_boxes(ann, merge_gap=int(round(rules.merge_gap_s * fps)),
                                         min_fraction=rules.min_fraction)
    return ann
