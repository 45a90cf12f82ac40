"""Statistics of a set of annotations (synthetic or real): objects, relation strings, predicate frequencies.

Used to describe a generated split (``vrgv synth --stats DIR``) next to the paper's ImageNet-VidVRD numbers.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from vrgv.annotations import VideoAnnotation


def summarize(annotations: Iterable[VideoAnnotation]) -> dict:
    """Per-split summary: counts, means, coverage of instances and predicate frequencies (instances, videos)."""
    anns = list(annotations)
    if not anns:
        return {"videos": 0}
    strings = np.array([len(a.relation_strings()) for a in anns])
    cover = np.array([(r.end_fid - r.begin_fid) / a.frame_count for a in anns for r in a.relations] or [0.0])
    instances = Counter(r.predicate for a in anns for r in a.relations)
    videos = Counter(p for a in anns for p in {r.predicate for r in a.relations})
    overlapping = sum(_co_occurring(a) for a in anns)
    total = sum(len(a.relations) for a in anns)
    duplicates = sum(len(set(a.categories.values())) < len(a.categories) for a in anns)
    return {
        "videos": len(anns),
        "frames_mean": round(float(np.mean([a.frame_count for a in anns])), 1),
        "frames_total": int(sum(a.frame_count for a in anns)),
        "objects_mean": round(float(np.mean([len(a.categories) for a in anns])), 2),
        "same_category_fraction": round(duplicates / len(anns), 3),
        "relation_strings_per_video": {"mean": round(float(strings.mean()), 2), "median": float(np.median(strings)),
                                       "p90": round(float(np.percentile(strings, 90)), 1), "max": int(strings.max())},
        "instances_per_video": round(float(np.mean([len(a.relations) for a in anns])), 2),
        "instance_coverage": {"mean": round(float(cover.mean()), 3),
                              "fraction_below_half": round(float((cover < 0.5).mean()), 3),
                              "fraction_below_fifth": round(float((cover < 0.2).mean()), 3)},
        "co_occurring_fraction": round(overlapping / max(total, 1), 3),
        "predicates": {p: {"instances": n, "videos": videos[p]} for p, n in instances.most_common()},
        "categories": dict(Counter(c for a in anns for c in a.categories.values()).most_common()),
    }


def _co_occurring(ann: VideoAnnotation) -> int:
    """How many instances overlap in time with an instance of another relation string of the same video."""
    spans = [(r.begin_fid, r.end_fid, ann.relation_string(r)) for r in ann.relations]
    return sum(any(b < e2 and b2 < e and s != s2 for b2, e2, s2 in spans) for b, e, s in spans)
