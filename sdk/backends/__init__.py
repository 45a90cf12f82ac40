"""One call to run a bundle's encoder on ONNX Runtime, TensorRT or PyTorch (like ultralytics' AutoBackend).

``load_backend(bundle, backend="auto", device="cpu", threads=None)`` returns a :class:`Backend` with
``.name``, ``.device``, ``.providers``, ``embed(boxes_norm, features)`` and ``attend(emb, query_ids)``
(numpy in, numpy out, thread-safe). ``auto`` picks ONNX Runtime on CPU and TensorRT, then ONNX Runtime's
GPU providers, on CUDA; an explicit choice that cannot run raises :class:`BackendError`.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from vrgv.backends.base import Backend, check_device
from vrgv.bundle import Bundle
from vrgv.errors import BackendError

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "tensorrt", "torch")

__all__ = ["BACKENDS", "Backend", "available_backends", "load_backend"]


def available_backends() -> list[str]:
    """Backends whose Python packages are importable here (not a guarantee that a GPU is present)."""
    return [name for name, module in (("onnxruntime", "onnxruntime"), ("tensorrt", "tensorrt"), ("torch", "torch"))
            if importlib.util.find_spec(module) is not None]


def load_backend(bundle: "Bundle | str | os.PathLike | None" = None, backend: str = "auto", device: str = "cpu",
                 threads: int | None = None, **options: Any) -> Backend:
    """Open ``bundle`` (a :class:`Bundle`, a path, or None for the default) on the chosen backend.

    ``options`` go to the backend: ``precision`` ("fp32"/"fp16"; torch: fp16 autocast, CUDA only),
    ``profile``/``engines``/``engine_dir`` (tensorrt), ``compile``/``model_factory``/``cuda_graphs`` (torch).
    """
    if not isinstance(bundle, Bundle):
        bundle = Bundle.default() if bundle is None else Bundle.load(bundle)
    device = check_device(device)
    if backend == "auto":
        return _auto(bundle, device, threads, options)
    if backend == "onnxruntime":
        from vrgv.backends.onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(bundle, device=device, threads=threads, **options)
    if backend == "tensorrt":
        from vrgv.backends.tensorrt_backend import TensorRTBackend
        return TensorRTBackend(bundle, device=device, threads=threads, **options)
    if backend == "torch":
        from vrgv.backends.torch_backend import TorchBackend
        return TorchBackend(bundle, device=device, threads=threads, **options)
    raise BackendError(f"backend {backend!r} is unknown; choose 'auto' or one of {list(BACKENDS)}")


def _auto(bundle: Bundle, device: str, threads: int | None, options: dict[str, Any]) -> Backend:
    order = ["tensorrt", "onnxruntime", "torch"] if device == "cuda" else ["onnxruntime", "torch"]
    errors = []
    for name in order:
        if name not in available_backends():
            errors.append(f"{name}: not installed")
            continue
        try:
            return load_backend(bundle, name, device, threads, **_options_for(name, options))
        except BackendError as exc:
            log.info("backend %s unavailable for device=%s: %s", name, device, exc)
            errors.append(f"{name}: {exc}")
    raise BackendError(f"no backend can run bundle {bundle.name!r} on device={device!r}: " + " | ".join(errors))


def _options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    accepted = {"onnxruntime": {"precision", "trt_profile"}, "tensorrt": {"precision", "profile", "engines",
                "engine_dir"}, "torch": {"compile", "model_factory", "precision",
                "cuda_graphs"}}[name]
    return {k: v for k, v in options.items() if k in accepted}
