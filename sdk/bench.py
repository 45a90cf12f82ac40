"""``vrgv bench``: per-stage latency of the grounding pipeline, with machine facts, JSON and Markdown out.

Stages: decode, region extraction, encoder (per backend: embed + attend at R relations), instance choice (bundles
with ``instance_choice``), linking (per linking backend), interpolation, end to end per video and per relation. Every stage is warmed up first,
then timed ``repeats`` times (median, p90, p99). ``scaling=True`` adds the cost of linking and the encoder
as N, M and R grow and of decoding as the video grows, and names the dominant stage.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from vrgv.errors import BackendError

Table = list[dict[str, Any]]


@dataclass
class StageStats:
    """Wall-clock statistics of one stage in milliseconds (``n`` timed calls after warm-up)."""

    stage: str
    backend: str
    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    note: str = ""

    @classmethod
    def from_samples(cls, stage: str, backend: str, seconds: Sequence[float], note: str = "") -> "StageStats":
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        return cls(stage, backend, len(ms), float(np.median(ms)), float(np.percentile(ms, 90)),
                   float(np.percentile(ms, 99)), float(ms.mean()), note)


@dataclass
class BenchReport:
    """Everything one ``vrgv bench`` run measured, plus what it ran on and the command that reproduces it."""

    machine: dict[str, Any]
    command: str
    model: str
    video: str
    relations: list[str]
    stages: list[StageStats]
    throughput: dict[str, float]
    peak_rss_mb: float
    scaling: dict[str, Table] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stages"] = [asdict(s) for s in self.stages]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        m = self.machine
        lines = [
            "# vrgv latency benchmark",
            "",
            f"- Machine: {m['cpu']} ({m['cores']} cores), {m['memory_gb']} GB RAM, {m['os']}"
            + (f"; GPU: {m['gpu']}" if m.get("gpu") else ""),
            f"- Libraries: {', '.join(f'{k} {v}' for k, v in m['libraries'].items())}",
            f"- Model: `{self.model}`; video: `{self.video}`; R = {len(self.relations)} relations",
            f"- Command: `{self.command}`",
            f"- Peak RSS: {self.peak_rss_mb:.0f} MB",
            "",
            "| stage | backend | n | median ms | p90 ms | p99 ms | note |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for s in self.stages:
            lines.append(f"| {s.stage} | {s.backend} | {s.n} | {s.median_ms:.3f} | {s.p90_ms:.3f} | {s.p99_ms:.3f} | {s.note} |")
        lines += ["", "| throughput | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.2f} |" for k, v in self.throughput.items()]
        for title, table in self.scaling.items():
            if not table:
                continue
            cols = list(table[0])
            lines += ["", f"## Scaling: {title}", "", "| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
            for row in table:
                lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
        return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, OS and the versions of the libraries that matter for speed."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        mem = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        mem = float("nan")
    libs = {}
    for name in ("vrgv", "numpy", "onnxruntime", "numba", "opencv-python-headless", "torch"):
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    info = {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem, "os": platform.platform(),
            "python": platform.python_version(), "libraries": libs}
    gpu = _gpu_name()
    if gpu:
        info["gpu"] = gpu
    return info


def _gpu_name() -> str | None:
    """The first CUDA device's name when torch is already imported and sees one (the runtime never imports torch)."""
    torch = sys.modules.get("torch")
    try:
        return str(torch.cuda.get_device_name(0)) if torch is not None and torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken driver must not break the report
        return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per call of ``fn`` for ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(max(0, warmup)):
        fn()
    out = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def random_attention(rng: np.random.Generator, r: int, n: int, m: int, clip_len: int = 12) -> tuple[np.ndarray, ...]:
    """Attention shaped like the encoder's: softmax rows over M regions, β1 over N and β2 over H clips."""
    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    h = max(1, n // clip_len)
    return (softmax(rng.normal(0, 2, (r, n, m))), softmax(rng.normal(0, 2, (r, n, m))),
            softmax(rng.normal(0, 1, (r, n))), softmax(rng.normal(0, 1, (r, h))))


def random_boxes(rng: np.random.Generator, n: int, m: int, width: int = 320, height: int = 240) -> np.ndarray:
    """Plausible proposals: boxes that drift slowly over frames so that IoU links matter."""
    base = rng.uniform([0, 0, 20, 20], [width - 60, height - 60, 60, 60], size=(m, 4))
    drift = np.cumsum(rng.normal(0, 1.5, (n, m, 2)), axis=0)
    x1 = np.clip(base[None, :, 0] + drift[..., 0], 0, width - 2)
    y1 = np.clip(base[None, :, 1] + drift[..., 1], 0, height - 2)
    x2 = np.clip(x1 + base[None, :, 2], x1 + 1, width)
    y2 = np.clip(y1 + base[None, :, 3], y1 + 1, height)
    return np.stack([x1, y1, x2, y2], -1).astype(np.float64)


def run_bench(
    model: str | None = None,
    video: str | None = None,
    relations: Sequence[str] | None = None,
    *,
    backends: Sequence[str] = ("onnxruntime", "torch"),
    linkers: Sequence[str] | None = None,
    repeats: int = 20,
    warmup: int = 3,
    threads: int | None = None,
    scaling: bool = False,
    device: str = "cpu",
    precision: str = "fp32",
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every stage on one video (default: the demo video) with the bundle ``model`` (default: bundled).

    ``device`` and ``precision`` apply to the encoder backends; decoding, extraction and linking run on the CPU.
    """
    from vrgv.grounder import Grounder
    from vrgv.linking import available_backends, link_many
    from vrgv.linking.reference import interpolate
    from vrgv.video import read_video

    say = progress or (lambda _msg: None)
    tmp = tempfile.TemporaryDirectory(prefix="vrgv-bench-")
    if video is None or relations is None:
        from vrgv.annotations import VideoAnnotation
        from vrgv.synth import demo_video

        vpath, apath = demo_video(tmp.name)
        video = str(vpath) if video is None else video
        relations = list(relations or VideoAnnotation.load(apath).relation_strings())
    relations = list(relations)
    stages: list[StageStats] = []
    grounder = Grounder.load(model, backend=backends[0] if backends else "auto", threads=threads, device=device,
                             precision=precision)
    spec = grounder.spec
    extractor = grounder.extractor
    max_side = getattr(extractor, "read_max_side", None)

    say("decode")
    frames_box: list[Any] = []
    dec = time_call(lambda: frames_box.append(read_video(video, num_samples=spec.num_samples, max_side=max_side)),
                    repeats=max(3, repeats // 4), warmup=1)
    frames = frames_box[-1]
    stages.append(StageStats.from_samples("decode", "opencv", dec, f"N={spec.num_samples} of {frames.num_frames} frames"))

    say("extract")

    def do_extract() -> Any:
        return extractor(frames.frames, frames.frame_ids, num_frames=frames.num_frames, width=frames.width,
                         height=frames.height, video_id=frames.video_id, fps=frames.fps)

    ext = time_call(do_extract, repeats=max(3, repeats // 4), warmup=1)
    regions = grounder.conform(do_extract())
    stages.append(StageStats.from_samples("extract", getattr(extractor, "name", type(extractor).__name__), ext,
                                          f"M={regions.num_regions}, {frames.frames.shape[2]}x{frames.frames.shape[1]} px"))
    query = grounder.vocabulary.encode_query(relations)
    boxes_norm, feats = regions.normalized_boxes(), regions.features
    att = None
    for name in backends:
        say(f"encoder {name}")
        try:
            g = Grounder.load(model, backend=name, threads=threads, device=device, precision=precision)
            be = g.backend
        except BackendError as exc:
            stages.append(StageStats("encoder", name, 0, float("nan"), float("nan"), float("nan"), float("nan"),
                                     f"unavailable: {exc}"))
            continue
        label = name if device == "cpu" and precision == "fp32" else f"{name} {device} {precision}"
        stages.append(StageStats.from_samples("encoder.embed", label, time_call(lambda: be.embed(boxes_norm, feats), repeats, warmup),
                                              (be.providers or [""])[0]))
        emb = be.embed(boxes_norm, feats)  # the latest embedding, as in grounding (a GPU backend keeps it on the device)
        stages.append(StageStats.from_samples("encoder.attend", label, time_call(lambda: be.attend(emb, query), repeats, warmup),
                                              f"R={len(relations)}"))
        if att is None:
            att = be.attend(emb, query)
    if att is None:
        why = "; ".join(f"{s.backend}: {s.note.removeprefix('unavailable: ')}" for s in stages if s.stage == "encoder")
        raise BackendError(f"none of the encoder backends {list(backends)} could run on device={device!r} ({why})")
    from vrgv.grounder import combine_beta

    beta = combine_beta(att[2], att[3], spec.clip_len)
    a_s, a_o = np.asarray(att[0], np.float64), np.asarray(att[1], np.float64)
    b64 = regions.boxes.astype(np.float64)
    for lk in linkers or available_backends():
        say(f"linking {lk}")
        secs = time_call(lambda: link_many(b64, a_s, a_o, beta, regions.frame_ids, regions.num_frames, sigma=spec.sigma,
                                           backend=lk), repeats, warmup)
        stages.append(StageStats.from_samples("linking", lk, secs, f"R={len(relations)}, per call"))
    if spec.instance_choice:  # candidate tracks and the head's choice of instances, before the final linking
        from vrgv.instances import choose_instances

        say("instance choice")
        pred_ids = grounder.vocabulary.encode_query(relations)[:, 1:-1]
        secs = time_call(lambda: choose_instances(
            regions.boxes, regions.normalized_boxes(), a_s, a_o, beta, regions.frame_ids, pred_ids, grounder.head,
            spec.instance_temperature, spec.instance_gamma, num_frames=regions.num_frames, sigma=spec.sigma,
            proximity=spec.instance_proximity),
            repeats, warmup)
        tracks = "numba" if spec.instance_proximity > 0 else "linking"  # who links the candidate tracks
        stages.append(StageStats.from_samples("instances", f"numpy + {tracks}", secs,
                                              f"R={len(relations)}, T={spec.instance_temperature:g}, "
                                              f"ν={spec.instance_proximity:g}"))
    res = link_many(b64, a_s, a_o, beta, regions.frame_ids, regions.num_frames, sigma=spec.sigma)[0]
    kept = np.asarray(res.kept_indices)
    kept_fids = regions.frame_ids[kept]
    kept_boxes = b64[kept, np.asarray(res.sub_indices)]
    stages.append(StageStats.from_samples("interpolation", "numpy", time_call(lambda: interpolate(kept_fids, kept_boxes), repeats, warmup),
                                          f"{len(kept)} kept frames -> {res.end_fid - res.start_fid + 1} frames"))
    say("end to end")
    e2e = time_call(lambda: grounder.ground_many(video, relations), max(3, repeats // 4), warmup=1)
    stages.append(StageStats.from_samples("end_to_end.video", grounder.backend.name, e2e, f"R={len(relations)}"))
    per_rel = [s / max(1, len(relations)) for s in e2e]
    stages.append(StageStats.from_samples("end_to_end.relation", grounder.backend.name, per_rel, "video time / R"))
    med = float(np.median(e2e))
    throughput = {"videos_per_s": 1.0 / med, "relations_per_s": len(relations) / med}
    scaling_tables = run_scaling(grounder, say=say) if scaling else {}
    tmp.cleanup()
    return BenchReport(
        machine=machine_info(),
        command=command or "vrgv " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        model=getattr(grounder, "name", str(model)),
        video=Path(video).name if isinstance(video, (str, os.PathLike)) else "array",
        relations=relations,
        stages=stages,
        throughput=throughput,
        peak_rss_mb=peak_rss_mb(),
        scaling=scaling_tables,
    )


def run_scaling(grounder: Any, say: Callable[[str], None] = lambda _m: None, repeats: int = 7) -> dict[str, Table]:
    """Cost as N, M, R and the video length grow: linking (every backend), encoder (torch, any N/M) and decode."""
    from vrgv.linking import available_backends, link_many

    rng = np.random.default_rng(0)
    tables: dict[str, Table] = {}
    say("scaling: linking")
    rows = []
    for n, m, r in [(120, 20, 1), (120, 40, 1), (120, 80, 1), (240, 40, 1), (480, 40, 1), (120, 40, 8), (120, 40, 24), (120, 40, 64)]:
        boxes = random_boxes(rng, n, m)
        a_s, a_o, b1, b2 = random_attention(rng, r, n, m)
        from vrgv.grounder import combine_beta

        beta = combine_beta(b1, b2, 12)
        fids = np.round(np.linspace(0, 4 * n - 1, n)).astype(np.int64)
        row: dict[str, Any] = {"N": n, "M": m, "R": r}
        for lk in available_backends():
            secs = time_call(lambda: link_many(boxes, a_s, a_o, beta, fids, 4 * n, backend=lk), repeats, 1)
            row[f"{lk} ms"] = float(np.median(secs) * 1e3)
        rows.append(row)
    tables["linking (random attention)"] = rows
    tables["encoder (torch eager, 1 video, random regions)"] = _encoder_scaling(grounder, rng, repeats, say)
    tables["decode + extract vs video length"] = _length_scaling(grounder, rng, say)
    return tables


def _encoder_scaling(grounder: Any, rng: np.random.Generator, repeats: int, say: Callable[[str], None]) -> Table:
    bundle = getattr(grounder, "bundle", None)
    try:
        from vrgv.backends.torch_backend import TorchBackend  # noqa: F401
        import torch
    except Exception as exc:  # noqa: BLE001 - torch is an optional extra
        return [{"note": f"skipped: torch backend unavailable ({type(exc).__name__})"}]
    from vrgv.backends import load_backend

    try:
        be = load_backend(bundle, backend="torch")
    except Exception as exc:  # noqa: BLE001
        return [{"note": f"skipped: {exc}"}]
    model = getattr(be, "model", None)
    if model is None:
        return [{"note": "skipped: torch backend exposes no .model"}]
    spec = grounder.spec
    d = spec.feature_dim or 64
    vocab = grounder.vocabulary
    query_all = vocab.encode_query([f"{vocab.objects[0]}-{vocab.predicates[0]}-{vocab.objects[1]}"] * 64)
    rows = []
    say("scaling: encoder")
    for n, m, r in [(120, 40, 1), (240, 40, 1), (480, 40, 1), (120, 20, 1), (120, 80, 1), (120, 40, 8), (120, 40, 24), (120, 40, 64)]:
        bn = torch.from_numpy(rng.uniform(0, 1, (n, m, 5)).astype(np.float32))
        ft = torch.from_numpy(rng.normal(0, 1, (n, m, d)).astype(np.float32))
        q = torch.from_numpy(query_all[:r])
        net = model
        if (n, m) != (spec.num_samples, spec.num_regions):  # N and M are fixed per model: same sizes, random weights
            from vrgv.training.config import ModelConfig
            from vrgv.training.model import VRGVModel

            net = VRGVModel(ModelConfig.from_dict({**model.config.to_dict(), "num_frames": n, "num_regions": m})).eval()
        try:
            with torch.inference_mode():
                emb = net.embed_regions(bn, ft)
                e_ms = float(np.median(time_call(lambda: net.embed_regions(bn, ft), repeats, 1)) * 1e3)
                a_ms = float(np.median(time_call(lambda: net.attend(emb, q), repeats, 1)) * 1e3)
        except Exception as exc:  # noqa: BLE001 - a model may fix N by its clip count
            rows.append({"N": n, "M": m, "R": r, "embed ms": float("nan"), "attend ms": float("nan"), "note": str(exc)[:60]})
            continue
        rows.append({"N": n, "M": m, "R": r, "embed ms": e_ms, "attend ms": a_ms,
                     "note": "" if net is model else "same sizes, random weights"})
    return rows


def _length_scaling(grounder: Any, rng: np.random.Generator, say: Callable[[str], None]) -> Table:
    import cv2

    from vrgv.video import read_video

    rows = []
    say("scaling: video length")
    extractor = grounder.extractor
    max_side = getattr(extractor, "read_max_side", None)
    with tempfile.TemporaryDirectory(prefix="vrgv-len-") as tmp:
        for length in (60, 300, 1200, 4800):
            path = Path(tmp) / f"len{length}.mp4"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
            base = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
            for i in range(length):
                writer.write(np.roll(base, i, axis=1))
            writer.release()
            t0 = time.perf_counter()
            frames = read_video(str(path), num_samples=grounder.spec.num_samples, max_side=max_side)
            t1 = time.perf_counter()
            extractor(frames.frames, frames.frame_ids, num_frames=frames.num_frames, width=frames.width,
                      height=frames.height, video_id=frames.video_id, fps=frames.fps)
            t2 = time.perf_counter()
            rows.append({"frames": length, "decode ms": (t1 - t0) * 1e3, "extract ms": (t2 - t1) * 1e3,
                         "dominant": "decode" if t1 - t0 > t2 - t1 else "extract"})
    return rows
