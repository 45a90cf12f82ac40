"""The video graph's chunk size, A/B in one process: export ``VideoGraph(model, chunk)`` for each chunk (frames
per chunk; N = no chunking) and time them alternately with ONNX Runtime (encoder.md, session 9).

Random regions (latency does not depend on them). ``--pollute`` writes 16 MB between timed runs, evicting the
caches as the other work of a grounding job (decoding, the other backend in bench_encoder.py) does.

    .venv/bin/python benchmarks/encoder_chunks_ab.py --checkpoint CKPT --chunks 120,60,25,10 [--pollute]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a vrgv training checkpoint (folder)")
    parser.add_argument("--chunks", default="120,60,25,10", help="frames per chunk, comma-separated")
    parser.add_argument("--rounds", type=int, default=12, help="alternating rounds of 60 timed runs each")
    parser.add_argument("--pollute", action="store_true", help="evict the caches before every timed run")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads; above 1 without spinning, as OnnxRuntimeBackend sets them")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from vrgv.backends.onnxruntime_backend import optimization_level
    from vrgv.export.onnx_export import VideoGraph, _export_dynamo, encoder_shapes
    from vrgv.training.checkpoint import load_checkpoint

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    model = load_checkpoint(args.checkpoint)[0].eval()
    s = encoder_shapes(model)
    chunks = [int(c) for c in args.chunks.split(",")]
    gen = torch.Generator().manual_seed(0)
    boxes = torch.rand(s.num_samples, s.num_regions, 5, generator=gen)
    feats = torch.rand(s.num_samples, s.num_regions, s.feature_dim, generator=gen)
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in chunks:
            path = Path(tmp) / f"video_{c}.onnx"
            with torch.no_grad():
                _export_dynamo(VideoGraph(model, c), (boxes, feats), path, ("boxes_norm", "features"),
                               ("region_emb",), 17, None)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
            if args.threads != 1:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.graph_optimization_level = optimization_level(ort)
            sessions[c] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"boxes_norm": boxes.numpy(), "features": feats.numpy()}
    ref = sessions[chunks[0]].run(None, feed)[0]
    for c in chunks:
        diff = float(np.abs(sessions[c].run(None, feed)[0] - ref).max())
        print(f"chunk {c}: max |difference| from chunk {chunks[0]}: {diff:.2e}")
    junk = np.zeros(4 << 20, np.float32)
    medians: dict[int, list[float]] = {c: [] for c in chunks}
    for _ in range(args.rounds):
        for c in chunks:
            for _ in range(5):
                sessions[c].run(None, feed)
            times = []
            for _ in range(60):
                if args.pollute:
                    junk += 1.0
                t0 = time.perf_counter()
                sessions[c].run(None, feed)
                times.append(time.perf_counter() - t0)
            medians[c].append(float(np.median(times)))
    for c in chunks:
        print(f"chunk {c:4d} frames: min over rounds of the median {min(medians[c]) * 1e3:.3f} ms, "
              f"median {np.median(medians[c]) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
