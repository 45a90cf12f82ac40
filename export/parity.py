"""Parity of exported graphs against the PyTorch model on random regions and queries.

For each R in ``sizes`` the video graph and the relation graph run in ONNX Runtime (CPU) and the
maximum absolute difference to eager PyTorch is taken per output. fp32 graphs must stay within ``atol``
(1e-4 by default); fp16 errors are only reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vrgv.backends.base import RELATION_OUTPUTS
from vrgv.backends.onnxruntime_backend import optimization_level
from vrgv.errors import BundleError
from vrgv.export.onnx_export import encoder_shapes
from vrgv.vocab import Vocabulary


@dataclass
class ParityReport:
    """Max |ONNX - PyTorch| per batch size R and output (``region_emb`` plus the four attentions)."""

    precision: str
    atol: float
    errors: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max((v for per in self.errors.values() for v in per.values()), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_error <= self.atol

    def to_dict(self) -> dict:
        return {"precision": self.precision, "atol": self.atol, "max_abs_error": self.max_error,
                "per_batch": {str(r): per for r, per in self.errors.items()}}


def random_regions(n: int, m: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Plausible normalised boxes [n,m,5] (x1<x2, y1<y2, area) and non-negative features [n,m,d]."""
    xy = np.sort(rng.random((n, m, 2, 2), dtype=np.float32), axis=2)  # [..., (lo, hi), (x, y)]
    x1, y1, x2, y2 = xy[..., 0, 0], xy[..., 0, 1], xy[..., 1, 0], xy[..., 1, 1]
    boxes = np.stack([x1, y1, x2, y2, (x2 - x1) * (y2 - y1)], axis=-1).astype(np.float32)
    feats = np.abs(rng.standard_normal((n, m, d), dtype=np.float32))
    return boxes, feats


def random_queries(vocab: Vocabulary, r: int, rng: np.random.Generator) -> np.ndarray:
    """int64 [r,5] token ids of random valid relations of ``vocab``."""
    rels = [f"{rng.choice(vocab.objects)}-{rng.choice(vocab.predicates)}-{rng.choice(vocab.objects)}" for _ in range(r)]
    return vocab.encode_query(rels)


def check_parity(model: nn.Module, vocab: Vocabulary, graphs: dict[str, Path], *, precision: str = "fp32",
                 sizes: tuple[int, ...] = (1, 7, 32), atol: float = 1e-4, seed: int = 0,
                 strict: bool = True) -> ParityReport:
    """Compare ONNX Runtime (CPU) with eager PyTorch; BundleError if ``strict`` and the error > ``atol``."""
    import onnxruntime as ort

    s = encoder_shapes(model)
    rng = np.random.default_rng(seed)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = optimization_level(ort)
    video = ort.InferenceSession(str(graphs["video"]), options, providers=["CPUExecutionProvider"])
    chunked = (ort.InferenceSession(str(graphs["video_chunked"]), options, providers=["CPUExecutionProvider"])
               if "video_chunked" in graphs else None)
    relation = ort.InferenceSession(str(graphs["relation"]), options, providers=["CPUExecutionProvider"])
    report = ParityReport(precision, atol)
    for r in sizes:
        boxes, feats = random_regions(s.num_samples, s.num_regions, s.feature_dim, rng)
        ids = random_queries(vocab, r, rng)
        with torch.inference_mode():
            emb_t = model.embed_regions(torch.from_numpy(boxes), torch.from_numpy(feats))
            ref = [o.numpy() for o in model.attend(emb_t, torch.from_numpy(ids))]
        (emb_o,) = video.run(None, {"boxes_norm": boxes, "features": feats})
        # feed the same embeddings to both sides so relation-graph errors are measured in isolation
        out = relation.run(list(RELATION_OUTPUTS), {"region_emb": emb_t.numpy(), "query_ids": ids})
        errors = {"region_emb": float(np.abs(emb_o - emb_t.numpy()).max())}
        if chunked is not None:
            (emb_c,) = chunked.run(None, {"boxes_norm": boxes, "features": feats})
            errors["region_emb_chunked"] = float(np.abs(emb_c - emb_t.numpy()).max())
        for name, a, b in zip(RELATION_OUTPUTS, out, ref):
            if a.shape != b.shape:
                raise BundleError(f"{graphs['relation'].name}: output {name} has shape {list(a.shape)} for "
                                  f"R={r}, PyTorch gives {list(b.shape)}; the export is wrong")
            errors[name] = float(np.abs(a - b).max())
        report.errors[r] = errors
    if strict and not report.ok:
        raise BundleError(f"{precision} export parity failed: max |ONNX - PyTorch| = {report.max_error:.3g} > "
                          f"{atol:g} ({report.to_dict()['per_batch']}); the graphs are not faithful")
    return report
