"""The built-in region detector: small CNN (stride 4) + CenterNet-style heads, top-M decoding in the graph.

Input uint8 [B,H,W,3] RGB at the fixed size of the config (letterboxed by the caller). Outputs boxes
[B,M,4] (x1,y1,x2,y2 in input pixels), objectness scores [B,M] and L2-normalized appearance features
[B,M,D], each feature the mean of the embedding map sampled (grid_sample) on a G×G grid inside its box.
Decoding is max-pool peak NMS + TopK only, so the exported ONNX graph has no data-dependent control flow.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vrgv.errors import ConfigError


@dataclass
class DetectorConfig:
    """Architecture and decoding settings; saved as ``config.json`` next to the weights and the ONNX."""

    input_width: int = 320
    input_height: int = 240
    stride: int = 4
    channels: tuple[int, ...] = (16, 24, 48, 64)
    head_channels: int = 32
    head_mid: int = 48
    feature_dim: int = 64
    num_regions: int = 40
    pool_grid: int = 3
    pool_extent: float = 1.0  # fraction of the box (centred) that the pooling grid covers
    class_names: list[str] = field(default_factory=list)
    max_log_size: float = 6.0
    # Box hypotheses per heatmap peak: the predicted size times each factor. (1.0,) is one box per peak;
    # the shipped detector's (1.0, 1.25) spends the M regions on the top ceil(M/2) peaks at two sizes, which
    # raises recall when the size head is off (proposals are about recall; the grounding model picks).
    box_scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.box_scales = tuple(float(s) for s in self.box_scales)
        if not self.box_scales or any(not 0.1 <= s <= 10.0 for s in self.box_scales) or len(self.box_scales) > self.num_regions:
            raise ConfigError(f"detector config: box_scales={self.box_scales} must be 1..num_regions factors in [0.1, 10]")
        if self.stride != 4 or len(self.channels) != 4:
            raise ConfigError(f"detector config: only stride 4 with 4 stages is built, got stride {self.stride}, "
                              f"channels {self.channels}")
        for side, value in (("input_width", self.input_width), ("input_height", self.input_height)):
            if value % 16:
                raise ConfigError(f"detector config: {side}={value} must be a multiple of 16 (backbone stride)")
        if not 1 <= self.num_regions <= 1000 or self.feature_dim < 8 or self.pool_grid < 1:
            raise ConfigError(
                f"detector config: num_regions={self.num_regions} (1..1000), feature_dim={self.feature_dim} (>=8), "
                f"pool_grid={self.pool_grid} (>=1) out of range"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["box_scales"] = list(self.box_scales)
        return d

    @property
    def num_peaks(self) -> int:
        """Heatmap peaks decoded per frame: enough that peaks × box_scales covers num_regions."""
        return -(-self.num_regions // len(self.box_scales))

    @classmethod
    def from_dict(cls, data: dict) -> "DetectorConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _conv(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RegionDetector(nn.Module):
    """Backbone + top-down neck at stride 4, one shared 3×3 head conv, then 1×1 outputs: heatmap logit,
    log box size (2), centre offset (2) and the D-dim embedding map. Fully convolutional: it trains on
    crops and runs at the fixed export size."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2, c3 = config.channels
        h = config.head_channels
        self.stem = _conv(3, c0, 2)
        self.s4 = nn.Sequential(_conv(c0, c1, 2), _conv(c1, c1))
        self.s8 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2))
        self.s16 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3), _conv(c3, c3))
        self.lat16 = nn.Conv2d(c3, h, 1)
        self.lat8 = nn.Conv2d(c2, h, 1)
        self.lat4 = nn.Conv2d(c1, h, 1)
        self.smooth = _conv(h, h)
        self.head = nn.Sequential(nn.Conv2d(h, config.head_mid, 3, 1, 1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(config.head_mid, 5 + config.feature_dim, 1)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[0] = -2.19  # CenterNet prior: sigmoid ≈ 0.1
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255.0, persistent=False)

    # dense maps ----------------------------------------------------------------------------------
    def maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8/float [B,H,W,3] RGB 0..255 → heatmap logits [B,1,h,w], log sizes, offsets, embedding map."""
        x = images.permute(0, 3, 1, 2).float()
        x = (x - self.mean) / self.std
        f2 = self.stem(x)
        f4 = self.s4(f2)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        p = self.lat16(f16)
        p = self.lat8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self.lat4(f4) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        o = self.out(self.head(self.smooth(p)))
        return {
            "heatmap": o[:, 0:1],
            "size": o[:, 1:3].clamp(-2.0, self.config.max_log_size),
            "offset": o[:, 3:5],
            "embed": o[:, 5:],
        }

    def pool(self, embed: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Mean of ``embed`` [B,D,h,w] on a G×G grid inside ``boxes`` [B,K,4] (input pixels) → L2-normed [B,K,D]."""
        g, stride = self.config.pool_grid, self.config.stride
        e = self.config.pool_extent
        frac = 0.5 + e * ((torch.arange(g, dtype=boxes.dtype, device=boxes.device) + 0.5) / g - 0.5)  # cell centres
        x1, y1, x2, y2 = boxes.unbind(-1)
        xs = x1.unsqueeze(-1) + (x2 - x1).unsqueeze(-1) * frac  # [B,K,G]
        ys = y1.unsqueeze(-1) + (y2 - y1).unsqueeze(-1) * frac
        W, H = float(embed.shape[3] * stride), float(embed.shape[2] * stride)
        gx = (xs / W * 2.0 - 1.0).unsqueeze(-2).expand(-1, -1, g, g)  # [B,K,G(y),G(x)]
        gy = (ys / H * 2.0 - 1.0).unsqueeze(-1).expand(-1, -1, g, g)
        grid = torch.stack([gx, gy], dim=-1).flatten(2, 3)  # [B,K,G*G,2]
        sampled = F.grid_sample(embed, grid, mode="bilinear", padding_mode="border", align_corners=False)
        feats = sampled.mean(dim=-1).transpose(1, 2)  # [B,K,D]
        return F.normalize(feats, dim=-1, eps=1e-6)

    # decoding ------------------------------------------------------------------------------------
    def decode(self, maps: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top heatmap peaks (3×3 max-pool NMS), one box per peak and box scale → boxes [B,M,4], scores [B,M],
        features [B,M,D]; regions are peak-major (a peak's hypotheses are adjacent), ordered by score."""
        cfg = self.config
        heat = torch.sigmoid(maps["heatmap"])
        b, _, h, w = heat.shape
        keep = (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).to(heat.dtype)
        flat = (heat * keep).reshape(b, h * w)
        scores, idx = torch.topk(flat, cfg.num_peaks, dim=1)
        ys = torch.div(idx, w, rounding_mode="floor").to(heat.dtype)
        xs = (idx - torch.div(idx, w, rounding_mode="floor") * w).to(heat.dtype)
        gather_idx = idx.unsqueeze(1).expand(-1, 2, -1)
        off = torch.gather(maps["offset"].reshape(b, 2, h * w), 2, gather_idx)  # [B,2,M]
        size = torch.exp(torch.gather(maps["size"].reshape(b, 2, h * w), 2, gather_idx)) * cfg.stride
        cx = (xs + 0.5 + off[:, 0]) * cfg.stride
        cy = (ys + 0.5 + off[:, 1]) * cfg.stride
        if cfg.box_scales != (1.0,):  # [B,2,P] → [B,2,P·S] peak-major, cut to M (static shapes for export)
            k = len(cfg.box_scales)
            factors = torch.tensor(cfg.box_scales, dtype=size.dtype, device=size.device)
            size = (size.unsqueeze(-1) * factors).flatten(2)[:, :, : cfg.num_regions]
            cx, cy, scores = (t.unsqueeze(-1).expand(*t.shape, k).flatten(1)[:, : cfg.num_regions] for t in (cx, cy, scores))
        W, H = float(w * cfg.stride), float(h * cfg.stride)
        boxes = torch.stack(
            [
                (cx - size[:, 0] / 2).clamp(0.0, W),
                (cy - size[:, 1] / 2).clamp(0.0, H),
                (cx + size[:, 0] / 2).clamp(0.0, W),
                (cy + size[:, 1] / 2).clamp(0.0, H),
            ],
            dim=-1,
        )
        feats = self.pool(maps["embed"], boxes)
        return boxes, scores, feats

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.decode(self.maps(images))


class CosineClassifier(nn.Module):
    """Scaled cosine logits over categories: trains the L2-normalized features to separate categories."""

    def __init__(self, dim: int, num_classes: int, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim) / math.sqrt(dim))
        self.scale = scale

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.scale * feats @ F.normalize(self.weight, dim=-1).t()
