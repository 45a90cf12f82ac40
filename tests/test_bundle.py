"""Bundle manifest and loader details not covered by test_untrusted.py, on hand-built bundles (no torch).

The hand-built bundle's ONNX files are tiny Identity graphs: ``Bundle.load`` checks names, versions and
checksums, not what the graphs compute (export parity is tested in test_export.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from vrgv.bundle import FORMAT, FORMAT_VERSION, MANIFEST, Bundle, Manifest, onnx_external_data, sha256_file  # noqa: E402
from vrgv.errors import BundleError  # noqa: E402
from vrgv.vocab import Vocabulary  # noqa: E402


def _identity_model() -> bytes:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph).SerializeToString()


def write_bundle(folder: Path, **overrides) -> Path:
    """A minimal valid bundle folder: two graphs, weights, manifest with true checksums."""
    folder.mkdir(parents=True)
    files = {"encoder_video.onnx": _identity_model(), "encoder_relation.onnx": _identity_model(),
             "model.safetensors": b"{}"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": folder.stem, "model": {"vocab_size": 3},
        "num_samples": 120, "clip_length": 12, "num_regions": 40, "feature_dim": 64, "embed_dim": 256,
        "sigma": 0.04, "vocabulary": Vocabulary.default().to_dict(),
        "graphs": {"video": {"fp32": "encoder_video.onnx"}, "relation": {"fp32": "encoder_relation.onnx"}},
        "weights": "model.safetensors",
        "files": {n: {"sha256": sha256_file(folder / n), "bytes": len(d)} for n, d in files.items()},
        **overrides,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VRGV_CACHE_DIR", str(tmp_path / "cache"))


def test_hand_built_bundle_loads_and_round_trips(tmp_path):
    b = Bundle.load(write_bundle(tmp_path / "m.vrgv"))
    m = b.manifest
    assert (m.num_samples, m.clip_length, m.num_clips, m.num_regions) == (120, 12, 10, 40)
    assert b.name == "m" and b.graph("relation") == (b.root / "encoder_relation.onnx").resolve()
    assert b.vocabulary.tokens == Vocabulary.default().tokens
    again = Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m


def test_accessors_name_what_is_missing(tmp_path):
    b = Bundle.load(write_bundle(tmp_path / "m.vrgv"))
    with pytest.raises(BundleError, match=r"no file 'detector\.onnx'.*encoder_relation\.onnx"):
        b.file("detector.onnx")
    with pytest.raises(BundleError, match=r"no fp16 relation graph.*vrgv export --fp16"):
        b.graph("relation", "fp16")
    with pytest.raises(BundleError, match="no 'audio' graph"):
        b.graph("audio")


@pytest.mark.parametrize("overrides, message", [
    ({"graphs": {"video": {"fp32": "encoder_video.onnx"}}}, r"no ONNX graph for \['relation'\]"),
    ({"graphs": {"video": {"fp32": "encoder_video.onnx"}, "relation": {"fp32": "other.onnx"}}},
     "'other.onnx', which is not a checksummed file"),
    ({"weights": "weights.safetensors"}, "'weights.safetensors' is referenced but not a checksummed file"),
    ({"detector": {"file": "detector.onnx"}}, "'detector.onnx' is referenced"),
    ({"embed_dim": -1}, "embed_dim must be a positive integer"),
])
def test_manifest_references_are_checked(tmp_path, overrides, message):
    with pytest.raises(BundleError, match=message):
        Bundle.load(write_bundle(tmp_path / "m.vrgv", **overrides))


def test_missing_required_field_is_named(tmp_path):
    folder = write_bundle(tmp_path / "m.vrgv")
    data = json.loads((folder / MANIFEST).read_text())
    del data["sigma"], data["vocabulary"]
    (folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"lacks the field\(s\) \['sigma', 'vocabulary'\]"):
        Bundle.load(folder)


def test_identity_follows_the_file_checksums(tmp_path):
    a = Bundle.load(write_bundle(tmp_path / "a.vrgv"))
    b = Bundle.load(write_bundle(tmp_path / "b.vrgv"))
    assert a.identity == b.identity and len(a.identity) == 16
    c = Bundle.load(write_bundle(tmp_path / "c.vrgv", weights=None))
    (c.root / "model.safetensors").write_bytes(b'{"x": 1}')
    data = json.loads((c.root / MANIFEST).read_text())
    data["files"]["model.safetensors"] = {"sha256": sha256_file(c.root / "model.safetensors"), "bytes": 8}
    (c.root / MANIFEST).write_text(json.dumps(data))
    assert Bundle.load(c.root).identity != a.identity


def test_external_data_scan_matches_onnx_including_subgraphs(tmp_path):
    """The wire-format scanner finds what onnx itself writes as external data, also inside an If branch."""
    import numpy as np

    big = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    inner = numpy_helper.from_array(np.ones((32, 32), np.float32), "w_then")
    then_graph = helper.make_graph([helper.make_node("Identity", ["w_then"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, [32, 32])],
                                   initializer=[inner])
    else_graph = helper.make_graph([helper.make_node("Identity", ["w_then"], ["e"])], "else", [],
                                   [helper.make_tensor_value_info("e", TensorProto.FLOAT, [32, 32])])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"]),
         helper.make_node("If", ["c"], ["z"], then_branch=then_graph, else_branch=else_graph)], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [32, 32])], initializer=[big])
    model = helper.make_model(graph)
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=False,
              size_threshold=0)
    reloaded = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    expected = sorted(e.value for t in onnx.external_data_helper._get_all_tensors(reloaded)
                      for e in t.external_data if e.key == "location")
    assert len(expected) == 2
    assert sorted(onnx_external_data(tmp_path / "m.onnx")) == expected
    (tmp_path / "plain.onnx").write_bytes(_identity_model())
    assert onnx_external_data(tmp_path / "plain.onnx") == []


def test_default_bundle(tmp_path):
    import vrgv

    shipped = Path(vrgv.__file__).parent / "data" / "default.vrgv" / MANIFEST
    if shipped.is_file():
        assert Bundle.default().manifest.num_samples > 0
    else:
        with pytest.raises(BundleError, match=r"default bundle .* is not part of this vrgv build.*vrgv export"):
            Bundle.default()
