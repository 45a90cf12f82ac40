"""Write a bundle folder (``NAME.vrgv/``) or zip: files staged in a temp folder, checksummed, renamed.

The manifest lists every file with its sha256 and size; the result is re-opened with
:meth:`vrgv.bundle.Bundle.load` before it is returned, so a written bundle is always loadable.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from vrgv.bundle import FORMAT, FORMAT_VERSION, MANIFEST, Bundle, Manifest, sha256_file
from vrgv.errors import ConfigError


def stage_dir(out: Path) -> Path:
    """A fresh temporary folder next to ``out`` (same file system, so the final rename is atomic)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def file_entries(folder: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``folder`` except the manifest."""
    entries = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name != MANIFEST:
            entries[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return entries


def write_manifest(folder: Path, fields: dict[str, Any]) -> Manifest:
    """Checksum the staged files, validate the manifest through :class:`Manifest` and write it."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **fields, "files": file_entries(folder)}
    manifest = Manifest.from_dict(data)  # same validation the loader applies
    (folder / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def finalize(staged: Path, out: Path, *, overwrite: bool = False) -> Bundle:
    """Move the staged folder to ``out`` (or zip it when ``out`` ends in .zip) and load it back."""
    if out.exists() and not overwrite:
        shutil.rmtree(staged, ignore_errors=True)
        raise ConfigError(f"{str(out)!r} already exists; pass overwrite=True (`--overwrite`) or another --out")
    if out.suffix == ".zip":
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        folder_name = out.stem if out.stem.endswith(".vrgv") else out.stem + ".vrgv"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in staged.rglob("*") if p.is_file()):
                zf.write(path, f"{folder_name}/{path.relative_to(staged).as_posix()}")
        os.replace(tmp, out)
        shutil.rmtree(staged, ignore_errors=True)
    else:
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(staged, out)
    return Bundle.load(out)
