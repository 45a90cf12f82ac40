"""Train the built-in region detector on synthetic-world frames (full box supervision), then export ONNX.

Losses (CenterNet): focal loss on the centre heatmap, L1 on log box size and centre offset at GT centres,
and cross-entropy of a cosine classifier on features pooled at (jittered) GT boxes, which makes the
appearance features separate categories. Time-budgeted; checkpoints ``detector.safetensors`` + ``config.json``.

Usage (background, 1 thread: on a shared, over-subscribed CPU 2 threads were 5x slower)::

    python -m vrgv.training.detector.prepare --seed 11 --videos 400 --out /work/data/detector/frames_s11
    OMP_NUM_THREADS=1 nohup nice python -m vrgv.training.detector.train \
        --train-cache "/work/data/detector/frames_s11_*.npz" --out /work/data/detector --minutes 28 --threads 1 \
        > /work/data/detector/train.log 2>&1 &
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vrgv.errors import ConfigError
from vrgv.training.detector.data import FrameSample, crop_sample, letterbox_sample, load_split_frames, make_targets
from vrgv.training.detector.model import CosineClassifier, DetectorConfig, RegionDetector
from vrgv.training.detector.prepare import load_cache

log = logging.getLogger("vrgv.training.detector")


def focal_loss(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalized by the number of object centres."""
    pos = gt.eq(1).float()
    logp, log1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = (logp * (1 - p) ** 2 * pos).sum()
    neg_loss = (log1mp * p**2 * (1 - gt) ** 4 * (1 - pos)).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def gather_at(maps: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    """maps [B,C,h,w], ind [B,K] flat cell index → [B,K,C]."""
    b, c = maps.shape[:2]
    return torch.gather(maps.reshape(b, c, -1), 2, ind.unsqueeze(1).expand(-1, c, -1)).transpose(1, 2)


def jitter_boxes(boxes: torch.Tensor, scale: float, gen: torch.Generator) -> torch.Tensor:
    """Shift each box edge by N(0, scale·size) so features are learned for imperfect detections too."""
    wh = (boxes[..., 2:] - boxes[..., :2]).repeat(1, 1, 2)
    noise = torch.randn(boxes.shape, generator=gen) * scale * wh
    out = boxes + noise
    x1 = torch.minimum(out[..., 0], out[..., 2] - 1)
    y1 = torch.minimum(out[..., 1], out[..., 3] - 1)
    return torch.stack([x1, y1, out[..., 2], out[..., 3]], dim=-1)


def giou_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """1 − generalized IoU of boxes [..., 4] (x1, y1, x2, y2): trains the decoded box, which is what recall
    at IoU ≥ 0.5 measures, instead of only its log size and offset separately."""
    ix1, iy1 = torch.maximum(pred[..., 0], gt[..., 0]), torch.maximum(pred[..., 1], gt[..., 1])
    ix2, iy2 = torch.minimum(pred[..., 2], gt[..., 2]), torch.minimum(pred[..., 3], gt[..., 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area_p = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1])
    area_g = (gt[..., 2] - gt[..., 0]) * (gt[..., 3] - gt[..., 1])
    union = (area_p + area_g - inter).clamp(min=1e-6)
    cx1, cy1 = torch.minimum(pred[..., 0], gt[..., 0]), torch.minimum(pred[..., 1], gt[..., 1])
    cx2, cy2 = torch.maximum(pred[..., 2], gt[..., 2]), torch.maximum(pred[..., 3], gt[..., 3])
    hull = ((cx2 - cx1) * (cy2 - cy1)).clamp(min=1e-6)
    return 1.0 - (inter / union - (hull - union) / hull)


def decoded_boxes_at(maps: dict[str, torch.Tensor], ind: torch.Tensor, stride: int) -> torch.Tensor:
    """The boxes [B,K,4] that ``RegionDetector.decode`` would output at the GT centre cells ``ind``."""
    w = maps["size"].shape[3]
    off = gather_at(maps["offset"], ind)
    size = torch.exp(gather_at(maps["size"], ind)) * stride
    cx = ((ind % w).to(off.dtype) + 0.5 + off[..., 0]) * stride
    cy = (torch.div(ind, w, rounding_mode="floor").to(off.dtype) + 0.5 + off[..., 1]) * stride
    return torch.stack([cx - size[..., 0] / 2, cy - size[..., 1] / 2, cx + size[..., 0] / 2, cy + size[..., 1] / 2], -1)


def compute_losses(model: RegionDetector, classifier: CosineClassifier, images: torch.Tensor,
                   targets: dict[str, torch.Tensor], gen: torch.Generator, giou_weight: float = 0.0) -> dict[str, torch.Tensor]:
    maps = model.maps(images)
    mask = targets["mask"]
    n = mask.sum().clamp(min=1.0)
    hm = focal_loss(maps["heatmap"], targets["heatmap"])
    size = (F.l1_loss(gather_at(maps["size"], targets["ind"]), targets["log_size"], reduction="none").sum(-1) * mask).sum() / n
    off = (F.l1_loss(gather_at(maps["offset"], targets["ind"]), targets["offset"], reduction="none").sum(-1) * mask).sum() / n
    giou = (giou_loss(decoded_boxes_at(maps, targets["ind"], model.config.stride), targets["boxes"]) * mask).sum() / n
    feats = model.pool(maps["embed"], jitter_boxes(targets["boxes"], 0.06, gen))
    logits = classifier(feats)
    ce = (F.cross_entropy(logits.flatten(0, 1), targets["labels"].flatten(), reduction="none") * mask.flatten()).sum() / n
    acc = ((logits.argmax(-1) == targets["labels"]).float() * mask).sum() / n
    total = hm + size + off + 0.5 * ce + giou_weight * giou
    return {"heatmap": hm, "size": size, "offset": off, "giou": giou, "class": ce, "total": total, "class_acc": acc}


def make_batch(samples: list[FrameSample], cfg: DetectorConfig, rng: np.random.Generator, augment: bool,
               crop: tuple[int, int] | None = None):
    """Letterboxed (and when training: flipped, down-scaled, cropped) images with their CenterNet targets."""
    lb = [letterbox_sample(s, cfg.input_width, cfg.input_height, rng, jitter=0.35 if augment else 0.0, flip=augment)
          for s in samples]
    if crop is not None:
        lb = [crop_sample(s, crop[0], crop[1], rng) for s in lb]
    w, h = crop if crop is not None else (cfg.input_width, cfg.input_height)
    tg = [make_targets(s, w, h, cfg.stride) for s in lb]
    images = torch.from_numpy(np.stack([s.image for s in lb]))
    targets = {k: torch.from_numpy(np.stack([t[k] for t in tg])) for k in tg[0]}
    return images, targets


def save(model: RegionDetector, classifier: CosineClassifier, out: Path, meta: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / ".detector.safetensors.tmp"))
    (out / ".detector.safetensors.tmp").replace(out / "detector.safetensors")
    save_file({"weight": classifier.weight.detach().contiguous()}, str(out / "classifier.safetensors"))
    (out / "config.json").write_text(json.dumps({"detector": model.config.to_dict(), "training": meta}, indent=1))


def load_weights(model: RegionDetector, classifier: CosineClassifier, folder: Path) -> None:
    """Start from an earlier run's safetensors (same architecture); the classifier too when it was saved."""
    from safetensors.torch import load_file

    weights = folder / "detector.safetensors"
    if not weights.is_file():
        raise ConfigError(f"--init {str(folder)!r}: no detector.safetensors there; give the --out folder of a run")
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise ConfigError(f"--init {str(weights)!r} does not fit this architecture (--input-size/--feature-dim): "
                          f"{str(exc).splitlines()[0]}") from None
    if (folder / "classifier.safetensors").is_file():
        classifier.weight.data.copy_(load_file(str(folder / "classifier.safetensors"))["weight"])


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-dir", help="synthetic split folder (videos/, annotations/)")
    p.add_argument("--train-cache", nargs="*", default=[],
                   help="frame cache file(s) or glob(s) written by detector.prepare; globs are re-scanned at each "
                        "checkpoint so training can start while shards are still being written")
    p.add_argument("--val-dir", help="split folder for a quick held-out loss at each checkpoint")
    p.add_argument("--out", required=True, help="output folder (detector.safetensors, config.json, detector.onnx)")
    p.add_argument("--minutes", type=float, default=25.0, help="training time budget")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time budget only)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames-per-video", type=int, default=8)
    p.add_argument("--max-videos", type=int, default=None)
    p.add_argument("--input-size", default="320x240", help="detector input WxH (multiples of 16)")
    p.add_argument("--feature-dim", type=int, default=64)
    p.add_argument("--crop", default="192x160", help="train on random WxH crops (multiples of 16; 'none': full frames)")
    p.add_argument("--checkpoint-every", type=float, default=120.0, help="seconds between checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--giou-weight", type=float, default=0.0,
                   help="weight of the GIoU loss on the decoded box at each GT centre (v2 detector: 2.0)")
    p.add_argument("--init", help="folder with detector.safetensors (+ classifier.safetensors) to continue from")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    from vrgv.vocab import Vocabulary

    class_names = Vocabulary.default().objects
    w, h = parse_size(args.input_size)
    crop = None if args.crop.lower() == "none" else parse_size(args.crop)
    if crop is not None:
        crop = (min(crop[0], w), min(crop[1], h))
    cfg = DetectorConfig(input_width=w, input_height=h, feature_dim=args.feature_dim, class_names=class_names)
    t0 = time.time()
    if not args.train_dir and not args.train_cache:
        p.error("give --train-dir and/or --train-cache")
    train = []
    if args.train_dir:
        train += load_split_frames(args.train_dir, class_names, frames_per_video=args.frames_per_video,
                                   max_videos=args.max_videos)
    loaded: set[str] = set()
    train += load_new_caches(args.train_cache, loaded)
    val = load_split_frames(args.val_dir, class_names, frames_per_video=2, max_videos=64) if args.val_dir else []
    log.info("loaded %d train / %d val frames in %.0fs", len(train), len(val), time.time() - t0)

    model = RegionDetector(cfg)
    classifier = CosineClassifier(cfg.feature_dim, len(class_names))
    if args.init:
        load_weights(model, classifier, Path(args.init))
        log.info("continuing from the weights in %s", args.init)
    params = list(model.parameters()) + list(classifier.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60.0
    start = last_ckpt = time.time()
    step = 0
    meta = {"train_dir": args.train_dir, "train_cache": args.train_cache, "train_frames": len(train), "batch": args.batch,
            "lr": args.lr, "giou_weight": args.giou_weight, "init": args.init}
    running: dict[str, float] = {}
    while True:
        elapsed = time.time() - start
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = elapsed / budget
        lr = args.lr * (min(1.0, (step + 1) / 100)) * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.choice(len(train), size=min(args.batch, len(train)), replace=False)
        images, targets = make_batch([train[i] for i in idx], cfg, rng, augment=True, crop=crop)
        model.train()
        losses = compute_losses(model, classifier, images, targets, gen, args.giou_weight)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        step += 1
        for k, v in losses.items():
            v = float(v.detach())
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        if step % 25 == 0:
            log.info("step %d %.0fs lr %.2e %s", step, elapsed, lr, " ".join(f"{k} {v:.3f}" for k, v in running.items()))
        if time.time() - last_ckpt > args.checkpoint_every:
            new = load_new_caches(args.train_cache, loaded)
            if new:
                train += new
                log.info("added %d frames from new cache shards (%d frames)", len(new), len(train))
            meta["train_frames"] = len(train)
            meta.update(step=step, seconds=round(time.time() - start), running={k: round(v, 4) for k, v in running.items()})
            if val:
                meta["val"] = evaluate_loss(model, classifier, val, cfg, gen)
                log.info("val %s", meta["val"])
            save(model, classifier, Path(args.out), meta)
            last_ckpt = time.time()
    meta.update(step=step, seconds=round(time.time() - start), running={k: round(v, 4) for k, v in running.items()})
    if val:
        meta["val"] = evaluate_loss(model, classifier, val, cfg, gen)
        log.info("final val %s", meta["val"])
    save(model, classifier, Path(args.out), meta)
    log.info("saved %s after %d steps", args.out, step)
    if not args.no_export:
        from vrgv.training.detector.export import check_parity, export_onnx

        model.eval()
        onnx_path = export_onnx(model, Path(args.out) / "detector.onnx")
        imgs = np.stack([make_batch([s], cfg, rng, augment=False)[0][0].numpy() for s in (val or train)[:4]])
        log.info("exported %s, ORT parity %s", onnx_path, check_parity(model, onnx_path, imgs))
    return 0


def load_new_caches(patterns: list[str], loaded: set[str]) -> list[FrameSample]:
    """Frame samples of cache files matching ``patterns`` that are not in ``loaded`` (which is updated)."""
    import glob

    out: list[FrameSample] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).is_file() else []):
            if path not in loaded and not Path(path).name.startswith("."):
                out += load_cache(path)
                loaded.add(path)
    return out


def evaluate_loss(model: RegionDetector, classifier: CosineClassifier, samples: list[FrameSample],
                  cfg: DetectorConfig, gen: torch.Generator) -> dict[str, float]:
    model.eval()
    rng = np.random.default_rng(0)
    sums: dict[str, float] = {}
    with torch.no_grad():
        for i in range(0, len(samples), 16):
            images, targets = make_batch(samples[i : i + 16], cfg, rng, augment=False)
            for k, v in compute_losses(model, classifier, images, targets, gen).items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(images)
    return {k: round(v / len(samples), 4) for k, v in sums.items()}


if __name__ == "__main__":
    raise SystemExit(main())
