"""Training pipeline: simulated regions, weak samples, batching, the loop, the CLI and split evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vrgv.annotations import RelationInstance, VideoAnnotation  # noqa: E402
from vrgv.errors import ConfigError, RegionsError  # noqa: E402
from vrgv.training.config import TrainConfig  # noqa: E402
from vrgv.training.data import (  # noqa: E402
    VideoRegions, cap_per_video, iterate_batches, load_regions, make_batch, split_by_video, weak_samples,
)
from vrgv.training.simulate import SimulationConfig, simulate_regions  # noqa: E402
from vrgv.vocab import Vocabulary  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
N, L, M = 24, 6, 8
TINY = {"region_dim": 16, "attention_dim": 8, "hidden_dim": 16, "num_frames": N, "clip_len": L, "num_regions": M}


def toy_annotation(video_id: str = "v0", frames: int = 50, shift: int = 0) -> VideoAnnotation:
    """Two tracks (a person and a bicycle) and two relations with spans."""
    traj = {0: {f: [10.0 + f + shift, 20.0, 60.0 + f + shift, 90.0] for f in range(frames)},
            1: {f: [100.0, 50.0 - f / 2, 150.0, 120.0 - f / 2] for f in range(5, frames)}}
    rels = [RelationInstance(0, 1, "ride", 5, 30), RelationInstance(1, 0, "stand_next_to", 20, 45),
            RelationInstance(0, 1, "ride", 35, 40)]
    return VideoAnnotation(video_id, frames, 320, 240, 25.0, {0: "person", 1: "bicycle"}, traj, rels)


def test_simulated_regions_are_deterministic_and_valid():
    ann = toy_annotation()
    cfg = SimulationConfig(num_samples=N, num_regions=M, feature_dim=12)
    a, b = simulate_regions(ann, cfg, seed=5), simulate_regions(ann, cfg, seed=5)
    c = simulate_regions(ann, cfg, seed=6)
    assert a.boxes.shape == (N, M, 4) and a.features.shape == (N, M, 12)
    np.testing.assert_array_equal(a.features, b.features)
    assert not np.array_equal(a.features, c.features)
    # the annotated person box is among the proposals (jittered) in most sampled frames
    hits = 0
    for i, fid in enumerate(a.frame_ids):
        gt = np.array(ann.trajectories[0][int(fid)])
        hits += np.min(np.abs(a.boxes[i] - gt).max(axis=1)) < 25
    assert hits >= 0.7 * N
    with pytest.raises(ConfigError):
        SimulationConfig(miss_rate=1.5)


def test_weak_samples_read_relation_strings_only():
    vocab = Vocabulary.default()
    ann = toy_annotation()
    samples = weak_samples([ann], vocab)
    assert [s.relation for s in samples] == ["person-ride-bicycle", "bicycle-stand_next_to-person"]
    ann.relations.append(RelationInstance(0, 1, "juggle", 1, 3))
    assert len(weak_samples([ann], vocab)) == 2  # unknown predicate skipped


def test_batches_group_videos_and_cap_relations():
    vocab = Vocabulary.default()
    anns = [toy_annotation(f"v{i}", shift=i) for i in range(4)]
    store = load_regions(anns, simulate=SimulationConfig(num_samples=N, num_regions=M, feature_dim=12),
                         num_samples=N, num_regions=M)
    samples = weak_samples(anns, vocab)
    batches = list(iterate_batches(samples, 3, np.random.default_rng(0)))
    assert sorted(s for b in batches for s in map(str, b)) == sorted(map(str, samples))
    for chunk in batches:  # videos are contiguous: at most 2 per batch of 3 when each has 2 samples
        assert len({s.video_id for s in chunk}) <= 2
    capped = cap_per_video(samples, 1, np.random.default_rng(0))
    assert len(capped) == 4 and len({s.video_id for s in capped}) == 4
    b = make_batch(samples[:3], store, vocab, use_predicate=False)
    assert b.boxes_norm.shape[0] == len({s.video_id for s in samples[:3]}) and b.query_ids.shape == (3, 5)
    assert torch.all(b.query_ids[:, 1:4] == 0) and b.targets.shape == (3, 3)  # cooccurrence: s, o, eos
    train, val = split_by_video(samples, 0.25, 0)
    assert {s.video_id for s in train}.isdisjoint({s.video_id for s in val}) and len(val) == 2


def test_region_folder_checks(tmp_path):
    ann = toy_annotation()
    regions = simulate_regions(ann, SimulationConfig(num_samples=N, num_regions=M + 2, feature_dim=6))
    regions.save(tmp_path / "v0.npz")
    store = load_regions([ann], regions_dir=tmp_path, num_samples=N, num_regions=M)
    assert store["v0"].features.shape == (N, M, 6)
    np.testing.assert_allclose(store["v0"].pixel_boxes(), regions.boxes[:, :M], atol=1e-3)
    with pytest.raises(RegionsError, match="sampled frames"):
        load_regions([ann], regions_dir=tmp_path, num_samples=N + 1, num_regions=M)
    with pytest.raises(RegionsError, match="lacks"):
        load_regions([toy_annotation("other")], regions_dir=tmp_path, num_samples=N, num_regions=M)
    with pytest.raises(RegionsError, match="exactly one"):
        load_regions([ann], num_samples=N, num_regions=M)


@pytest.mark.slow
def test_cli_train_then_evaluate(tmp_path):
    """`vrgv train` on simulated regions writes a loadable checkpoint; evaluation scores the split."""
    from vrgv.cli import main
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.evaluate import evaluate_split

    ann_dir = tmp_path / "ann"
    anns = [toy_annotation(f"v{i}", shift=3 * i) for i in range(4)]
    for a in anns:
        a.save(ann_dir / f"{a.video_id}.json")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"epochs": 3, "batch_size": 4, "lr": 3e-3, "val_fraction": 0.25, "threads": 1,
                               "model": TINY}))
    out = tmp_path / "ckpt"
    assert main(["train", "--annotations", str(ann_dir), "--simulate-regions", "--out", str(out),
                 "--config", str(cfg), "--seed", "3"]) == 0
    model, vocab, meta = load_checkpoint(out)
    assert meta["seed"] == 3 and meta["region_source"] == "simulated" and meta["peak_memory_mb"] > 0
    assert len(meta["history"]) >= 1 and "vrgv train" in meta["command"]
    assert vocab.aliases.get("bike") == "bicycle"
    store = load_regions(anns, simulate=SimulationConfig(num_samples=N, num_regions=M, feature_dim=model.config.feature_dim),
                         num_samples=N, num_regions=M, seed=1)
    report, preds = evaluate_split(model, vocab, anns, store, backend="numpy")
    assert report.num_relations == 8 and set(preds) == {a.video_id for a in anns}
    g = preds["v0"]["person-ride-bicycle"]
    assert g["segment"][0] <= g["segment"][1] and len(g["sub"]) == g["segment"][1] - g["segment"][0] + 1
    # same seed, same data: identical weights
    out2 = tmp_path / "ckpt2"
    assert main(["train", "--annotations", str(ann_dir), "--simulate-regions", "--out", str(out2),
                 "--config", str(cfg), "--seed", "3"]) == 0
    m2, _, _ = load_checkpoint(out2)
    for (k, a), b in zip(model.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k


def test_train_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 2, "model": {"variant": "no_clip"}}))
    assert TrainConfig.load(path).model["variant"] == "no_clip"
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(path)
    for name in ("default.json", "paper.json"):
        TrainConfig.load(Path(__file__).resolve().parents[1] / "training" / "configs" / name)


def test_vidvrd_trajectories_simulate():
    """ImageNet-VidVRD test videos (trajectories only, in ../shared) can feed training via the simulator."""
    folder = SHARED / "data" / "vidvrd" / "test10_full"
    if not folder.is_dir():
        pytest.skip("../shared/data/vidvrd/test10_full is absent")
    from vrgv.annotations import load_annotations

    ann = load_annotations(folder)[0]
    r = simulate_regions(ann, SimulationConfig(num_samples=N, num_regions=M, feature_dim=8))
    assert r.boxes.shape == (N, M, 4) and r.num_frames == ann.frame_count
    assert weak_samples([ann], Vocabulary.default())


def test_cli_train_with_temporal_head_fits_it_and_the_head_tool_refits_it(tmp_path, capsys):
    """`temporal_head: true` ends `vrgv train` with the head fit (σ = HEAD_SIGMA in meta) on an encoder trained as
    without it; the head tool refits it on the checkpoint's training videos, and evaluation links at its σ."""
    from vrgv.cli import main
    from vrgv.training import evaluate, temporal_head
    from vrgv.training.checkpoint import load_checkpoint

    ann_dir = tmp_path / "ann"
    for a in [toy_annotation(f"v{i}", shift=3 * i) for i in range(4)]:
        a.save(ann_dir / f"{a.video_id}.json")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"epochs": 2, "batch_size": 4, "lr": 3e-3, "val_fraction": 0.25, "threads": 1,
                               "model": {**TINY, "spatial_scoring": "dot", "temporal_head": True,
                                         "temporal_head_members": 2}}))
    out = tmp_path / "ckpt"
    assert main(["train", "--annotations", str(ann_dir), "--simulate-regions", "--out", str(out),
                 "--config", str(cfg), "--seed", "3"]) == 0
    model, _, meta = load_checkpoint(out)
    assert model.config.temporal_head and meta["sigma"] == temporal_head.HEAD_SIGMA
    assert meta["temporal_head"]["members"] == 2 and meta["temporal_head"]["videos"] == 3  # validation video held out
    # the encoder trains without the head (encoder_config): the same run without it gives the same encoder, bit for
    # bit (on the bundle's sizes the head inside the model changed the rounding, accuracy_synthetic.md session 12)
    plain_cfg = tmp_path / "plain.json"
    plain_cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "model": {**TINY, "spatial_scoring": "dot"}}))
    assert main(["train", "--annotations", str(ann_dir), "--simulate-regions", "--out", str(tmp_path / "plain"),
                 "--config", str(plain_cfg), "--seed", "3"]) == 0
    plain = load_checkpoint(tmp_path / "plain")[0].state_dict()
    encoder = {k: v for k, v in model.state_dict().items() if not k.startswith("temporal_head.")}
    assert encoder.keys() == plain.keys() and all(torch.equal(v, plain[k]) for k, v in encoder.items())
    refit = tmp_path / "refit"
    assert temporal_head.main(["--checkpoint", str(out), "--annotations", str(ann_dir), "--simulate-regions",
                               "--out", str(refit), "--steps", "5", "--members", "3", "--threads", "1",
                               "--features", "relative", "--distinct-same-category", "--instance-choice",
                               "--sigma", "0.3"]) == 0
    model2, _, meta2 = load_checkpoint(refit)
    assert model2.temporal_head.members == 3 and meta2["temporal_head"]["steps"] == 5
    c2 = model2.config
    assert c2.temporal_head_features == "relative" and c2.distinct_same_category and c2.instance_choice
    assert meta2["sigma"] == 0.3
    assert "--members 3" in meta2["temporal_head"]["command"]
    capsys.readouterr()
    assert evaluate.main(["--checkpoint", str(refit), "--annotations", str(ann_dir), "--simulate-regions",
                          "--threads", "1"]) == 0
    assert "σ=0.3" in capsys.readouterr().out  # grounded with instance choice, at the refit's σ


@pytest.mark.parametrize("variant", ["full", "no_message", "no_clip", "no_temporal", "cooccurrence"])
def test_bundled_config_builds_for_every_variant(variant):
    """The bundle's config asks for the temporal head and instance choice; variants without a predicate or a
    temporal attention get neither instead of a config error."""
    from vrgv.training.data import VideoRegions
    from vrgv.training.train import build_model_config
    from vrgv.training.word_vectors import default_table

    cfg = json.loads((Path(__file__).parents[1] / "training/configs/bundled_default.json").read_text())
    store = {"v": VideoRegions(np.zeros((120, 40, 5), np.float32), np.zeros((120, 40, 64), np.float16),
                               np.arange(120), 320, 240, 120)}
    c = build_model_config(store, Vocabulary.default(), default_table(), {**cfg["model"], "variant": variant})
    head = variant not in ("no_temporal", "cooccurrence")
    assert c.temporal_head == head and c.instance_choice == head and c.temporal_head_features == "relative"
