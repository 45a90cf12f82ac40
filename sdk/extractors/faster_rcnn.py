"""Adapter for a user's torchvision Faster R-CNN (``fasterrcnn_resnet50_fpn`` state_dict at a local path).

The paper's kind of detector: its final detections are the regions and the box head's RoI features
(TwoMLPHead, 1024-d) of those boxes are the appearance features. When fewer than M detections survive,
the top RPN proposals fill the rest (score 0), then zero boxes. Needs torch and torchvision (imported
lazily); weights are read with ``torch.load(weights_only=True)``, never unpickled objects.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vrgv.errors import BackendError, ConfigError
from vrgv.extractors.base import DEFAULT_NUM_REGIONS, RegionExtractor
from vrgv.regions import Regions
from vrgv.video import VideoFrames


def _import_torchvision():
    try:
        import torch
        import torchvision
        from torchvision.models.detection import fasterrcnn_resnet50_fpn
    except Exception as exc:  # noqa: BLE001 - a broken torchvision raises RuntimeError, not ImportError
        raise BackendError(
            f"the faster-rcnn extractor needs torch and a torchvision built for it ({type(exc).__name__}: {exc}); "
            f"install matching versions (pip install torch torchvision from the same release), or use "
            f"--extractor builtin / precomputed"
        ) from None
    return torch, torchvision, fasterrcnn_resnet50_fpn


class FasterRCNNExtractor(RegionExtractor):
    """Regions from a torchvision ``fasterrcnn_resnet50_fpn`` checkpoint; features = box-head RoI features."""

    name = "faster-rcnn"

    def __init__(
        self,
        checkpoint_path: str | os.PathLike,
        num_classes: int = 91,
        *,
        num_regions: int = DEFAULT_NUM_REGIONS,
        device: str = "cpu",
        min_size: int = 600,
        max_size: int = 1000,
        score_threshold: float = 0.0,
        batch_size: int = 4,
    ) -> None:
        path = Path(checkpoint_path)
        if not path.is_file():
            raise ConfigError(f"Faster R-CNN checkpoint {str(path)!r} does not exist; give the path of a saved state_dict")
        if num_classes < 2 or num_regions < 1 or batch_size < 1:
            raise ConfigError(
                f"faster-rcnn: num_classes={num_classes} (>=2, background included), num_regions={num_regions} (>=1), "
                f"batch_size={batch_size} (>=1) out of range"
            )
        torch, _, build = _import_torchvision()
        self.torch = torch
        self.num_regions = int(num_regions)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.read_max_side = int(max_size)
        model = build(
            weights=None, weights_backbone=None, num_classes=int(num_classes), min_size=min_size, max_size=max_size,
            box_detections_per_img=self.num_regions, box_score_thresh=float(score_threshold),
        )
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(
                f"Faster R-CNN checkpoint {str(path)!r} cannot be read with torch.load(weights_only=True) ({exc}); save "
                f"it with torch.save(model.state_dict(), PATH)"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"Faster R-CNN checkpoint {str(path)!r} does not fit fasterrcnn_resnet50_fpn(num_classes={num_classes}) "
                f"({str(exc).splitlines()[0]}); check num_classes"
            ) from None
        self.model = model.to(self.device).eval()

    @property
    def feature_dim(self) -> int:
        return int(self.model.roi_heads.box_head.fc7.out_features)

    def _detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        torch, model = self.torch, self.model
        tensors = [torch.from_numpy(f).to(self.device).permute(2, 0, 1).float() / 255.0 for f in frames]
        sizes = [tuple(t.shape[-2:]) for t in tensors]
        with torch.no_grad():
            images, _ = model.transform(tensors)
            feats = model.backbone(images.tensors)
            proposals, _ = model.rpn(images, feats)
            dets, _ = model.roi_heads(feats, proposals, images.image_sizes)
            out = []
            for k, det in enumerate(dets):
                extra = proposals[k][: self.num_regions]  # RPN proposals are sorted by objectness
                boxes = torch.cat([det["boxes"], extra])
                scores = torch.cat([det["scores"], torch.zeros(extra.shape[0], device=self.device)])
                pooled = model.roi_heads.box_roi_pool(feats, [boxes], [images.image_sizes[k]])
                roi = model.roi_heads.box_head(pooled)
                rescaled = model.transform.postprocess([{"boxes": boxes}], [images.image_sizes[k]], [sizes[k]])[0]["boxes"]
                b, s, f = rescaled.cpu().numpy(), scores.cpu().numpy(), roi.cpu().numpy()
                n = min(det["boxes"].shape[0], self.num_regions)
                # detections first (by score), then proposals in RPN order
                keep = np.r_[np.arange(n), det["boxes"].shape[0] + np.arange(extra.shape[0])][: self.num_regions]
                out.append((b[keep], s[keep], f[keep]))
        return out

    def extract_frames(self, video: VideoFrames) -> Regions:
        m = self.num_regions
        uniq, inverse = np.unique(video.frame_ids, return_inverse=True)
        first = [int(np.argmax(inverse == k)) for k in range(uniq.size)]
        results = []
        for i in range(0, len(first), self.batch_size):
            results.extend(self._detect(video.frames[first[i : i + self.batch_size]]))
        d = self.feature_dim
        boxes = np.zeros((len(first), m, 4), np.float32)
        scores = np.zeros((len(first), m), np.float32)
        feats = np.zeros((len(first), m, d), np.float32)
        for k, (b, s, f) in enumerate(results):
            b2 = np.zeros((m, 4), np.float32)
            s2 = np.zeros((m,), np.float32)
            f2 = np.zeros((m, d), np.float32)
            b2[: b.shape[0]], s2[: s.shape[0]], f2[: f.shape[0]] = b, s, f
            boxes[k], scores[k], feats[k] = b2, s2, f2
        sx, sy = video.scale
        boxes *= np.array([sx, sy, sx, sy], np.float32)
        boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0, video.width)
        boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0, video.height)
        return Regions(
            boxes=boxes[inverse], features=feats[inverse], scores=scores[inverse], frame_ids=video.frame_ids,
            width=video.width, height=video.height, num_frames=video.num_frames, video_id=video.video_id, fps=video.fps,
        )

