"""Export a trained checkpoint to a model bundle: ONNX encoder graphs (+fp16, +TensorRT engines), weights,
detector and a checksummed manifest (needs the ``train`` extra: torch, onnx).

``export_bundle(checkpoint, out, fp16=..., opset=..., trt=..., simplify=..., detector=...)`` is what
``vrgv export`` runs: export, ``onnx.checker`` (full), parity against PyTorch for R in {1, 7, 32}, write.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrgv.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["ExportResult", "export_bundle"]

WEIGHTS_FILE = "model.safetensors"
DETECTOR_FILE = "detector.onnx"
DEFAULT_SIGMA = 0.04  # paper §4.2 temporal attention threshold


@dataclass
class ExportResult:
    """Where the bundle went and how faithful its graphs are (parity reports per precision)."""

    path: Path
    parity: dict[str, dict] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"bundle: {self.path}"]
        for name, size in sorted(self.files.items()):
            lines.append(f"  {name:<48} {size / 1e6:8.2f} MB")
        for precision, rep in self.parity.items():
            lines.append(f"  parity {precision}: max |ONNX - PyTorch| = {rep['max_abs_error']:.3g} "
                         f"(atol {rep['atol']:g}, R in {list(rep['per_batch'])})")
        return "\n".join(lines)


def export_bundle(checkpoint: "str | os.PathLike | tuple", out: str | os.PathLike, *, fp16: bool = False,
                  opset: int = 17, trt: bool = False, simplify: bool = False,
                  detector: str | os.PathLike | None = None, metrics: "dict | str | os.PathLike | None" = None,
                  name: str | None = None, sigma: float | None = None, parity_sizes: tuple[int, ...] = (1, 7, 32),
                  atol: float = 1e-4, overwrite: bool = False, command: str | None = None,
                  embed_chunk_bytes: int | None = None) -> ExportResult:
    """Export ``checkpoint`` (a folder from ``vrgv train``, or a ``(model, vocab, meta)`` tuple) to ``out``.

    ``out`` is a ``NAME.vrgv`` folder, or a ``.zip``. Raises BundleError if a graph fails
    ``onnx.checker`` or fp32 parity exceeds ``atol``; fp16 parity is measured and recorded only.
    ``embed_chunk_bytes`` sizes the chunks of the one-thread video graph (default: ``EMBED_CHUNK_BYTES``,
    for a 2 MB L2 cache; see ``export_encoder``).
    """
    import torch
    from safetensors.torch import save_file

    from vrgv.export.bundle_writer import finalize, stage_dir, write_manifest
    from vrgv.export.onnx_export import CHUNKED_VIDEO_FILE, RELATION_FILE, VIDEO_FILE, encoder_shapes, export_encoder
    from vrgv.export.onnx_export import simplify as simp
    from vrgv.export.onnx_export import to_fp16
    from vrgv.export.parity import check_parity

    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{str(out)!r} already exists; pass overwrite=True (`--overwrite`) or another --out")
    if trt:  # fail before the slow export if engines cannot be built here
        from vrgv.backends.tensorrt_backend import import_tensorrt, import_torch_cuda

        import_tensorrt()
        import_torch_cuda()
    model, vocab, meta, source = _load(checkpoint)
    if len(vocab) != model.config.vocab_size:
        raise ConfigError(f"checkpoint vocabulary has {len(vocab)} tokens, the model expects {model.config.vocab_size}")
    shapes = encoder_shapes(model)
    metrics_dict = _metrics(metrics, meta)
    staged = stage_dir(out)
    try:
        detector_entry = _copy_detector(detector, staged, shapes) if detector else None
        chunking = {} if embed_chunk_bytes is None else {"embed_chunk_bytes": embed_chunk_bytes}
        graphs = export_encoder(model, staged, opset=opset, **chunking)
        tools = sorted({simp(p) for p in graphs.values()}) if simplify else []
        parity = {"fp32": check_parity(model, vocab, graphs, sizes=parity_sizes, atol=atol).to_dict()}
        manifest_graphs = {"video": {"fp32": VIDEO_FILE}, "relation": {"fp32": RELATION_FILE}}
        if "video_chunked" in graphs:
            manifest_graphs["video_chunked"] = {"fp32": CHUNKED_VIDEO_FILE}
        if fp16:
            # the video graphs stay float32 (their region embeddings feed α; they run once per video)
            relation_fp16 = graphs["relation"].with_name(RELATION_FILE[:-5] + ".fp16.onnx")
            half = {**{g: p for g, p in graphs.items() if g != "relation"},
                    "relation": to_fp16(graphs["relation"], relation_fp16)}
            parity["fp16"] = check_parity(model, vocab, half, precision="fp16", sizes=parity_sizes, atol=atol,
                                          strict=False).to_dict()
            for g, p in half.items():
                manifest_graphs[g]["fp16"] = p.name
        for precision, rep in parity.items():
            log.info("%s parity: max |ONNX - PyTorch| = %.3g", precision, rep["max_abs_error"])
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(staged / WEIGHTS_FILE), metadata={"format": "pt", "vrgv": "bundle-1"})
        engines = []
        if trt:
            from vrgv.export.tensorrt_build import build_bundle_engines

            engines = build_bundle_engines(staged, graphs, shapes, precisions=("fp32", "fp16") if fp16 else ("fp32",))
        fields = {
            "name": name or out.name.removesuffix(".zip").removesuffix(".vrgv"),
            "vrgv_version": _vrgv_version(),
            "model": model.config.to_dict(),
            "num_samples": shapes.num_samples, "clip_length": shapes.clip_length,
            "num_regions": shapes.num_regions, "feature_dim": shapes.feature_dim, "embed_dim": shapes.embed_dim,
            "sigma": float(sigma if sigma is not None else meta.get("sigma", DEFAULT_SIGMA)),
            "vocabulary": vocab.to_dict(),
            "graphs": manifest_graphs, "opset": opset, "weights": WEIGHTS_FILE,
            "detector": detector_entry, "engines": engines,
            "provenance": _provenance(meta, source, command, opset, fp16, simplify, tools, torch.__version__),
            "metrics": metrics_dict, "parity": parity,
        }
        write_manifest(staged, fields)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    bundle = finalize(staged, out, overwrite=overwrite)
    sizes = {n: e.size for n, e in bundle.manifest.files.items()}
    return ExportResult(path=out, parity=parity, files=sizes)


def _load(checkpoint: Any) -> tuple[Any, Any, dict, str]:
    if isinstance(checkpoint, tuple):
        model, vocab, meta = checkpoint
        return model.eval(), vocab, dict(meta or {}), "in-memory model"
    from vrgv.training.checkpoint import load_checkpoint

    model, vocab, meta = load_checkpoint(checkpoint)
    return model, vocab, dict(meta or {}), str(Path(checkpoint).resolve())


def _metrics(metrics: Any, meta: dict) -> dict:
    merged = dict(meta.get("metrics") or {})
    if isinstance(metrics, (str, os.PathLike)):
        path = Path(metrics)
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"metrics file {str(path)!r} is not readable JSON ({exc})") from None
    if metrics is not None and not isinstance(metrics, dict):
        raise ConfigError(f"metrics must be a dict or a JSON file path, got {type(metrics).__name__}")
    merged.update(metrics or {})
    return merged


def _copy_detector(detector: str | os.PathLike, staged: Path, shapes: Any) -> dict[str, Any]:
    """Copy the detector ONNX in as ``detector.onnx``; its input size and config.json go to the manifest.

    A detector with ``boxes``/``features`` outputs is run once on a blank image: its feature size must be
    the model's D and it must give at least M regions, or the bundle could never ground anything.
    """
    import numpy as np
    import onnx
    import onnxruntime as ort

    src = Path(detector)
    if src.is_dir():
        src = src / DETECTOR_FILE
    if not src.is_file():
        raise ConfigError(f"detector {str(detector)!r} not found; give a detector.onnx file or a folder holding one")
    model = onnx.load(str(src), load_external_data=False)
    inp = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in inp.type.tensor_type.shape.dim]
    entry: dict[str, Any] = {"file": DETECTOR_FILE, "input": inp.name, "input_shape": dims,
                             "outputs": [o.name for o in model.graph.output]}
    if len(dims) == 4 and all(isinstance(v, int) for v in dims[1:3]):
        entry["input_size"] = {"height": dims[1], "width": dims[2]}
    if {"boxes", "features"} <= set(entry["outputs"]) and len(dims) == 4 and isinstance(dims[1], int):
        try:
            session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ConfigError(f"detector {str(src)!r} cannot be loaded by onnxruntime {ort.__version__} "
                              f"({str(exc).splitlines()[0][-200:]}); re-save it for this onnxruntime (e.g. a "
                              f"lower IR version) or upgrade onnxruntime") from None
        blank = np.zeros([1 if not isinstance(d, int) else d for d in dims], np.uint8)
        boxes, feats = session.run(["boxes", "features"], {inp.name: blank})
        regions, feature_dim = int(boxes.shape[1]), int(feats.shape[-1])
        if feature_dim != shapes.feature_dim or regions < shapes.num_regions:
            raise ConfigError(
                f"detector {str(src)!r} gives {regions} regions with {feature_dim}-d features, but the checkpoint "
                f"expects M={shapes.num_regions} regions with D={shapes.feature_dim}; export with the detector "
                f"whose features the model was trained on"
            )
        entry.update(num_regions=regions, feature_dim=feature_dim)
    cfg = src.with_name("config.json")
    if cfg.is_file():
        try:
            entry["config"] = json.loads(cfg.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"detector config {str(cfg)!r} is not valid JSON ({exc})") from None
    shutil.copyfile(src, staged / DETECTOR_FILE)
    return entry


def _provenance(meta: dict, source: str, command: str | None, opset: int, fp16: bool, simplify: bool,
                tools: list[str], torch_version: str) -> dict[str, Any]:
    import onnx

    training = {k: meta[k] for k in ("command", "training_command", "data", "seed", "time", "created", "git")
                if k in meta}
    return {
        "checkpoint": source,
        "training": training,
        "export_command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "options": {"opset": opset, "fp16": fp16, "simplify": simplify, "simplifier": tools},
        "versions": {"torch": torch_version, "onnx": onnx.__version__, "python": platform.python_version()},
    }


def _vrgv_version() -> str:
    import vrgv

    return vrgv.__version__
