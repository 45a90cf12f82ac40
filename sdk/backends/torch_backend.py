"""PyTorch backend: the bundle's ``model.safetensors`` loaded into ``VRGVModel`` and run eagerly.

For development and GPU runs; needs the ``train`` extra (torch). ``compile=True`` wraps the two entry
points in ``torch.compile``. ``precision="fp16"`` (CUDA only) runs both under ``torch.autocast`` in float16.
Weights load through safetensors (no pickle). ``threads`` sets torch's process-wide intra-op thread count.
On CUDA the latest region embedding stays on the GPU, so ``attend`` on ``embed``'s output copies nothing back,
and ``attend`` replays one captured CUDA graph per relation count (``cuda_graphs``, default on for CUDA; see
``vrgv.backends.cuda_graphs``).
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, Callable

import numpy as np

from vrgv.backends.base import Attention, Backend, check_threads
from vrgv.bundle import Bundle
from vrgv.errors import BackendError, BundleError

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
PRECISIONS = ("fp32", "fp16")


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise BackendError(f"the torch backend needs PyTorch ({exc}); install the train extra "
                           f"(`pip install 'vrgv[train]'`) or use backend='onnxruntime'") from None
    return torch


def default_model_factory(config: dict) -> Any:
    """Build ``vrgv.training.model.VRGVModel`` from the manifest's model config."""
    try:
        from vrgv.training.config import ModelConfig
        from vrgv.training.model import VRGVModel
    except ImportError as exc:
        raise BackendError(f"the torch backend needs vrgv.training ({exc}); install the train extra "
                           f"(`pip install 'vrgv[train]'`) or use backend='onnxruntime'") from None
    return VRGVModel(ModelConfig.from_dict(config))


class TorchBackend(Backend):
    """Eager (or compiled) PyTorch inference from the bundle's safetensors weights."""

    name = "torch"

    def __init__(self, bundle: Bundle, device: str = "cpu", threads: int | None = None, compile: bool = False,
                 model_factory: Callable[[dict], Any] | None = None, precision: str = "fp32",
                 cuda_graphs: bool | None = None) -> None:
        super().__init__(bundle, device)
        if precision not in PRECISIONS:
            raise BackendError(f"precision={precision!r} is not supported by the torch backend; use one of {PRECISIONS}")
        if precision == "fp16" and self.device != "cuda":
            raise BackendError("precision='fp16' with the torch backend needs device='cuda' (CPU float16 kernels "
                               "are slower than float32); use precision='fp32' on CPU, or backend='onnxruntime' "
                               "with its mixed-precision graph")
        self.precision = precision
        torch = import_torch()
        self._torch = torch
        threads = check_threads(threads)
        if threads:
            torch.set_num_threads(threads)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendError("device='cuda' was requested but torch.cuda.is_available() is False "
                               f"(torch {torch.__version__}); install a CUDA build of torch or use device='cpu'")
        weights = bundle.manifest.weights
        if not weights:
            raise BundleError(f"bundle {str(bundle.source)!r} has no PyTorch weights ({WEIGHTS}); the torch "
                              f"backend needs them - re-export the bundle or use backend='onnxruntime'")
        from safetensors.torch import load_file

        model = (model_factory or default_model_factory)(dict(bundle.manifest.model))
        state = load_file(str(bundle.file(weights)))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"bundle {str(bundle.source)!r}: {weights} does not match the manifest's model "
                              f"config ({str(exc).splitlines()[0]}); re-export the bundle") from None
        self.model = model.to(self.device).eval()
        self._embed_fn: Callable = self.model.embed_regions
        self._attend_fn: Callable = self.model.attend
        if compile:
            self._embed_fn = torch.compile(self._embed_fn)
            self._attend_fn = torch.compile(self._attend_fn, dynamic=True)
        self._device_embedding: tuple[np.ndarray, Any] | None = None  # (embed's numpy output, its device tensor)
        if cuda_graphs and (self.device != "cuda" or compile):
            raise BackendError("cuda_graphs=True needs device='cuda' and compile=False (torch.compile manages its own "
                               "graphs); leave cuda_graphs=None for the default")
        self._graphs: Any = None
        self._graphs_required = bool(cuda_graphs)
        if self.device == "cuda" and not compile and cuda_graphs is not False:
            from vrgv.backends.cuda_graphs import GraphedAttend

            self._graphs = GraphedAttend(torch, self._attend_fn, (self.num_samples, self.num_regions, self.embed_dim))
        where = torch.cuda.get_device_name(0) if self.device == "cuda" else "cpu"
        mode = "compiled" if compile else "CUDA graphs" if self._graphs is not None else "eager"
        self.providers = [f"torch {torch.__version__} {mode} {precision} on {where}"]
        log.info("torch backend: %s", self.providers[0])

    def _tensor(self, array: np.ndarray) -> Any:
        # embed() outputs are read-only numpy arrays; torch only reads them here, so its warning is noise
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
            return self._torch.from_numpy(array).to(self.device)

    def _autocast(self) -> Any:
        """float16 autocast on CUDA for precision='fp16'; a no-op context otherwise."""
        if self.precision == "fp16":
            return self._torch.autocast("cuda", dtype=self._torch.float16)
        return contextlib.nullcontext()

    def _embed(self, boxes_norm: np.ndarray, features: np.ndarray) -> np.ndarray:
        graphs = self._graphs  # while a graph is captured, no other thread of this backend may launch CUDA work
        with graphs.lock if graphs is not None else contextlib.nullcontext():
            with self._torch.inference_mode(), self._autocast():
                out = self._embed_fn(self._tensor(boxes_norm), self._tensor(features)).float()
            host = out.cpu().numpy()
        self._device_embedding = (host, out) if self.device == "cuda" else None
        return host

    def _attend(self, region_emb: np.ndarray, query_ids: np.ndarray) -> Attention:
        graphs = self._graphs  # with graphs, one thread at a time launches this backend's CUDA work (see _embed)
        with graphs.lock if graphs is not None else contextlib.nullcontext():
            with self._torch.inference_mode(), self._autocast():
                cached = self._device_embedding
                own = cached is not None and cached[0] is region_emb
                emb = cached[1] if own else self._tensor(region_emb)
                ids = self._tensor(query_ids)
                if graphs is not None and graphs.accepts(len(query_ids)):
                    try:
                        # embed()'s own read-only output is copied in once; any other array every call
                        graphs.load(region_emb if own else None, emb)
                        return tuple(o.float().cpu().numpy() for o in graphs(ids))  # type: ignore[return-value]
                    except RuntimeError as exc:
                        if self._graphs_required:
                            raise BackendError(f"CUDA graph capture of the torch backend failed ({exc}); use "
                                               f"cuda_graphs=False") from None
                        log.warning("torch backend: CUDA graph capture failed (%s); running eagerly", exc)
                        self._graphs = None
                        self.providers = [self.providers[0].replace("CUDA graphs", "eager")]
                out = self._attend_fn(emb, ids)
                return tuple(o.float().cpu().numpy() for o in out)  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None
        self._device_embedding = None
        self._graphs = None
