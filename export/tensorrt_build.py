"""Pre-build TensorRT engines into a staged bundle (``vrgv export --trt``), named for this GPU and version.

Uses the same naming, profile and builder code as the runtime backend, so an engine shipped in a bundle
is found by :class:`vrgv.backends.tensorrt_backend.TensorRTBackend` on a matching machine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from vrgv.backends.tensorrt_backend import (OptimizationProfile, import_torch_cuda, build_engine, expected_key,
                                            import_tensorrt)
from vrgv.backends.base import RELATION_INPUTS, VIDEO_INPUTS
from vrgv.export.onnx_export import EncoderShapes

ENGINE_DIR = "engines"


def build_bundle_engines(staged: Path, graphs: dict[str, Path], shapes: EncoderShapes, *,
                         precisions: tuple[str, ...] = ("fp32",),
                         profile: OptimizationProfile = OptimizationProfile()) -> list[dict[str, Any]]:
    """Build video and relation engines for each precision into ``staged/engines``; manifest entries."""
    trt = import_tensorrt()
    torch = import_torch_cuda()
    gpu = torch.cuda.get_device_name(torch.cuda.current_device())
    n, m = shapes.num_samples, shapes.num_regions
    inputs = {
        "video": {VIDEO_INPUTS[0]: (n, m, 5), VIDEO_INPUTS[1]: (n, m, shapes.feature_dim)},
        "relation": {RELATION_INPUTS[0]: (n, m, shapes.embed_dim), RELATION_INPUTS[1]: (1, 5)},
    }
    entries = []
    for precision in precisions:
        for graph in ("video", "relation"):
            key = expected_key(graph, gpu, trt.__version__, precision, profile)
            build_engine(trt, graphs[graph], staged / ENGINE_DIR / key.filename, key, inputs[graph])
            entries.append({"file": f"{ENGINE_DIR}/{key.filename}", "graph": graph, "gpu": key.gpu,
                            "tensorrt": key.trt_version, "precision": precision,
                            "profile": key.profile.tag if key.profile else "static"})
    return entries
