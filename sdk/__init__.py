"""vrgv: visual relation grounding in videos (Xiao et al., ECCV 2020) as a deployment SDK.

``vrgv.Grounder.load(bundle).ground(video, "person-ride-bicycle")`` returns a :class:`Grounding`: the
segment where the relation holds and the subject's and object's box trajectories. The runtime imports
without torch; training (``vrgv.training``) and export (``vrgv.export``) need the ``train`` extra.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from vrgv.errors import (
    AnnotationError,
    BackendError,
    BundleError,
    ConfigError,
    LinkingError,
    RegionsError,
    RelationError,
    VideoError,
    VrgvError,
)
from vrgv.grounding import Grounding, Trajectory
from vrgv.regions import Regions, sample_frame_ids
from vrgv.relation import Relation
from vrgv.vocab import Vocabulary

__version__ = "0.1.0"

# Heavier pieces load on first use so ``import vrgv`` stays fast and torch-free.
_LAZY = {
    "Grounder": "vrgv.grounder",
    "VideoAnnotation": "vrgv.annotations",
    "evaluate": "vrgv.metric",
    "link": "vrgv.linking",
    "link_many": "vrgv.linking",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vrgv' has no attribute {name!r}")


__all__ = [
    "AnnotationError",
    "BackendError",
    "BundleError",
    "ConfigError",
    "Grounding",
    "LinkingError",
    "Regions",
    "RegionsError",
    "Relation",
    "RelationError",
    "Trajectory",
    "VideoError",
    "Vocabulary",
    "VrgvError",
    "sample_frame_ids",
    *_LAZY,
]
