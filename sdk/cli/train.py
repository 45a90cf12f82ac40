"""``vrgv train``: weakly supervised training of the vRGV model from video-level relation labels."""
from __future__ import annotations

import argparse
import logging
import shlex

HELP = "train the grounding model from (video, relation) labels only (needs the train extra: torch)"
DESCRIPTION = """Train the paper's model with the reconstruction loss (weak supervision: only the relation
strings of each video are read, never time spans or object ids).

Region sources (exactly one):
  --regions DIR          one Regions .npz per video id (any detector, any dataset)
  --videos DIR           videos run through the built-in region extractor (cached next to them)
  --simulate-regions     regions simulated from the annotated trajectories (jittered, missed, distractors)

Example:
  vrgv train --annotations /work/data/synth/train/annotations --simulate-regions --out ckpt/ --epochs 8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="folder of VidVRD/VidOR-format annotation JSON")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--regions", metavar="DIR", help="folder of <video_id>.npz Regions files")
    src.add_argument("--videos", metavar="DIR", help="folder of videos (<video_id>.mp4); regions extracted and cached")
    src.add_argument("--simulate-regions", action="store_true", help="simulate regions from annotated trajectories")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--config", help="TrainConfig JSON (see training/configs/*.json)")
    parser.add_argument("--variant", choices=("full", "no_message", "no_clip", "no_temporal", "cooccurrence"),
                        help="model variant (overrides the config)")
    parser.add_argument("--word-vectors", metavar="PATH", help="GloVe/word2vec text file or table .npz (default: bundled)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (overrides the config)")
    parser.add_argument("--seed", type=int, help="seed for everything (overrides the config)")
    parser.add_argument("--threads", type=int, help="torch threads (overrides the config)")
    parser.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this wall-clock budget")
    parser.add_argument("--cache", metavar="DIR", help="region cache for --videos (default: VIDEOS/../regions_cache)")


def run(args: argparse.Namespace) -> int:
    import time

    from vrgv.annotations import load_annotations
    from vrgv.training.config import TrainConfig
    from vrgv.training.data import load_regions, weak_samples
    from vrgv.training.simulate import SimulationConfig
    from vrgv.training.train import train
    from vrgv.training.word_vectors import WordVectorTable, default_table
    from vrgv.vocab import Vocabulary

    log = logging.getLogger("vrgv.train")
    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    data = cfg.to_dict()
    for key in ("epochs", "seed", "threads", "max_minutes"):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    if args.variant:
        data["model"] = {**data["model"], "variant": args.variant}
    cfg = TrainConfig.from_dict(data)
    table = WordVectorTable.load(args.word_vectors) if args.word_vectors else default_table()
    base = Vocabulary.default()
    aliases = {**{a: t for a, t in table.aliases.items() if t in base.objects or t in base.predicates}, **base.aliases}
    vocab = Vocabulary(base.objects, base.predicates, aliases, base.static_predicate_words)
    anns = load_annotations(args.annotations)
    samples = weak_samples(anns, vocab)
    num_samples = int(cfg.model.get("num_frames", 120))
    num_regions = int(cfg.model.get("num_regions", 40))
    sim = SimulationConfig(num_samples=num_samples, num_regions=num_regions) if args.simulate_regions else None
    t0 = time.perf_counter()
    store = load_regions(anns, regions_dir=args.regions, videos_dir=args.videos, simulate=sim, cache_dir=args.cache,
                         num_samples=num_samples, num_regions=num_regions, seed=cfg.seed, categories=vocab.objects)
    log.info("regions of %d videos ready in %.0f s; %d weak samples", len(store), time.perf_counter() - t0, len(samples))
    meta = {
        "command": _command(args),
        "annotations": str(args.annotations),
        "region_source": "regions" if args.regions else "videos" if args.videos else "simulated",
        "regions": str(args.regions or args.videos or ""),
        "word_vectors": table.source,
        "num_videos": len(store),
        "num_samples": len(samples),
    }
    if sim is not None:
        meta["simulation"] = {"config": sim.to_dict(), "overrides": {}}
    result = train(samples, store, vocab, table, cfg, out=args.out, meta=meta)
    print(f"trained {result.model.config.variant} in {result.seconds / 60:.1f} min (best epoch {result.best_epoch}, "
          f"val loss {result.best_val_loss:.4f}, peak memory {result.peak_memory_mb:.0f} MB) -> {args.out}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The equivalent ``vrgv train`` command line (recorded in meta.json)."""
    parts = ["vrgv", "train"]
    for key in ("annotations", "regions", "videos", "simulate_regions", "out", "config", "variant", "word_vectors",
                "epochs", "seed", "threads", "max_minutes", "cache"):
        value = getattr(args, key, None)
        if value is None or value is False:
            continue
        parts.append("--" + key.replace("_", "-"))
        if value is not True:
            parts.append(str(value))
    return shlex.join(parts)
