"""The interface every inference backend implements, with the input checks they all share.

Subclasses implement ``_embed`` and ``_attend`` on validated, contiguous numpy arrays; this class checks
shapes, dtypes and token ids against the bundle manifest and splits large relation batches into chunks
when a backend has a maximum batch (TensorRT's optimization profile).
"""
from __future__ import annotations

import abc

import numpy as np

from vrgv.bundle import Bundle
from vrgv.errors import BackendError, RegionsError, RelationError
from vrgv.vocab import QUERY_LEN

DEVICES = ("cpu", "cuda")
# graph I/O names, shared by the exporter and every backend
VIDEO_INPUTS = ("boxes_norm", "features")
VIDEO_OUTPUTS = ("region_emb",)
RELATION_INPUTS = ("region_emb", "query_ids")
RELATION_OUTPUTS = ("alpha_s", "alpha_o", "beta1", "beta2")
Attention = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def check_device(device: str) -> str:
    """Normalise ``"cuda:0"`` to ``"cuda"``; BackendError for anything but cpu/cuda."""
    base = str(device).lower().split(":")[0]
    if base not in DEVICES:
        raise BackendError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    return base


def check_threads(threads: int | None) -> int | None:
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise BackendError(f"threads={threads!r} must be a positive integer or None (library default)")
    return threads


class Backend(abc.ABC):
    """Runs a bundle's encoder: ``embed`` once per video, ``attend`` per batch of R relations."""

    name: str = "backend"
    #: largest R one ``_attend`` call accepts (None = unlimited); bigger batches are chunked
    max_batch: int | None = None

    def __init__(self, bundle: Bundle, device: str) -> None:
        self.bundle = bundle
        self.device = check_device(device)
        m = bundle.manifest
        self.num_samples, self.num_regions = m.num_samples, m.num_regions
        self.feature_dim, self.embed_dim, self.num_clips = m.feature_dim, m.embed_dim, m.num_clips
        self.vocab_size = int(m.model.get("vocab_size", len(m.vocabulary.get("tokens", []))) or 0)
        self.providers: list[str] = []
        self.precision = "fp32"
        self._last_embedding: np.ndarray | None = None  # embed()'s latest output (read-only), trusted by attend()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bundle={self.bundle.name!r}, device={self.device!r}, providers={self.providers})"

    # public API ------------------------------------------------------------------------------
    def embed(self, boxes_norm: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Region embeddings f32 [N,M,E] from normalised boxes f32 [N,M,5] and features f32 [N,M,D] (read-only)."""
        n, m, d = self.num_samples, self.num_regions, self.feature_dim
        boxes = _as_f32(boxes_norm, (n, m, 5), "boxes_norm")
        feats = _as_f32(features, (n, m, d), "features")
        out = self._embed(boxes, feats)
        out.flags.writeable = False  # so that attend() can trust it without scanning it again (0.1-0.2 ms)
        self._last_embedding = out
        return out

    def attend(self, region_emb: np.ndarray, query_ids: np.ndarray) -> Attention:
        """(alpha_s [R,N,M], alpha_o [R,N,M], beta1 [R,N], beta2 [R,H]) for R encoded relations."""
        if region_emb is not None and region_emb is self._last_embedding:
            emb = region_emb  # this backend's own read-only embed() output, built from checked inputs
        else:
            emb = _as_f32(region_emb, (self.num_samples, self.num_regions, self.embed_dim), "region_emb")
        ids = np.asarray(query_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.shape[1] != QUERY_LEN or ids.shape[0] < 1 or not np.issubdtype(ids.dtype, np.integer):
            raise RelationError(f"query_ids must be integer [R>=1, {QUERY_LEN}] (Vocabulary.encode_query), "
                                f"got {ids.dtype} {list(ids.shape)}")
        if self.vocab_size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise RelationError(f"query_ids hold token ids outside [0, {self.vocab_size}); encode relations with "
                                f"this bundle's vocabulary (Bundle.vocabulary.encode_query)")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        step = self.max_batch or len(ids)
        if len(ids) <= step:
            return self._attend(emb, ids)
        parts = [self._attend(emb, ids[i:i + step]) for i in range(0, len(ids), step)]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))  # type: ignore[return-value]

    def close(self) -> None:
        """Release sessions/engines; the backend is unusable afterwards."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # implementation hooks --------------------------------------------------------------------
    @abc.abstractmethod
    def _embed(self, boxes_norm: np.ndarray, features: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _attend(self, region_emb: np.ndarray, query_ids: np.ndarray) -> Attention: ...


def _as_f32(value: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise RegionsError(f"{name} has shape {list(arr.shape)}, the bundle expects {list(shape)} "
                           f"(N sampled frames x M regions are fixed per bundle)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise RegionsError(f"{name} must be floating point, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise RegionsError(f"{name} contains NaN or inf; check the region extractor output")
    return arr
