"""The region-extractor interface: sampled frames of one video in, ``Regions`` (M boxes + features per frame) out.

Every extractor is a callable ``extractor(video: VideoFrames) -> Regions``; the array form of the
contract ``extractor(frames, frame_ids, *, num_frames, width, height, video_id, fps)`` is accepted too.
``extract(source)`` decodes a video file, frame folder or array first. ``get_extractor(name, ...)``
builds one by name (``builtin``, ``precomputed``, ``faster-rcnn``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from vrgv.errors import ConfigError
from vrgv.regions import DEFAULT_NUM_SAMPLES, Regions
from vrgv.video import VideoFrames, VideoSource, read_video

DEFAULT_NUM_REGIONS = 40
EXTRACTOR_NAMES = ("builtin", "precomputed", "faster-rcnn")


class RegionExtractor(ABC):
    """Turns the N sampled frames of a video into ``Regions`` with ``num_regions`` boxes per frame."""

    name: str = "extractor"
    num_regions: int = DEFAULT_NUM_REGIONS
    #: longer frame side kept when decoding for this extractor (None: full size); bounds memory
    read_max_side: int | None = None

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """D, the length of each region's appearance feature."""

    @abstractmethod
    def extract_frames(self, video: VideoFrames) -> Regions:
        """Regions of ``video`` (boxes in original pixels: ``video.width`` × ``video.height``)."""

    def __call__(
        self,
        video: VideoFrames | np.ndarray,
        frame_ids: np.ndarray | None = None,
        *,
        num_frames: int | None = None,
        width: int | None = None,
        height: int | None = None,
        video_id: str = "video",
        fps: float | None = None,
    ) -> Regions:
        if not isinstance(video, VideoFrames):
            frames = np.asarray(video)
            if frame_ids is None:
                frame_ids = np.arange(frames.shape[0], dtype=np.int64)
            ids = np.asarray(frame_ids, dtype=np.int64)
            video = VideoFrames(
                frames=frames, frame_ids=ids,
                num_frames=num_frames if num_frames is not None else int(ids.max()) + 1 if ids.size else 0,
                width=width if width is not None else frames.shape[2] if frames.ndim == 4 else 0,
                height=height if height is not None else frames.shape[1] if frames.ndim == 4 else 0,
                video_id=video_id, fps=fps,
            )
        return self.extract_frames(video)

    def extract(self, source: VideoSource, num_samples: int = DEFAULT_NUM_SAMPLES, **read_kwargs: Any) -> Regions:
        """Decode ``source`` (video file, frame folder or array) with :func:`vrgv.video.read_video`, then extract."""
        read_kwargs.setdefault("max_side", self.read_max_side)
        return self(read_video(source, num_samples, **read_kwargs))


def get_extractor(name: str = "builtin", **kwargs: Any) -> RegionExtractor:
    """Build an extractor by name: ``builtin`` (ONNX detector; ``detector=PATH``), ``precomputed``
    (``folder=DIR`` of ``<video_id>.npz``) or ``faster-rcnn`` (``checkpoint=PATH``, ``num_classes=K``)."""
    key = str(name).lower().replace("_", "-")
    if key in ("builtin", "onnx", "default"):
        from vrgv.extractors.onnx_detector import OnnxDetectorExtractor

        return OnnxDetectorExtractor(kwargs.pop("detector", None), **kwargs)
    if key == "precomputed":
        from vrgv.extractors.precomputed import PrecomputedExtractor

        folder = kwargs.pop("folder", None)
        if folder is None:
            raise ConfigError("the precomputed extractor needs folder=DIR (a folder of <video_id>.npz Regions files)")
        return PrecomputedExtractor(folder, **kwargs)
    if key in ("faster-rcnn", "fasterrcnn"):
        from vrgv.extractors.faster_rcnn import FasterRCNNExtractor

        ckpt = kwargs.pop("checkpoint", None)
        if ckpt is None:
            raise ConfigError("the faster-rcnn extractor needs checkpoint=PATH (a torchvision state_dict file)")
        return FasterRCNNExtractor(ckpt, **kwargs)
    raise ConfigError(f"unknown region extractor {name!r}; choose one of {', '.join(EXTRACTOR_NAMES)}")

