"""Runtime backends behind ``load_backend``: ONNX Runtime vs PyTorch agreement, input checks, provider
selection (GPU paths with fake sessions), thread safety, and TensorRT logic that runs without TensorRT."""
from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("vrgv.training.model")

import onnxruntime as ort  # noqa: E402
from _export_helpers import backend_inputs, small_bundle  # noqa: E402

from vrgv.backends import available_backends, load_backend  # noqa: E402
from vrgv.backends import onnxruntime_backend as ortb  # noqa: E402
from vrgv.backends import tensorrt_backend as trtb  # noqa: E402
from vrgv.bundle import Bundle  # noqa: E402
from vrgv.errors import BackendError, BundleError, RegionsError, RelationError  # noqa: E402



@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    import torch

    torch.set_num_threads(1)
    return small_bundle(tmp_path_factory.mktemp("backends"))


@pytest.fixture(scope="module")
def inputs(bundle):
    return backend_inputs(bundle, seed=3)


@pytest.fixture(scope="module")
def cpu(bundle):
    return load_backend(bundle, "onnxruntime", threads=1)


def test_auto_on_cpu_is_onnxruntime_and_reports_providers(bundle):
    backend = load_backend(bundle)
    assert backend.name == "onnxruntime" and backend.device == "cpu"
    assert backend.providers == ["CPUExecutionProvider"]
    assert set(available_backends()) >= {"onnxruntime", "torch"}


def test_onnxruntime_and_torch_backends_agree(bundle, cpu, inputs):
    boxes, feats, ids = inputs
    torch_backend = load_backend(bundle.source, "torch", threads=1)
    assert torch_backend.name == "torch" and "eager" in torch_backend.providers[0]
    emb_o, emb_t = cpu.embed(boxes, feats), torch_backend.embed(boxes, feats)
    assert emb_o.shape == (12, 5, 16) and emb_o.dtype == np.float32
    np.testing.assert_allclose(emb_o, emb_t, atol=1e-5)
    out_o, out_t = cpu.attend(emb_o, ids), torch_backend.attend(emb_t, ids)
    shapes = [(4, 12, 5), (4, 12, 5), (4, 12), (4, 3)]
    for a, b, shape in zip(out_o, out_t, shapes):
        assert a.shape == shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_fp16_graphs_run_close_to_fp32(bundle, cpu, inputs):
    boxes, feats, ids = inputs
    half = load_backend(bundle, "onnxruntime", precision="fp16")
    assert half.precision == "fp16"
    emb = cpu.embed(boxes, feats)
    for a, b in zip(half.attend(emb, ids), cpu.attend(emb, ids)):
        np.testing.assert_allclose(a, b, atol=1e-2)


def test_single_query_vector_and_chunked_batches_match(cpu, inputs):
    boxes, feats, ids = inputs
    emb = cpu.embed(boxes, feats)
    whole = cpu.attend(emb, ids)
    single = cpu.attend(emb, ids[0])
    np.testing.assert_allclose(single[0][0], whole[0][0], atol=1e-6)
    cpu.max_batch = 3  # as with a TensorRT profile: R=4 runs as 3 + 1
    try:
        for a, b in zip(cpu.attend(emb, ids), whole):
            np.testing.assert_allclose(a, b, atol=1e-6)
    finally:
        cpu.max_batch = None


def test_concurrent_attend_calls_are_consistent(cpu, inputs):
    boxes, feats, ids = inputs
    emb = cpu.embed(boxes, feats)
    expected = cpu.attend(emb, ids)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(cpu.attend(emb, ids))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 20
    for out in results:
        for a, b in zip(out, expected):
            np.testing.assert_array_equal(a, b)


def test_input_validation(cpu, inputs):
    boxes, feats, ids = inputs
    with pytest.raises(RegionsError, match=r"boxes_norm has shape \[12, 4, 5\].*\[12, 5, 5\]"):
        cpu.embed(boxes[:, :4], feats[:, :4])
    bad = feats.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(RegionsError, match="NaN"):
        cpu.embed(boxes, bad)
    with pytest.raises(RegionsError, match="floating point"):
        cpu.embed(boxes.astype(np.int32), feats)
    emb = cpu.embed(boxes, feats)
    with pytest.raises(RelationError, match="outside"):
        cpu.attend(emb, np.full((1, 5), 10_000))
    with pytest.raises(RelationError, match=r"\[R>=1, 5\]"):
        cpu.attend(emb, np.zeros((2, 4), np.int64))
    with pytest.raises(RelationError, match=r"\[R>=1, 5\]"):
        cpu.attend(emb, ids.astype(np.float32))


def test_attend_trusts_only_its_own_read_only_embedding(cpu, inputs):
    """embed() -> attend() skips re-scanning the embedding it produced; anything else is still checked."""
    boxes, feats, ids = inputs
    emb = cpu.embed(boxes, feats)
    assert not emb.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        emb[0, 0, 0] = np.nan
    trusted = cpu.attend(emb, ids)
    tampered = emb.copy()
    np.testing.assert_array_equal(cpu.attend(tampered, ids)[0], trusted[0])  # same values, checked path
    tampered[0, 0, 0] = np.nan
    with pytest.raises(RegionsError, match="region_emb contains NaN"):
        cpu.attend(tampered, ids)
    cpu.embed(boxes, feats)  # a newer embedding: the old array is checked again, and still passes
    np.testing.assert_array_equal(cpu.attend(emb, ids)[1], trusted[1])


def test_bad_backend_device_threads_and_precision(bundle):
    with pytest.raises(BackendError, match="backend 'tflite' is unknown"):
        load_backend(bundle, "tflite")
    with pytest.raises(BackendError, match="device 'tpu'"):
        load_backend(bundle, device="tpu")
    with pytest.raises(BackendError, match="threads=0"):
        load_backend(bundle, "onnxruntime", threads=0)
    with pytest.raises(BundleError, match="has no int8 video graph"):
        load_backend(bundle, "onnxruntime", precision="int8")


def test_cuda_without_gpu_providers_raises_instead_of_falling_back(bundle):
    if any(p in ort.get_available_providers() for p in ortb.GPU_EPS):
        pytest.skip("this onnxruntime has GPU providers")
    import torch

    with pytest.raises(BackendError, match="device='cuda' was requested but this onnxruntime offers only"):
        load_backend(bundle, "onnxruntime", device="cuda")
    if torch.cuda.is_available():  # auto on cuda ends with the torch backend on the GPU (tests/test_gpu.py)
        return
    with pytest.raises(BackendError, match=r"no backend can run bundle.*onnxruntime: .*torch: .*is_available"):
        load_backend(bundle, device="cuda")


def test_select_providers_order_and_filtering():
    everything = [ortb.TRT_EP, ortb.CUDA_EP, ortb.CPU_EP, "AzureExecutionProvider"]
    chosen = ortb.select_providers("cuda", everything, trt_options={"trt_fp16_enable": True})
    assert chosen == [(ortb.TRT_EP, {"trt_fp16_enable": True}), ortb.CUDA_EP, ortb.CPU_EP]
    assert ortb.select_providers("cuda", [ortb.CUDA_EP, ortb.CPU_EP]) == [ortb.CUDA_EP, ortb.CPU_EP]
    assert ortb.select_providers("cpu", everything) == [ortb.CPU_EP]


class _FakeBinding:
    """IO binding over a real CPU session; checks outputs are bound to the GPU."""

    def __init__(self, session):
        self.session, self.feeds, self.outputs = session, {}, []

    def bind_cpu_input(self, name, value):
        self.feeds[name] = value

    def bind_output(self, name, device):
        assert device == "cuda"
        self.outputs.append(name)

    def copy_outputs_to_cpu(self):
        return self.session.run(self.outputs, self.feeds)


def _fake_gpu_ort(monkeypatch, active: list[str]) -> list:
    """Pretend onnxruntime has GPU providers; sessions run on CPU but report ``active``."""
    requested = []
    real = ort.InferenceSession

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None):
            requested.append(providers)
            self._real = real(path, sess_options, providers=[ortb.CPU_EP])
            self.bound = 0

        def get_providers(self):
            return list(active)

        def io_binding(self):
            return _FakeBinding(self._real)

        def run_with_iobinding(self, binding):
            self.bound += 1

        def run(self, *a, **k):  # pragma: no cover - the GPU path must use IO binding
            raise AssertionError("GPU sessions must run through IO binding")

    monkeypatch.setattr(ort, "get_available_providers", lambda: [ortb.TRT_EP, ortb.CUDA_EP, ortb.CPU_EP])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    return requested


def test_cuda_request_served_only_by_cpu_raises(bundle, monkeypatch):
    _fake_gpu_ort(monkeypatch, active=[ortb.CPU_EP])
    with pytest.raises(BackendError, match="refusing to fall back to CPU silently"):
        load_backend(bundle, "onnxruntime", device="cuda")


def test_gpu_path_requests_trt_profile_and_uses_io_binding(bundle, cpu, inputs, monkeypatch):
    requested = _fake_gpu_ort(monkeypatch, active=[ortb.TRT_EP, ortb.CUDA_EP, ortb.CPU_EP])
    gpu = load_backend(bundle, "onnxruntime", device="cuda")
    video_req, relation_req = requested
    assert [p if isinstance(p, str) else p[0] for p in relation_req] == [ortb.TRT_EP, ortb.CUDA_EP, ortb.CPU_EP]
    trt_opts = relation_req[0][1]
    assert trt_opts["trt_profile_min_shapes"] == "region_emb:12x5x16,query_ids:1x5"
    assert trt_opts["trt_profile_max_shapes"].endswith("query_ids:64x5") and trt_opts["trt_engine_cache_enable"]
    assert "trt_profile_min_shapes" not in video_req[0][1]
    assert gpu.providers[0] == ortb.TRT_EP and gpu.max_batch == 64
    boxes, feats, ids = inputs
    emb = gpu.embed(boxes, feats)
    np.testing.assert_allclose(emb, cpu.embed(boxes, feats), atol=1e-6)
    big = np.concatenate([ids] * 20)  # R=80 > 64: chunked into 64 + 16
    for a, b in zip(gpu.attend(emb, big), cpu.attend(emb, big)):
        assert a.shape[0] == 80
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_torch_backend_rejects_weights_that_do_not_fit_the_model(bundle):
    from vrgv.training.config import ModelConfig
    from vrgv.training.model import VRGVModel

    def wider(config):
        return VRGVModel(ModelConfig.from_dict({**config, "hidden_dim": 24}))

    with pytest.raises(BundleError, match="does not match the manifest's model config"):
        load_backend(bundle, "torch", model_factory=wider)


def test_torch_backend_cuda_without_gpu(bundle):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="torch.cuda.is_available"):
        load_backend(bundle, "torch", device="cuda")


def test_torch_backend_precision_is_checked(bundle):
    with pytest.raises(BackendError, match="precision='int8' is not supported by the torch backend"):
        load_backend(bundle, "torch", precision="int8")
    with pytest.raises(BackendError, match="precision='fp16' with the torch backend needs device='cuda'"):
        load_backend(bundle, "torch", precision="fp16")
    with pytest.raises(BackendError, match="cuda_graphs=True needs device='cuda'"):
        load_backend(bundle, "torch", cuda_graphs=True)
    fp32 = load_backend(bundle, "torch", precision="fp32")
    assert fp32.precision == "fp32" and "fp32 on cpu" in fp32.providers[0]


def test_grounder_rejects_unknown_precision_before_loading(bundle):
    from vrgv.grounder import Grounder

    with pytest.raises(BackendError, match="precision='bf16' is not supported"):
        Grounder.load(bundle.source, precision="bf16")
    half = Grounder.load(bundle.source, backend="onnxruntime", precision="fp16", threads=1)
    assert half.backend.precision == "fp16"


def test_torch_backend_without_torch_is_a_clear_error(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendError, match=r"vrgv\[train\]"):
        load_backend(bundle, "torch")


# TensorRT: everything that runs without TensorRT ---------------------------------------------------
def test_tensorrt_missing_is_a_clear_error(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match=r"needs the 'tensorrt' package.*vrgv\[trt\]"):
        trtb.import_tensorrt()
    with pytest.raises(BackendError, match="NVIDIA GPUs only"):
        load_backend(bundle, "tensorrt", device="cpu")
    with pytest.raises(BackendError, match="tensorrt"):
        load_backend(bundle, "tensorrt", device="cuda")


def test_engine_names_round_trip_and_encode_everything():
    key = trtb.expected_key("relation", "NVIDIA H100 80GB HBM3", "10.3.0", "fp16", trtb.OptimizationProfile())
    assert key.filename == "relation.nvidia-h100-80gb-hbm3.trt10.3.0.fp16.r1-8-64.engine"
    assert trtb.EngineKey.parse(key.filename) == key
    video = trtb.expected_key("video", "NVIDIA H100 80GB HBM3", "10.3.0", "fp32", trtb.OptimizationProfile())
    assert video.profile is None and video.filename.endswith(".fp32.static.engine")
    assert trtb.EngineKey.parse(video.filename) == video
    assert trtb.gpu_slug("NVIDIA GeForce RTX 4090 (24 GB)") == "nvidia-geforce-rtx-4090-24-gb"
    for bad in ("relation.gpu.trt10.fp8.r1-8-64.engine", "model.engine", "relation.GPU.trt10.fp32.static.engine"):
        with pytest.raises(BackendError, match="naming"):
            trtb.EngineKey.parse(bad)


@pytest.mark.parametrize("values", [(0, 8, 64), (1, 65, 64), (8, 1, 64), (1.5, 8, 64)])
def test_profile_validation(values):
    with pytest.raises(BackendError, match="profile"):
        trtb.OptimizationProfile(*values)
    assert trtb.OptimizationProfile.parse("r2-4-8") == trtb.OptimizationProfile(2, 4, 8)


def test_cached_engine_is_found_and_stale_ones_trigger_a_rebuild(bundle, tmp_path, caplog):
    here = trtb.expected_key("relation", "NVIDIA H100", "10.3.0", "fp32", trtb.OptimizationProfile())
    stale = trtb.expected_key("relation", "NVIDIA H100", "10.0.1", "fp32", trtb.OptimizationProfile())
    (tmp_path / stale.filename).write_bytes(b"old")
    with caplog.at_level("INFO", logger="vrgv.backends.tensorrt_backend"):
        assert trtb.find_engine(bundle, here, tmp_path) is None
    assert "TensorRT 10.0.1" in caplog.text and "rebuilding" in caplog.text
    (tmp_path / here.filename).write_bytes(b"new")
    assert trtb.find_engine(bundle, here, tmp_path) == tmp_path / here.filename


def _fake_tensorrt(calls: list) -> types.SimpleNamespace:
    """A stand-in for the few TensorRT builder calls ``build_engine`` makes; records them."""

    class Obj:
        def __init__(self, name):
            self._name = name

        def __getattr__(self, attr):
            def method(*args):
                calls.append((f"{self._name}.{attr}", args))
                if attr == "parse_from_file":
                    return True
                if attr == "build_serialized_network":
                    return b"serialized-engine"
                return Obj(attr)
            return method

    logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    return types.SimpleNamespace(Logger=logger, Builder=lambda lg: Obj("builder"),
                                 OnnxParser=lambda net, lg: Obj("parser"),
                                 BuilderFlag=types.SimpleNamespace(FP16="FP16"), __version__="10.3.0")


def test_build_engine_sets_profile_over_r_and_fp16(bundle, tmp_path):
    calls: list = []
    key = trtb.expected_key("relation", "NVIDIA H100", "10.3.0", "fp16", trtb.OptimizationProfile(1, 8, 64))
    shapes = trtb.graph_input_shapes(bundle, "relation")
    out = trtb.build_engine(_fake_tensorrt(calls), bundle.graph("relation"), tmp_path / key.filename, key, shapes)
    assert out.read_bytes() == b"serialized-engine" and out.name == key.filename
    set_shape = {args[0]: args[1:] for name, args in calls if name.endswith("set_shape")}
    assert set_shape["query_ids"] == ((1, 5), (8, 5), (64, 5))
    assert set_shape["region_emb"] == ((12, 5, 16),) * 3
    assert ("create_builder_config.set_flag", ("FP16",)) in calls
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("threads, spinning", [(1, None), (2, "0"), (None, "0")])
def test_multithreaded_sessions_do_not_spin(bundle, threads, spinning):
    """The video and relation sessions alternate; a spinning idle pool would hold the cores from the other.
    With one thread there is no pool and ONNX Runtime's default stays."""
    backend = load_backend(bundle, "onnxruntime", threads=threads)
    for session in (backend._video, backend._relation):
        options = session.get_session_options()
        key = "session.intra_op.allow_spinning"
        if spinning is None:
            with pytest.raises(RuntimeError):
                options.get_session_config_entry(key)
        else:
            assert options.get_session_config_entry(key) == spinning


class _FakeGraphs:
    """Stands in for vrgv.backends.cuda_graphs.GraphedAttend on the CPU: runs attend eagerly, records calls."""

    def __init__(self, fn, fail: bool = False):
        self.fn, self.fail, self.loads, self.held = fn, fail, [], []
        self.lock = threading.Lock()
        self.static = None

    def accepts(self, r):
        return r <= 3

    def load(self, source, emb):
        self.held.append(self.lock.locked())
        self.loads.append(source)
        self.static = emb

    def __call__(self, ids):
        if self.fail:
            raise RuntimeError("capture failed")
        return self.fn(self.static, ids)


def test_graph_path_holds_the_lock_reuses_its_own_embedding_and_falls_back(bundle, inputs):
    """The CUDA-graph control flow of the torch backend, on the CPU with a stand-in for the graphs."""
    boxes, feats, ids = inputs
    be = load_backend(bundle, "torch")
    ref = load_backend(bundle, "torch")
    import torch

    fake = be._graphs = _FakeGraphs(be._attend_fn)
    emb = be.embed(boxes, feats)
    be._device_embedding = (emb, torch.from_numpy(emb.copy()))  # what embed keeps on a GPU
    expected = ref.attend(ref.embed(boxes, feats), ids[:2])
    for a, b in zip(be.attend(emb, ids[:2]), expected):
        np.testing.assert_allclose(a, b, atol=1e-6)
    be.attend(emb.copy(), ids[:2])
    assert fake.loads == [emb, None] and all(fake.held)  # own embedding by identity; other arrays reloaded
    be.attend(emb, ids)  # R = 4 > accepts(): eager, no load
    assert len(fake.loads) == 2
    fake.fail = True
    for a, b in zip(be.attend(emb, ids[:2]), expected):  # capture fails: warn and run eagerly from now on
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert be._graphs is None and "CUDA graphs" not in be.providers[0]
    be._graphs, be._graphs_required = _FakeGraphs(be._attend_fn, fail=True), True
    with pytest.raises(BackendError, match="CUDA graph capture of the torch backend failed"):
        be.attend(emb, ids[:2])
