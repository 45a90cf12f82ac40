"""Regions a user computed with their own detector: a folder of ``<video_id>.npz`` files in the Regions format.

Nothing is decoded by :meth:`PrecomputedExtractor.extract`: the file named after the video is loaded and
validated. Called with decoded frames, the file's frame ids, size and frame count are checked against them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vrgv.errors import ConfigError, RegionsError
from vrgv.extractors.base import RegionExtractor
from vrgv.regions import DEFAULT_NUM_SAMPLES, Regions
from vrgv.video import VideoFrames, VideoSource


class PrecomputedExtractor(RegionExtractor):
    """Looks up ``folder/<video_id>.npz`` (``Regions.save`` format) for each video."""

    name = "precomputed"

    def __init__(self, folder: str | os.PathLike, *, num_regions: int | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ConfigError(f"precomputed regions folder {str(folder)!r} does not exist or is not a folder")
        self.files = {p.stem: p for p in sorted(self.folder.glob("*.npz"))}
        if not self.files:
            raise ConfigError(f"precomputed regions folder {str(folder)!r} holds no .npz files; write them with Regions.save")
        self._feature_dim: int | None = None
        if num_regions is not None:
            self.num_regions = int(num_regions)

    @property
    def feature_dim(self) -> int:
        if self._feature_dim is None:
            self._feature_dim = self.load(next(iter(self.files))).feature_dim
        return self._feature_dim

    def video_ids(self) -> list[str]:
        return list(self.files)

    def load(self, video_id: str) -> Regions:
        """The Regions of ``video_id``; RegionsError when the folder has no file for it."""
        path = self.files.get(str(video_id))
        if path is None:
            raise RegionsError(
                f"no precomputed regions for video {video_id!r} in {str(self.folder)!r} (expected {video_id}.npz; "
                f"the folder has {len(self.files)} file(s))"
            )
        regions = Regions.load(path)
        if regions.num_regions < self.num_regions:
            raise RegionsError(
                f"regions file {str(path)!r} has {regions.num_regions} regions per frame, fewer than the "
                f"{self.num_regions} asked for"
            )
        return regions

    def extract_frames(self, video: VideoFrames) -> Regions:
        regions = self.load(video.video_id)
        name = f"regions file {str(self.files[video.video_id])!r}"
        if (regions.width, regions.height) != (video.width, video.height):
            raise RegionsError(
                f"{name} is for a {regions.width}x{regions.height} video but the video is {video.width}x{video.height}"
            )
        if regions.num_frames != video.num_frames or not np.array_equal(regions.frame_ids, video.frame_ids):
            raise RegionsError(
                f"{name} was sampled at other frames (num_frames {regions.num_frames}, {regions.num_samples} samples) "
                f"than the video (num_frames {video.num_frames}, {video.num_samples} samples); re-extract it with "
                f"--num-samples {video.num_samples}"
            )
        return regions

    def extract(self, source: VideoSource, num_samples: int = DEFAULT_NUM_SAMPLES, **read_kwargs: Any) -> Regions:
        """Load ``<video_id>.npz`` for a video path / id without decoding (arrays need ``video_id=``)."""
        if isinstance(source, np.ndarray):
            return super().extract(source, num_samples, **read_kwargs)
        path = Path(source)
        vid = read_kwargs.get("video_id") or (path.name if path.is_dir() else path.stem)
        regions = self.load(vid)
        if regions.num_samples != int(num_samples):
            raise RegionsError(
                f"regions file {str(self.files[vid])!r} has {regions.num_samples} sampled frames, not {num_samples}; "
                f"re-extract it or pass num_samples={regions.num_samples}"
            )
        return regions
