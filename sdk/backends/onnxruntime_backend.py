"""ONNX Runtime backend: the bundle's two encoder graphs in ``InferenceSession``s (CPU, CUDA or TensorRT EP).

Providers are requested explicitly ([TensorRT EP, CUDA EP, CPU EP] on ``cuda``, CPU EP on ``cpu``), filtered
by what the installed onnxruntime offers; after the sessions exist the active providers are read back
and logged, and a ``cuda`` request served only by the CPU raises instead of silently running on CPU.
Sessions are thread-safe, so one backend serves many threads; on GPU inputs/outputs use IO binding.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vrgv.backends.base import RELATION_OUTPUTS, VIDEO_OUTPUTS, Attention, Backend, check_threads
from vrgv.bundle import Bundle, cache_dir
from vrgv.errors import BackendError

log = logging.getLogger(__name__)

TRT_EP, CUDA_EP, CPU_EP = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
GPU_EPS = (TRT_EP, CUDA_EP)


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
        raise BackendError(f"onnxruntime is not importable ({exc}); reinstall vrgv (`pip install vrgv`) "
                           f"or `pip install onnxruntime` (CPU) / `onnxruntime-gpu` (CUDA)") from None
    return onnxruntime


def select_providers(device: str, available: list[str], *, trt_options: dict | None = None,
                     cuda_options: dict | None = None) -> list[Any]:
    """Provider list for ``InferenceSession``: GPU EPs first on ``cuda``, filtered to ``available``."""
    if device == "cpu":
        return [CPU_EP]
    wanted: list[tuple[str, dict]] = [(TRT_EP, trt_options or {}), (CUDA_EP, cuda_options or {}), (CPU_EP, {})]
    chosen = [(name, opts) if opts else name for name, opts in wanted if name in available]
    if not any((p if isinstance(p, str) else p[0]) in GPU_EPS for p in chosen):
        raise BackendError(
            f"device='cuda' was requested but this onnxruntime offers only {available}; install "
            f"onnxruntime-gpu (`pip install 'vrgv[gpu]'`) with a matching CUDA, or use device='cpu'"
        )
    return chosen


def optimization_level(ort: Any) -> Any:
    """ORT_ENABLE_EXTENDED: everything but the CPU NCHWc layout pass, which has no convolutions to speed up
    here and crashes onnxruntime 1.32 (segfault at session creation) on our float16 relation graph."""
    return ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED


class OnnxRuntimeBackend(Backend):
    """Bundle encoder graphs run by ONNX Runtime."""

    name = "onnxruntime"

    def __init__(self, bundle: Bundle, device: str = "cpu", threads: int | None = None,
                 precision: str = "fp32", trt_profile: tuple[int, int, int] = (1, 8, 64)) -> None:
        super().__init__(bundle, device)
        ort = import_onnxruntime()
        self.precision = precision
        threads = check_threads(threads)
        options = ort.SessionOptions()
        options.graph_optimization_level = optimization_level(ort)
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if threads != 1:
            # The video and relation graphs run alternately in two sessions, each with its own thread pool; a
            # pool that spins after its run keeps the cores from the other one (per video on 2 cores: 6.9 ms
            # with spinning, 2.6 ms without; benchmarks/reports/encoder.md, session 4).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = list(ort.get_available_providers())
        n, m, e = self.num_samples, self.num_regions, self.embed_dim
        trt_common = {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir() / "ort-trt" / bundle.identity),
            "trt_fp16_enable": precision == "fp16",
        }
        lo, opt, hi = trt_profile
        trt_relation = {
            **trt_common,
            "trt_profile_min_shapes": f"region_emb:{n}x{m}x{e},query_ids:{lo}x5",
            "trt_profile_opt_shapes": f"region_emb:{n}x{m}x{e},query_ids:{opt}x5",
            "trt_profile_max_shapes": f"region_emb:{n}x{m}x{e},query_ids:{hi}x5",
        }
        # On one CPU thread the chunked video graph keeps each chunk in L2 cache and is faster; on several threads
        # its many small ops cost more in hand-offs than they save (encoder.md, session 9).
        self.video_graph = ("video_chunked" if threads == 1 and self.device == "cpu"
                            and "video_chunked" in bundle.manifest.graphs else "video")
        self._video = self._session(ort, self.video_graph, options,
                                    select_providers(self.device, available, trt_options=trt_common))
        self._relation = self._session(ort, "relation", options,
                                       select_providers(self.device, available, trt_options=trt_relation))
        self.providers = list(self._relation.get_providers())
        video_active = list(self._video.get_providers())
        log.info("onnxruntime %s: active providers video=%s relation=%s (requested device=%s, available=%s); "
                 "video graph %s", ort.__version__, video_active, self.providers, self.device, available,
                 self.video_graph)
        if self.device == "cuda":
            for graph, active in (("video", video_active), ("relation", self.providers)):
                if not any(p in GPU_EPS for p in active):
                    raise BackendError(
                        f"device='cuda' was requested but onnxruntime runs the {graph} graph only on {active} "
                        f"(CUDA/TensorRT provider failed to initialise; check the CUDA/cuDNN install and "
                        f"onnxruntime-gpu version); refusing to fall back to CPU silently - use device='cpu'"
                    )
        self._bind = self.device == "cuda"
        if TRT_EP in self.providers:  # the TensorRT EP profile bounds R; bigger batches are chunked
            self.max_batch = hi

    def _session(self, ort: Any, graph: str, options: Any, providers: list[Any]) -> Any:
        path = self.bundle.graph(graph, self.precision)
        try:
            return ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {path.name} of bundle {str(self.bundle.source)!r} "
                               f"({exc}); re-export the bundle with this vrgv version") from None

    def _run(self, session: Any, outputs: tuple[str, ...], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self._bind:
            return session.run(list(outputs), feeds)
        binding = session.io_binding()
        for key, value in feeds.items():
            binding.bind_cpu_input(key, value)
        for key in outputs:
            binding.bind_output(key, "cuda")
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def _embed(self, boxes_norm: np.ndarray, features: np.ndarray) -> np.ndarray:
        (emb,) = self._run(self._video, VIDEO_OUTPUTS, {"boxes_norm": boxes_norm, "features": features})
        return emb

    def _attend(self, region_emb: np.ndarray, query_ids: np.ndarray) -> Attention:
        out = self._run(self._relation, RELATION_OUTPUTS, {"region_emb": region_emb, "query_ids": query_ids})
        return tuple(np.asarray(o, dtype=np.float32) for o in out)  # type: ignore[return-value]

    def close(self) -> None:
        self._video = self._relation = None
