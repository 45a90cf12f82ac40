"""TensorRT backend: engines built from the bundle's ONNX graphs, run with torch CUDA device buffers.

The relation engine has an optimization profile over R (min 1, opt 8, max 64; larger batches are chunked);
the video engine is static. An engine file name encodes graph, GPU, TensorRT version, precision and
profile, e.g. ``relation.nvidia-h100-80gb-hbm3.trt10.3.0.fp16.r1-8-64.engine``. Cached engines that do
not match this machine are rebuilt; an engine given by path that does not match raises, naming both.
Needs the ``trt`` extra (``tensorrt``) and a CUDA build of torch for the device buffers.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vrgv.backends.base import (RELATION_INPUTS, RELATION_OUTPUTS, VIDEO_INPUTS, VIDEO_OUTPUTS, Attention,
                                Backend)
from vrgv.bundle import Bundle, cache_dir
from vrgv.errors import BackendError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<graph>video|relation)\.(?P<gpu>[a-z0-9-]+)\.trt(?P<version>\d+(?:\.\d+)*)\."
                   r"(?P<precision>fp32|fp16)\.(?P<profile>static|r\d+-\d+-\d+)\.engine$")


@dataclass(frozen=True)
class OptimizationProfile:
    """Range of the relation batch R an engine accepts: min <= opt <= max."""

    min: int = 1
    opt: int = 8
    max: int = 64

    def __post_init__(self) -> None:
        values = (self.min, self.opt, self.max)
        if not all(isinstance(v, int) and v >= 1 for v in values) or not self.min <= self.opt <= self.max:
            raise BackendError(f"TensorRT profile {values} is invalid; need integers 1 <= min <= opt <= max")

    @property
    def tag(self) -> str:
        return f"r{self.min}-{self.opt}-{self.max}"

    @classmethod
    def parse(cls, tag: str) -> "OptimizationProfile":
        match = re.fullmatch(r"r(\d+)-(\d+)-(\d+)", tag)
        if not match:
            raise BackendError(f"TensorRT profile tag {tag!r} is not of the form r<min>-<opt>-<max>")
        return cls(*(int(g) for g in match.groups()))


def gpu_slug(name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"`` (safe inside a file name)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown-gpu"


@dataclass(frozen=True)
class EngineKey:
    """What an engine was built for; its file name encodes all of it."""

    graph: str
    gpu: str
    trt_version: str
    precision: str
    profile: OptimizationProfile | None

    def __post_init__(self) -> None:
        if self.graph not in ("video", "relation"):
            raise BackendError(f"engine graph {self.graph!r} must be 'video' or 'relation'")
        if self.precision not in ("fp32", "fp16"):
            raise BackendError(f"engine precision {self.precision!r} must be 'fp32' or 'fp16'")
        if not re.fullmatch(r"\d+(\.\d+)*", self.trt_version):
            raise BackendError(f"TensorRT version {self.trt_version!r} is not a dotted number")
        object.__setattr__(self, "gpu", gpu_slug(self.gpu))

    @property
    def filename(self) -> str:
        profile = self.profile.tag if self.profile else "static"
        return f"{self.graph}.{self.gpu}.trt{self.trt_version}.{self.precision}.{profile}.engine"

    def describe(self) -> str:
        profile = f"profile {self.profile.tag}" if self.profile else "static shapes"
        return f"GPU {self.gpu}, TensorRT {self.trt_version}, {self.precision}, {profile}"

    @classmethod
    def parse(cls, filename: str) -> "EngineKey":
        match = _NAME.match(Path(filename).name)
        if not match:
            raise BackendError(
                f"engine file {Path(filename).name!r} does not follow vrgv's naming "
                f"<graph>.<gpu>.trt<version>.<fp32|fp16>.<r1-8-64|static>.engine, so its GPU and TensorRT "
                f"version are unknown; rebuild it with `vrgv export --trt` or let the backend build one"
            )
        g = match.groupdict()
        profile = None if g["profile"] == "static" else OptimizationProfile.parse(g["profile"])
        return cls(g["graph"], g["gpu"], g["version"], g["precision"], profile)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or a BackendError that says how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError(
            f"the TensorRT backend needs the 'tensorrt' package ({exc}); install it with "
            f"`pip install 'vrgv[trt]'` on a machine with an NVIDIA GPU and CUDA 12, or use "
            f"backend='onnxruntime'"
        ) from None
    return tensorrt


def import_torch_cuda() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise BackendError(f"the TensorRT backend uses torch CUDA tensors as device buffers ({exc}); "
                           f"install a CUDA build of torch (`pip install 'vrgv[train]'`)") from None
    if not torch.cuda.is_available():
        raise BackendError("the TensorRT backend needs a CUDA GPU, but torch.cuda.is_available() is False; "
                           "use backend='onnxruntime' with device='cpu'")
    return torch


def expected_key(graph: str, gpu: str, trt_version: str, precision: str,
                 profile: OptimizationProfile) -> EngineKey:
    return EngineKey(graph, gpu, trt_version, precision, profile if graph == "relation" else None)


def check_given_engine(path: str | os.PathLike, expected: EngineKey) -> Path:
    """An engine passed by path must match this machine exactly; BackendError names both sides."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"TensorRT engine {str(path)!r} does not exist")
    given = EngineKey.parse(path.name)
    if given != expected:
        raise BackendError(
            f"TensorRT engine {path.name!r} was built for {given.describe()}, but this run needs "
            f"{expected.describe()}; engines are not portable across GPUs or TensorRT versions - "
            f"drop the engine argument to rebuild it here, or rebuild it with `vrgv export --trt`"
        )
    return path


def find_engine(bundle: Bundle, key: EngineKey, engine_dir: Path) -> Path | None:
    """An engine matching ``key`` from the bundle (checksummed) or the cache; None means build one.

    Engines for the same graph built for another GPU/TensorRT/precision/profile are reported and ignored.
    """
    for entry in bundle.manifest.engines:
        if Path(entry.get("file", "")).name == key.filename:
            return bundle.file(entry["file"])
    cached = engine_dir / key.filename
    if cached.is_file():
        return cached
    stale = [e.get("file", "") for e in bundle.manifest.engines]
    stale += [p.name for p in engine_dir.glob(f"{key.graph}.*.engine")] if engine_dir.is_dir() else []
    for name in stale:
        try:
            other = EngineKey.parse(name)
        except BackendError:
            continue
        if other.graph == key.graph:
            log.info("TensorRT engine %s is for %s; this run needs %s - rebuilding", Path(name).name,
                     other.describe(), key.describe())
    return None


def build_engine(trt: Any, onnx_path: Path, out_path: Path, key: EngineKey,
                 input_shapes: Mapping[str, tuple[int, ...]]) -> Path:
    """Parse ``onnx_path``, build a serialized engine for ``key`` and write it atomically to ``out_path``.

    ``input_shapes`` gives static input shapes; for the relation graph ``query_ids`` gets the profile
    over R. Precision fp16 sets ``BuilderFlag.FP16`` (I/O stay float32).
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    if key.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, shape in input_shapes.items():
        if name == "query_ids" and key.profile is not None:
            p = key.profile
            profile.set_shape(name, (p.min, *shape[1:]), (p.opt, *shape[1:]), (p.max, *shape[1:]))
        else:
            profile.set_shape(name, shape, shape, shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path.name} for {key.describe()}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(bytes(serialized))
    os.replace(tmp, out_path)
    log.info("built TensorRT engine %s", out_path)
    return out_path


def graph_input_shapes(bundle: Bundle, graph: str, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Input shapes of a bundle graph (the relation batch dimension set to ``batch``)."""
    m = bundle.manifest
    n, k = m.num_samples, m.num_regions
    if graph == "video":
        return {VIDEO_INPUTS[0]: (n, k, 5), VIDEO_INPUTS[1]: (n, k, m.feature_dim)}
    return {RELATION_INPUTS[0]: (n, k, m.embed_dim), RELATION_INPUTS[1]: (batch, 5)}


class _EngineRunner:
    """One deserialized engine + execution context; ``run`` copies numpy in and out of CUDA buffers."""

    def __init__(self, trt: Any, torch: Any, path: Path) -> None:
        self._trt, self._torch = trt, torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialize {path.name} (built by another TensorRT "
                               f"version or corrupted); delete it to rebuild")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()

    def run(self, feeds: Mapping[str, np.ndarray], outputs: tuple[str, ...]) -> list[np.ndarray]:
        torch, trt = self._torch, self._trt
        keep = []
        for name, value in feeds.items():
            tensor = torch.from_numpy(value).to("cuda")
            keep.append(tensor)
            self.context.set_input_shape(name, tuple(value.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        results = []
        for name in outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            tensor = torch.empty(shape, dtype=dtype, device="cuda")
            results.append(tensor)
            self.context.set_tensor_address(name, tensor.data_ptr())
        with torch.cuda.stream(self.stream):
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("TensorRT execution failed (execute_async_v3 returned False)")
        self.stream.synchronize()
        return [t.float().cpu().numpy() for t in results]


class TensorRTBackend(Backend):
    """Bundle encoder graphs compiled to TensorRT engines (NVIDIA GPUs only)."""

    name = "tensorrt"

    def __init__(self, bundle: Bundle, device: str = "cuda", threads: int | None = None, precision: str = "fp32",
                 profile: OptimizationProfile = OptimizationProfile(), engines: Mapping[str, str] | None = None,
                 engine_dir: str | os.PathLike | None = None) -> None:
        super().__init__(bundle, device)
        if self.device != "cuda":
            raise BackendError("the TensorRT backend runs on NVIDIA GPUs only; pass device='cuda', or use "
                               "backend='onnxruntime' for CPU")
        trt = import_tensorrt()
        torch = import_torch_cuda()
        self.precision = precision
        self.max_batch = profile.max
        gpu = torch.cuda.get_device_name(torch.cuda.current_device())
        folder = Path(engine_dir) if engine_dir else cache_dir() / "engines" / bundle.identity
        unknown = sorted(set(engines or {}) - {"video", "relation"})
        if unknown:
            raise BackendError(f"engines has unknown key(s) {unknown}; use {{'video': PATH, 'relation': PATH}}")
        runners = {}
        for graph in ("video", "relation"):
            key = expected_key(graph, gpu, trt.__version__, precision, profile)
            if engines and graph in engines:
                path = check_given_engine(engines[graph], key)
            else:
                path = find_engine(bundle, key, folder) or build_engine(
                    trt, bundle.graph(graph, "fp32"), folder / key.filename, key, graph_input_shapes(bundle, graph))
            runners[graph] = _EngineRunner(trt, torch, path)
        self._video, self._relation = runners["video"], runners["relation"]
        self._lock = threading.Lock()  # execution contexts are not thread-safe
        self.providers = [f"TensorRT {trt.__version__} on {gpu}"]
        log.info("TensorRT %s on %s, %s, profile %s", trt.__version__, gpu, precision, profile.tag)

    def _embed(self, boxes_norm: np.ndarray, features: np.ndarray) -> np.ndarray:
        with self._lock:
            (emb,) = self._video.run({"boxes_norm": boxes_norm, "features": features}, VIDEO_OUTPUTS)
        return emb

    def _attend(self, region_emb: np.ndarray, query_ids: np.ndarray) -> Attention:
        with self._lock:
            out = self._relation.run({"region_emb": region_emb, "query_ids": query_ids}, RELATION_OUTPUTS)
        return tuple(out)  # type: ignore[return-value]
