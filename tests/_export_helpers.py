"""Shared helpers for the export, bundle and backend tests: a small real ``VRGVModel`` and bundle tools."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from vrgv.bundle import MANIFEST, sha256_file
from vrgv.vocab import Vocabulary

SMALL = dict(feature_dim=8, word_dim=8, region_dim=16, attention_dim=16, hidden_dim=16, num_frames=12,
             clip_len=4, num_regions=5)


def small_model(seed: int = 0, **overrides):
    """(model, vocab, meta) for a small VRGVModel over the default vocabulary, in eval mode."""
    from vrgv.training.config import ModelConfig
    from vrgv.training.model import VRGVModel

    vocab = Vocabulary.default()
    torch.manual_seed(seed)
    model = VRGVModel(ModelConfig(vocab_size=len(vocab), **{**SMALL, **overrides})).eval()
    meta = {"command": "pytest small model", "metrics": {"AccR": 0.5}}
    return model, vocab, meta


def resign(bundle_dir: Path) -> None:
    """Recompute the manifest checksums after a test edits bundle files on purpose."""
    path = bundle_dir / MANIFEST
    data = json.loads(path.read_text())
    files = {}
    for f in sorted(p for p in bundle_dir.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[f.relative_to(bundle_dir).as_posix()] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    data["files"] = files
    path.write_text(json.dumps(data))


BACKEND_RELATIONS = ["person-ride-bicycle", "dog-stand_left-car", "person-walk_front-person", "car-faster-bus"]


def small_bundle(folder: Path):
    """Export ``small_model()`` with fp16 graphs into ``folder/small.vrgv`` and load it (backend tests)."""
    from vrgv.bundle import Bundle
    from vrgv.export import export_bundle

    export_bundle(small_model(), folder / "small.vrgv", fp16=True, parity_sizes=(1,))
    return Bundle.load(folder / "small.vrgv")


def backend_inputs(bundle, seed: int):
    """Random normalised boxes and features for ``bundle`` and the token ids of ``BACKEND_RELATIONS``."""
    import numpy as np

    from vrgv.export.parity import random_regions

    m = bundle.manifest
    boxes, feats = random_regions(m.num_samples, m.num_regions, m.feature_dim, np.random.default_rng(seed))
    return boxes, feats, bundle.vocabulary.encode_query(BACKEND_RELATIONS)
