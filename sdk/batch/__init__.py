"""Batch grounding of video archives: INPUT (folder, glob, CSV/JSONL manifest) -> crash-safe JSONL records.

``run_batch`` picks an engine: ``local`` (worker processes for decoding + extraction, pipelined with
model inference) or ``ray`` (the same stages on Ray Data, for clusters). Rerunning resumes.
"""
from __future__ import annotations

import os
from typing import Any

from vrgv.batch.inputs import BatchItem, parse_inputs, read_relations_file
from vrgv.batch.plan import BatchSummary
from vrgv.batch.records import Record, RecordWriter, read_records, records_to_predictions
from vrgv.errors import ConfigError

ENGINES = ("local", "ray")


def run_batch(
    items: list[BatchItem],
    out: str | os.PathLike,
    *,
    grounder: Any = None,
    model: str | None = None,
    backend: str = "auto",
    device: str = "cpu",
    threads: int | None = None,
    engine: str = "local",
    workers: int = 2,
    timeout: float | None = 600.0,
    cache_regions: str | os.PathLike | None = None,
    retry_errors: bool = False,
    progress: bool = True,
    worker_spec: Any = None,
) -> BatchSummary:
    """Ground every (video, relation) of ``items`` not yet in ``out``; returns the run's summary."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown batch engine {engine!r}; choose one of {', '.join(ENGINES)}")
    cache = None if cache_regions is None else str(cache_regions)
    if engine == "ray":
        from vrgv.batch.ray_engine import RayEngine

        return RayEngine(model=model, backend=backend, device=device, threads=threads, workers=workers,
                         progress=progress, grounder_spec=worker_spec).run(
            items, out, cache_regions=cache, retry_errors=retry_errors)
    from vrgv.batch.local import LocalEngine, WorkerSpec

    if grounder is None:
        from vrgv.grounder import Grounder

        grounder = Grounder.load(model, backend=backend, device=device, threads=threads)
    spec = worker_spec or WorkerSpec(kwargs={"path": model, "device": "cpu", "threads": 1})
    engine_ = LocalEngine(grounder, spec, workers=workers, timeout=timeout, progress=progress)
    return engine_.run(items, out, cache_regions=cache, retry_errors=retry_errors)


__all__ = [
    "BatchItem", "BatchSummary", "ENGINES", "Record", "RecordWriter", "parse_inputs", "read_records",
    "read_relations_file", "records_to_predictions", "run_batch",
]
