"""Attention latency of one video for R relations: PyTorch eager vs ONNX Runtime fp32 (CPU), from one bundle.

Exports a bundle (from ``--checkpoint``, or a randomly initialised model with the sizes of
``training/configs/<--config>.json``; latency does not depend on the weights), loads it on both backends
with the same thread count, and times ``attend(region_emb, query_ids)`` for each R (median and p99 over
``--iters`` runs after warm-up), and the whole per-video job ``attend(embed(regions), query_ids)``. Targets (issue 6): ORT >= 1.5x faster than eager at R=1; R=24 <= 4x R=1.
``--regions demo`` takes the regions of the demo video (bundled detector) instead of random ones: real
detections give the score spreads that real videos have (random regions never made α subnormal).

    .venv/bin/python benchmarks/bench_encoder.py --threads 1,2 --out benchmarks/reports/encoder.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _model(args: argparse.Namespace):
    """(model, vocab, meta, description) from a checkpoint or a random model of a named config."""
    import torch

    from vrgv.training.config import ModelConfig
    from vrgv.training.model import VRGVModel
    from vrgv.vocab import Vocabulary

    if args.checkpoint:
        from vrgv.training.checkpoint import load_checkpoint

        model, vocab, meta = load_checkpoint(args.checkpoint)
        return model, vocab, meta, f"checkpoint {args.checkpoint}"
    cfg = json.loads((REPO / "training" / "configs" / f"{args.config}.json").read_text())["model"]
    sizes = {k: v for k, v in cfg.items() if k != "dropout"}
    vocab = Vocabulary.default()
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=len(vocab), feature_dim=args.feature_dim, **sizes)
    return VRGVModel(config).eval(), vocab, {}, f"random-init VRGVModel, training/configs/{args.config}.json sizes"


def _time(fns: dict, iters: int, warmup: int) -> dict:
    """Wall-clock and calling-thread CPU milliseconds (median, p99) of each call in ``fns``, timed round-robin.

    Each iteration visits every call in turn, so all calls (both backends, every R) see the same background
    load: on the shared 2-core machine a slow minute then raises every number alike instead of tilting one
    ratio. At each visit the call runs once untimed and once timed, so the timed run is warm (caches hold its
    own weights and buffers, not those of the call before), as when one backend grounds video after video.
    With one intra-op thread both backends compute in the calling thread, so its CPU time is the cost of the
    call even when wall time mostly measures waiting.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall = {k: np.empty(iters) for k in fns}
    cpu = {k: np.empty(iters) for k in fns}
    for i in range(iters):
        for k, fn in fns.items():
            fn()
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            wall[k][i], cpu[k][i] = time.perf_counter() - t0, time.thread_time() - c0
    out = {}
    for k in fns:
        w, c = wall[k] * 1e3, cpu[k] * 1e3
        out[k] = {"median_ms": float(np.median(w)), "p99_ms": float(np.percentile(w, 99)),
                  "cpu_median_ms": float(np.median(c)), "cpu_p99_ms": float(np.percentile(c, 99))}
    return out


def _op_profile(graph: Path, emb: np.ndarray, queries: dict[int, np.ndarray], runs: int = 10) -> dict[int, dict]:
    """ONNX Runtime per-op-type kernel time (ms per run, 1 thread) for each R: where the time goes."""
    import collections

    import onnxruntime as ort

    from vrgv.backends.onnxruntime_backend import optimization_level

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r, ids in queries.items():
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(tmp) / f"r{r}")
            opts.graph_optimization_level = optimization_level(ort)
            sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
            for _ in range(runs):
                sess.run(None, {"region_emb": emb, "query_ids": ids})
            events = json.loads(Path(sess.end_profiling()).read_text())
            per_op: collections.Counter = collections.Counter()
            for e in events:
                if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                    per_op[e["args"]["op_name"]] += e["dur"] / 1e3 / runs
            out[r] = dict(per_op.most_common())
    return out


def _video_profile(graph: Path, boxes: np.ndarray, feats: np.ndarray, runs: int = 20) -> list[tuple[str, str, float]]:
    """ONNX Runtime kernel time of each node of the video graph (``embed``): (op, input shape, ms per run)."""
    import onnxruntime as ort

    from vrgv.backends.onnxruntime_backend import optimization_level

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "video")
        opts.graph_optimization_level = optimization_level(ort)
        sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            sess.run(None, {"boxes_norm": boxes, "features": feats})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[str, list] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            shape = next(iter(e["args"].get("input_type_shape", [{}])[0].values()), [])
            entry = per_node.setdefault(e["name"], [e["args"]["op_name"], str(shape), 0.0])
            entry[2] += e["dur"] / 1e3 / runs
    return sorted((tuple(v) for v in per_node.values()), key=lambda v: -v[2])


def _eager_embed_stages(model, boxes: np.ndarray, feats: np.ndarray, iters: int = 50) -> dict[str, float]:
    """Median ms of each stage of eager ``embed``: the same five passes the video graph makes."""
    import torch
    import torch.nn.functional as F

    f = torch.from_numpy(feats.reshape(-1, feats.shape[-1]))
    b = torch.from_numpy(boxes.reshape(-1, boxes.shape[-1]))
    with torch.inference_mode():
        a = F.relu(torch.addmm(model.app.bias, f, model.app.weight.t()))
        x = F.relu(torch.addmm(model.box.bias, b, model.box.weight.t()))
        na, nx = model.app_norm(a), model.box_norm(x)
        stages = {
            "app Gemm + ReLU": lambda: F.relu(torch.addmm(model.app.bias, f, model.app.weight.t())),
            "app LayerNorm": lambda: model.app_norm(a),
            "box Gemm + ReLU": lambda: F.relu(torch.addmm(model.box.bias, b, model.box.weight.t())),
            "box LayerNorm": lambda: model.box_norm(x),
            "Add": lambda: na + nx,
        }
        out = {}
        for name, fn in stages.items():
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            out[name] = float(np.median(times)) * 1e3
    return out


def _demo_regions() -> tuple[np.ndarray, np.ndarray]:
    """Normalised boxes and features of the demo video, from the bundled default model's detector."""
    from vrgv.grounder import Grounder
    from vrgv.synth import demo_video
    from vrgv.video import read_video

    g = Grounder.load(None, backend="onnxruntime", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        vpath, _ = demo_video(tmp)
        fr = read_video(str(vpath), num_samples=g.spec.num_samples, max_side=getattr(g.extractor, "read_max_side", None))
        regions = g.conform(g.extractor(fr.frames, fr.frame_ids, num_frames=fr.num_frames, width=fr.width,
                                        height=fr.height, video_id=fr.video_id, fps=fr.fps))
    return regions.normalized_boxes(), regions.features


def _machine() -> str:
    from vrgv.bench import machine_info

    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{info['cpu']}, {info['cores']} logical CPUs, Linux {platform.release()}, load average at start {load:.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint folder (default: random model of --config)")
    p.add_argument("--config", default="default", help="training/configs/NAME.json for the model sizes")
    p.add_argument("--feature-dim", type=int, default=64, help="region feature size D (built-in detector: 64)")
    p.add_argument("--sizes", default="1,8,24,64", help="relation batch sizes R")
    p.add_argument("--threads", default="1", help="intra-op threads for both backends; a list (1,2) gives one table each")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="add ONNX Runtime per-op kernel times for R=1 and R=24")
    p.add_argument("--regions", choices=("random", "demo"), default="random",
                   help="random regions, or the demo video's regions from the bundled detector")
    p.add_argument("--out", help="write a markdown report here (and a .json beside it)")
    args = p.parse_args()

    import onnxruntime
    import torch

    from vrgv.backends import load_backend
    from vrgv.bundle import Bundle
    from vrgv.export import export_bundle
    from vrgv.export.parity import random_queries, random_regions

    model, vocab, meta, source = _model(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    thread_counts = [int(t) for t in str(args.threads).split(",")]
    c = model.config
    lines = [
        "# Encoder attention latency: PyTorch eager vs ONNX Runtime fp32 (CPU)",
        "",
        f"- command: `{' '.join(['.venv/bin/python', 'benchmarks/bench_encoder.py', *sys.argv[1:]])}`",
        f"- machine: {_machine()} (shared with other jobs; numbers are noisy)",
        f"- versions: torch {torch.__version__}, onnxruntime {onnxruntime.__version__}",
        f"- model: {source}; N={c.num_frames}, L={c.clip_len}, M={c.num_regions}, D={c.feature_dim}, "
        f"E={c.region_dim}, A={c.attention_dim}, hidden={c.hidden_dim}; {args.iters} timed runs after "
        f"{args.warmup} warm-up, every call (backend x R x attend/per video) visited round-robin in each iteration, timed warm (after one untimed run)",
        f"- regions: {'the demo video, bundled detector' if args.regions == 'demo' else 'random'}",
    ]
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        result = export_bundle((model, vocab, meta), Path(tmp) / "bench.vrgv", parity_sizes=(1, 7, 32))
        lines.append(f"- export parity (fp32, R in 1/7/32): max |ONNX - PyTorch| = "
                     f"{result.parity['fp32']['max_abs_error']:.2e}")
        for threads in thread_counts:
            torch.set_num_threads(threads)
            backends = {name: load_backend(result.path, name, threads=threads) for name in ("torch", "onnxruntime")}
            m = backends["onnxruntime"].bundle.manifest
            rng = np.random.default_rng(0)
            if args.regions == "demo":
                boxes, feats = _demo_regions()
            else:
                boxes, feats = random_regions(m.num_samples, m.num_regions, m.feature_dim, rng)
            raw: dict = {name: {} for name in backends}
            embs = {name: b.embed(boxes, feats) for name, b in backends.items()}
            calls = {}
            for name, backend in backends.items():
                calls[(name, "embed")] = (lambda b=backend: b.embed(boxes, feats))
            for r in sizes:
                ids = random_queries(vocab, r, rng)
                for name, backend in backends.items():
                    calls[(name, r)] = (lambda b=backend, e=embs[name], q=ids: b.attend(e, q))
                    # the whole job for one video: its regions -> attention of R relations (embed once + attend)
                    calls[(name, f"video_{r}")] = (lambda b=backend, q=ids: b.attend(b.embed(boxes, feats), q))
            for (name, key_), stats in _time(calls, args.iters, args.warmup).items():
                raw[name][key_] = stats
            t_, o_ = raw["torch"], raw["onnxruntime"]
            key = "cpu_median_ms" if threads == 1 else "median_ms"
            speedup_r1 = t_[1][key] / o_[1][key] if 1 in o_ else float("nan")
            ratio_24 = o_[24][key] / o_[1][key] if 24 in o_ and 1 in o_ else float("nan")
            v1, v24 = "video_1", "video_24"
            video_speedup_r1 = t_[v1][key] / o_[v1][key] if v1 in o_ else float("nan")
            video_ratio_24 = o_[v24][key] / o_[v1][key] if v24 in o_ and v1 in o_ else float("nan")
            summary[threads] = {"raw": {k: {str(r): v for r, v in d.items()} for k, d in raw.items()},
                                "speedup_r1": speedup_r1, "ort_r24_over_r1": ratio_24,
                                "video_speedup_r1": video_speedup_r1, "video_ort_r24_over_r1": video_ratio_24}
            lines += [
                "",
                f"## threads = {threads}",
                "",
                "| R | eager wall median / p99 ms | ORT wall median / p99 ms | eager CPU median / p99 ms | "
                "ORT CPU median / p99 ms | ORT speed-up | ORT R / R=1 |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                *[f"| {r} | {t_[r]['median_ms']:.1f} / {t_[r]['p99_ms']:.1f} | {o_[r]['median_ms']:.1f} / "
                  f"{o_[r]['p99_ms']:.1f} | {t_[r]['cpu_median_ms']:.1f} / {t_[r]['cpu_p99_ms']:.1f} | "
                  f"{o_[r]['cpu_median_ms']:.1f} / {o_[r]['cpu_p99_ms']:.1f} | {t_[r][key] / o_[r][key]:.2f}x | "
                  f"{o_[r][key] / o_[sizes[0]][key]:.2f}x |" for r in sizes],
                "",
                f"Per-video `embed` (once per video, wall median): eager {t_['embed']['median_ms']:.2f} ms, "
                f"ORT {o_['embed']['median_ms']:.2f} ms. Ratios use "
                f"{'calling-thread CPU time (robust to the shared machine)' if threads == 1 else 'wall time'}.",
                "",
                "Per video (regions -> attention: `embed` once, then `attend` for R relations), "
                f"{'CPU' if threads == 1 else 'wall'} median ms:",
                "",
                "| R | eager | ORT | ORT speed-up | ORT R / R=1 |",
                "| ---: | ---: | ---: | ---: | ---: |",
                *[f"| {r} | {t_[f'video_{r}'][key]:.2f} | {o_[f'video_{r}'][key]:.2f} | "
                  f"{t_[f'video_{r}'][key] / o_[f'video_{r}'][key]:.2f}x | "
                  f"{o_[f'video_{r}'][key] / o_[f'video_{sizes[0]}'][key]:.2f}x |" for r in sizes],
                "",
                f"- target ORT >= 1.5x eager at R=1: per video {video_speedup_r1:.2f}x -> "
                f"{'met' if video_speedup_r1 >= 1.5 else 'NOT met'}; `attend` alone {speedup_r1:.2f}x -> "
                f"{'met' if speedup_r1 >= 1.5 else 'NOT met'}",
                f"- target ORT R=24 <= 4x R=1: per video {video_ratio_24:.2f}x -> "
                f"{'met' if video_ratio_24 <= 4 else 'NOT met'}; `attend` alone {ratio_24:.2f}x -> "
                f"{'met' if ratio_24 <= 4 else 'NOT met'}",
            ]
        if args.profile:
            m = Bundle.load(result.path).manifest
            rng = np.random.default_rng(1)
            emb = np.abs(rng.standard_normal((m.num_samples, m.num_regions, m.embed_dim), dtype=np.float32))
            prof = _op_profile(Path(result.path) / "encoder_relation.onnx", emb,
                               {r: random_queries(vocab, r, rng) for r in (1, 24)})
            ops = sorted({op for per in prof.values() for op in per}, key=lambda op: -prof[24].get(op, 0.0))[:10]
            lines += ["", "## ONNX Runtime kernel time per op type (ms per run, 1 thread, wall clock)", "",
                      "| op | R=1 | R=24 |", "| --- | ---: | ---: |",
                      *[f"| {op} | {prof[1].get(op, 0.0):.2f} | {prof[24].get(op, 0.0):.2f} |" for op in ops],
                      f"| total | {sum(prof[1].values()):.2f} | {sum(prof[24].values()):.2f} |"]
            summary["profile"] = prof
            torch.set_num_threads(1)
            vboxes, vfeats = random_regions(m.num_samples, m.num_regions, m.feature_dim, rng)
            nodes = _video_profile(Path(result.path) / "encoder_video.onnx", vboxes, vfeats)
            eager = _eager_embed_stages(model, vboxes, vfeats)
            lines += ["", "## `embed` (video graph) stage by stage (ms per run, 1 thread)", "",
                      "ONNX Runtime kernel time per node:", "", "| op | first input | ms |", "| --- | --- | ---: |",
                      *[f"| {op} | {shape} | {ms:.2f} |" for op, shape, ms in nodes if ms >= 0.01],
                      f"| total | | {sum(ms for _, _, ms in nodes):.2f} |", "",
                      "Eager PyTorch, the same stages (median wall):", "", "| stage | ms |", "| --- | ---: |",
                      *[f"| {k} | {v:.2f} |" for k, v in eager.items()], f"| total | {sum(eager.values()):.2f} |"]
            summary["profile_embed"] = {"onnxruntime": nodes, "eager": eager}
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
