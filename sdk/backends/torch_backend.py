"""PyTorch backend: the bundle's ``model.safetensors`` loaded into ``VRGVModel`` and run eagerly.

For development and GPU runs; needs the ``train`` extra (torch). ``compile=True`` wraps the two entry
points in ``torch.compile``. Weights load through safetensors (no pickle). ``threads`` sets torch's
process-wide intra-op thread count.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from vrgv.backends.base import Attention, Backend, check_threads
from vrgv.bundle import Bundle
from vrgv.errors import BackendError, BundleError

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"


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
                 model_factory: Callable[[dict], Any] | None = None) -> None:
        super().__init__(bundle, device)
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
        self.providers = [f"torch {torch.__version__} {'compiled' if compile else 'eager'} on {self.device}"]
        log.info("torch backend: %s", self.providers[0])

    def _tensor(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(array).to(self.device)

    def _embed(self, boxes_norm: np.ndarray, features: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            out = self._embed_fn(self._tensor(boxes_norm), self._tensor(features))
        return out.float().cpu().numpy()

    def _attend(self, region_emb: np.ndarray, query_ids: np.ndarray) -> Attention:
        with self._torch.inference_mode():
            out = self._attend_fn(self._tensor(region_emb), self._tensor(query_ids))
        return tuple(o.float().cpu().numpy() for o in out)  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None
