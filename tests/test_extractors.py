"""Region extractors: built-in ONNX detector, precomputed folder, Faster R-CNN adapter, `vrgv extract`, training."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vrgv.annotations import VideoAnnotation
from vrgv.cli import main as cli_main
from vrgv.errors import BackendError, ConfigError, RegionsError
from vrgv.extractors import extract, get_extractor
from vrgv.extractors.onnx_detector import OnnxDetectorExtractor, letterbox
from vrgv.regions import Regions, sample_frame_ids
from vrgv.video import VideoFrames, read_video

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TOY_CLASSES = ["person", "dog", "car", "ball"]
TOY_COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (230, 220, 40)]


def write_toy_split(folder: Path, num_videos: int = 2, num_frames: int = 12, size=(160, 120), seed: int = 0) -> Path:
    """A tiny split in the synthetic-world layout: coloured moving rectangles, one colour per category."""
    rng = np.random.default_rng(seed)
    (folder / "videos").mkdir(parents=True)
    w, h = size
    for v in range(num_videos):
        vid = f"toy{v:03d}"
        objs = [(int(rng.integers(len(TOY_CLASSES))), rng.uniform(5, w - 60), rng.uniform(5, h - 50),
                 rng.uniform(20, 50), rng.uniform(15, 40), rng.uniform(-2, 2)) for _ in range(3)]
        writer = cv2.VideoWriter(str(folder / "videos" / f"{vid}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
        trajs: dict[int, dict[int, list[float]]] = {t: {} for t in range(len(objs))}
        for f in range(num_frames):
            img = np.full((h, w, 3), 90, np.uint8)
            for t, (c, x, y, bw, bh, vx) in enumerate(objs):
                x1 = float(np.clip(x + vx * f, 0, w - bw - 1))
                box = [x1, float(y), x1 + bw, float(y + bh)]
                cv2.rectangle(img, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), TOY_COLOURS[c], -1)
                trajs[t][f] = box
            writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        writer.release()
        ann = VideoAnnotation(vid, num_frames, w, h, 10.0, {t: TOY_CLASSES[o[0]] for t, o in enumerate(objs)}, trajs)
        ann.save(folder / "annotations" / f"{vid}.json")
    return folder


@pytest.fixture(scope="module")
def random_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained detector exported to ONNX (the contract does not depend on the weights)."""
    torch = pytest.importorskip("torch")
    from vrgv.training.detector.export import export_onnx
    from vrgv.training.detector.model import DetectorConfig, RegionDetector

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("detector")
    cfg = DetectorConfig(input_width=160, input_height=128, channels=(8, 16, 16, 16), head_channels=16, feature_dim=32)
    export_onnx(RegionDetector(cfg), folder / "detector.onnx")
    (folder / "config.json").write_text(json.dumps({"detector": cfg.to_dict()}))
    return folder


# built-in ONNX detector --------------------------------------------------------------------------
def test_onnx_matches_torch_on_random_frames(random_detector: Path) -> None:
    torch = pytest.importorskip("torch")
    from vrgv.training.detector.export import check_parity
    from vrgv.training.detector.model import DetectorConfig, RegionDetector

    torch.manual_seed(1)
    cfg = DetectorConfig(input_width=160, input_height=128, channels=(8, 16, 16, 16), head_channels=16, feature_dim=32)
    model = RegionDetector(cfg).eval()
    from vrgv.training.detector.export import export_onnx

    onnx_path = export_onnx(model, random_detector.parent / "parity" / "detector.onnx")
    images = np.random.default_rng(0).integers(0, 256, (3, 128, 160, 3), dtype=np.uint8)
    parity = check_parity(model, onnx_path, images)
    # untrained weights give near-tied peaks, which may swap places at the top-M border
    assert parity["matched_fraction"] > 0.9
    assert parity["max_abs_boxes"] < 1e-2 and parity["max_abs_scores"] < 1e-4 and parity["max_abs_features"] < 1e-4


def test_builtin_extractor_contract(random_detector: Path) -> None:
    ex = get_extractor("builtin", detector=random_detector, threads=1)
    assert ex.num_regions == 40 and ex.feature_dim == 32 and (ex.input_width, ex.input_height) == (160, 128)
    frames = np.random.default_rng(0).integers(0, 256, (7, 90, 300, 3), dtype=np.uint8)  # wide: letterboxed
    regions = ex(frames, np.array([0, 0, 3, 5, 5, 8, 9]), num_frames=10, width=600, height=180, video_id="wide", fps=5)
    assert isinstance(regions, Regions)
    assert regions.boxes.shape == (7, 40, 4) and regions.features.shape == (7, 40, 32) and regions.scores.shape == (7, 40)
    assert regions.boxes[..., 2].max() <= 600 and regions.boxes[..., 3].max() <= 180
    np.testing.assert_allclose(np.linalg.norm(regions.features, axis=-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(regions.boxes[0], regions.boxes[1])  # repeated frame id, same regions
    assert regions.video_id == "wide" and regions.fps == 5.0 and regions.num_frames == 10
    fewer = OnnxDetectorExtractor(random_detector, num_regions=10)(frames[:2], np.array([0, 1]), num_frames=2)
    assert fewer.boxes.shape == (2, 10, 4)


def test_boxes_are_mapped_back_to_original_pixels(random_detector: Path) -> None:
    ex = OnnxDetectorExtractor(random_detector)
    # a 640x240 video read at half size (max_side=320): letterbox scale 0.5, frames scale 2 → factor 4
    video = VideoFrames(np.zeros((2, 120, 320, 3), np.uint8), np.array([0, 1]), num_frames=2, width=640, height=240)
    fixed = np.tile(np.array([[10.0, 20.0, 50.0, 60.0]], np.float32), (2, ex.model_regions, 1))
    ex.detect = lambda imgs: (fixed[: len(imgs)], np.ones((len(imgs), ex.model_regions), np.float32),
                              np.ones((len(imgs), ex.model_regions, 32), np.float32) / np.sqrt(32))
    regions = ex(video)
    np.testing.assert_allclose(regions.boxes[0, 0], [40.0, 80.0, 200.0, 240.0])


def test_letterbox_fits_and_pads() -> None:
    img = np.full((100, 400, 3), 255, np.uint8)
    out, s = letterbox(img, 160, 128)
    assert out.shape == (128, 160, 3) and s == pytest.approx(0.4)
    assert out[:40, :160].min() == 255 and out[40:].max() == 0


def test_missing_detector_and_unknown_extractor_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        get_extractor("builtin", detector=tmp_path / "nope.onnx")
    with pytest.raises(ConfigError, match="unknown region extractor 'yolo'"):
        get_extractor("yolo")
    with pytest.raises(ConfigError, match="folder=DIR"):
        get_extractor("precomputed")


def test_runtime_modules_do_not_import_torch() -> None:
    code = "import sys, vrgv.video, vrgv.extractors, vrgv.extractors.onnx_detector, vrgv.extractors.precomputed, " \
           "vrgv.extractors.faster_rcnn, vrgv.cli.extract; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# precomputed -------------------------------------------------------------------------------------
def _regions(video_id: str, num_frames: int = 20, n: int = 6, m: int = 40) -> Regions:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (n, m, 2)).astype(np.float32)
    return Regions(np.concatenate([xy, xy + 10], -1), rng.normal(size=(n, m, 8)), sample_frame_ids(num_frames, n),
                   width=64, height=64, num_frames=num_frames, video_id=video_id)


def test_precomputed_extractor(tmp_path: Path) -> None:
    _regions("clip").save(tmp_path / "clip.npz")
    ex = get_extractor("precomputed", folder=tmp_path)
    assert ex.feature_dim == 8 and ex.video_ids() == ["clip"]
    loaded = ex.extract("/anywhere/clip.mp4", 6)
    np.testing.assert_array_equal(loaded.boxes, _regions("clip").boxes)
    video = VideoFrames(np.zeros((6, 64, 64, 3), np.uint8), sample_frame_ids(20, 6), num_frames=20, width=64, height=64,
                        video_id="clip")
    assert ex(video).num_samples == 6
    with pytest.raises(RegionsError, match="no precomputed regions for video 'other'"):
        ex.extract("other.mp4", 6)
    with pytest.raises(RegionsError, match="re-extract"):
        ex(VideoFrames(np.zeros((6, 64, 64, 3), np.uint8), sample_frame_ids(30, 6), num_frames=30, width=64, height=64,
                       video_id="clip"))
    with pytest.raises(RegionsError, match="not 120"):
        ex.extract("clip.mp4", 120)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .npz"):
        get_extractor("precomputed", folder=tmp_path / "empty")


# Faster R-CNN adapter ----------------------------------------------------------------------------
def _torchvision_works() -> bool:
    try:
        import torchvision  # noqa: F401
        from torchvision.models.detection import fasterrcnn_resnet50_fpn  # noqa: F401
    except Exception:  # noqa: BLE001 - a torchvision built for another torch raises RuntimeError
        return False
    return True


def test_faster_rcnn_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        get_extractor("faster-rcnn", checkpoint=tmp_path / "missing.pt")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"not a checkpoint")
    if _torchvision_works():
        with pytest.raises(ConfigError, match="weights_only"):
            get_extractor("faster-rcnn", checkpoint=ckpt)
    else:
        with pytest.raises(BackendError, match="needs torch and a torchvision"):
            get_extractor("faster-rcnn", checkpoint=ckpt)


FRCNN_CONTRACT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
if sys.argv[3] == "shim":
    import _torchvision_shim
    _torchvision_shim.install()
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from vrgv.extractors import get_extractor
torch.manual_seed(0)
torch.save(fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=5).state_dict(), sys.argv[1])
ex = get_extractor("faster-rcnn", checkpoint=sys.argv[1], num_classes=5, min_size=128, max_size=160)
frames = np.random.default_rng(0).integers(0, 256, (3, 90, 120, 3), dtype=np.uint8)
r = ex(frames, np.array([0, 3, 3]), num_frames=4)
print(json.dumps({"boxes": list(r.boxes.shape), "features": list(r.features.shape), "dim": ex.feature_dim,
                  "inside": bool((r.boxes[..., 2] <= 120).all() and (r.boxes[..., 3] <= 90).all() and (r.boxes >= 0).all()),
                  "repeated_equal": bool(np.array_equal(r.features[1], r.features[2])),
                  "scores_sorted": bool(np.all(np.diff(r.scores[0][r.scores[0] > 0]) <= 1e-6))}))
"""


@pytest.mark.slow
def test_faster_rcnn_random_weights(tmp_path: Path) -> None:
    """The adapter's contract with a randomly initialised fasterrcnn_resnet50_fpn checkpoint: M regions per
    sampled frame with 1024-d box-head features, boxes in original pixels, repeated frame ids share regions.
    Where torchvision's compiled ops cannot load beside this torch (the CUDA wheel next to the CPU torch),
    its `nms` / `roi_align` run as the pure-PyTorch stand-ins of tests/_torchvision_shim.py, in a subprocess."""
    pytest.importorskip("torch")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install torchvision matching torch)")
    mode = "native" if _torchvision_works() else "shim"
    proc = subprocess.run([sys.executable, "-c", FRCNN_CONTRACT, str(tmp_path / "frcnn.pt"),
                           str(Path(__file__).parent), mode], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"boxes": [3, 40, 4], "features": [3, 40, 1024], "dim": 1024, "inside": True,
                   "repeated_equal": True, "scores_sorted": True}


# CLI ---------------------------------------------------------------------------------------------
def test_cli_extract_video_and_frame_folder(tmp_path: Path, random_detector: Path) -> None:
    split = write_toy_split(tmp_path / "split", num_videos=1, num_frames=9)
    video = split / "videos" / "toy000.mp4"
    assert cli_main(["extract", str(video), "--out", str(tmp_path / "r.npz"), "--detector", str(random_detector),
                     "--num-samples", "16"]) == 0
    r = Regions.load(tmp_path / "r.npz")
    assert r.num_samples == 16 and r.num_regions == 40 and r.num_frames == 9 and r.video_id == "toy000"
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, f in enumerate(read_video(video, 9).frames):
        cv2.imwrite(str(frames_dir / f"{i:06d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    assert cli_main(["extract", str(frames_dir), str(video), "--out-dir", str(tmp_path / "many"), "--detector",
                     str(random_detector), "--num-samples", "5"]) == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["frames.npz", "toy000.npz"]
    assert cli_main(["extract", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "x.npz"), "--detector",
                     str(random_detector)]) == 2


@pytest.mark.shared
def test_cli_extract_real_clip(tmp_path: Path, random_detector: Path) -> None:
    clip = SHARED / "videos" / "bigbuckbunny.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not available (../shared is absent)")
    assert cli_main(["extract", str(clip), "--out", str(tmp_path / "bbb.npz"), "--detector", str(random_detector)]) == 0
    r = Regions.load(tmp_path / "bbb.npz")
    assert (r.width, r.height, r.num_frames, r.num_samples) == (1280, 720, 132, 120)
    assert r.boxes[..., 2].max() <= 1280 and r.boxes[..., 3].max() <= 720


def test_extract_convenience_on_array(random_detector: Path) -> None:
    frames = np.zeros((3, 50, 60), np.uint8)
    r = extract(frames, 4, detector=random_detector)
    assert r.num_samples == 4 and r.num_frames == 3 and (r.width, r.height) == (60, 50)


# training ----------------------------------------------------------------------------------------
def test_targets_decode_back_to_the_gt_boxes() -> None:
    torch = pytest.importorskip("torch")
    from vrgv.training.detector.data import FrameSample, make_targets
    from vrgv.training.detector.model import DetectorConfig, RegionDetector

    cfg = DetectorConfig(input_width=160, input_height=128, channels=(8, 8, 8, 8), head_channels=8, num_regions=5)
    gt = np.array([[10, 12, 50, 40], [70.5, 30, 150, 120], [100, 5, 112, 21]], np.float32)
    t = make_targets(FrameSample(np.zeros((128, 160, 3), np.uint8), gt, [0, 1, 2]), 160, 128)
    h, w = 32, 40
    heat = np.full((1, 1, h * w), -10.0, np.float32)
    size = np.zeros((1, 2, h * w), np.float32)
    off = np.zeros((1, 2, h * w), np.float32)
    for k in np.nonzero(t["mask"])[0]:
        heat[0, 0, t["ind"][k]] = 10.0 - k  # distinct scores
        size[0, :, t["ind"][k]] = t["log_size"][k]
        off[0, :, t["ind"][k]] = t["offset"][k]
    maps = {"heatmap": torch.from_numpy(heat.reshape(1, 1, h, w)), "size": torch.from_numpy(size.reshape(1, 2, h, w)),
            "offset": torch.from_numpy(off.reshape(1, 2, h, w)), "embed": torch.zeros(1, cfg.feature_dim, h, w)}
    boxes, scores, _ = RegionDetector(cfg).decode(maps)
    top = boxes[0, :3].numpy()
    for g in gt:
        assert np.abs(top - g).max(axis=1).min() < 1e-3
    assert t["heatmap"].max() == 1.0 and int(t["mask"].sum()) == 3


@pytest.mark.slow
def test_training_smoke_then_export(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from vrgv.training.detector import train

    split = write_toy_split(tmp_path / "train", num_videos=2, num_frames=6)
    out = tmp_path / "det"
    assert train.main(["--train-dir", str(split), "--out", str(out), "--max-steps", "2", "--batch", "4",
                       "--input-size", "160x128", "--frames-per-video", "3", "--threads", "1", "--minutes", "2"]) == 0
    assert {"detector.safetensors", "classifier.safetensors", "config.json", "detector.onnx"} <= {p.name for p in out.iterdir()}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["step"] == 2 and cfg["detector"]["input_width"] == 160
    r = get_extractor("builtin", detector=out).extract(split / "videos" / "toy000.mp4", 6)
    assert r.boxes.shape == (6, 40, 4) and r.features.shape == (6, 40, 64)


# the trained built-in detector -------------------------------------------------------------------
ARTIFACTS = Path(__file__).resolve().parents[1] / "training" / "detector" / "artifacts"


def test_trained_detector_finds_synthetic_objects(tmp_path: Path) -> None:
    """The committed detector on an unseen synthetic video (seed 7): most GT boxes get an IoU ≥ 0.5 region."""
    synth = pytest.importorskip("vrgv.synth")
    if not (ARTIFACTS / "detector.onnx").is_file():
        pytest.skip("no trained detector in training/detector/artifacts/")
    video = synth.sample_video(7, 0, max_frames=90)
    path, _ = video.write(tmp_path)
    regions = get_extractor("builtin", detector=ARTIFACTS).extract(path, 12)
    assert regions.feature_dim == 64 and regions.num_regions == 40
    ann = video.annotation
    best = []
    for n, fid in enumerate(regions.frame_ids):
        for traj in ann.trajectories.values():
            if int(fid) in traj:
                g = np.asarray(traj[int(fid)], np.float32)
                b = regions.boxes[n]
                iw = np.clip(np.minimum(g[2], b[:, 2]) - np.maximum(g[0], b[:, 0]), 0, None)
                ih = np.clip(np.minimum(g[3], b[:, 3]) - np.maximum(g[1], b[:, 1]), 0, None)
                inter = iw * ih
                union = (g[2] - g[0]) * (g[3] - g[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
                best.append((inter / union).max())
    assert len(best) > 10 and np.mean(np.asarray(best) >= 0.5) > 0.75


def test_default_detector_is_found_without_a_path() -> None:
    if not (ARTIFACTS / "detector.onnx").is_file():
        pytest.skip("no trained detector in training/detector/artifacts/")
    ex = get_extractor("builtin")
    assert ex.path.name == "detector.onnx" and ex.feature_dim == 64


# box hypotheses per peak, GIoU training, continuing from weights ------------------------------------
def test_box_scales_give_peak_major_hypotheses() -> None:
    """(1.0, 1.5) spends the M regions on ceil(M/2) peaks: each peak's boxes are adjacent, same centre and
    score, sizes times the factors; (1.0,) is the plain decoder."""
    torch = pytest.importorskip("torch")
    from vrgv.training.detector.model import DetectorConfig, RegionDetector

    torch.manual_seed(0)
    small = dict(input_width=160, input_height=128, channels=(8, 8, 8, 8), head_channels=8, head_mid=8, feature_dim=8)
    plain = RegionDetector(DetectorConfig(num_regions=5, **small)).eval()
    multi = RegionDetector(DetectorConfig(num_regions=5, box_scales=(1.0, 1.5), **small)).eval()
    multi.load_state_dict(plain.state_dict())
    assert multi.config.num_peaks == 3 and plain.config.num_peaks == 5
    img = torch.randint(0, 255, (1, 128, 160, 3), dtype=torch.uint8)
    with torch.no_grad():
        pb, ps, _ = plain(img)
        mb, ms, mf = multi(img)
    assert mb.shape == (1, 5, 4) and ms.shape == (1, 5) and mf.shape == (1, 5, 8)
    assert torch.allclose(mb[0, 0], pb[0, 0]) and torch.allclose(mb[0, 2], pb[0, 1])  # scale 1.0 of peaks 1, 2
    assert torch.equal(ms[0, 0], ms[0, 1]) and torch.allclose(ms[0, ::2], ps[0, :3])
    centre = lambda b: (b[..., :2] + b[..., 2:]) / 2  # noqa: E731
    inside = (mb[0, 1] > 0).all() and (mb[0, 1, 2] < 160) and (mb[0, 1, 3] < 128)
    if inside:  # unclipped: same centre, 1.5x the size
        assert torch.allclose(centre(mb[0, 1]), centre(mb[0, 0]), atol=1e-4)
        assert torch.allclose(mb[0, 1, 2:] - mb[0, 1, :2], 1.5 * (mb[0, 0, 2:] - mb[0, 0, :2]), atol=1e-3)


@pytest.mark.parametrize("scales", [(), (0.0,), (1.0,) * 6])
def test_bad_box_scales_are_refused(scales: tuple) -> None:
    pytest.importorskip("torch")
    from vrgv.errors import ConfigError
    from vrgv.training.detector.model import DetectorConfig

    with pytest.raises(ConfigError, match="box_scales"):
        DetectorConfig(num_regions=5, box_scales=scales)


def test_box_scales_round_trip_through_config_and_onnx(tmp_path: Path) -> None:
    """`export --box-scales` writes an ONNX whose regions match torch and records the scales in config.json."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from vrgv.training.detector import export
    from vrgv.training.detector.model import DetectorConfig, RegionDetector

    torch.manual_seed(0)
    cfg = DetectorConfig(input_width=160, input_height=128, channels=(8, 8, 8, 8), head_channels=8, head_mid=8,
                         feature_dim=8, num_regions=6)
    src = tmp_path / "src"
    src.mkdir()
    save_file(RegionDetector(cfg).state_dict(), str(src / "detector.safetensors"))
    (src / "config.json").write_text(json.dumps({"detector": cfg.to_dict(), "training": {"step": 3}}))
    out = tmp_path / "out" / "detector.onnx"
    assert export.main(["--weights", str(src / "detector.safetensors"), "--out", str(out), "--box-scales", "1,1.3,1.6"]) == 0
    meta = json.loads((out.parent / "config.json").read_text())
    assert meta["detector"]["box_scales"] == [1.0, 1.3, 1.6] and meta["training"] == {"step": 3}
    model = export.load_detector(src / "detector.safetensors", DetectorConfig.from_dict(meta["detector"]))
    imgs = np.random.default_rng(0).integers(0, 256, (2, 128, 160, 3), dtype=np.uint8)
    assert export.check_parity(model, out, imgs)["matched_fraction"] == 1.0
    with pytest.raises(SystemExit):
        export.main(["--weights", str(src / "detector.safetensors"), "--out", str(out), "--box-scales", "1,big"])


def test_giou_loss_and_decoded_boxes_at_gt_centres() -> None:
    """GIoU is 0 for identical boxes and grows past 1 for far apart ones; the boxes the loss trains are exactly
    what the decoder outputs at the same cells."""
    torch = pytest.importorskip("torch")
    from vrgv.training.detector.model import DetectorConfig, RegionDetector
    from vrgv.training.detector.train import decoded_boxes_at, giou_loss

    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert float(giou_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(giou_loss(a, a + 5.0)) == pytest.approx(1 - (25 / 175 - (225 - 175) / 225), abs=1e-5)  # inter, union, hull
    assert float(giou_loss(a, a + 100.0)) > 1.0
    cfg = DetectorConfig(input_width=160, input_height=128, channels=(8, 8, 8, 8), head_channels=8, head_mid=8,
                         feature_dim=8, num_regions=3)
    h, w = 32, 40
    g = torch.Generator().manual_seed(0)
    heat = torch.full((1, 1, h, w), -10.0)
    ind = torch.tensor([[5 * w + 7, 20 * w + 30, 31 * w + 2]])
    for k, i in enumerate(ind[0]):
        heat.view(-1)[i] = 5.0 - k
    maps = {"heatmap": heat, "size": torch.rand(1, 2, h, w, generator=g) * 3, "offset": torch.rand(1, 2, h, w, generator=g) - 0.5,
            "embed": torch.zeros(1, 8, h, w)}
    boxes, _, _ = RegionDetector(cfg).decode(maps)
    trained = decoded_boxes_at(maps, ind, cfg.stride)
    clip = lambda b: torch.stack([b[..., 0].clamp(0, 160), b[..., 1].clamp(0, 128), b[..., 2].clamp(0, 160), b[..., 3].clamp(0, 128)], -1)  # noqa: E731
    assert torch.allclose(clip(trained), boxes, atol=1e-4)


def test_training_can_continue_from_weights(tmp_path: Path) -> None:
    """`--init` starts from saved weights: zero steps after loading give back the same weights."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from vrgv.training.detector import train

    split = write_toy_split(tmp_path / "train", num_videos=1, num_frames=4)
    common = ["--train-dir", str(split), "--batch", "2", "--input-size", "160x128", "--frames-per-video", "2",
              "--threads", "1", "--no-export", "--crop", "none"]
    assert train.main(common + ["--out", str(tmp_path / "a"), "--max-steps", "1"]) == 0
    assert train.main(common + ["--out", str(tmp_path / "b"), "--max-steps", "0", "--minutes", "0",
                                "--init", str(tmp_path / "a"), "--giou-weight", "2"]) == 0
    a, b = (load_file(str(tmp_path / d / "detector.safetensors")) for d in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((tmp_path / "b" / "config.json").read_text())["training"]
    assert meta["init"] == str(tmp_path / "a") and meta["giou_weight"] == 2.0
