"""Export of the encoder to ONNX bundles: graph checks, parity with PyTorch, fp16, CLI and error paths."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

pytest.importorskip("vrgv.training.model")

from _export_helpers import small_model  # noqa: E402

from vrgv.bundle import Bundle  # noqa: E402
from vrgv.errors import BackendError, BundleError, ConfigError  # noqa: E402
from vrgv.export import export_bundle  # noqa: E402
from vrgv.export.onnx_export import (EncoderShapes, VideoGraph, export_encoder, frames_per_chunk,  # noqa: E402
                                     simplify)
from vrgv.export.parity import check_parity  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VRGV_CACHE_DIR", str(tmp_path / "cache"))


def _tiny_detector(folder: Path) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["boxes"])], "det",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["B", 64, 96, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.UINT8, ["B", 64, 96, 3])])
    folder.mkdir()
    onnx.save(helper.make_model(graph), str(folder / "detector.onnx"))
    (folder / "config.json").write_text(json.dumps({"detector": {"num_regions": 5}}))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One full export (fp16, detector, metrics) to a folder and a zip of it; reused by most tests."""
    model, vocab, meta = small_model()
    root = tmp_path_factory.mktemp("export")
    det = _tiny_detector(root / "det")
    result = export_bundle((model, vocab, meta), root / "small.vrgv", fp16=True, metrics={"AccS": 0.25},
                           detector=det)
    return model, vocab, result, det


def test_bundle_layout_and_manifest(exported):
    model, vocab, result, _ = exported
    bundle = Bundle.load(result.path)
    m = bundle.manifest
    assert set(m.files) == {"encoder_video.onnx", "encoder_relation.onnx", "encoder_relation.fp16.onnx",
                            "model.safetensors", "detector.onnx"}
    assert (m.num_samples, m.clip_length, m.num_regions, m.feature_dim, m.embed_dim) == (12, 4, 5, 8, 16)
    assert m.model == model.config.to_dict() and m.opset == 17 and m.sigma == 0.04
    assert bundle.vocabulary.tokens == vocab.tokens
    assert m.metrics == {"AccR": 0.5, "AccS": 0.25}  # checkpoint metrics merged with the given ones
    assert m.provenance["training"]["command"] == "pytest small model"
    assert m.provenance["options"]["fp16"] is True and m.provenance["exported_at"]


def test_fp32_parity_within_tolerance_for_each_batch_size(exported):
    _, _, result, _ = exported
    rep = result.parity["fp32"]
    assert sorted(rep["per_batch"], key=int) == ["1", "7", "32"]
    for per in rep["per_batch"].values():
        assert set(per) == {"region_emb", "alpha_s", "alpha_o", "beta1", "beta2"}
        assert max(per.values()) <= 1e-4
    # fp16 is measured and recorded, not enforced; it must still be a small error
    assert 0 < result.parity["fp16"]["max_abs_error"] < 5e-2
    # mixed precision: the video graph and the spatial attention stay float32, only β carries fp16 error
    for per in result.parity["fp16"]["per_batch"].values():
        assert max(per["region_emb"], per["alpha_s"], per["alpha_o"]) <= 1e-4
        assert max(per["beta1"], per["beta2"]) > 0


def test_fp16_relation_graph_computes_the_temporal_half_in_float16(exported):
    """The spatial-attention path has only float32 weights and no float16 round trip; the LSTMs are float16."""
    from vrgv.export.onnx_export import _upstream_nodes

    _, _, result, _ = exported
    half = onnx.load(str(result.path / "encoder_relation.fp16.onnx"))
    onnx.checker.check_model(half, full_check=True)
    dtype = {i.name: i.data_type for i in half.graph.initializer}
    spatial = _upstream_nodes(half.graph, ("alpha_s", "alpha_o"))
    spatial_weights = {i for n in half.graph.node if n.name in spatial for i in n.input if i in dtype}
    assert spatial_weights and all(dtype[w] != onnx.TensorProto.FLOAT16 for w in spatial_weights)
    assert not any(n.op_type == "Cast" for n in half.graph.node if n.name in spatial)
    lstm_weights = [i for n in half.graph.node if n.op_type == "LSTM" for i in n.input[1:3]]
    assert lstm_weights and all(dtype[w] == onnx.TensorProto.FLOAT16 for w in lstm_weights)


def test_graph_signatures_dynamic_relation_batch_and_word_vectors_inside(exported):
    model, _, result, _ = exported
    video = onnx.load(str(result.path / "encoder_video.onnx"))
    relation = onnx.load(str(result.path / "encoder_relation.onnx"))
    onnx.checker.check_model(relation, full_check=True)

    def dims(value_info):
        return [d.dim_value or d.dim_param for d in value_info.type.tensor_type.shape.dim]

    assert [i.name for i in video.graph.input] == ["boxes_norm", "features"]
    assert [dims(i) for i in video.graph.input] == [[12, 5, 5], [12, 5, 8]]
    assert [i.name for i in relation.graph.input] == ["region_emb", "query_ids"]
    assert dims(relation.graph.input[0]) == [12, 5, 16]
    assert isinstance(dims(relation.graph.input[1])[0], str) and dims(relation.graph.input[1])[1] == 5
    assert [o.name for o in relation.graph.output] == ["alpha_s", "alpha_o", "beta1", "beta2"]
    table = model.word_table.weight.detach().numpy()
    inits = [onnx.numpy_helper.to_array(t) for t in relation.graph.initializer]
    assert any(a.shape == table.shape and np.array_equal(a, table) for a in inits)


def test_relation_graph_runs_for_large_batches(exported):
    import onnxruntime as ort

    model, vocab, result, _ = exported
    sess = ort.InferenceSession(str(result.path / "encoder_relation.onnx"), providers=["CPUExecutionProvider"])
    emb = np.random.default_rng(0).random((12, 5, 16), dtype=np.float32)
    ids = vocab.encode_query(["person-ride-bicycle"] * 64)
    a_s, a_o, b1, b2 = sess.run(None, {"region_emb": emb, "query_ids": ids})
    assert a_s.shape == a_o.shape == (64, 12, 5) and b1.shape == (64, 12) and b2.shape == (64, 3)
    np.testing.assert_allclose(a_s.sum(-1), 1.0, atol=1e-5)
    with torch.inference_mode():
        ref = model.attend(torch.from_numpy(emb), torch.from_numpy(ids))
    assert max(float(np.abs(a - r.numpy()).max()) for a, r in zip((a_s, a_o, b1, b2), ref)) <= 1e-4


def test_parity_detects_a_graph_that_does_not_match_the_model(exported, tmp_path):
    _, vocab, result, _ = exported
    other, _, _ = small_model(seed=1)
    graphs = {"video": result.path / "encoder_video.onnx", "relation": result.path / "encoder_relation.onnx"}
    with pytest.raises(BundleError, match="parity failed"):
        check_parity(other, vocab, graphs, sizes=(1,))


def test_detector_is_copied_with_its_config(exported):
    _, _, result, det = exported
    entry = Bundle.load(result.path).manifest.detector
    assert entry["file"] == "detector.onnx" and entry["input_size"] == {"height": 64, "width": 96}
    assert entry["config"] == {"detector": {"num_regions": 5}}
    assert (result.path / "detector.onnx").read_bytes() == (det / "detector.onnx").read_bytes()


def test_zip_output_and_existing_output_refused(exported, tmp_path):
    from vrgv.export.bundle_writer import finalize

    _, _, result, _ = exported
    staged = tmp_path / "staged"
    shutil.copytree(result.path, staged)
    zipped = finalize(staged, tmp_path / "small.vrgv.zip")
    assert zipped.manifest.files == Bundle.load(result.path).manifest.files
    staged.mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        finalize(staged, tmp_path / "small.vrgv.zip")
    with pytest.raises(ConfigError, match="already exists"):
        export_bundle(small_model(), result.path)


def test_trt_export_without_tensorrt_fails_clearly_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match=r"vrgv\[trt\]"):
        export_bundle(small_model(), tmp_path / "t.vrgv", trt=True, parity_sizes=(1,))
    assert list(tmp_path.iterdir()) == []


def test_simplify_without_a_simplifier_is_a_clear_error(exported, tmp_path, monkeypatch):
    _, _, result, _ = exported
    copy = tmp_path / "g.onnx"
    copy.write_bytes((result.path / "encoder_video.onnx").read_bytes())
    monkeypatch.setitem(sys.modules, "onnxslim", None)
    monkeypatch.setitem(sys.modules, "onnxsim", None)
    with pytest.raises(ConfigError, match="onnxslim or onnxsim"):
        simplify(copy)


def test_cli_export_from_checkpoint_folder(tmp_path, capsys):
    from vrgv.cli import main
    from vrgv.training.checkpoint import save_checkpoint

    model, vocab, meta = small_model()
    save_checkpoint(model, vocab, tmp_path / "ckpt", meta)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"AccO": 0.75}))
    out = tmp_path / "cli.vrgv"
    rc = main(["export", "--checkpoint", str(tmp_path / "ckpt"), "--out", str(out), "--metrics", str(metrics),
               "--json"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["parity"]["fp32"]["max_abs_error"] <= 1e-4
    m = Bundle.load(out).manifest
    assert m.metrics["AccO"] == 0.75 and m.provenance["checkpoint"] == str((tmp_path / "ckpt").resolve())
    assert main(["export", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "x.vrgv")]) == 2


@pytest.mark.slow
def test_opset_18_uses_torch_export_and_keeps_parity(tmp_path):
    model, vocab, _ = small_model()
    graphs = export_encoder(model, tmp_path, opset=18)
    assert onnx.load(str(graphs["relation"])).opset_import[0].version == 18
    assert check_parity(model, vocab, graphs, sizes=(1, 7)).max_error <= 1e-4


def test_bad_opset_is_rejected(tmp_path):
    model, _, _ = small_model()
    with pytest.raises(ConfigError, match="opset"):
        export_encoder(model, tmp_path, opset=9)


def test_detector_whose_features_do_not_fit_the_model_is_refused(tmp_path):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def const(name, shape):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.zeros(shape, np.float32)))

    graph = helper.make_graph(
        [const("boxes", [1, 40, 4]), const("scores", [1, 40]), const("features", [1, 40, 7])], "det",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 64, 96, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 40, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 40]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 40, 7])])
    # IR 8 (opset 17's): onnx's newest IR can be newer than an older onnxruntime reads (IR 14 vs onnxruntime 1.30)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(tmp_path / "det.onnx"))
    with pytest.raises(ConfigError, match=r"40 regions with 7-d features.*D=8"):
        export_bundle(small_model(), tmp_path / "x.vrgv", detector=tmp_path / "det.onnx", parity_sizes=(1,))
    model.ir_version = 99  # newer than any onnxruntime: a clear error naming the file, not a traceback
    onnx.save(model, str(tmp_path / "det.onnx"))
    with pytest.raises(ConfigError, match=r"det.onnx' cannot be loaded by onnxruntime .*IR version.*upgrade"):
        export_bundle(small_model(), tmp_path / "x.vrgv", detector=tmp_path / "det.onnx", parity_sizes=(1,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.onnx"]


def test_model_switches_export_with_parity(tmp_path):
    """The vrgv training switches (norms, frame skip, word norm) stay inside plain ONNX ops."""
    model, vocab, _ = small_model(seed=3, word_norm=True, region_norm=True, node_norm=True, frame_skip=True,
                                  context_norm=True, temporal_scoring="dot", pair_geometry=True,
                                  clip_pooling=True, word_aux_weight=1.0, temporal_aux_weight=1.0)
    graphs = export_encoder(model, tmp_path)
    assert check_parity(model, vocab, graphs, sizes=(1, 7)).max_error <= 1e-4


def _cast_graph(second_to: int) -> onnx.GraphProto:
    """x (float16) -> two Casts writing the same tensor 'x_cast_to_fp32' -> two consumers."""
    from onnx import TensorProto, helper

    cast = lambda to: helper.make_node("Cast", ["x"], ["x_cast_to_fp32"], to=to, name="x_cast_to_fp32_node")  # noqa: E731
    nodes = [cast(TensorProto.FLOAT), helper.make_node("Relu", ["x_cast_to_fp32"], ["a"]), cast(second_to),
             helper.make_node("Neg", ["x_cast_to_fp32"], ["b"])]
    info = helper.make_tensor_value_info("x_cast_to_fp32", TensorProto.FLOAT, [2])
    return helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                             [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("a", "b")],
                             value_info=[info, info])


def test_duplicate_casts_of_older_fp16_converters_are_merged():
    """onnxruntime < 1.32 writes one identical Cast per consumer under one name (found on the GPU machine's 1.30)."""
    from onnx import TensorProto

    from vrgv.export.onnx_export import _merge_duplicate_producers

    graph = _cast_graph(TensorProto.FLOAT)
    with pytest.raises(onnx.checker.ValidationError, match="single static assignment"):
        onnx.checker.check_model(onnx.helper.make_model(graph), full_check=True)
    _merge_duplicate_producers(graph)
    assert [n.op_type for n in graph.node] == ["Cast", "Relu", "Neg"] and len(graph.value_info) == 1
    onnx.checker.check_model(onnx.helper.make_model(graph), full_check=True)
    with pytest.raises(BundleError, match="two different nodes writing 'x_cast_to_fp32'"):
        _merge_duplicate_producers(_cast_graph(TensorProto.DOUBLE))


def test_frames_per_chunk_keeps_one_chunk_tensor_within_the_budget():
    shapes = EncoderShapes(num_samples=120, clip_length=12, num_regions=40, feature_dim=64, embed_dim=128)
    assert frames_per_chunk(shapes) == 25  # 25 frames x 40 regions x 128 floats = 500 KiB <= 512 KiB
    assert frames_per_chunk(shapes, chunk_bytes=1) == 1  # at least one frame
    assert frames_per_chunk(shapes, chunk_bytes=1 << 30) == 120  # at most N


def test_chunked_video_graph_embeds_like_the_model(tmp_path):
    """The video graph embeds a few frames at a time (cache locality); every region's embedding is unchanged,
    in PyTorch and in the exported graph, including a last chunk shorter than the others."""
    import onnxruntime as ort

    model, _, _ = small_model()
    gen = torch.Generator().manual_seed(3)
    boxes, feats = torch.rand(12, 5, 5, generator=gen), torch.rand(12, 5, 8, generator=gen)
    with torch.no_grad():
        want = model.embed_regions(boxes, feats)
        got = VideoGraph(model, chunk=5)(boxes, feats)  # chunks of 5, 5 and 2 frames
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # 320 bytes = 5 rows of E=16 floats = one frame of M=5 regions per chunk: 12 chunks
    paths = export_encoder(model, tmp_path, embed_chunk_bytes=320)
    for key, gemms in (("video", 2), ("video_chunked", 2 * 12)):  # appearance and box Gemm per chunk
        graph = onnx.load(str(paths[key])).graph
        assert sum(node.op_type == "Gemm" for node in graph.node) == gemms
        session = ort.InferenceSession(str(paths[key]), providers=["CPUExecutionProvider"])
        out = session.run(None, {"boxes_norm": boxes.numpy(), "features": feats.numpy()})[0]
        np.testing.assert_allclose(out, want.numpy(), rtol=0, atol=1e-5)
    assert "video_chunked" not in export_encoder(model, tmp_path / "whole")  # N=12 frames fit one chunk


def test_bad_embed_chunk_size_is_a_clear_error(tmp_path, capsys):
    model, _, _ = small_model()
    with pytest.raises(ConfigError, match="embed_chunk_bytes must be a positive"):
        export_encoder(model, tmp_path, embed_chunk_bytes=0)
    from vrgv.cli import main
    from vrgv.training.checkpoint import save_checkpoint

    save_checkpoint(*small_model()[:2], tmp_path / "ckpt", {"command": "pytest"})
    out = tmp_path / "b.vrgv"
    assert main(["export", "--checkpoint", str(tmp_path / "ckpt"), "--out", str(out), "--embed-chunk-kib", "-1"]) == 2
    assert "embed_chunk_bytes must be a positive" in capsys.readouterr().err
    assert not out.exists()


def test_onnxruntime_runs_the_chunked_video_graph_on_one_thread_only(tmp_path):
    """The bundle carries both video graphs; ONNX Runtime takes the chunked one on one CPU thread (faster there)
    and the plain one on several (faster there), with the same embeddings; parity covers both."""
    from vrgv.backends.onnxruntime_backend import OnnxRuntimeBackend

    model, vocab, meta = small_model()
    result = export_bundle((model, vocab, meta), tmp_path / "chunked.vrgv", embed_chunk_bytes=320)
    bundle = Bundle.load(result.path)
    assert bundle.manifest.graphs["video_chunked"] == {"fp32": "encoder_video.chunked.onnx"}
    assert all("region_emb_chunked" in errors for errors in result.parity["fp32"]["per_batch"].values())
    one, two = OnnxRuntimeBackend(bundle, threads=1), OnnxRuntimeBackend(bundle, threads=2)
    assert (one.video_graph, two.video_graph) == ("video_chunked", "video")
    rng = np.random.default_rng(1)
    boxes, feats = rng.random((12, 5, 5), dtype=np.float32), rng.random((12, 5, 8), dtype=np.float32)
    np.testing.assert_allclose(one.embed(boxes, feats), two.embed(boxes, feats), rtol=0, atol=1e-6)
