"""The Ray engine: the batch pipeline on Ray Data, for archives larger than one machine.

Stages: task rows -> CPU decode + region extraction (an actor pool, one extractor per actor) -> model
inference (an actor pool, one GPU each when the cluster has GPUs) -> records, streamed back to the
driver and appended to the JSONL file with the same crash-safe writer as the local engine. Regions
travel between stages as ``.npz`` bytes. Connects to ``RAY_ADDRESS`` when set, else starts Ray locally.
"""
from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from vrgv.batch.inputs import BatchItem
from vrgv.batch.local import DEFAULT_FACTORY, WorkerSpec
from vrgv.batch.plan import BatchSummary, VideoTask, error_text, failed_task, ground_task, plan
from vrgv.batch.records import Record, RecordWriter
from vrgv.errors import ConfigError

log = logging.getLogger("vrgv.batch")


def _task_to_row(task: VideoTask) -> dict[str, Any]:
    return {"video_id": task.video_id, "task": json.dumps({
        "video": task.item.video, "video_id": task.video_id, "relations": task.relations,
        "regions_path": task.regions_path, "cache_path": task.cache_path})}


def _row_to_task(row: dict[str, Any]) -> VideoTask:
    d = json.loads(row["task"])
    return VideoTask(BatchItem(d["video"], d["video_id"], d["relations"]), d["relations"], d["regions_path"],
                     d["cache_path"])


class ExtractStage:
    """Ray Data UDF: decode + extract one video; emits its regions as npz bytes or an error message."""

    def __init__(self, factory: str, kwargs: dict[str, Any]) -> None:
        from vrgv.batch.local import _limit_threads

        _limit_threads()
        self.grounder = WorkerSpec(factory, kwargs).build()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        task = _row_to_task(row)
        try:
            if task.regions_path:
                data = Path(task.regions_path).read_bytes()
            else:
                regions = self.grounder.extract(task.item.video, video_id=task.video_id)
                buf = io.BytesIO()
                import numpy as np

                np.savez(buf, **regions.to_arrays())
                data = buf.getvalue()
                if task.cache_path:
                    regions.save(task.cache_path)
            return {"video_id": row["video_id"], "task": row["task"], "regions": data, "error": ""}
        except Exception as exc:  # noqa: BLE001 - becomes the video's error records
            return {"video_id": row["video_id"], "task": row["task"], "regions": b"", "error": error_text(exc)}


class GroundStage:
    """Ray Data UDF: the model stage; one Grounder per actor (on a GPU when the actor has one)."""

    def __init__(self, factory: str, kwargs: dict[str, Any]) -> None:
        self.grounder = WorkerSpec(factory, kwargs).build()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from vrgv.regions import Regions

        task = _row_to_task(row)
        if row["error"]:
            records = failed_task(task, row["error"])
        else:
            with tempfile.TemporaryDirectory(prefix="vrgv-ray-") as tmp:
                path = Path(tmp) / "r.npz"
                path.write_bytes(bytes(row["regions"]))
                try:
                    regions = Regions.load(path)
                except Exception as exc:  # noqa: BLE001
                    regions = None
                    records = failed_task(task, error_text(exc))
            if regions is not None:
                records = ground_task(self.grounder, task, regions)
        return {"video_id": row["video_id"], "failed": bool(row["error"]),
                "records": json.dumps([r.to_dict() for r in records])}


class RayEngine:
    """Runs a batch on Ray Data; ``workers`` = extraction actors, model actors = GPUs (or 1 on CPU)."""

    name = "ray"

    def __init__(
        self,
        model: str | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        workers: int = 2,
        progress: bool = True,
        grounder_spec: WorkerSpec | None = None,
        num_cpus: int | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1 for the ray engine, got {workers}")
        self.device = device
        self.workers = int(workers)
        self.progress = progress
        self.num_cpus = num_cpus
        if grounder_spec is None:
            self.extract_spec = WorkerSpec(DEFAULT_FACTORY, {"path": model, "device": "cpu", "threads": 1})
            self.model_spec = WorkerSpec(DEFAULT_FACTORY, {"path": model, "backend": backend, "device": device,
                                                           "threads": threads})
        else:
            self.extract_spec = self.model_spec = grounder_spec

    def _init_ray(self) -> Any:
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise ConfigError("the ray engine needs Ray Data: pip install 'vrgv[ray]'") from None
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=self.num_cpus or max(2, self.workers + 1), **kwargs)
        return ray

    def run(self, items: list[BatchItem], out: str | os.PathLike, *, cache_regions: str | None = None,
            retry_errors: bool = False) -> BatchSummary:
        summary = BatchSummary(engine=self.name)
        planner = self.extract_spec.build()  # lazy pieces: only the vocabulary is used here
        with RecordWriter(out, retry_errors=retry_errors) as writer:
            model_id = str(getattr(planner, "extractor_id", None) or getattr(planner, "name", "model"))
            tasks = plan(items, writer, planner.vocabulary, summary, cache_regions, model_id)
            if tasks:
                self._run_tasks(tasks, writer, summary)
        return summary.finish()

    def _run_tasks(self, tasks: list[VideoTask], writer: RecordWriter, summary: BatchSummary) -> None:
        from tqdm.auto import tqdm

        ray = self._init_ray()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        gpus = int(ray.cluster_resources().get("GPU", 0)) if self.device.startswith("cuda") else 0
        if self.device.startswith("cuda") and gpus == 0:
            raise ConfigError("--device cuda was asked for, but the Ray cluster has no GPUs")
        ds = ray.data.from_items([_task_to_row(t) for t in tasks], override_num_blocks=len(tasks))
        ds = ds.map(ExtractStage, fn_constructor_kwargs={"factory": self.extract_spec.factory,
                                                         "kwargs": self.extract_spec.kwargs},
                    concurrency=min(self.workers, len(tasks)), num_cpus=1)
        ds = ds.map(GroundStage, fn_constructor_kwargs={"factory": self.model_spec.factory,
                                                        "kwargs": self.model_spec.kwargs},
                    concurrency=max(1, gpus), num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1)
        bar = tqdm(total=len(tasks), unit="video", desc="vrgv batch (ray)", disable=not self.progress)
        try:
            for row in ds.iter_rows():
                records = [Record.from_dict(d) for d in json.loads(row["records"])]
                for rec in records:
                    writer.write(rec)
                summary.add(records)
                summary.videos += 1
                summary.videos_failed += int(bool(row["failed"]))
                bar.update(1)
        finally:
            bar.close()
