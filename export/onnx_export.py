"""Export the encoder of a ``VRGVModel`` to two ONNX graphs, check them, and optionally fp16/simplify them.

``encoder_video.onnx``: boxes_norm [N,M,5], features [N,M,D] -> region_emb [N,M,E] (N, M fixed; run once
per video). ``encoder_relation.onnx``: region_emb [N,M,E], query_ids i64 [R,5] -> alpha_s, alpha_o [R,N,M],
beta1 [R,N], beta2 [R,H] with R dynamic; the word-vector table is an initializer inside this graph.
``encoder_video.chunked.onnx``: the video graph computed a few frames at a time, faster on one CPU thread and
slower on several (encoder.md, session 9); ONNX Runtime picks it when it runs on one thread.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from vrgv.backends.base import RELATION_INPUTS, RELATION_OUTPUTS, VIDEO_INPUTS, VIDEO_OUTPUTS
from vrgv.errors import BundleError, ConfigError

log = logging.getLogger(__name__)

VIDEO_FILE = "encoder_video.onnx"
CHUNKED_VIDEO_FILE = "encoder_video.chunked.onnx"
RELATION_FILE = "encoder_relation.onnx"
MAX_R = 4096  # upper bound given to torch.export for the dynamic relation batch


@dataclass(frozen=True)
class EncoderShapes:
    """Fixed sizes of one bundle: N sampled frames, clip length L, M regions, D features, E embedding."""

    num_samples: int
    clip_length: int
    num_regions: int
    feature_dim: int
    embed_dim: int

    @property
    def num_clips(self) -> int:
        return self.num_samples // self.clip_length


def encoder_shapes(model: nn.Module) -> EncoderShapes:
    """Read N, L, M, D from ``model.config`` and probe E with one forward on zeros."""
    c = model.config
    n, m, d = int(c.num_frames), int(c.num_regions), int(c.feature_dim)
    with torch.inference_mode():
        emb = model.embed_regions(torch.zeros(1, m, 5), torch.zeros(1, m, d))
    return EncoderShapes(n, int(c.clip_len), m, d, int(emb.shape[-1]))


# Target size of one chunk's [rows, E] float32 intermediates in the video graph: several of them together stay in
# a CPU core's L2 cache (2 MB on this machine), where the whole [N*M, E] tensors (2.4 MB at N=120, M=40, E=128)
# do not (encoder.md, session 9).
EMBED_CHUNK_BYTES = 512 * 1024


def frames_per_chunk(shapes: EncoderShapes, chunk_bytes: int = EMBED_CHUNK_BYTES) -> int:
    """How many sampled frames the video graph embeds per chunk so that one [rows, E] float32 tensor of a
    chunk takes at most ``chunk_bytes`` (at least one frame)."""
    rows = chunk_bytes // (4 * shapes.embed_dim)
    return max(1, min(shapes.num_samples, rows // shapes.num_regions))


class VideoGraph(nn.Module):
    """The per-video part: regions -> region embeddings, computed ``chunk`` frames at a time.

    Every region's embedding depends on that region alone, so chunking over frames changes nothing but the
    order of work. It lets ONNX Runtime run each chunk's Gemms, LayerNorms and Add while their inputs are still
    in L2 cache instead of streaming five full-size tensors through memory. The chunk count follows from the
    fixed N, so the graph has no data-dependent control flow."""

    def __init__(self, model: nn.Module, chunk: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(self, boxes_norm: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if not self.chunk or self.chunk >= boxes_norm.shape[0]:
            return self.model.embed_regions(boxes_norm, features)
        parts = [self.model.embed_regions(b, f) for b, f in
                 zip(torch.split(boxes_norm, self.chunk), torch.split(features, self.chunk))]
        return torch.cat(parts, dim=0)


class RelationGraph(nn.Module):
    """The per-relation part: region embeddings + token ids -> spatial and temporal attention."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, region_emb: torch.Tensor, query_ids: torch.Tensor):
        return tuple(self.model.attend(region_emb, query_ids))


def export_encoder(model: nn.Module, out_dir: Path, *, opset: int = 17, exporter: str = "auto",
                   embed_chunk_bytes: int = EMBED_CHUNK_BYTES) -> dict[str, Path]:
    """Write ``encoder_video.onnx`` and ``encoder_relation.onnx`` into ``out_dir``, each checked, and
    ``encoder_video.chunked.onnx`` (key "video_chunked") when it differs from the plain video graph.

    ``embed_chunk_bytes``: the chunked video graph embeds whole frames in chunks whose [rows, E] float32 tensors
    take at most this much (``frames_per_chunk``); the default suits a 2 MB L2 cache. A chunk of all N frames
    means no chunked graph.

    ``exporter``: "dynamo" (torch.export), "torchscript", or "auto" (dynamo, then TorchScript). A candidate
    graph is kept only if it passes ``onnx.checker`` and reproduces the module on the example inputs and
    on R=1, so a silently wrong export (seen with the TorchScript exporter on batched einsums) falls through.
    """
    if not 14 <= opset <= 23:
        raise ConfigError(f"opset {opset} is unsupported; use 14..23 (default 17)")
    if isinstance(embed_chunk_bytes, bool) or not isinstance(embed_chunk_bytes, int) or embed_chunk_bytes < 1:
        raise ConfigError(f"embed_chunk_bytes must be a positive number of bytes, got {embed_chunk_bytes!r} "
                          f"(default {EMBED_CHUNK_BYTES}; `--embed-chunk-kib` in the CLI)")
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise ConfigError(f"exporter {exporter!r} is unknown; use 'auto', 'torchscript' or 'dynamo'")
    order = {"auto": ["dynamo", "torchscript"],
             "torchscript": ["torchscript"], "dynamo": ["dynamo"]}[exporter]
    model = model.eval()
    s = encoder_shapes(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    boxes = torch.rand(s.num_samples, s.num_regions, 5, generator=gen)
    feats = torch.rand(s.num_samples, s.num_regions, s.feature_dim, generator=gen)
    emb = torch.rand(s.num_samples, s.num_regions, s.embed_dim, generator=gen)
    # varied token ids with 1-3 predicate words (0-padded), like Vocabulary.encode_query output
    ids = torch.tensor([[4, 5, 0, 0, 6], [7, 8, 9, 0, 4], [5, 6, 7, 8, 9]], dtype=torch.int64)
    ids = torch.where(ids > 0, 4 + ids % max(1, int(model.config.vocab_size) - 4), ids)
    head = getattr(model, "temporal_head", None)
    if head is not None:  # predicates the head was fitted on, so parity covers its curves, not only the flat one
        fitted = torch.nonzero(head.w_out.abs().sum((0, 2)) > 0).squeeze(1)
        rows = fitted if len(fitted) else torch.arange(head.predicate_tokens.shape[0])
        ids[:, 1:4] = head.predicate_tokens[rows[torch.arange(len(ids)) % len(rows)]]
    graphs = {
        "video": _export(VideoGraph(model), (boxes, feats), out_dir / VIDEO_FILE, VIDEO_INPUTS, VIDEO_OUTPUTS,
                         opset, None, order),
        "relation": _export(RelationGraph(model), (emb, ids), out_dir / RELATION_FILE, RELATION_INPUTS,
                            RELATION_OUTPUTS, opset, "R", order),
    }
    chunk = frames_per_chunk(s, embed_chunk_bytes)
    if chunk < s.num_samples:
        graphs["video_chunked"] = _export(VideoGraph(model, chunk), (boxes, feats), out_dir / CHUNKED_VIDEO_FILE,
                                          VIDEO_INPUTS, VIDEO_OUTPUTS, opset, None, order)
    return graphs


def _export(module: nn.Module, args: tuple, path: Path, inputs: tuple[str, ...], outputs: tuple[str, ...],
            opset: int, dynamic: str | None, order: list[str]) -> Path:
    """Export with the first exporter in ``order`` whose graph passes ``check_graph``."""
    failures = []
    for exporter in order:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                if exporter == "dynamo":
                    _export_dynamo(module, args, path, inputs, outputs, opset, dynamic)
                else:
                    _export_torchscript(module, args, path, inputs, outputs, opset, dynamic)
            check_graph(path)
            _self_check(module, args, path, inputs, outputs, dynamic)
            log.debug("exported %s with the %s exporter (opset %d)", path.name, exporter, opset)
            return path
        except Exception as exc:  # each exporter raises its own types; the next one may succeed
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("%s exporter failed for %s: %s", exporter, path.name, first)
            failures.append(f"{exporter}: {first}")
    raise BundleError(f"could not export {path.name} at opset {opset} ({'; '.join(failures)}); try another "
                      f"--opset (18 uses torch.export natively) or report the model config")


def _export_torchscript(module: nn.Module, args: tuple, path: Path, inputs: tuple[str, ...],
                        outputs: tuple[str, ...], opset: int, dynamic: str | None) -> None:
    axes = {name: {0: dynamic} for name in (inputs[1], *outputs)} if dynamic else None
    torch.onnx.export(module, args, str(path), input_names=list(inputs), output_names=list(outputs),
                      opset_version=opset, dynamo=False, dynamic_axes=axes, do_constant_folding=True)


def _export_dynamo(module: nn.Module, args: tuple, path: Path, inputs: tuple[str, ...],
                   outputs: tuple[str, ...], opset: int, dynamic: str | None) -> None:
    import inspect

    shapes = None
    if dynamic:  # torch.export keys dynamic shapes by the forward's parameter names
        params = list(inspect.signature(module.forward).parameters)
        shapes = {params[0]: None, params[1]: {0: torch.export.Dim(dynamic, min=1, max=MAX_R)}}
    program = torch.onnx.export(module, args, input_names=list(inputs), output_names=list(outputs),
                                opset_version=opset, dynamo=True, external_data=False, dynamic_shapes=shapes,
                                verbose=False)
    program.save(str(path), external_data=False)
    if opset < 18:
        model = onnx.load(str(path))
        if _split_to_opset13(model):
            onnx.save(model, str(path))


def _split_to_opset13(model: onnx.ModelProto) -> bool:
    """Rewrite opset-18 ``Split(num_outputs=k)`` left by the down-conversion into ``Split(x, sizes)``.

    Sizes come from the outputs' static shapes; returns whether anything changed (ValueError if the sizes
    are unknown, so the caller moves on to the next exporter).
    """
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in (*model.graph.value_info, *model.graph.output)}
    changed = False
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type != "Split" or "num_outputs" not in attrs:
            continue
        axis = attrs["axis"].i if "axis" in attrs else 0
        sizes = [(shapes.get(o) or [])[axis:axis + 1] for o in node.output] if axis >= 0 else []
        if not sizes or any(len(x) != 1 or x[0] is None for x in sizes):
            raise ValueError(f"Split {node.name}: output sizes along axis {axis} are unknown")
        name = f"{node.name}_sizes"
        model.graph.initializer.append(numpy_helper.from_array(np.array([x[0] for x in sizes], np.int64), name))
        node.input.append(name)
        node.attribute.remove(attrs["num_outputs"])
        changed = True
    return changed


def _self_check(module: nn.Module, args: tuple, path: Path, inputs: tuple[str, ...], outputs: tuple[str, ...],
                dynamic: str | None, atol: float = 1e-4) -> None:
    """Run the graph in ONNX Runtime on ``args`` (and on R=1 for the dynamic graph) against the module."""
    import onnxruntime as ort

    from vrgv.backends.onnxruntime_backend import optimization_level

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = optimization_level(ort)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    cases = [args] + ([(args[0], args[1][:1])] if dynamic else [])
    for case in cases:
        with torch.no_grad():
            ref = module(*case)
        ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        got = session.run(list(outputs), {n: t.numpy() for n, t in zip(inputs, case)})
        for name, a, b in zip(outputs, got, ref):
            if a.shape != tuple(b.shape) or not np.allclose(a, b.numpy(), atol=atol, rtol=0):
                raise ValueError(f"{name} differs from PyTorch (shape {list(a.shape)} vs {list(b.shape)})")


def check_graph(path: Path) -> None:
    """``onnx.checker.check_model(full_check=True)``; BundleError naming the file on failure."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise BundleError(f"exported graph {path.name} fails onnx.checker ({exc}); report this with the model "
                          f"config - the export is unusable") from None


FP32_OUTPUTS = ("alpha_s", "alpha_o")  # relation outputs whose whole computation stays float32 in --fp16
FP16_OPS = ("LSTM",)  # op types that --fp16 runs in float16 (outside the FP32_OUTPUTS path)


def to_fp16(src: Path, dst: Path, keep_float32: tuple[str, ...] = FP32_OUTPUTS,
            float16_ops: tuple[str, ...] | None = FP16_OPS) -> Path:
    """Mixed precision like autocast: the recurrent core (the frame and clip LSTMs, the largest per-relation
    cost) in float16, everything else, and every node upstream of ``keep_float32``, in float32; float32
    inputs/outputs. ``float16_ops=None`` puts every op type in float16. ONNX Runtime's converter does the
    casts, then checked.

    Measured on the synthetic test split (687 pairs, ``backend_agreement.md``): the whole graph in float16
    (session 5) moved 19 trajectories; the other variants are compared by ``benchmarks/fp16_variants.py``."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(src))
    del model.graph.value_info[:]  # stale float32 annotations clash with the converter's casts; re-inferred below
    blocked = _upstream_nodes(model.graph, keep_float32)
    if float16_ops is not None:
        blocked |= {node.name for node in model.graph.node if node.op_type not in float16_ops}
    _unshare_initializers(model.graph, blocked)
    model = convert_float_to_float16(model, keep_io_types=True, node_block_list=sorted(blocked))
    _merge_duplicate_producers(model.graph)
    model = onnx.shape_inference.infer_shapes(model)  # element types for the round-trip check
    _drop_cast_round_trips(model.graph)
    OnnxModel(model).topological_sort()
    onnx.save(model, str(dst))
    check_graph(dst)
    return dst


def _merge_duplicate_producers(graph: onnx.GraphProto) -> None:
    """Keep one of several identical nodes that write the same tensor (and one value_info per name).

    onnxruntime < 1.32's converter adds one ``X_cast_to_fp32`` Cast per consumer of a float16 tensor X, all with
    the same output name, which breaks single static assignment (seen with onnxruntime 1.30 on the GPU machine).
    Identical producers compute the same value, so dropping the copies is exact; differing ones are an error."""
    first: dict[str, onnx.NodeProto] = {}
    duplicates: list[int] = []
    for index, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            kept = first.setdefault(out, node)
            if kept is node:
                continue
            same = (kept.op_type, kept.domain, list(kept.input), list(kept.output), list(kept.attribute)) == \
                   (node.op_type, node.domain, list(node.input), list(node.output), list(node.attribute))
            if not same:
                raise BundleError(f"float16 conversion produced two different nodes writing {out!r} "
                                  f"({kept.op_type} {kept.name!r}, {node.op_type} {node.name!r}); export without "
                                  f"--fp16 or upgrade onnxruntime")
            duplicates.append(index)
            break
    for index in reversed(duplicates):  # by position: protobuf's remove() would take the first equal node
        del graph.node[index]
    seen: set[str] = set()
    for index in reversed([i for i, v in enumerate(graph.value_info) if v.name in seen or seen.add(v.name)]):
        del graph.value_info[index]


def _unshare_initializers(graph: onnx.GraphProto, blocked: set[str]) -> None:
    """Give the float32 (blocked) nodes their own copy of every weight they share with float16 nodes: the
    converter would otherwise store it once in float16 and cast it back, rounding the float32 path's weights."""
    inits = {i.name: i for i in graph.initializer}
    users: dict[str, set[bool]] = {}
    for node in graph.node:
        for name in node.input:
            if name in inits:
                users.setdefault(name, set()).add(node.name in blocked)
    for name in [n for n, kinds in users.items() if kinds == {True, False}]:
        copy = onnx.TensorProto()
        copy.CopyFrom(inits[name])
        copy.name = name + "__fp32"
        graph.initializer.append(copy)
        for node in graph.node:
            if node.name in blocked:
                node.input[:] = [copy.name if i == name else i for i in node.input]


def _drop_cast_round_trips(graph: onnx.GraphProto) -> None:
    """Undo the converter's float32 -> float16 -> float32 Cast pairs (it inserts one after every float32 node
    and before the float32 outputs); each would round a float32 tensor to float16 for nothing."""
    producer = {o: node for node in graph.node for o in node.output}

    def cast_to(node: onnx.NodeProto | None, dtype: int) -> bool:
        return node is not None and node.op_type == "Cast" and any(a.name == "to" and a.i == dtype for a in node.attribute)

    for node in graph.node:
        first = producer.get(node.input[0]) if node.input else None
        if cast_to(node, onnx.TensorProto.FLOAT) and cast_to(first, onnx.TensorProto.FLOAT16):
            source = first.input[0]
            if _is_float32(graph, source):
                node.op_type, node.input[:] = "Identity", [source]
                del node.attribute[:]
    used = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    while True:
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
        used = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}


def _is_float32(graph: onnx.GraphProto, name: str) -> bool:
    """Whether a tensor is float32 (graph input, initializer or inferred value_info; unknown counts as no)."""
    for value in list(graph.input) + list(graph.value_info):
        if value.name == name:
            return value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    for init in graph.initializer:
        if init.name == name:
            return init.data_type == onnx.TensorProto.FLOAT
    return False


def _upstream_nodes(graph: onnx.GraphProto, outputs: tuple[str, ...]) -> set[str]:
    """Names of the nodes that the given graph outputs depend on."""
    producer = {o: node for node in graph.node for o in node.output}
    todo, seen = [o for o in outputs if o in producer], set()
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        todo.extend(node.input)
    return seen


def simplify(path: Path) -> str:
    """Simplify a graph in place with onnxslim or onnxsim (whichever is installed); returns the tool."""
    model = onnx.load(str(path))
    try:
        import onnxslim

        simplified: Any = onnxslim.slim(model)
        tool = "onnxslim"
    except ImportError:
        try:
            import onnxsim
        except ImportError:
            raise ConfigError("--simplify needs onnxslim or onnxsim; install one (`pip install onnxslim`) "
                              "or export without --simplify") from None
        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise BundleError(f"onnxsim could not validate the simplified {path.name}; export without --simplify")
        tool = "onnxsim"
    onnx.save(simplified, str(path))
    check_graph(path)
    return tool
