"""GPU latency of the vRGV encoder (one video, R relations): PyTorch eager (float32 and float16 autocast),
PyTorch with CUDA graphs, the SDK's TorchBackend (numpy in and out), torch.compile, and ONNX Runtime with its
CUDA provider when installed (its CPU provider otherwise, for reference). Timed with CUDA events on GPU
(perf_counter on CPU, which is how this script is tested without a GPU). Run through ``benchmarks/gpu.sh``.

Usage: bash benchmarks/gpu.sh [--model BUNDLE] [--device cuda|cpu] [--repeats 50] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

RS = (1, 8, 64)


def timer(torch: Any, device: str) -> Callable[[Callable[[], Any], int, int], list[float]]:
    """Per-call milliseconds: CUDA events around each call on GPU, perf_counter on CPU."""
    def run(fn: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            fn()
        out = []
        if device == "cuda":
            torch.cuda.synchronize()
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                out.append(start.elapsed_time(end))
        else:
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1e3)
        return out
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="bundle folder (default: the bundled model)")
    ap.add_argument("--device", default=None, choices=["cuda", "cpu"], help="default: cuda if available")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow first call)")
    ap.add_argument("--out", default=None, help="also write the Markdown table here")
    args = ap.parse_args(argv)

    import torch

    from vrgv.backends.torch_backend import TorchBackend
    from vrgv.bundle import Bundle

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    bundle = Bundle.default() if args.model is None else Bundle.load(args.model)
    m = bundle.manifest
    rng = np.random.default_rng(0)
    boxes_norm = rng.uniform(0, 1, (m.num_samples, m.num_regions, 5)).astype(np.float32)
    feats = rng.normal(0, 1, (m.num_samples, m.num_regions, m.feature_dim)).astype(np.float32)
    vocab = bundle.vocabulary
    rel = f"{vocab.objects[0]}-{vocab.predicates[0]}-{vocab.objects[1]}"
    queries = {r: vocab.encode_query([rel] * r) for r in RS}
    time_ms = timer(torch, device)
    rows: list[dict[str, Any]] = []

    def record(variant: str, r: int, samples: list[float], note: str = "") -> None:
        a = np.asarray(samples)
        rows.append({"variant": variant, "R": r, "median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
                     "p99_ms": float(np.percentile(a, 99)), "note": note})
        print(f"{variant:28s} R={r:3d} median {np.median(a):8.3f} ms", file=sys.stderr, flush=True)

    eager = TorchBackend(bundle, device=device)
    model = eager.model
    bn, ft = torch.from_numpy(boxes_norm).to(device), torch.from_numpy(feats).to(device)
    with torch.inference_mode():
        emb = model.embed_regions(bn, ft)
        record("torch eager embed", 0, time_ms(lambda: model.embed_regions(bn, ft), args.repeats, args.warmup))
        for r in RS:
            q = torch.from_numpy(queries[r]).to(device)
            record("torch eager attend", r, time_ms(lambda: model.attend(emb, q), args.repeats, args.warmup))

    if device == "cuda":
        def fp16() -> Any:
            return torch.autocast("cuda", dtype=torch.float16)

        with torch.inference_mode(), fp16():
            record("torch fp16 autocast embed", 0, time_ms(lambda: model.embed_regions(bn, ft), args.repeats, args.warmup))
            for r in RS:
                q = torch.from_numpy(queries[r]).to(device)
                record("torch fp16 autocast attend", r, time_ms(lambda: model.attend(emb, q), args.repeats, args.warmup))
        for half in (False, True):  # CUDA graphs: capture attend once per R (static shapes), replay
            for r in RS:
                q = torch.from_numpy(queries[r]).to(device)
                static_emb, static_q = emb.clone(), q.clone()
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
                    with torch.cuda.stream(stream):
                        for _ in range(3):
                            model.attend(static_emb, static_q)
                    torch.cuda.current_stream().wait_stream(stream)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        model.attend(static_emb, static_q)
                record(f"torch CUDA graph {'fp16 autocast ' if half else ''}attend", r,
                       time_ms(graph.replay, args.repeats, args.warmup))
        # what a user of the SDK pays: numpy in, numpy out (host copies included), embedding kept on the GPU
        for precision, graphs in (("fp32", False), ("fp32", True), ("fp16", True)):
            be16 = TorchBackend(bundle, device=device, precision=precision, cuda_graphs=graphs)
            mode = "CUDA graphs" if graphs else "eager"
            wall = timer(torch, "cpu")
            record(f"vrgv TorchBackend {precision} {mode} embed (numpy)", 0,
                   wall(lambda: be16.embed(boxes_norm, feats), args.repeats, args.warmup))
            emb_host = be16.embed(boxes_norm, feats)
            for r in RS:
                record(f"vrgv TorchBackend {precision} {mode} attend (numpy)", r,
                       wall(lambda: be16.attend(emb_host, queries[r]), args.repeats, args.warmup))
    if not args.no_compile:
        try:
            compiled = torch.compile(model.attend, dynamic=False)
            with torch.inference_mode():
                for r in RS:
                    q = torch.from_numpy(queries[r]).to(device)
                    t0 = time.perf_counter()
                    compiled(emb, q)
                    first = time.perf_counter() - t0
                    record("torch.compile attend", r, time_ms(lambda: compiled(emb, q), args.repeats, args.warmup),
                           f"first call {first:.1f} s")
        except Exception as exc:  # noqa: BLE001 - compile support differs per machine
            rows.append({"variant": "torch.compile attend", "R": 0, "median_ms": float("nan"), "p90_ms": float("nan"),
                         "p99_ms": float("nan"), "note": f"failed: {type(exc).__name__}: {str(exc)[:80]}"})

    try:
        import onnxruntime as ort

        from vrgv.backends.onnxruntime_backend import OnnxRuntimeBackend

        ort_device = "cuda" if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
        be = OnnxRuntimeBackend(bundle, device=ort_device)
        emb_np = be.embed(boxes_norm, feats)
        label = f"onnxruntime {ort_device} ({be.providers[0]})"
        wall = timer(torch, "cpu")  # ORT calls are synchronous host calls
        record(f"{label} embed", 0, wall(lambda: be.embed(boxes_norm, feats), args.repeats, args.warmup))
        for r in RS:
            record(f"{label} attend", r, wall(lambda: be.attend(emb_np, queries[r]), args.repeats, args.warmup),
                   "" if ort_device == device else "CUDA provider not installed: CPU provider")
    except Exception as exc:  # noqa: BLE001
        rows.append({"variant": "onnxruntime", "R": 0, "median_ms": float("nan"), "p90_ms": float("nan"),
                     "p99_ms": float("nan"), "note": f"unavailable: {type(exc).__name__}: {str(exc)[:80]}"})

    card = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    lines = [f"# vrgv encoder latency on {card} ({device})", "",
             f"torch {torch.__version__}; bundle {bundle.name} (N={m.num_samples}, M={m.num_regions}, D={m.feature_dim}); "
             f"{args.repeats} timed calls after {args.warmup} warm-up; command: `bash benchmarks/gpu.sh {' '.join(argv or sys.argv[1:])}`",
             "", "| variant | R | median ms | p90 ms | p99 ms | note |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {r['variant']} | {r['R'] or '-'} | {r['median_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['note']} |"
              for r in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
