"""Export the region detector to ONNX (opset 17, fixed H×W, dynamic batch) and check ONNX Runtime parity.

Usage: ``python -m vrgv.training.detector.export --weights DIR/detector.safetensors --out DIR/detector.onnx
[--box-scales 1.0,1.2,1.45]`` (``config.json`` is read from beside the weights and written beside the ONNX,
with the decoding settings the ONNX was exported with).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from vrgv.training.detector.model import DetectorConfig, RegionDetector

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "features")


def load_detector(weights: str | Path, config: DetectorConfig | None = None) -> RegionDetector:
    """Build the detector from ``config`` (or ``config.json`` beside the weights) and load safetensors weights."""
    from safetensors.torch import load_file

    weights = Path(weights)
    if config is None:
        config = DetectorConfig.from_dict(json.loads((weights.parent / "config.json").read_text())["detector"])
    model = RegionDetector(config)
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


def export_onnx(model: RegionDetector, out: str | Path, *, batch: int = 2) -> Path:
    """Write ``out`` (uint8 [B,H,W,3] → boxes, scores, features) with a dynamic batch axis."""
    cfg = model.config
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(batch, cfg.input_height, cfg.input_width, 3, dtype=torch.uint8)
    model = model.eval()
    with torch.no_grad():
        torch.onnx.export(
            model, (dummy,), str(out), opset_version=OPSET, input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES), dynamic_axes={INPUT_NAME: {0: "batch"}, **{k: {0: "batch"} for k in OUTPUT_NAMES}},
            dynamo=False,
        )
    return out


def check_parity(model: RegionDetector, onnx_path: str | Path, images: np.ndarray) -> dict[str, float]:
    """Compare ORT with torch region by region: fraction of ORT regions with an identical torch region
    (boxes within 0.01 px, scores within 1e-4; near-tied peaks may be listed in another order), and the
    largest box / score / feature difference over those matched pairs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ob, os_, of = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
    with torch.no_grad():
        tb, ts, tf = (t.numpy() for t in model.eval()(torch.from_numpy(images)))
    matched, db, ds, df = 0, 0.0, 0.0, 0.0
    for b in range(ob.shape[0]):
        dist = np.abs(ob[b][:, None, :] - tb[b][None, :, :]).max(-1)  # [M,M]
        dist = np.where(np.abs(os_[b][:, None] - ts[b][None, :]) < 1e-4, dist, np.inf)
        j = dist.argmin(1)
        ok = dist[np.arange(dist.shape[0]), j] < 1e-2
        matched += int(ok.sum())
        if ok.any():
            db = max(db, float(dist[np.arange(dist.shape[0]), j][ok].max()))
            ds = max(ds, float(np.abs(os_[b][ok] - ts[b][j[ok]]).max()))
            df = max(df, float(np.abs(of[b][ok] - tf[b][j[ok]]).max()))
    return {"matched_fraction": matched / float(ob.shape[0] * ob.shape[1]), "max_abs_boxes": db,
            "max_abs_scores": ds, "max_abs_features": df}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True, help="detector.safetensors (config.json beside it)")
    p.add_argument("--out", required=True, help="output detector.onnx")
    p.add_argument("--parity-images", type=int, default=4, help="random frames for the torch/ORT parity check")
    p.add_argument("--box-scales", help="comma-separated box size factors per peak (default: the config's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    weights = Path(args.weights)
    meta = json.loads((weights.parent / "config.json").read_text())
    if args.box_scales:
        try:
            meta["detector"]["box_scales"] = [float(x) for x in args.box_scales.split(",")]
        except ValueError:
            p.error(f"--box-scales {args.box_scales!r}: give comma-separated numbers, e.g. 1.0,1.2,1.45")
    model = load_detector(weights, DetectorConfig.from_dict(meta["detector"]))
    out = export_onnx(model, args.out)
    meta["detector"] = model.config.to_dict()
    (out.parent / "config.json").write_text(json.dumps(meta, indent=1))
    cfg = model.config
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (args.parity_images, cfg.input_height, cfg.input_width, 3), dtype=np.uint8)
    print(json.dumps({"onnx": str(out), "bytes": out.stat().st_size, "parity": check_parity(model, out, imgs)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
