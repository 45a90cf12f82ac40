"""The synthetic relation world: videos of moving, interacting objects with exact relation ground truth.

``sample_video(seed, index)`` simulates one video (``.annotation``, ``.frames()``, ``.write(dir)``);
``generate_split(out_dir, num_videos, seed)`` writes ``videos/<id>.mp4`` + ``annotations/<id>.json`` with a
process pool; ``demo_video(out_dir)`` writes the fixed demo clip. Seed ranges: training/validation/test splits
use seeds below 1000 (the standard ones: train 1, val 2, test 3); seed 9999 is reserved for the demo.
"""
from __future__ import annotations

from vrgv.synth.categories import CATEGORIES
from vrgv.synth.predicates import PREDICATES, RULES, predicate_mask, relations_from_boxes
from vrgv.synth.split import DEMO_SEED, GENERATOR_VERSION, SynthVideo, demo_video, generate_split, sample_video
from vrgv.synth.world import SynthOptions, video_id_for

__all__ = [
    "CATEGORIES",
    "DEMO_SEED",
    "GENERATOR_VERSION",
    "PREDICATES",
    "RULES",
    "SynthOptions",
    "SynthVideo",
    "demo_video",
    "generate_split",
    "predicate_mask",
    "relations_from_boxes",
    "sample_video",
    "video_id_for",
]
