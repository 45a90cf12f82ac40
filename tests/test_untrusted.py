"""Untrusted files: no pickle anywhere, bundles (folder and zip) that lie, escape, or were built for another
machine, and output names derived from input names. Bundle cases run on a tiny bundle exported here."""
from __future__ import annotations

import ast
import atexit
import functools
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vrgv.bundle import MANIFEST, Bundle, check_member_name, onnx_external_data, sha256_file
from vrgv.errors import BackendError, BundleError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SCANNED = ("sdk", "training", "export", "benchmarks", "tests", "setup.py")


# a tiny real bundle (exported once per process, shared with test_bad_inputs) ------------------------
@functools.lru_cache(maxsize=None)
def tiny_bundle() -> Path:
    """A small bundle exported with ``vrgv.export`` from a random checkpoint, plus a random detector.

    N=12 sampled frames, M=5 regions, D=8 features; the detector's input is 64x48. Built once per process
    in a temp folder; tests copy it before editing. Skips when the training extra (torch, onnx) is absent.
    """
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from _export_helpers import small_model

    from vrgv.export import export_bundle
    from vrgv.training.detector.export import export_onnx
    from vrgv.training.detector.model import DetectorConfig, RegionDetector

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="vrgv-untrusted-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    torch.manual_seed(0)
    cfg = DetectorConfig(input_width=64, input_height=48, channels=(8, 8, 8, 8), head_channels=8, feature_dim=8)
    export_onnx(RegionDetector(cfg), root / "detector.onnx")
    model, vocab, meta = small_model(num_regions=5)
    export_bundle((model, vocab, meta), root / "tiny.vrgv", detector=root / "detector.onnx", parity_sizes=(1,))
    return root / "tiny.vrgv"


def copy_bundle(dest: Path) -> Path:
    out = dest / "b.vrgv"
    shutil.copytree(tiny_bundle(), out)
    return out


def edit_manifest(bundle: Path, **changes) -> None:
    path = bundle / MANIFEST
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def add_file(bundle: Path, name: str, data: bytes) -> None:
    """Add a file and list it (with its true checksum) in the manifest, like a well-formed but hostile bundle."""
    target = bundle / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": sha256_file(target), "bytes": len(data)}
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def resign(bundle: Path, name: str) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}
    (bundle / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return copy_bundle(tmp_path)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRGV_CACHE_DIR", str(tmp_path / "cache"))


# no pickle anywhere ------------------------------------------------------------------------------
_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "joblib", "marshal"}


def pickle_uses(source: str, filename: str = "<src>") -> list[str]:
    """Places in Python ``source`` that can unpickle: pickle-family imports/calls, ``np.load(allow_pickle=True)``,
    ``torch.load`` without ``weights_only=True``, ``pandas.read_pickle`` and ``yaml.load`` without a safe loader."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in _PICKLE_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {name}")
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg}
        head, _, attr = func.rpartition(".")
        if head.split(".")[0] in _PICKLE_MODULES and attr in ("load", "loads", "Unpickler", "open"):
            found.append(f"{filename}:{node.lineno}: {func}()")
        if attr == "load" and head in ("np", "numpy") and kwargs.get("allow_pickle") not in (None, "False"):
            found.append(f"{filename}:{node.lineno}: {func}(allow_pickle={kwargs['allow_pickle']})")
        if attr == "load" and head == "torch" and kwargs.get("weights_only") != "True":
            found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
        if attr == "read_pickle":
            found.append(f"{filename}:{node.lineno}: {func}()")
        if func in ("yaml.load", "yaml.load_all") and "Safe" not in kwargs.get("Loader", ""):
            found.append(f"{filename}:{node.lineno}: {func} without SafeLoader")
    return found


def test_pickle_scanner_flags_every_pattern():
    bad = (
        "import pickle\nimport numpy as np, torch\nfrom joblib import load\n"
        "pickle.loads(b'')\nnp.load('x.npy', allow_pickle=True)\ntorch.load('m.pt')\n"
        "torch.load('m.pt', weights_only=False)\nimport pandas as pd\npd.read_pickle('x')\n"
        "import yaml\nyaml.load(s)\n"
    )
    assert [int(hit.split(':')[1]) for hit in pickle_uses(bad)] == [1, 3, 4, 5, 6, 7, 9, 11]
    good = "import numpy as np, torch\nnp.load('x.npz', allow_pickle=False)\ntorch.load('m.pt', weights_only=True)\n"
    assert pickle_uses(good) == []


def test_no_pickle_anywhere_in_the_source_tree():
    files = []
    for entry in SCANNED:
        path = REPO / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    assert len(files) > 50
    found = [hit for f in files for hit in pickle_uses(f.read_text(encoding="utf-8"), str(f.relative_to(REPO)))]
    assert found == [], "code that can unpickle untrusted data:\n" + "\n".join(found)


def test_regions_with_pickled_objects_are_refused(tmp_path):
    from vrgv.errors import RegionsError
    from vrgv.regions import Regions

    np.savez(tmp_path / "evil.npz", boxes=np.array([{"__reduce__": "os.system"}], dtype=object),
             features=np.zeros((1, 1, 1)), frame_ids=np.zeros(1), width=1, height=1, num_frames=1)
    with pytest.raises(RegionsError, match=r"evil\.npz.*without pickled objects"):
        Regions.load(tmp_path / "evil.npz")


# bundles: folders --------------------------------------------------------------------------------
def test_the_exported_bundle_loads_and_verifies(bundle):
    b = Bundle.load(bundle)
    assert {"encoder_video.onnx", "encoder_relation.onnx", "model.safetensors", "detector.onnx"} <= set(b.manifest.files)
    assert (b.manifest.num_samples, b.manifest.num_regions, b.manifest.feature_dim) == (12, 5, 8)


def test_missing_bundle_and_missing_manifest(tmp_path, bundle):
    with pytest.raises(BundleError, match=r"nope\.vrgv' does not exist.*vrgv export"):
        Bundle.load(tmp_path / "nope.vrgv")
    (bundle / MANIFEST).unlink()
    with pytest.raises(BundleError, match=r"has no manifest\.json; it is not a vrgv bundle"):
        Bundle.load(bundle)


def test_missing_file_is_named(bundle):
    (bundle / "encoder_relation.onnx").unlink()
    with pytest.raises(BundleError, match=r"file 'encoder_relation\.onnx' listed in manifest\.json is missing.*re-export"):
        Bundle.load(bundle)


@pytest.mark.parametrize("victim", ["model.safetensors", "encoder_video.onnx", "detector.onnx"])
def test_wrong_checksum_is_refused(bundle, victim):
    data = bytearray((bundle / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    (bundle / victim).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"file '{victim}' fails its sha256 check \(corrupted or tampered\)"):
        Bundle.load(bundle)
    Bundle.load(bundle, verify=False)  # the opt-out exists, and is the only way past the check


def test_newer_format_version_asks_for_an_upgrade(bundle):
    edit_manifest(bundle, format_version=99)
    with pytest.raises(BundleError, match=r"format version 99 is newer than this vrgv supports \(1\); upgrade vrgv"):
        Bundle.load(bundle)


@pytest.mark.parametrize("change, message", [
    ({"format": "something-else"}, "is not a vrgv bundle manifest"),
    ({"format_version": "1"}, "format_version '1' is invalid"),
    ({"num_samples": 0}, "num_samples must be a positive integer"),
    ({"num_samples": 13}, "not a multiple of clip_length"),
    ({"sigma": 7.0}, r"sigma must lie in \[0, 1\]"),
    ({"files": []}, "'files' must map file names"),
])
def test_malformed_manifest_fields(bundle, change, message):
    edit_manifest(bundle, **change)
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle)


def test_manifest_that_is_not_json(bundle):
    (bundle / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json is not valid JSON"):
        Bundle.load(bundle)


@pytest.mark.parametrize("name", ["../outside.bin", "/etc/passwd", "sub/../../outside.bin", "C:\\evil.dll", "a\\..\\..\\x"])
def test_manifest_entries_escaping_the_bundle(bundle, name):
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": "0" * 64, "bytes": 0}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="escapes the bundle"):
        Bundle.load(bundle)


def test_symlink_out_of_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.copy(bundle / "detector.onnx", outside)  # same bytes: the checksum alone would pass
    (bundle / "detector.onnx").unlink()
    (bundle / "detector.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match=r"'detector\.onnx' resolves outside the bundle"):
        Bundle.load(bundle)


def _onnx_with_external_data(location: str) -> bytes:
    from onnx import TensorProto, helper

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializer=[tensor])
    return helper.make_model(graph).SerializeToString()


@pytest.mark.parametrize("location, message", [
    ("../../secret.bin", "escapes the bundle"),
    ("/etc/passwd", "escapes the bundle"),
    ("weights.bin", "has no checksum in manifest.json"),
])
def test_onnx_external_data_must_stay_inside_the_bundle(bundle, tmp_path, location, message):
    (bundle / "weights.bin").write_bytes(b"\0" * 16)  # present but not checksummed
    add_file(bundle, "extra.onnx", _onnx_with_external_data(location))
    assert onnx_external_data(bundle / "extra.onnx") == [location]
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle)


def test_onnx_external_data_inside_the_bundle_and_checksummed_is_accepted(bundle):
    add_file(bundle, "data/weights.bin", b"\0" * 16)
    add_file(bundle, "data/extra.onnx", _onnx_with_external_data("weights.bin"))
    Bundle.load(bundle)


def test_external_data_through_a_symlinked_folder_is_refused(bundle, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.bin").write_bytes(b"\0" * 16)
    (bundle / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    add_file(bundle, "extra.onnx", _onnx_with_external_data("link/w.bin"))
    with pytest.raises(BundleError, match="outside the bundle"):
        Bundle.load(bundle)


def test_garbage_onnx_file_is_a_bundle_error(bundle):
    add_file(bundle, "extra.onnx", b"\x0a\xff\xff\xff\xff\x0f")  # a length prefix far past the end
    with pytest.raises(BundleError, match=r"extra\.onnx' is not a valid ONNX file"):
        Bundle.load(bundle)


# bundles: zips -----------------------------------------------------------------------------------
def _zip_bundle(src: Path, out: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, f"b.vrgv/{p.relative_to(src).as_posix()}")
        for info, data in extra:
            zf.writestr(info, data)
    return out


def test_zip_bundle_loads_from_the_cache(bundle, tmp_path):
    b = Bundle.load(_zip_bundle(bundle, tmp_path / "b.zip"))
    assert b.root.is_relative_to(tmp_path / "cache") and (b.root / MANIFEST).is_file()
    assert Bundle.load(tmp_path / "b.zip").root == b.root  # extracted once


@pytest.mark.parametrize("member", ["/tmp/vrgv-evil.txt", "../vrgv-evil.txt", "b.vrgv/../../vrgv-evil.txt",
                                    "C:/vrgv-evil.txt", "..\\vrgv-evil.txt"])
def test_zip_entries_escaping_the_bundle_are_refused_before_extraction(bundle, tmp_path, member):
    zpath = _zip_bundle(bundle, tmp_path / "z" / "b.zip", [(member, b"owned")])
    with pytest.raises(BundleError, match=r"escapes the bundle \(absolute path or '\.\.'\)"):
        Bundle.load(zpath)
    assert not (tmp_path / "vrgv-evil.txt").exists() and not Path("/tmp/vrgv-evil.txt").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*evil*"))


def test_zip_symlink_entry_is_refused(bundle, tmp_path):
    info = zipfile.ZipInfo("b.vrgv/link")
    info.external_attr = (0o120777 << 16)  # S_IFLNK
    zpath = _zip_bundle(bundle, tmp_path / "b.zip", [(info, b"/etc/passwd")])
    with pytest.raises(BundleError, match="is a symbolic link"):
        Bundle.load(zpath)


def test_damaged_zip_is_a_bundle_error_and_leaves_no_cache_entry(bundle, tmp_path):
    zpath = _zip_bundle(bundle, tmp_path / "b.zip")
    data = bytearray(zpath.read_bytes())
    data[data.find(b'"format"')] ^= 0xFF  # inside manifest.json's stored bytes: its CRC no longer matches
    zpath.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"b\.zip' is a damaged zip \(Bad CRC-32"):
        Bundle.load(zpath)
    assert not any(p.name != ".complete" and p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_file_that_is_not_a_zip(tmp_path):
    (tmp_path / "b.zip").write_bytes(b"PK not really")
    with pytest.raises(BundleError, match="is a file but not a zip"):
        Bundle.load(tmp_path / "b.zip")


def test_member_name_checks():
    assert str(check_member_name("a/b.onnx", "t")) == "a/b.onnx"
    for bad in ("", "a\x00b", "/abs", "../x", "a/../../x", "D:\\x", "a\\..\\x"):
        with pytest.raises(BundleError):
            check_member_name(bad, "t")


# TensorRT engines for another machine ------------------------------------------------------------
def test_engine_for_another_tensorrt_version_or_gpu_is_refused_by_name(tmp_path):
    from vrgv.backends.tensorrt_backend import EngineKey, OptimizationProfile, check_given_engine, expected_key

    here = expected_key("relation", "NVIDIA H100 80GB HBM3", "10.3.0", "fp32", OptimizationProfile())
    for other in (expected_key("relation", "NVIDIA A100-SXM4-40GB", "10.3.0", "fp32", OptimizationProfile()),
                  expected_key("relation", "NVIDIA H100 80GB HBM3", "8.6.1", "fp32", OptimizationProfile())):
        path = tmp_path / other.filename
        path.write_bytes(b"engine")
        with pytest.raises(BackendError, match=r"was built for GPU .*TensorRT .* but this run needs GPU "
                                               r"nvidia-h100-80gb-hbm3, TensorRT 10\.3\.0.*not portable"):
            check_given_engine(path, here)
    (tmp_path / "mystery.engine").write_bytes(b"engine")
    with pytest.raises(BackendError, match="does not follow vrgv's naming"):
        check_given_engine(tmp_path / "mystery.engine", here)
    with pytest.raises(BackendError, match="does not exist"):
        check_given_engine(tmp_path / "gone.engine", here)
    assert check_given_engine(_touch(tmp_path / here.filename), here).name == here.filename
    assert EngineKey.parse(here.filename) == here


def _touch(path: Path) -> Path:
    path.write_bytes(b"engine")
    return path


def test_bundled_engine_for_another_gpu_is_ignored_not_used(bundle, tmp_path):
    from vrgv.backends.tensorrt_backend import OptimizationProfile, expected_key, find_engine

    other = expected_key("relation", "NVIDIA A100-SXM4-40GB", "8.6.1", "fp32", OptimizationProfile())
    add_file(bundle, f"engines/{other.filename}", b"not for this machine")
    edit_manifest(bundle, engines=[{"file": f"engines/{other.filename}", "graph": "relation"}])
    b = Bundle.load(bundle)
    here = expected_key("relation", "NVIDIA H100 80GB HBM3", "10.3.0", "fp32", OptimizationProfile())
    assert find_engine(b, here, tmp_path / "engines") is None  # None = build a matching one
    same = expected_key("relation", "NVIDIA A100-SXM4-40GB", "8.6.1", "fp32", OptimizationProfile())
    assert find_engine(b, same, tmp_path / "engines") == (bundle / "engines" / other.filename).resolve()


def test_tensorrt_backend_on_cpu_is_a_clear_error(bundle):
    from vrgv.backends import load_backend

    with pytest.raises(BackendError, match="NVIDIA GPUs only|needs the 'tensorrt' package|needs a CUDA GPU"):
        load_backend(Bundle.load(bundle), backend="tensorrt", device="cpu")


# output names derived from input names -----------------------------------------------------------
@pytest.mark.parametrize("video_id", ["../../etc/cron.d/x", "/abs/path", "a/b\\c", "..", "nul\x00byte", "名前 with spaces"])
def test_region_cache_names_stay_inside_the_cache_folder(tmp_path, video_id):
    from vrgv.batch.inputs import BatchItem
    from vrgv.batch.plan import cache_path_for

    cache = tmp_path / "cache"
    path = Path(cache_path_for(cache, BatchItem(str(tmp_path / "v.mp4"), video_id, ["a-b-c"]), "model"))
    assert path.parent == cache and path.suffix == ".npz"
    assert "/" not in path.name and "\\" not in path.name and "\x00" not in path.name
    assert len(path.relative_to(cache).parts) == 1 and path.name not in (".", "..")


def test_extract_out_dir_names_stay_inside_the_folder(tmp_path, monkeypatch):
    """``vrgv extract --out-dir`` names each output after its input; odd names cannot escape the folder."""
    from vrgv.cli import main

    written: list[Path] = []

    class Recorder:
        def extract(self, source, num_samples):
            from vrgv.regions import Regions

            return Regions(np.zeros((1, 1, 4), np.float32), np.zeros((1, 1, 2), np.float32), [0], 4, 4, 1)

    import vrgv.cli.extract as cli_extract
    import vrgv.regions

    monkeypatch.setattr(cli_extract, "_build", lambda args: Recorder())
    save = vrgv.regions.Regions.save
    monkeypatch.setattr(vrgv.regions.Regions, "save", lambda self, p: written.append(Path(p)) or save(self, p))
    weird = tmp_path / "in" / "..mp4"
    weird.parent.mkdir()
    weird.write_bytes(b"x")
    out_dir = tmp_path / "out"
    assert main(["extract", str(weird), str(tmp_path / "in" / "a b;rm -rf.mp4"), "--out-dir", str(out_dir)]) == 0
    assert written and all(p.resolve().parent == out_dir.resolve() for p in written)


def test_demo_relation_file_names_are_slugs():
    from vrgv.demo import _slug

    for rel in ("person-ride-bicycle", "../../x-y-z", "a/b-c-d"):
        slug = _slug(rel)
        assert slug and "/" not in slug and "\\" not in slug and slug not in (".", "..")
