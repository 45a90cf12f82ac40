"""``vrgv batch`` INPUT parsing: a folder or glob of videos, or a CSV/JSONL manifest of (video, relations).

Each input becomes a :class:`BatchItem` (path, video id, relations). Relations come from the manifest
row, else ``--relations``/``--relations-file``, else the video's annotation in ``--annotations DIR``.
"""
from __future__ import annotations

import csv
import glob
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vrgv.errors import AnnotationError, ConfigError

log = logging.getLogger("vrgv.batch")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif")
REGIONS_SUFFIXES = (".npz",)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
RELATION_SEPARATORS = (";", "|")


@dataclass
class BatchItem:
    """One video of a batch and the relations to ground in it."""

    video: str
    video_id: str
    relations: list[str]

    def __post_init__(self) -> None:
        self.video, self.video_id = str(self.video), str(self.video_id)
        if not self.video_id:
            raise ConfigError(f"batch input {self.video!r} has an empty video id")
        self.relations = list(dict.fromkeys(str(r).strip() for r in self.relations if str(r).strip()))


def video_id_of(path: str | os.PathLike) -> str:
    p = Path(path)
    return p.name if p.is_dir() else p.stem


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in path.iterdir())


def _is_input(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES + REGIONS_SUFFIXES
    return _is_frame_folder(path)


def split_relations(value: object) -> list[str]:
    """A manifest's ``relations`` cell: a JSON list, or strings separated by ';' or '|'."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            pass
    for sep in RELATION_SEPARATORS:
        text = text.replace(sep, "\n")
    return [t.strip() for t in text.splitlines() if t.strip()]


def read_relations_file(path: str | os.PathLike) -> list[str]:
    """One relation per line; blank lines and ``#`` comments ignored."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"relations file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"relations file {str(p)!r} is not UTF-8 text ({exc}); one relation per line") from None
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    rels = [ln for ln in lines if ln]
    if not rels:
        raise ConfigError(f"relations file {str(p)!r} lists no relations (one per line, like person-ride-bicycle)")
    return rels


def _manifest_rows(path: Path) -> list[tuple[str, str | None, list[str]]]:
    rows: list[tuple[str, str | None, list[str]]] = []
    base = path.parent
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "video" not in reader.fieldnames:
                raise ConfigError(f"manifest {str(path)!r} needs a header row with a 'video' column (and 'relations')")
            entries = list(reader)
    else:
        entries = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"manifest {str(path)!r} line {i} is not JSON ({exc.msg})") from None
            if not isinstance(entry, dict) or "video" not in entry:
                raise ConfigError(f"manifest {str(path)!r} line {i} must be an object with a 'video' key")
            entries.append(entry)
    for entry in entries:
        video = str(entry["video"]).strip()
        if not video:
            raise ConfigError(f"manifest {str(path)!r} has a row with an empty 'video'")
        full = Path(video) if os.path.isabs(video) else base / video
        vid = entry.get("video_id")
        rows.append((str(full), str(vid) if vid else None, split_relations(entry.get("relations"))))
    return rows


def parse_inputs(
    source: str | os.PathLike,
    relations: Sequence[str] | None = None,
    relations_file: str | os.PathLike | None = None,
    annotations: str | os.PathLike | None = None,
) -> list[BatchItem]:
    """Expand INPUT into batch items (sorted by path for folders and globs, manifest order otherwise)."""
    src = str(source)
    path = Path(src)
    rows: list[tuple[str, str | None, list[str]]]
    if path.is_file() and path.suffix.lower() in (".csv", ".jsonl"):
        try:
            rows = _manifest_rows(path)
        except (UnicodeDecodeError, csv.Error) as exc:  # binary junk, NUL bytes
            raise ConfigError(f"manifest {src!r} cannot be read ({exc}); save it as UTF-8 CSV or JSONL") from None
    elif path.is_dir() and not _is_frame_folder(path):
        rows = [(str(p), None, []) for p in sorted(path.iterdir()) if _is_input(p) and not p.name.startswith(".")]
    elif any(ch in src for ch in "*?["):
        rows = [(p, None, []) for p in sorted(glob.glob(src, recursive=True)) if _is_input(Path(p))]
    elif path.exists():
        rows = [(src, None, [])]
    else:
        raise ConfigError(
            f"batch INPUT {src!r} does not exist; give a folder or glob of videos, or a .csv/.jsonl manifest"
        )
    if not rows:
        raise ConfigError(f"batch INPUT {src!r} holds no videos ({', '.join(VIDEO_SUFFIXES[:5])}, ...), frame folders or .npz regions")
    common = list(relations or [])
    if relations_file is not None:
        common += read_relations_file(relations_file)
    ann_dir = Path(annotations) if annotations is not None else None
    if ann_dir is not None and not ann_dir.is_dir():
        raise ConfigError(f"annotations folder {str(ann_dir)!r} does not exist")
    items: list[BatchItem] = []
    seen: dict[str, str] = {}
    for video, vid, rels in rows:
        vid = vid or video_id_of(video)
        if vid in seen:
            raise ConfigError(
                f"batch INPUT has two videos with id {vid!r} ({seen[vid]!r} and {video!r}); records are keyed by "
                f"video id, so give them distinct file names or a 'video_id' manifest column"
            )
        seen[vid] = video
        rels = rels or common
        if not rels and ann_dir is not None:
            rels = _annotated_relations(ann_dir, vid)
        if not rels:
            log.warning("video %r: no relations to ground (no manifest entry, --relations or annotation); skipped", vid)
            continue
        items.append(BatchItem(video, vid, rels))
    return items


def _annotated_relations(folder: Path, video_id: str) -> list[str]:
    from vrgv.annotations import VideoAnnotation

    candidates = [folder / f"{video_id}.json", *folder.glob(f"*/{video_id}.json")]
    for cand in candidates:
        if cand.is_file():
            try:
                return VideoAnnotation.load(cand).relation_strings()
            except AnnotationError as exc:
                log.warning("video %r: %s", video_id, exc)
                return []
    return []
