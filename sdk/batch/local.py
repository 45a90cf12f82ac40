"""The local batch engine: decode + region extraction in worker processes, model inference in a thread.

Workers and the inference thread are joined by a bounded number of in-flight videos, so decoding runs
ahead of the model but never piles up. A worker that crashes or passes ``timeout`` seconds on a video
is killed and replaced; that video gets error records and the run goes on. Messages between processes
are JSON (no pickle); regions travel as ``.npz`` files.
"""
from __future__ import annotations

import importlib
import json
import logging
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from vrgv.batch.inputs import BatchItem
from vrgv.batch.plan import BatchSummary, VideoTask, error_text, failed_task, ground_task, plan
from vrgv.batch.records import RecordWriter
from vrgv.errors import ConfigError, VrgvError

log = logging.getLogger("vrgv.batch")

DEFAULT_FACTORY = "vrgv.grounder:Grounder.load"


@dataclass
class WorkerSpec:
    """How a worker process builds its extractor: ``factory`` ("module:attr.attr") called with ``kwargs``.

    The product needs ``.extract(video, video_id=...) -> Regions``. Both fields must be JSON values.
    """

    factory: str = DEFAULT_FACTORY
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if ":" not in self.factory:
            raise ConfigError(f"worker factory {self.factory!r} must look like 'package.module:callable'")
        try:
            json.dumps(self.kwargs)
        except TypeError as exc:
            raise ConfigError(f"worker factory kwargs must be JSON values ({exc})") from None

    def build(self) -> Any:
        module, _, attr = self.factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj(**self.kwargs)


def _limit_threads() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


def _worker_main(conn: Connection, factory: str, kwargs_json: str) -> None:
    """Worker process: build the extractor once, then turn {video, video_id, out} messages into .npz files."""
    _limit_threads()
    logging.basicConfig(level=logging.WARNING)
    try:
        extractor = WorkerSpec(factory, json.loads(kwargs_json)).build()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the run
        conn.send_bytes(json.dumps({"fatal": error_text(exc)}).encode())
        return
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            msg = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # parent gone
        if msg.get("stop"):
            return
        try:
            regions = extractor.extract(msg["video"], video_id=msg["video_id"])
            path = regions.save(msg["out"])
            reply = {"id": msg["id"], "ok": True, "path": str(path)}
        except Exception as exc:  # noqa: BLE001 - becomes the video's error record
            reply = {"id": msg["id"], "ok": False, "error": error_text(exc)}
        try:
            conn.send_bytes(json.dumps(reply).encode())
        except (BrokenPipeError, OSError):
            return


class _Worker:
    """A worker process, its pipe, and the task it is working on."""

    def __init__(self, ctx: Any, spec: WorkerSpec) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, spec.factory, json.dumps(spec.kwargs)), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.eof = False
        self.task: VideoTask | None = None
        self.task_id = -1
        self.started = 0.0

    def send(self, task: VideoTask, task_id: int, out: str) -> None:
        self.task, self.task_id, self.started = task, task_id, time.monotonic()
        self.conn.send_bytes(json.dumps({"id": task_id, "video": task.item.video, "video_id": task.video_id,
                                         "out": out}).encode())

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        if not self.conn.closed:
            self.conn.close()

    def stop(self) -> None:
        if self.task is None and self.proc.is_alive():
            try:
                self.conn.send_bytes(b'{"stop": true}')
            except (BrokenPipeError, OSError):
                pass
            self.proc.join(timeout=2)
        self.kill()


class LocalEngine:
    """Runs a batch on this machine; ``workers=0`` extracts in the inference thread (no processes)."""

    name = "local"

    def __init__(
        self,
        grounder: Any,
        worker_spec: WorkerSpec | None = None,
        *,
        workers: int = 2,
        timeout: float | None = 600.0,
        queue_size: int | None = None,
        progress: bool = True,
    ) -> None:
        if workers < 0:
            raise ConfigError(f"--workers must be 0 or more, got {workers}")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--timeout must be positive seconds, got {timeout}")
        self.grounder = grounder
        self.spec = worker_spec or WorkerSpec()
        self.workers = int(workers)
        self.timeout = timeout
        self.queue_size = int(queue_size) if queue_size else max(2, 2 * self.workers)
        self.progress = progress

    def run(
        self, items: list[BatchItem], out: str | os.PathLike, *, cache_regions: str | None = None,
        retry_errors: bool = False,
    ) -> BatchSummary:
        summary = BatchSummary(engine=self.name)
        with RecordWriter(out, retry_errors=retry_errors) as writer:
            model_id = str(getattr(self.grounder, "extractor_id", None) or getattr(self.grounder, "name", "model"))
            tasks = plan(items, writer, self.grounder.vocabulary, summary, cache_regions, model_id)
            if tasks:
                self._run_tasks(tasks, writer, summary)
        return summary.finish()

    # ------------------------------------------------------------------------------------------
    def _run_tasks(self, tasks: list[VideoTask], writer: RecordWriter, summary: BatchSummary) -> None:
        from tqdm.auto import tqdm

        work: queue.Queue = queue.Queue()
        bar = tqdm(total=len(tasks), unit="video", desc="vrgv batch", disable=not self.progress, smoothing=0.1)
        tmpdir = tempfile.mkdtemp(prefix="vrgv-batch-")
        consumer_error: list[BaseException] = []

        def consume() -> None:
            while True:
                entry = work.get()
                if entry is None:
                    return
                kind, task, payload = entry
                try:
                    if kind == "error":
                        records = failed_task(task, payload)
                        summary.videos_failed += 1
                    else:
                        regions = payload if kind == "regions" else self._load_regions(task, payload)
                        if isinstance(regions, str):  # an error message from loading
                            records = failed_task(task, regions)
                            summary.videos_failed += 1
                            if payload == task.cache_path:  # a damaged cache entry: extract afresh next time
                                Path(payload).unlink(missing_ok=True)
                        else:
                            records = ground_task(self.grounder, task, regions)
                            if kind == "path" and payload != task.cache_path and payload != task.regions_path:
                                Path(payload).unlink(missing_ok=True)
                    for rec in records:
                        writer.write(rec)
                    summary.add(records)
                    summary.videos += 1
                    bar.update(1)
                except BaseException as exc:  # noqa: BLE001 - e.g. disk full: stop the run, report it
                    consumer_error.append(exc)
                    return
                finally:
                    work.task_done()

        consumer = threading.Thread(target=consume, name="vrgv-batch-inference", daemon=True)
        consumer.start()
        try:
            ready = [t for t in tasks if t.regions_path]
            todo = deque(t for t in tasks if not t.regions_path)
            for t in ready:
                work.put(("path", t, t.regions_path))
            if self.workers == 0:
                for t in todo:
                    if consumer_error:
                        break
                    self._wait_room(work, consumer_error)
                    try:
                        regions: Any = self.grounder.extract(t.item.video, video_id=t.video_id)
                        if t.cache_path:
                            regions.save(t.cache_path)
                        work.put(("regions", t, regions))
                    except Exception as exc:  # noqa: BLE001
                        work.put(("error", t, error_text(exc)))
            else:
                self._dispatch(todo, work, tmpdir, consumer_error)
        finally:
            work.put(None)
            consumer.join()
            bar.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
        if consumer_error:
            raise consumer_error[0]

    def _wait_room(self, work: queue.Queue, consumer_error: list) -> None:
        while work.unfinished_tasks >= self.queue_size and not consumer_error:
            time.sleep(0.01)

    @staticmethod
    def _load_regions(task: VideoTask, path: str) -> Any:
        from vrgv.regions import Regions

        try:
            return Regions.load(path)
        except VrgvError as exc:
            return str(exc)

    def _dispatch(self, todo: deque, work: queue.Queue, tmpdir: str, consumer_error: list) -> None:
        ctx = mp.get_context("spawn")
        pool = [_Worker(ctx, self.spec) for _ in range(min(self.workers, len(todo)))]
        capacity = self.queue_size + len(pool)
        next_id = 0
        try:
            while (todo or any(w.task for w in pool)) and not consumer_error:
                # hand out work while the pipeline has room (queued for inference + being extracted)
                for w in pool:
                    busy = sum(1 for x in pool if x.task is not None)
                    if not todo or busy + work.unfinished_tasks >= capacity:
                        break
                    if w.ready and w.task is None:
                        t = todo.popleft()
                        w.send(t, next_id, t.cache_path or os.path.join(tmpdir, f"{next_id}.npz"))
                        next_id += 1
                for obj in wait([w.conn for w in pool if not w.eof] + [w.proc.sentinel for w in pool], timeout=0.2):
                    w = next((x for x in pool if obj is x.conn), None)
                    if w is not None:
                        self._receive(w, work)
                now = time.monotonic()
                for w in list(pool):
                    dead = not w.proc.is_alive()
                    late = w.task is not None and self.timeout is not None and now - w.started > self.timeout
                    if not dead and not late:
                        continue
                    if dead and not w.eof and w.conn.poll():
                        self._receive(w, work)  # its last words first
                    if dead and not w.ready:
                        raise VrgvError(f"batch worker exited during start-up (exit code {w.proc.exitcode})")
                    if w.task is not None:
                        reason = (f"timed out after {self.timeout:g} s decoding/extracting regions (--timeout)" if late
                                  else f"worker process crashed (exit code {w.proc.exitcode}) while decoding/"
                                       f"extracting regions")
                        log.warning("video %r: %s", w.task.video_id, reason)
                        work.put(("error", w.task, reason))
                        w.task = None
                    w.kill()
                    pool.remove(w)
                    if todo:
                        pool.append(_Worker(ctx, self.spec))
        finally:
            for w in pool:
                w.stop()

    @staticmethod
    def _receive(w: _Worker, work: queue.Queue) -> None:
        try:
            msg = json.loads(w.conn.recv_bytes())
        except (EOFError, OSError):
            w.eof = True  # the process is gone; its sentinel reports it
            return
        if "fatal" in msg:
            raise VrgvError(f"batch worker could not start: {msg['fatal']}")
        if msg.get("ready"):
            w.ready = True
        elif w.task is not None and msg.get("id") == w.task_id:
            t, w.task = w.task, None
            work.put(("path", t, msg["path"]) if msg["ok"] else ("error", t, msg["error"]))
