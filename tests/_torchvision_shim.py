"""Test-only stand-ins for torchvision's compiled ops, so the Faster R-CNN adapter's contract test runs here.

The torchvision wheels on the package index are CUDA builds: next to the CPU-only torch of this project their
``_C`` library does not load, and ``import torchvision`` then fails ("operator torchvision::nms does not
exist"). Faster R-CNN needs two of those ops at inference, ``nms`` and ``roi_align``. This module defines the
op schemas and gives those two pure-PyTorch CPU kernels (the others raise), so torchvision's Python model code
(the part the adapter depends on) can run. It is never imported by the product; with a matching torchvision
install it is not used at all.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align": "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                 "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward": "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
                           "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, "
                           "int sampling_ratio, bool aligned) -> Tensor",
    "qroi_align": "qroi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                  "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "ps_roi_align": "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                    "SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward": "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, "
                              "float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, "
                              "SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "roi_pool": "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                "SymInt pooled_width) -> (Tensor, Tensor)",
    "_roi_pool_backward": "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, "
                          "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, "
                          "SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool": "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                   "SymInt pooled_width) -> (Tensor, Tensor)",
    "_ps_roi_pool_backward": "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, "
                             "float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, "
                             "SymInt channels, SymInt height, SymInt width) -> Tensor",
    "deform_conv2d": "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
                     "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
                     "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward": "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, "
                               "Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, "
                               "SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
                               "SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
}

_LIB: torch.library.Library | None = None


def nms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, by decreasing score (torchvision's contract)."""
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = dets[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        iw = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        ih = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = iw * ih
        iou = inter / (area[i] + area - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def roi_align(input: torch.Tensor, rois: torch.Tensor, spatial_scale: float, pooled_height: int,
              pooled_width: int, sampling_ratio: int, aligned: bool) -> torch.Tensor:
    """Average of bilinear samples on a regular grid in each output bin (grid_sample per image)."""
    n_rois = rois.shape[0]
    out = input.new_zeros((n_rois, input.shape[1], pooled_height, pooled_width))
    if n_rois == 0:
        return out
    height, width = input.shape[-2:]
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, k] * spatial_scale - offset for k in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    sr = sampling_ratio if sampling_ratio > 0 else 2
    frac_y = (torch.arange(pooled_height * sr, dtype=input.dtype) + 0.5) / (pooled_height * sr)
    frac_x = (torch.arange(pooled_width * sr, dtype=input.dtype) + 0.5) / (pooled_width * sr)
    ys = y1[:, None] + roi_h[:, None] * frac_y  # [K, ph*sr] in feature pixels
    xs = x1[:, None] + roi_w[:, None] * frac_x
    gy = (ys / max(height - 1, 1) * 2 - 1)[:, :, None].expand(-1, -1, xs.shape[1])
    gx = (xs / max(width - 1, 1) * 2 - 1)[:, None, :].expand(-1, ys.shape[1], -1)
    grid = torch.stack([gx, gy], dim=-1)  # [K, ph*sr, pw*sr, 2]
    batch = rois[:, 0].long()
    for b in batch.unique().tolist():
        sel = (batch == b).nonzero().squeeze(1)
        g = grid[sel].reshape(1, -1, grid.shape[2], 2)
        sampled = F.grid_sample(input[b : b + 1], g, mode="bilinear", padding_mode="zeros", align_corners=True)
        sampled = sampled.reshape(input.shape[1], len(sel), pooled_height * sr, pooled_width * sr).transpose(0, 1)
        out[sel] = F.avg_pool2d(sampled, sr)
    return out


def _unavailable(name: str):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"torchvision::{name} has no test stand-in")
    return fn


def install() -> None:
    """Define the torchvision op schemas with stand-in CPU kernels (once per process), then let torchvision's
    Python side believe its ops loaded."""
    global _LIB
    if _LIB is None:
        _LIB = torch.library.Library("torchvision", "DEF")
        for name, schema in SCHEMAS.items():
            _LIB.define(schema)
            kernel = {"nms": nms, "roi_align": roi_align}.get(name, _unavailable(name))
            _LIB.impl(name, kernel, "CPU")
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True
