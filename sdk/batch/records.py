"""Crash-safe JSONL result records: one line per (video, relation), appended with a single ``write`` + fsync.

A run killed at any moment leaves only whole records plus, at worst, one partial trailing line, which
:class:`RecordWriter` truncates on reopen; the keys already written are what a resumed run skips.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrgv.errors import AnnotationError, ConfigError

STATUSES = ("ok", "error")
FIELDS = ("video_id", "relation", "status", "sub", "obj", "segment", "score", "error")


@dataclass
class Record:
    """One result line: ``status`` ``ok`` carries ``sub``/``obj``/``segment``/``score``; ``error`` a message."""

    video_id: str
    relation: str
    status: str
    sub: dict[str, list[float]] | None = None
    obj: dict[str, list[float]] | None = None
    segment: list[int] | None = None
    score: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.video_id, self.relation = str(self.video_id), str(self.relation)
        if self.status not in STATUSES:
            raise AnnotationError(f"record status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "ok" and (self.sub is None or self.obj is None or self.segment is None):
            raise AnnotationError(f"ok record for {self.key} needs 'sub', 'obj' and 'segment'")
        if self.status == "error" and not self.error:
            raise AnnotationError(f"error record for {self.key} needs an 'error' message")

    @property
    def key(self) -> tuple[str, str]:
        return self.video_id, self.relation

    @classmethod
    def from_grounding(cls, grounding: Any, relation: str | None = None, video_id: str | None = None) -> "Record":
        """An ``ok`` record; ``relation``/``video_id`` override the grounding's (to key by the request)."""
        d = grounding.to_dict()
        return cls(video_id or d["video_id"], relation or d["relation"], "ok", d["sub"], d["obj"], d["segment"],
                   d["score"], None, {"fallback": d.get("fallback", False)})

    @classmethod
    def failure(cls, video_id: str, relation: str, error: str) -> "Record":
        return cls(video_id, relation, "error", error=error)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in FIELDS}
        out.update(self.extra)
        return out

    def to_line(self) -> bytes:
        """The record as one JSON line (UTF-8, ``\\n``-terminated, no newline inside)."""
        return (json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        try:
            extra = {k: v for k, v in data.items() if k not in FIELDS}
            return cls(**{k: data.get(k) for k in FIELDS}, extra=extra)
        except TypeError as exc:
            raise AnnotationError(f"record {data!r:.80} is malformed ({exc})") from None


def _scan(path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """(complete records, byte length of the valid prefix, total size). Stops at the first bad line."""
    records: list[dict[str, Any]] = []
    good = 0
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # trailing partial line (killed mid-write)
        line = data[pos:nl]
        if line.strip():
            try:
                obj = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                obj = None
            if not isinstance(obj, dict) or "video_id" not in obj or "relation" not in obj:
                if data.find(b"\n", nl + 1) >= 0:
                    raise AnnotationError(
                        f"results file {str(path)!r}: line {len(records) + 1} is not a record and more lines follow; "
                        f"it was not written by vrgv batch, pick another --out"
                    )
                break  # a damaged last line: treat like a partial one
            records.append(obj)
        pos = good = nl + 1
    return records, good, len(data)


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete records of a results file (a trailing partial line is ignored)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"results file {str(path)!r} does not exist")
    return _scan(path)[0]


def iter_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    yield from read_records(path)


class RecordWriter:
    """Append-only JSONL writer with resume: each record is one ``os.write`` of a full line, then fsync.

    Opening an existing file truncates a partial last line and collects the finished keys; with
    ``retry_errors`` the file is first rewritten (atomically) without its ``error`` records.
    """

    def __init__(self, path: str | os.PathLike, *, retry_errors: bool = False, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        if self.path.exists() and not self.path.is_file():  # /dev/full, a folder, a FIFO: never read or lock
            raise ConfigError(f"results file {str(self.path)!r} is not a regular file; give a .jsonl path for --out")
        self._lock_fd = self._fd = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock(self.path)
            self._resume(retry_errors)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:  # read-only folder, a file where a folder should be, ...
            self.close()
            raise ConfigError(f"results file {str(self.path)!r} cannot be written ({exc.strerror or exc}); "
                              f"pick a writable --out") from None
        except BaseException:
            self.close()
            raise

    def _resume(self, retry_errors: bool) -> None:
        self.done: dict[tuple[str, str], str] = {}
        if self.path.exists():
            records, good, size = _scan(self.path)
            if retry_errors and any(r.get("status") != "ok" for r in records):
                records = [r for r in records if r.get("status") == "ok"]
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as fh:
                    for r in records:
                        fh.write((json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8"))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            elif good < size:
                with open(self.path, "r+b") as fh:
                    fh.truncate(good)
                    os.fsync(fh.fileno())
            for r in records:
                self.done[(str(r["video_id"]), str(r["relation"]))] = str(r.get("status"))
        self.resumed = len(self.done)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.done

    def write(self, record: Record) -> bool:
        """Append ``record`` unless its key is already written; returns whether it was written."""
        if record.key in self.done:
            return False
        line = record.to_line()
        start = os.fstat(self._fd).st_size
        try:
            done = 0
            while done < len(line):  # a short write (disk full) is retried once more, then raises
                n = os.write(self._fd, line[done:])
                if n <= 0:
                    raise OSError(28, "no space left on device")
                done += n
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, start)  # roll back the partial line: only whole records stay
            except OSError:  # pragma: no cover - the next run's resume truncates it anyway
                pass
            raise OSError(exc.errno, f"cannot append to results file {str(self.path)!r} "
                                     f"({exc.strerror or exc}); is the disk full? The partial record was removed - "
                                     f"free space and rerun the same command to resume") from None
        self.done[record.key] = record.status
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _lock(path: Path) -> int:
    """Hold an exclusive lock on ``.<name>.lock`` so two runs never append to one results file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no protection, documented
        return -1
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(
            f"results file {str(path)!r} is being written by another vrgv batch run; wait for it to finish "
            f"or pick another --out"
        ) from None
    return fd


def records_to_predictions(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{video_id: {relation: {"sub","obj","segment","score"}}}`` from the ``ok`` records (metric format)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("status") == "ok":
            out.setdefault(str(r["video_id"]), {})[str(r["relation"])] = {
                k: r[k] for k in ("sub", "obj", "segment", "score")
            }
    return out
