"""Region extractors: the N sampled frames of a video → ``Regions`` (M boxes, scores, D-dim features per frame).

``get_extractor("builtin" | "precomputed" | "faster-rcnn", ...)`` builds one; ``extract(source)`` is the
one-call path from a video file, frame folder or array to ``Regions`` with the built-in detector.
"""
from __future__ import annotations

from typing import Any

from vrgv.extractors.base import DEFAULT_NUM_REGIONS, EXTRACTOR_NAMES, RegionExtractor, get_extractor
from vrgv.regions import DEFAULT_NUM_SAMPLES, Regions
from vrgv.video import VideoSource


def extract(
    source: VideoSource, num_samples: int = DEFAULT_NUM_SAMPLES, *, extractor: str | RegionExtractor = "builtin",
    **kwargs: Any,
) -> Regions:
    """Regions of a video file, frame folder or frame array (``kwargs`` go to :func:`get_extractor`)."""
    ex = extractor if isinstance(extractor, RegionExtractor) else get_extractor(extractor, **kwargs)
    return ex.extract(source, num_samples)


__all__ = ["DEFAULT_NUM_REGIONS", "EXTRACTOR_NAMES", "RegionExtractor", "extract", "get_extractor"]
