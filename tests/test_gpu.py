"""GPU paths that need a real CUDA device: the torch backend on the GPU (float32 and float16 autocast),
its device-resident embedding, ``auto`` on ``cuda``, the honest refusals of onnxruntime and tensorrt when
they cannot use the GPU, and ``vrgv bench --device cuda``. Skipped without a CUDA build of torch and a GPU
(run on the GPU machine by ``benchmarks/gpu_checks.sh``)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vrgv.training.model")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

import onnxruntime as ort  # noqa: E402
from _export_helpers import backend_inputs, small_bundle  # noqa: E402

from vrgv.backends import load_backend  # noqa: E402
from vrgv.backends import onnxruntime_backend as ortb  # noqa: E402
from vrgv.bundle import Bundle  # noqa: E402
from vrgv.errors import BackendError  # noqa: E402

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    return small_bundle(tmp_path_factory.mktemp("gpu"))


@pytest.fixture(scope="module")
def inputs(bundle):
    return backend_inputs(bundle, seed=5)


def _max_diff(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def test_torch_cuda_matches_cpu(bundle, inputs):
    boxes, feats, ids = inputs
    gpu, cpu = load_backend(bundle, "torch", device="cuda"), load_backend(bundle, "torch", device="cpu")
    assert gpu.device == "cuda" and torch.cuda.get_device_name(0) in gpu.providers[0]
    emb_g, emb_c = gpu.embed(boxes, feats), cpu.embed(boxes, feats)
    assert emb_g.dtype == np.float32 and not emb_g.flags.writeable
    assert float(np.abs(emb_g - emb_c).max()) <= 1e-4
    out_g, out_c = gpu.attend(emb_g, ids), cpu.attend(emb_c, ids)
    print(f"torch cuda vs cpu: max |d alpha, beta| = {_max_diff(out_g, out_c):.2e}")
    assert _max_diff(out_g, out_c) <= 1e-4
    for a in out_g[:2]:
        np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-5)


def test_attend_reuses_the_embedding_kept_on_the_gpu(bundle, inputs, monkeypatch):
    boxes, feats, ids = inputs
    gpu = load_backend(bundle, "torch", device="cuda")
    emb = gpu.embed(boxes, feats)
    uploads = []
    real = gpu._tensor
    monkeypatch.setattr(gpu, "_tensor", lambda a: uploads.append(a.shape) or real(a))
    kept = gpu.attend(emb, ids)
    assert uploads == [ids.shape]  # only the query ids travel to the GPU
    fresh = gpu.attend(emb.copy(), ids)  # another array: uploaded, same answer
    assert uploads[1:] == [emb.shape, ids.shape]
    assert _max_diff(kept, fresh) == 0.0


def test_fp16_autocast_stays_close_to_fp32(bundle, inputs):
    boxes, feats, ids = inputs
    fp32, fp16 = load_backend(bundle, "torch", device="cuda"), load_backend(bundle, "torch", device="cuda", precision="fp16")
    assert fp16.precision == "fp16" and "fp16" in fp16.providers[0]
    a32 = fp32.attend(fp32.embed(boxes, feats), ids)
    a16 = fp16.attend(fp16.embed(boxes, feats), ids)
    print(f"torch cuda fp16 autocast vs fp32: max |d alpha, beta| = {_max_diff(a16, a32):.2e}")
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in a16)
    assert _max_diff(a16, a32) <= 2e-2


def test_auto_on_cuda_runs_on_the_gpu(bundle):
    chosen = load_backend(bundle, device="cuda")
    assert chosen.device == "cuda"
    if not any(p in ort.get_available_providers() for p in ortb.GPU_EPS):
        assert chosen.name in ("tensorrt", "torch")


def test_onnxruntime_without_gpu_providers_refuses_cuda(bundle):
    if any(p in ort.get_available_providers() for p in ortb.GPU_EPS):
        pytest.skip("this onnxruntime has GPU providers")
    with pytest.raises(BackendError, match="device='cuda' was requested but this onnxruntime offers only"):
        load_backend(bundle, "onnxruntime", device="cuda")


def test_tensorrt_missing_on_a_gpu_machine_is_a_clear_error(bundle):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="tensorrt"):
            load_backend(bundle, "tensorrt", device="cuda")
    else:  # pragma: no cover - no machine of this project has TensorRT
        pytest.skip("tensorrt is installed")


def test_grounder_on_cuda_grounds_like_onnxruntime_on_cpu(tmp_path):
    from vrgv.annotations import VideoAnnotation
    from vrgv.grounder import Grounder
    from vrgv.synth import demo_video

    video, ann = demo_video(tmp_path)
    relations = VideoAnnotation.load(ann).relation_strings()
    cpu = Grounder.load(backend="onnxruntime", threads=2)
    gpu = Grounder.load(backend="torch", device="cuda")
    regions = cpu.extract(video)
    a, b = cpu.ground_many(regions, relations), gpu.ground_many(regions, relations)
    assert len(a) == len(b) == len(relations)
    for x, y in zip(a, b):
        dx, dy = x.to_dict(), y.to_dict()
        assert dx["segment"] == dy["segment"], x.relation
        for role in ("sub", "obj"):
            assert dx[role].keys() == dy[role].keys()
            for fid in dx[role]:
                np.testing.assert_allclose(dx[role][fid], dy[role][fid], atol=1e-3)


def test_bench_on_cuda_names_the_gpu(tmp_path):
    from vrgv.bench import run_bench

    report = run_bench(backends=["torch"], linkers=["numpy"], repeats=2, warmup=1, device="cuda")
    assert report.machine["gpu"] == torch.cuda.get_device_name(0)
    stages = {(s.stage, s.backend) for s in report.stages}
    assert ("encoder.attend", "torch cuda fp32") in stages
    assert "GPU: " in report.to_markdown()


def test_cuda_graphs_match_eager_and_are_captured_once_per_r(bundle, inputs):
    boxes, feats, ids = inputs
    graphs = load_backend(bundle, "torch", device="cuda")
    eager = load_backend(bundle, "torch", device="cuda", cuda_graphs=False)
    assert "CUDA graphs" in graphs.providers[0] and "eager" in eager.providers[0]
    emb_g, emb_e = graphs.embed(boxes, feats), eager.embed(boxes, feats)
    for r in (1, 4, 1, 3, 4):
        q = np.concatenate([ids] * 2)[:r]
        assert _max_diff(graphs.attend(emb_g, q), eager.attend(emb_e, q)) <= 1e-6
    assert graphs._graphs.captures == 3  # R = 1, 4, 3; repeats replay


def test_cuda_graphs_read_the_embedding_they_are_given(bundle, inputs):
    boxes, feats, ids = inputs
    graphs = load_backend(bundle, "torch", device="cuda")
    eager = load_backend(bundle, "torch", device="cuda", cuda_graphs=False)
    own = graphs.embed(boxes, feats)
    first = graphs.attend(own, ids)
    other = eager.embed(boxes[::-1].copy(), feats[::-1].copy())  # not this backend's: copied in every call
    assert _max_diff(graphs.attend(other, ids), eager.attend(other, ids)) <= 1e-6
    assert _max_diff(graphs.attend(own, ids), first) == 0.0  # its own embedding again: reloaded
    writable = np.array(own)
    writable[:] = 0.0  # same values each call are not assumed for arrays the backend did not make
    assert _max_diff(graphs.attend(writable, ids), eager.attend(writable, ids)) <= 1e-6


def test_cuda_graphs_evict_the_least_recent_and_skip_large_batches(bundle, inputs):
    boxes, feats, ids = inputs
    graphs = load_backend(bundle, "torch", device="cuda")
    eager = load_backend(bundle, "torch", device="cuda", cuda_graphs=False)
    graphs._graphs.capacity, graphs._graphs.max_relations = 2, 3
    emb = graphs.embed(boxes, feats)
    for r in (1, 2, 3):
        graphs.attend(emb, ids[:r])
    assert list(graphs._graphs._graphs) == [2, 3]
    big = graphs.attend(emb, ids)  # R = 4 > max_relations: eager
    assert graphs._graphs.captures == 3 and _max_diff(big, eager.attend(eager.embed(boxes, feats), ids)) <= 1e-6
