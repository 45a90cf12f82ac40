"""Model bundles: the folder (``NAME.vrgv/``) or ``.zip`` that the runtime loads, verified before use.

A bundle holds ``manifest.json`` (format version, model config, N/L/M, sigma, vocabulary, feature dims,
provenance, metrics, sha256 of every file) next to the encoder ONNX graphs, the safetensors weights for
the torch backend, an optional region detector and cached TensorRT engines. Loading checks the format
version and every checksum, refuses zip entries or ONNX external data that escape the bundle, and never
unpickles anything (JSON, ONNX protobuf and safetensors only).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from vrgv.errors import BundleError
from vrgv.vocab import Vocabulary

log = logging.getLogger(__name__)

FORMAT = "vrgv-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".vrgv"
GRAPHS = ("video", "relation")
#: graphs a bundle may add: "video_chunked" embeds a few frames at a time (faster on one CPU thread)
OPTIONAL_GRAPHS = ("video_chunked",)
PRECISIONS = ("fp32", "fp16")
MAX_UNZIPPED_BYTES = 4 << 30  # refuse zip bombs; a real bundle is tens of MB
_REQUIRED = ("format_version", "model", "num_samples", "clip_length", "num_regions", "feature_dim",
             "embed_dim", "sigma", "vocabulary", "graphs", "files")


def cache_dir() -> Path:
    """Where vrgv keeps extracted zip bundles and built TensorRT engines (``$VRGV_CACHE_DIR`` overrides)."""
    env = os.environ.get("VRGV_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vrgv"
    return base


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_member_name(name: str, where: str) -> PurePosixPath:
    """A relative, normalised path inside the bundle; BundleError for absolute paths, drives or ``..``."""
    if not name or "\x00" in name:
        raise BundleError(f"{where}: empty or NUL-containing file name {name!r}; the bundle is corrupt, re-export it")
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in path.parts:
        raise BundleError(
            f"{where}: file name {name!r} escapes the bundle (absolute path or '..'); refusing to load it - "
            f"only use bundles from a source you trust, or re-export it with `vrgv export`"
        )
    return path


@dataclass(frozen=True)
class FileEntry:
    """One checksummed file of a bundle, by path relative to the bundle root."""

    path: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        check_member_name(self.path, MANIFEST)
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise BundleError(f"{MANIFEST}: file {self.path!r} has an invalid sha256 {self.sha256!r}; re-export the bundle")
        if not isinstance(self.size, int) or self.size < 0:
            raise BundleError(f"{MANIFEST}: file {self.path!r} has an invalid size {self.size!r}; re-export the bundle")

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.size}


@dataclass
class Manifest:
    """The parsed ``manifest.json``; ``files`` maps every bundle file to its sha256 and size."""

    format_version: int
    model: dict[str, Any]
    num_samples: int
    clip_length: int
    num_regions: int
    feature_dim: int
    embed_dim: int
    sigma: float
    vocabulary: dict[str, Any]
    graphs: dict[str, dict[str, str]]
    files: dict[str, FileEntry]
    name: str = "bundle"
    weights: str | None = None
    detector: dict[str, Any] | None = None
    engines: list[dict[str, Any]] = field(default_factory=list)
    opset: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    vrgv_version: str | None = None

    def __post_init__(self) -> None:
        for key in ("num_samples", "clip_length", "num_regions", "feature_dim", "embed_dim"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BundleError(f"{MANIFEST}: {key} must be a positive integer, got {value!r}; re-export the bundle")
        if self.num_samples % self.clip_length:
            raise BundleError(f"{MANIFEST}: num_samples={self.num_samples} is not a multiple of "
                              f"clip_length={self.clip_length}; re-export the bundle")
        if not 0.0 <= float(self.sigma) <= 1.0:
            raise BundleError(f"{MANIFEST}: sigma must lie in [0, 1], got {self.sigma!r}")
        for graph, variants in self.graphs.items():
            if graph not in GRAPHS + OPTIONAL_GRAPHS or not isinstance(variants, dict) or "fp32" not in variants:
                raise BundleError(f"{MANIFEST}: graphs must map {list(GRAPHS)} (and optionally "
                                  f"{list(OPTIONAL_GRAPHS)}) to {{'fp32': file, 'fp16'?: file}}, "
                                  f"got {graph!r}: {variants!r}; re-export the bundle")
            for precision, name in variants.items():
                if precision not in PRECISIONS or name not in self.files:
                    raise BundleError(f"{MANIFEST}: graph {graph}/{precision} names {name!r}, which is not a "
                                      f"checksummed file of the bundle; re-export it")
        missing = [g for g in GRAPHS if g not in self.graphs]
        if missing:
            raise BundleError(f"{MANIFEST}: no ONNX graph for {missing}; re-export the bundle with `vrgv export`")
        referenced = [self.weights, (self.detector or {}).get("file"), *(e.get("file") for e in self.engines)]
        for name in referenced:
            if name is not None and name not in self.files:
                raise BundleError(f"{MANIFEST}: {name!r} is referenced but not a checksummed file; re-export the bundle")

    @property
    def num_clips(self) -> int:
        return self.num_samples // self.clip_length

    @classmethod
    def from_dict(cls, data: Any) -> "Manifest":
        """Validate a decoded manifest; BundleError names the missing or malformed field."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BundleError(f"{MANIFEST} is not a vrgv bundle manifest (format != {FORMAT!r}); "
                              f"pass a folder or zip written by `vrgv export`")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BundleError(f"{MANIFEST}: format_version {version!r} is invalid; re-export the bundle")
        if version > FORMAT_VERSION:
            raise BundleError(
                f"{MANIFEST}: bundle format version {version} is newer than this vrgv supports "
                f"({FORMAT_VERSION}); upgrade vrgv (`pip install -U vrgv`) to load it"
            )
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise BundleError(f"{MANIFEST} lacks the field(s) {missing}; re-export the bundle with `vrgv export`")
        if not isinstance(data["files"], dict):
            raise BundleError(f"{MANIFEST}: 'files' must map file names to sha256/bytes; re-export the bundle")
        files = {}
        for name, entry in data["files"].items():
            if not isinstance(entry, dict) or "sha256" not in entry or "bytes" not in entry:
                raise BundleError(f"{MANIFEST}: file entry {name!r} needs 'sha256' and 'bytes'; re-export the bundle")
            files[name] = FileEntry(name, str(entry["sha256"]).lower(), entry["bytes"])
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known and k != "files"}
        try:
            return cls(files=files, **kwargs)
        except TypeError as exc:
            raise BundleError(f"{MANIFEST} is malformed ({exc}); re-export the bundle") from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            out[key] = {k: e.to_dict() for k, e in sorted(value.items())} if key == "files" else value
        return out


@dataclass
class Bundle:
    """A verified bundle on disk: ``root`` holds the files (a zip is extracted to the cache first)."""

    root: Path
    manifest: Manifest
    source: Path

    @classmethod
    def load(cls, path: str | os.PathLike, *, verify: bool = True) -> "Bundle":
        """Open a bundle folder or zip, check its format version, file names and every sha256."""
        source = Path(path).expanduser()
        if not source.exists():
            raise BundleError(f"bundle {str(source)!r} does not exist; pass a NAME.vrgv folder or zip "
                              f"written by `vrgv export`, or omit it to use the default bundle")
        try:
            root = _extract_zip(source) if source.is_file() else source
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
            raise BundleError(f"bundle {str(source)!r} is a damaged zip ({exc}); re-download or re-export it") from None
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(f"bundle {str(source)!r} has no {MANIFEST}; it is not a vrgv bundle "
                              f"(write one with `vrgv export`)")
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"bundle {str(source)!r}: {MANIFEST} is not valid JSON ({exc}); re-export it") from None
        bundle = cls(root=root, manifest=Manifest.from_dict(data), source=source)
        if verify:
            bundle.verify()
        return bundle

    @classmethod
    def default(cls) -> "Bundle":
        """The bundle shipped inside the package (``vrgv/data/default.vrgv``)."""
        root = Path(str(resources.files("vrgv").joinpath("data/default.vrgv")))
        if not (root / MANIFEST).is_file():
            raise BundleError(
                f"the default bundle {str(root)!r} is not part of this vrgv build; pass a bundle path "
                f"(write one with `vrgv export --checkpoint CKPT --out NAME.vrgv`)"
            )
        return cls.load(root)

    # verification ----------------------------------------------------------------------------
    def verify(self) -> None:
        """Recompute every file's sha256 and check ONNX graphs reference no data outside the bundle."""
        root = self.root.resolve()
        for name, entry in self.manifest.files.items():
            path = self._resolve(name, root)
            if not path.is_file():
                raise BundleError(f"bundle {str(self.source)!r}: file {name!r} listed in {MANIFEST} is missing; "
                                  f"the bundle is incomplete, re-export or re-download it")
            if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
                raise BundleError(
                    f"bundle {str(self.source)!r}: file {name!r} fails its sha256 check (corrupted or tampered); "
                    f"re-export or re-download the bundle"
                )
        for name in self.manifest.files:
            if name.endswith(".onnx"):
                for location in onnx_external_data(self._resolve(name, root)):
                    target = check_member_name(location, f"bundle {str(self.source)!r}: {name}")
                    resolved = (self._resolve(name, root).parent / target).resolve()
                    if root not in resolved.parents:
                        raise BundleError(f"bundle {str(self.source)!r}: {name} points to external data "
                                          f"{location!r} outside the bundle; refusing to load it")
                    rel = resolved.relative_to(root).as_posix()
                    if rel not in self.manifest.files:
                        raise BundleError(f"bundle {str(self.source)!r}: {name} uses external data {location!r} "
                                          f"that has no checksum in {MANIFEST}; re-export the bundle")

    def _resolve(self, name: str, root: Path | None = None) -> Path:
        root = root or self.root.resolve()
        path = (root / check_member_name(name, f"bundle {str(self.source)!r}")).resolve()
        if root not in path.parents:
            raise BundleError(f"bundle {str(self.source)!r}: {name!r} resolves outside the bundle (symlink?); refusing it")
        return path

    # accessors -------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """Absolute path of a checksummed file; BundleError if the manifest does not list it."""
        if name not in self.manifest.files:
            raise BundleError(f"bundle {str(self.source)!r} has no file {name!r} (it has "
                              f"{sorted(self.manifest.files)}); re-export it with the needed option")
        return self._resolve(name)

    def graph(self, graph: str, precision: str = "fp32") -> Path:
        """The ONNX file of ``graph`` ("video", "relation" or "video_chunked") at ``precision`` ("fp32" or "fp16")."""
        variants = self.manifest.graphs.get(graph)
        if variants is None:
            raise BundleError(f"bundle {str(self.source)!r} has no {graph!r} graph; it has "
                              f"{sorted(self.manifest.graphs)}")
        if precision not in variants:
            raise BundleError(f"bundle {str(self.source)!r} has no {precision} {graph} graph (has "
                              f"{sorted(variants)}); re-export with `vrgv export --fp16` or use precision='fp32'")
        return self.file(variants[precision])

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_dict(self.manifest.vocabulary)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def identity(self) -> str:
        """Short id derived from the graph checksums (used to key caches such as TensorRT engines)."""
        digest = hashlib.sha256("".join(sorted(e.sha256 for e in self.manifest.files.values())).encode())
        return digest.hexdigest()[:16]


# zip handling ------------------------------------------------------------------------------------
def _extract_zip(source: Path) -> Path:
    """Validate every member name, then extract once into the cache (keyed by the zip's sha256)."""
    if not zipfile.is_zipfile(source):
        raise BundleError(f"bundle {str(source)!r} is a file but not a zip; pass a NAME.vrgv folder or its .zip")
    digest = sha256_file(source)
    target = cache_dir() / "bundles" / digest[:24]
    with zipfile.ZipFile(source) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            check_member_name(info.filename, f"bundle {str(source)!r}")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BundleError(f"bundle {str(source)!r}: zip entry {info.filename!r} is a symbolic link; "
                                  f"refusing to load it")
            total += info.file_size
        if total > MAX_UNZIPPED_BYTES:
            raise BundleError(f"bundle {str(source)!r} unpacks to {total} bytes (> {MAX_UNZIPPED_BYTES}); refusing it")
        if not (target / ".complete").is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                for info in infos:
                    dest = tmp / check_member_name(info.filename, str(source))
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                (tmp / ".complete").write_text(digest)
                try:
                    os.replace(tmp, target)
                except OSError:  # another process extracted it first
                    shutil.rmtree(tmp, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    if (target / MANIFEST).is_file():
        return target
    subdirs = [p for p in target.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    if len(subdirs) == 1:  # zip of the NAME.vrgv/ folder itself
        return subdirs[0]
    raise BundleError(f"bundle {str(source)!r}: the zip has no {MANIFEST} at its top or in one top folder")


# ONNX external-data scan (protobuf wire format; the runtime does not depend on the onnx package) ----
# ModelProto.graph=7, functions=25; GraphProto.node=1, initializer=5, sparse_initializer=15;
# NodeProto.attribute=5; FunctionProto.node=7; AttributeProto.t=5, g=6, tensors=10, graphs=11,
# sparse_tensor=22, sparse_tensors=23; SparseTensorProto.values=1, indices=2;
# TensorProto.external_data=13, data_location=14; StringStringEntryProto.key=1, value=2.
_MODEL, _GRAPH, _NODE, _FUNCTION, _ATTRIBUTE, _SPARSE, _TENSOR, _ENTRY = range(8)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _FUNCTION: {7: _NODE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _TENSOR: {13: _ENTRY},
}


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview):
    """Yield (field number, wire type, payload) of one protobuf message; payload is bytes for type 2."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            yield number, wire, buf[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def onnx_external_data(path: str | os.PathLike) -> list[str]:
    """Locations of every external-data tensor referenced by an ONNX file (initializers, attributes,
    sub-graphs, functions), read from the protobuf wire format without importing ``onnx``."""
    data = memoryview(Path(path).read_bytes())
    locations: list[str] = []

    def walk(buf: memoryview, kind: int) -> None:
        children = _CHILDREN.get(kind, {})
        if kind == _ENTRY:
            items = {n: bytes(v).decode("utf-8", "replace") for n, w, v in _fields(buf) if w == 2}
            if items.get(1) == "location":
                locations.append(items.get(2, ""))
            return
        for number, wire, payload in _fields(buf):
            if wire == 2 and number in children:
                walk(payload, children[number])

    try:
        walk(data, _MODEL)
    except ValueError as exc:
        raise BundleError(f"{str(path)!r} is not a valid ONNX file ({exc}); the bundle is corrupt, re-export it") from None
    return locations
