"""Small measurements behind encoder.md (session 9), one per subcommand, 1 thread unless said otherwise.

- ``eager-faults``: eager ``embed_regions`` of a checkpoint called in a loop: median time and minor page faults
  per call (glibc returns freed multi-MB blocks to the OS; compare with MALLOC_MMAP_THRESHOLD_ and
  MALLOC_TRIM_THRESHOLD_ set).
- ``layernorm``: ONNX Runtime's LayerNormalization on [rows, 128] against a copy (Identity), Add, and the
  InstanceNormalization + Mul + Add form.
- ``video-threads``: a bundle's video graph on 1 thread against 2 intra-op threads (with and without spinning)
  and ORT_PARALLEL over its chunks, caches polluted between runs.

    .venv/bin/python benchmarks/encoder_probes.py eager-faults --checkpoint CKPT
    .venv/bin/python benchmarks/encoder_probes.py layernorm --rows 1000
    .venv/bin/python benchmarks/encoder_probes.py video-threads --bundle sdk/data/default.vrgv
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np


def _best_median(fn, rounds: int = 5, reps: int = 200) -> float:
    """Min over rounds of the median wall time of ``fn()`` in µs, after 50 warm-up calls."""
    for _ in range(50):
        fn()
    best = []
    for _ in range(rounds):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best.append(float(np.median(times)))
    return min(best) * 1e6


def eager_faults(args: argparse.Namespace) -> None:
    import torch

    from vrgv.training.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    model = load_checkpoint(args.checkpoint)[0].eval()
    c = model.config
    boxes, feats = torch.rand(c.num_frames, c.num_regions, 5), torch.rand(c.num_frames, c.num_regions, c.feature_dim)
    with torch.inference_mode():
        for _ in range(20):
            model.embed_regions(boxes, feats)
        for _ in range(4):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times = []
            for _ in range(100):
                t0 = time.perf_counter()
                model.embed_regions(boxes, feats)
                times.append(time.perf_counter() - t0)
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 100
            print(f"eager embed: median {np.median(times) * 1e3:.2f} ms, {faults:.0f} minor page faults per call")


def _ort_session(model_or_path, intra: int = 1, inter: int = 1, parallel: bool = False, spin: bool = True):
    import onnxruntime as ort

    from vrgv.backends.onnxruntime_backend import optimization_level

    options = ort.SessionOptions()
    options.graph_optimization_level = optimization_level(ort)
    options.intra_op_num_threads, options.inter_op_num_threads = intra, inter
    if parallel:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    source = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def layernorm(args: argparse.Namespace) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rows, e = args.rows, 128
    rng = np.random.default_rng(0)
    x = rng.random((rows, e), np.float32)
    constants = {"g": rng.random(e, np.float32), "b": rng.random(e, np.float32), "one": np.ones(1, np.float32),
                 "zero": np.zeros(1, np.float32), "s3": np.array([rows, 1, e], np.int64),
                 "s2": np.array([rows, e], np.int64)}
    inits = [numpy_helper.from_array(value, name) for name, value in constants.items()]
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, e])
    si = helper.make_tensor_value_info("s", TensorProto.FLOAT, [rows, e])
    yo = helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, e])
    cases = {
        "LayerNormalization": (
            [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5)], False),
        "Identity (a copy)": ([helper.make_node("Identity", ["x"], ["y"])], False),
        "Add": ([helper.make_node("Add", ["x", "s"], ["y"])], True),
        "InstanceNormalization + Mul + Add": ([
            helper.make_node("Reshape", ["x", "s3"], ["x3"]),
            helper.make_node("InstanceNormalization", ["x3", "one", "zero"], ["n3"], epsilon=1e-5),
            helper.make_node("Reshape", ["n3", "s2"], ["n2"]), helper.make_node("Mul", ["n2", "g"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["y"])], False),
    }
    for name, (nodes, two) in cases.items():
        used = {i for n in nodes for i in n.input}
        graph = helper.make_graph(nodes, "probe", [xi, si] if two else [xi], [yo], [t for t in inits if t.name in used])
        session = _ort_session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
        feeds = {"x": x, "s": x.copy()} if two else {"x": x}
        print(f"{name} on [{rows}, {e}]: {_best_median(lambda: session.run(None, feeds)):.1f} µs")


def video_threads(args: argparse.Namespace) -> None:
    path = str(Path(args.bundle) / "encoder_video.onnx")
    configs = {"1 thread": dict(), "2 intra-op threads, no spinning": dict(intra=2, spin=False),
               "2 intra-op threads, spinning": dict(intra=2),
               "ORT_PARALLEL, 2 inter-op threads, no spinning": dict(inter=2, parallel=True, spin=False)}
    sessions = {k: _ort_session(path, **v) for k, v in configs.items()}
    inputs = sessions["1 thread"].get_inputs()
    feed = {i.name: np.random.default_rng(0).random(i.shape, np.float32) for i in inputs}
    junk = np.zeros(4 << 20, np.float32)
    medians: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(8):
        for k, s in sessions.items():
            for _ in range(3):
                s.run(None, feed)
            times = []
            for _ in range(40):
                junk += 1.0
                t0 = time.perf_counter()
                s.run(None, feed)
                times.append(time.perf_counter() - t0)
            medians[k].append(float(np.median(times)))
    for k, v in medians.items():
        print(f"{k}: min over rounds of the median {min(v) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("eager-faults")
    p.add_argument("--checkpoint", required=True)
    p = sub.add_parser("layernorm")
    p.add_argument("--rows", type=int, default=1000)
    p = sub.add_parser("video-threads")
    p.add_argument("--bundle", default="sdk/data/default.vrgv")
    args = parser.parse_args()
    {"eager-faults": eager_faults, "layernorm": layernorm, "video-threads": video_threads}[args.probe](args)


if __name__ == "__main__":
    main()
