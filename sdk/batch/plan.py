"""What a batch run has left to do, shared by the local and Ray engines: tasks, cache keys, summaries.

Records are keyed by ``(video_id, relation as requested)``; a rerun skips keys the results file holds.
Relations the model cannot parse become error records without decoding anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrgv.batch.inputs import REGIONS_SUFFIXES, BatchItem
from vrgv.batch.records import Record, RecordWriter
from vrgv.errors import VrgvError
from vrgv.vocab import Vocabulary


@dataclass
class VideoTask:
    """One video still to process: the relations left, and where its regions are (or go)."""

    item: BatchItem
    relations: list[str]
    regions_path: str | None = None  # ready-made regions: a .npz input or a cache hit
    cache_path: str | None = None  # where freshly extracted regions are kept (--cache-regions)

    @property
    def video_id(self) -> str:
        return self.item.video_id


@dataclass
class BatchSummary:
    """Counts of one run: records ``done`` (ok), ``failed`` (error), ``skipped`` (already in the file)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    videos: int = 0
    videos_failed: int = 0
    seconds: float = 0.0
    engine: str = "local"
    started: float = field(default_factory=time.perf_counter)

    def add(self, records: list[Record]) -> None:
        for r in records:
            if r.status == "ok":
                self.done += 1
            else:
                self.failed += 1

    def finish(self) -> "BatchSummary":
        self.seconds = time.perf_counter() - self.started
        return self

    @property
    def throughput(self) -> float:
        """Videos per second of this run."""
        return self.videos / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "videos": self.videos, "videos_failed": self.videos_failed, "done": self.done,
            "failed": self.failed, "skipped": self.skipped, "seconds": round(self.seconds, 3),
            "videos_per_s": round(self.throughput, 3),
        }

    def format(self) -> str:
        return (
            f"vrgv batch ({self.engine}): {self.videos} videos in {self.seconds:.1f} s "
            f"({self.throughput:.2f} videos/s); records: {self.done} done, {self.failed} failed, "
            f"{self.skipped} skipped (already in the results file)"
        )


def error_text(exc: BaseException) -> str:
    """A record's ``error`` field: vrgv errors as written, anything else prefixed with its type."""
    if isinstance(exc, VrgvError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def cache_path_for(cache_dir: str | os.PathLike, item: BatchItem, model_id: str) -> str:
    """``DIR/<video_id>.<key>.npz`` with a key over the file's path, size, mtime and the extractor id."""
    p = Path(item.video)
    try:
        st = p.stat()
        stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = [None, None]
    key = hashlib.sha1(json.dumps([str(p.resolve()), *stamp, model_id]).encode()).hexdigest()[:12]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in item.video_id)
    return str(Path(cache_dir) / f"{safe}.{key}.npz")


def plan(
    items: list[BatchItem],
    writer: RecordWriter,
    vocabulary: Vocabulary,
    summary: BatchSummary,
    cache_dir: str | os.PathLike | None = None,
    model_id: str = "model",
) -> list[VideoTask]:
    """Tasks for the keys not yet written; bad relations are written as error records right away."""
    bad: dict[str, str] = {}
    tasks: list[VideoTask] = []
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    for item in items:
        todo = []
        for rel in item.relations:
            if (item.video_id, rel) in writer:
                summary.skipped += 1
                continue
            if rel not in bad:
                try:
                    vocabulary.canonical(rel)
                    bad[rel] = ""
                except VrgvError as exc:
                    bad[rel] = error_text(exc)
            if bad[rel]:
                rec = Record.failure(item.video_id, rel, bad[rel])
                writer.write(rec)
                summary.add([rec])
            else:
                todo.append(rel)
        if not todo:
            continue
        task = VideoTask(item, todo)
        if item.video.lower().endswith(REGIONS_SUFFIXES):
            task.regions_path = item.video
        elif cache_dir is not None:
            task.cache_path = cache_path_for(cache_dir, item, model_id)
            if Path(task.cache_path).is_file():
                task.regions_path = task.cache_path
        tasks.append(task)
    return tasks


def ground_task(grounder: Any, task: VideoTask, regions: Any) -> list[Record]:
    """Records for one video's relations (all error records if grounding fails)."""
    try:
        groundings = grounder.ground_many(regions, task.relations, video_id=task.video_id)
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the archive
        return failed_task(task, error_text(exc))
    return [
        Record.from_grounding(g, relation=rel, video_id=task.video_id)
        for rel, g in zip(task.relations, groundings)
    ]


def failed_task(task: VideoTask, message: str) -> list[Record]:
    return [Record.failure(task.video_id, rel, message) for rel in task.relations]
