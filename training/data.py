"""Weakly supervised training data: (video, relation string) samples and the regions of each video.

Only video-level labels are read from annotations (``VideoAnnotation.relation_strings()``); time spans and
object ids never reach training. Regions come from a folder of ``Regions`` npz files, the simulator, or the
region extractor (cached as npz), and are kept in memory as float16 to fit a whole split.
"""
from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vrgv.annotations import VideoAnnotation
from vrgv.errors import RegionsError, RelationError
from vrgv.regions import Regions
from vrgv.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One weak label: the relation holds somewhere in the video."""

    video_id: str
    relation: str


def weak_samples(annotations: Sequence[VideoAnnotation], vocab: Vocabulary) -> list[Sample]:
    """Distinct relation strings per video (canonical, in the vocabulary); unknown ones are skipped and logged."""
    out, skipped = [], set()
    for ann in annotations:
        for rel in ann.relation_strings():
            try:
                out.append(Sample(ann.video_id, str(vocab.canonical(rel))))
            except RelationError:
                skipped.add(rel)
    if skipped:
        log.warning("skipped %d relation(s) outside the vocabulary, e.g. %s", len(skipped), sorted(skipped)[:3])
    return out


@dataclass
class VideoRegions:
    """One video's model inputs kept in memory: normalised boxes and features (float16), plus geometry."""

    boxes_norm: np.ndarray  # f32 [N,M,5]
    features: np.ndarray  # f16 [N,M,D]
    frame_ids: np.ndarray  # i64 [N]
    width: int
    height: int
    num_frames: int

    @classmethod
    def from_regions(cls, regions: Regions, num_samples: int, num_regions: int) -> "VideoRegions":
        """Check N, keep the top ``num_regions`` (by score when given) or pad with empty regions."""
        if regions.num_samples != num_samples:
            raise RegionsError(
                f"regions of video {regions.video_id!r} have {regions.num_samples} sampled frames, the model uses "
                f"{num_samples}; extract them with N={num_samples} (vrgv.regions.sample_frame_ids)"
            )
        boxes, feats = regions.normalized_boxes(), regions.features
        m = regions.num_regions
        if m > num_regions:
            order = (np.argsort(-regions.scores, axis=1, kind="stable")[:, :num_regions] if regions.scores is not None
                     else np.tile(np.arange(num_regions), (num_samples, 1)))
            boxes = np.take_along_axis(boxes, order[..., None], axis=1)
            feats = np.take_along_axis(feats, order[..., None], axis=1)
        elif m < num_regions:
            pad = num_regions - m
            boxes = np.concatenate([boxes, np.zeros((num_samples, pad, 5), np.float32)], axis=1)
            feats = np.concatenate([feats, np.zeros((num_samples, pad, feats.shape[2]), np.float32)], axis=1)
        return cls(boxes.astype(np.float32), feats.astype(np.float16), regions.frame_ids, regions.width,
                   regions.height, regions.num_frames)

    def pixel_boxes(self) -> np.ndarray:
        """float32 [N,M,4] boxes back in pixels (for linking)."""
        b = self.boxes_norm[..., :4]
        return b * np.array([self.width, self.height, self.width, self.height], np.float32)


def load_region_folder(folder: str | os.PathLike, video_ids: Sequence[str], num_samples: int,
                       num_regions: int) -> dict[str, VideoRegions]:
    """``folder/<video_id>.npz`` for every id; missing files raise RegionsError naming them."""
    folder = Path(folder)
    missing = [v for v in video_ids if not (folder / f"{v}.npz").is_file()]
    if missing:
        raise RegionsError(
            f"regions folder {str(folder)!r} lacks {len(missing)} of {len(video_ids)} videos (e.g. {missing[:3]}); "
            f"extract them with `vrgv extract` or use --simulate-regions"
        )
    return {v: VideoRegions.from_regions(Regions.load(folder / f"{v}.npz"), num_samples, num_regions) for v in video_ids}


@dataclass
class Batch:
    """Tensors of one training batch: V distinct videos, B samples indexing them."""

    boxes_norm: "object"  # torch f32 [V,N,M,5]
    features: "object"  # torch f32 [V,N,M,D]
    video_index: "object"  # torch i64 [B]
    query_ids: "object"  # torch i64 [B,5]
    targets: "object"  # torch i64 [B,T]
    predicate_labels: "object" = None  # torch f32 [B,P]: predicates the video's labels give for the sample's pair
    predicate_index: "object" = None  # torch i64 [B]: the sample's own predicate
    object_labels: "object" = None  # torch f32 [V,C]: object categories the video's labels name
    pair_index: "object" = None  # torch i64 [B,2]: the sample's subject and object category

    def model_inputs(self) -> tuple:
        """Positional arguments of ``VRGVModel.forward``."""
        return (self.boxes_norm, self.features, self.video_index, self.query_ids, self.targets,
                self.predicate_labels, self.predicate_index, self.object_labels, self.pair_index)


def decoder_targets(vocab: Vocabulary, relation: str, use_predicate: bool) -> list[int]:
    """``encode_words``; without the predicate (Co-occurrence): ``[subject, object, <eos>]``."""
    words = vocab.encode_words(relation)
    return words if use_predicate else [words[0], words[-2], words[-1]]


def video_labels(samples: Sequence[Sample]) -> dict[str, set[str]]:
    """The weak labels: every video's set of relation strings."""
    out: dict[str, set[str]] = {}
    for s in samples:
        out.setdefault(s.video_id, set()).add(s.relation)
    return out


def predicate_targets(samples: Sequence[Sample], vocab: Vocabulary,
                      labels: dict[str, set[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot f32 [B,P] of the predicates that hold somewhere in the sample's video between its subject and
    object category (from the video-level labels only), and each sample's own predicate index i64 [B]."""
    index = {p: i for i, p in enumerate(vocab.predicates)}
    multi = np.zeros((len(samples), len(index)), np.float32)
    own = np.zeros(len(samples), np.int64)
    for b, s in enumerate(samples):
        rel = vocab.canonical(s.relation)
        own[b] = index[rel.predicate]
        for other in labels.get(s.video_id, ()):
            o = vocab.canonical(other)
            if o.subject == rel.subject and o.object == rel.object:
                multi[b, index[o.predicate]] = 1.0
        multi[b, own[b]] = 1.0
    return multi, own


def object_targets(samples: Sequence[Sample], videos: Sequence[str], vocab: Vocabulary,
                   labels: dict[str, set[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot f32 [V,C] of the object categories named anywhere in each video's relation labels (weak,
    video-level), and each sample's subject and object category index i64 [B,2]."""
    index = {o: i for i, o in enumerate(vocab.objects)}
    multi = np.zeros((len(videos), len(index)), np.float32)
    for v, video in enumerate(videos):
        for rel in labels.get(video, ()):
            r = vocab.canonical(rel)
            multi[v, index[r.subject]] = multi[v, index[r.object]] = 1.0
    pair = np.zeros((len(samples), 2), np.int64)
    for b, s in enumerate(samples):
        r = vocab.canonical(s.relation)
        pair[b] = index[r.subject], index[r.object]
    return multi, pair


def make_batch(samples: Sequence[Sample], store: dict[str, VideoRegions], vocab: Vocabulary,
               use_predicate: bool, labels: dict[str, set[str]] | None = None) -> Batch:
    """Tensors for ``samples``; with ``labels`` (``video_labels``) also the multi-label predicate and object
    category targets of the MIL losses."""
    import torch

    videos = list(dict.fromkeys(s.video_id for s in samples))
    pos = {v: i for i, v in enumerate(videos)}
    boxes = torch.from_numpy(np.stack([store[v].boxes_norm for v in videos]).astype(np.float32))
    feats = torch.from_numpy(np.stack([store[v].features for v in videos]).astype(np.float32))
    query = vocab.encode_query([s.relation for s in samples])
    if not use_predicate:
        query[:, 1:-1] = 0
    words = [decoder_targets(vocab, s.relation, use_predicate) for s in samples]
    targets = np.zeros((len(words), max(map(len, words))), np.int64)
    for i, w in enumerate(words):
        targets[i, : len(w)] = w
    batch = Batch(boxes, feats, torch.tensor([pos[s.video_id] for s in samples], dtype=torch.int64),
                  torch.from_numpy(query), torch.from_numpy(targets))
    if labels is not None and use_predicate:
        multi, own = predicate_targets(samples, vocab, labels)
        batch.predicate_labels, batch.predicate_index = torch.from_numpy(multi), torch.from_numpy(own)
    if labels is not None:
        objects, pair = object_targets(samples, videos, vocab, labels)
        batch.object_labels, batch.pair_index = torch.from_numpy(objects), torch.from_numpy(pair)
    return batch


def iterate_batches(samples: Sequence[Sample], batch_size: int, rng: np.random.Generator | None) -> Iterator[list[Sample]]:
    """Mini-batches of samples. With ``rng``: videos in random order, each video's samples kept together (in
    random order) so a batch embeds few videos (the region encoder runs once per video); else in order."""
    if rng is None:
        order = list(range(len(samples)))
    else:
        by_video: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            by_video.setdefault(s.video_id, []).append(i)
        videos = list(by_video)
        order = [i for v in rng.permutation(len(videos)) for i in rng.permutation(by_video[videos[v]])]
    for start in range(0, len(order), batch_size):
        yield [samples[i] for i in order[start: start + batch_size]]


def cap_per_video(samples: Sequence[Sample], cap: int, rng: np.random.Generator) -> list[Sample]:
    """At most ``cap`` random samples of each video (all when ``cap`` is 0), in the original order."""
    if cap <= 0:
        return list(samples)
    by_video: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_video.setdefault(s.video_id, []).append(i)
    keep = sorted(i for idx in by_video.values() for i in (rng.choice(idx, cap, replace=False) if len(idx) > cap else idx))
    return [samples[i] for i in keep]


def split_by_video(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``val_fraction`` of the videos (not samples) for early stopping."""
    videos = sorted({s.video_id for s in samples})
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_fraction * len(videos)))) if len(videos) > 1 else 0
    val = set(rng.permutation(videos)[:n_val].tolist())
    return [s for s in samples if s.video_id not in val], [s for s in samples if s.video_id in val]


def load_regions(annotations: Sequence[VideoAnnotation], *, regions_dir: str | os.PathLike | None = None,
                 videos_dir: str | os.PathLike | None = None, simulate: "object | None" = None,
                 cache_dir: str | os.PathLike | None = None, num_samples: int = 120, num_regions: int = 40,
                 seed: int = 0, categories: Sequence[str] | None = None) -> dict[str, VideoRegions]:
    """Regions of every annotated video from exactly one source: a ``Regions`` folder, videos run through
    the built-in extractor (cached as ``cache_dir/<id>.npz``), or the simulator (a ``SimulationConfig``)."""
    chosen = [x is not None for x in (regions_dir, videos_dir, simulate)]
    if sum(chosen) != 1:
        raise RegionsError("give exactly one region source: --regions DIR, --videos DIR or --simulate-regions")
    ids = [a.video_id for a in annotations]
    if regions_dir is not None:
        return load_region_folder(regions_dir, ids, num_samples, num_regions)
    if simulate is not None:
        from vrgv.training.simulate import simulate_regions

        return {a.video_id: VideoRegions.from_regions(simulate_regions(a, simulate, seed, list(categories or [])),
                                                      num_samples, num_regions) for a in annotations}
    from vrgv.extractors import get_extractor

    videos = Path(videos_dir)
    cache = Path(cache_dir) if cache_dir is not None else videos.parent / "regions_cache"
    extractor = None
    out = {}
    for a in annotations:
        cached = cache / f"{a.video_id}.npz"
        if not cached.is_file():
            matches = sorted(videos.glob(f"{a.video_id}.*"))
            if not matches:
                raise RegionsError(f"videos folder {str(videos)!r} has no file named {a.video_id}.* for its annotation")
            extractor = extractor or get_extractor("builtin")
            extractor.extract(matches[0], num_samples).save(cached)
        out[a.video_id] = VideoRegions.from_regions(Regions.load(cached), num_samples, num_regions)
    return out


def add_region_source_arguments(parser: "argparse.ArgumentParser") -> None:
    """The ``--regions | --videos | --simulate-regions`` choice that the checkpoint tools share (exactly one)."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--regions", help="folder of <video_id>.npz Regions")
    src.add_argument("--videos", help="folder of videos (built-in extractor, cached)")
    src.add_argument("--simulate-regions", action="store_true", help="simulate regions from the annotated boxes")


def checkpoint_regions(args: "argparse.Namespace", annotations: Sequence[VideoAnnotation], model: Any,
                       vocab: Vocabulary, meta: dict, seed: int) -> dict[str, VideoRegions]:
    """Regions of ``annotations`` from the source chosen with :func:`add_region_source_arguments`, sized for a
    checkpoint's model (simulated with the overrides its training recorded)."""
    from vrgv.training.simulate import SimulationConfig

    c = model.config
    sim = SimulationConfig(num_samples=c.num_frames, num_regions=c.num_regions, feature_dim=c.feature_dim,
                           **meta.get("simulation", {}).get("overrides", {})) if args.simulate_regions else None
    return load_regions(annotations, regions_dir=args.regions, videos_dir=args.videos, simulate=sim,
                        num_samples=c.num_frames, num_regions=c.num_regions, seed=seed, categories=vocab.objects)
