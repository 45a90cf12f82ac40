"""Writing synthetic videos: one ``SynthVideo`` (mp4 + official JSON), whole splits with a process pool, the demo.

Layout of a split folder: ``videos/<video_id>.mp4`` (OpenCV ``mp4v``), ``annotations/<video_id>.json`` and
``manifest.json`` (generator version, seed, count, options, ids). Files are written atomically, the JSON
last, so a video whose annotation exists is complete and an interrupted run can resume.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from vrgv.annotations import VideoAnnotation
from vrgv.errors import ConfigError, VideoError
from vrgv.synth.categories import CATEGORIES
from vrgv.synth.predicates import MIN_FRAMES, PREDICATES
from vrgv.synth.world import Scene, SynthOptions, simulate_scene, video_id_for

GENERATOR_VERSION = "1"
DEMO_SEED = 9999
MAX_SPLIT_SEED = 999  # seeds 0..999 are for data splits; DEMO_SEED is never used for one


@dataclass(frozen=True)
class SynthVideo:
    """One synthetic video: its annotation, its frames (rendered on demand) and a writer."""

    scene: Scene

    @property
    def video_id(self) -> str:
        return self.scene.video_id

    @property
    def annotation(self) -> VideoAnnotation:
        return self.scene.annotation

    def frames(self) -> Iterator[np.ndarray]:
        """RGB uint8 [H, W, 3] frames, ``annotation.frame_count`` of them, rendered in memory."""
        from vrgv.synth.render import render_frames

        return render_frames(self.scene)

    def write(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``out_dir/videos/<id>.mp4`` and ``out_dir/annotations/<id>.json``; return both paths."""
        import cv2

        out_dir = Path(out_dir)
        video_path = out_dir / "videos" / f"{self.video_id}.mp4"
        ann_path = out_dir / "annotations" / f"{self.video_id}.json"
        video_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = video_path.with_name(f".{self.video_id}.{os.getpid()}.tmp.mp4")
        opts = self.scene.options
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.scene.fps, (opts.width, opts.height))
        if not writer.isOpened():
            raise VideoError(f"OpenCV cannot open an mp4v writer for {str(tmp)!r}; check that the folder is writable "
                             "and that opencv has video I/O support")
        try:
            for frame in self.frames():
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        finally:
            writer.release()
        os.replace(tmp, video_path)
        self.annotation.save(ann_path)
        return video_path, ann_path


def sample_video(seed: int, index: int, *, width: int = 320, height: int = 240, min_frames: int = 60,
                 max_frames: int = 600, world: str = "standard") -> SynthVideo:
    """Video ``index`` of the split with ``seed``: depends on (seed, index) and the options only."""
    return SynthVideo(simulate_scene(int(seed), int(index), SynthOptions(width, height, min_frames, max_frames, world)))


def _write_one(job: tuple[str, int, int, dict]) -> tuple[int, str, int, int]:
    out_dir, seed, index, opts = job
    video = sample_video(seed, index, **opts)
    _, ann_path = video.write(out_dir)
    return index, str(ann_path), video.annotation.frame_count, len(video.annotation.relations)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def _manifest(seed: int, count: int, opts: dict, ids: list[str], complete: bool, seconds: float | None) -> dict:
    return {
        "generator": "vrgv.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "count": count,
        "options": opts,
        "min_relation_frames": MIN_FRAMES,
        "world": opts.get("world", "standard"),
        "categories": list(CATEGORIES),
        "predicates": list(PREDICATES),
        "complete": complete,
        "seconds": seconds,
        "video_ids": ids,
    }


def generate_split(out_dir: str | os.PathLike, num_videos: int, seed: int, *, workers: int | None = None,
                   width: int = 320, height: int = 240, min_frames: int = 60, max_frames: int = 600,
                   world: str = "standard", overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write videos 0..num_videos-1 of split ``seed`` into ``out_dir``; return the annotation paths in order.

    Videos whose annotation already exists are kept (resume) unless ``overwrite``; a folder made by another
    seed, generator version or options is refused so that splits never mix.
    """
    if num_videos < 1:
        raise ConfigError(f"synth --videos must be at least 1, got {num_videos}")
    if not 0 <= seed <= MAX_SPLIT_SEED and seed != DEMO_SEED:
        raise ConfigError(f"synth seed {seed} is outside the split range 0..{MAX_SPLIT_SEED} (the demo uses {DEMO_SEED})")
    opts = asdict(SynthOptions(width, height, min_frames, max_frames, world))
    if world == "standard":
        del opts["world"]  # manifests of standard splits written before worlds existed stay valid
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file() and not overwrite:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        mismatch = {k: (old.get(k), v) for k, v in (("seed", seed), ("generator_version", GENERATOR_VERSION),
                                                     ("options", opts)) if old.get(k) != v}
        if mismatch:
            raise ConfigError(f"{str(out_dir)!r} holds a different split ({mismatch}); use another --out or --overwrite")
    ids = [video_id_for(seed, i) for i in range(num_videos)]
    ann_paths = [out_dir / "annotations" / f"{vid}.json" for vid in ids]
    todo = [i for i in range(num_videos) if overwrite or not (ann_paths[i].is_file()
                                                               and (out_dir / "videos" / f"{ids[i]}.mp4").is_file())]
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(manifest_path, _manifest(seed, num_videos, opts, ids, False, None))
    started = time.perf_counter()
    jobs = [(str(out_dir), seed, i, opts) for i in todo]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=f"synth seed {seed}", unit="video", disable=not progress)
    try:
        if workers == 1:
            for job in jobs:
                _write_one(job)
                bar.update(1)
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
                for fut in as_completed([pool.submit(_write_one, job) for job in jobs]):
                    fut.result()
                    bar.update(1)
    finally:
        bar.close()
    _write_json(manifest_path, _manifest(seed, num_videos, opts, ids, True, round(time.perf_counter() - started, 1)))
    return ann_paths


def demo_video(out_dir: str | os.PathLike, index: int = 0) -> tuple[Path, Path]:
    """Write the fixed demo clip (seed ``DEMO_SEED``, never a training seed); return (video, annotation)."""
    return sample_video(DEMO_SEED, index, min_frames=150, max_frames=300).write(out_dir)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
