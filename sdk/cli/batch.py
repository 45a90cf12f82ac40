"""``vrgv batch``: ground relations in a whole archive of videos, resumable, into JSONL records."""
from __future__ import annotations

import argparse

HELP = "ground relations in many videos (folder, glob or manifest) into resumable JSONL records"
DESCRIPTION = """Ground relations in every video of INPUT: a folder or glob of videos (.mp4, frame folders,
or Regions .npz), or a CSV/JSONL manifest with columns `video` and `relations` (';'-separated in CSV,
a list in JSONL). One JSONL record per (video, relation): video_id, relation, status (ok|error), sub,
obj, segment, score, error. Rerunning the same command skips the records already written; killing it
loses at most the videos in flight. `vrgv eval --pred results.jsonl` scores the file.

examples:
  vrgv batch videos/ --relations person-ride-bicycle --out results.jsonl --workers 4
  vrgv batch 'archive/**/*.mp4' --relations-file rels.txt --out r.jsonl --cache-regions regions/
  vrgv batch data/test/videos --annotations data/test/annotations --out r.jsonl
  RAY_ADDRESS=auto vrgv batch s3list.jsonl --engine ray --out r.jsonl --device cuda
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="folder or glob of videos, or a .csv/.jsonl manifest")
    p.add_argument("--out", "-o", required=True, metavar="RESULTS.jsonl", help="results file (appended; resumable)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--relations", nargs="+", metavar="R", help="relations to ground in every video")
    src.add_argument("--relations-file", metavar="F", help="file with one relation per line")
    src.add_argument("--annotations", metavar="DIR", help="ground each video's annotated relations (DIR/<video_id>.json)")
    p.add_argument("--model", "-m", metavar="BUNDLE", help="model bundle (default: the bundled model)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch")
    p.add_argument("--device", default="cpu", help="device of the model stage: cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of the model stage")
    p.add_argument("--workers", type=int, default=2, help="decode/extract worker processes (default 2; 0 = inline)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or Ray Data")
    p.add_argument("--cache-regions", metavar="DIR", help="store extracted Regions here and reuse them on later runs")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one video may take to decode+extract before it becomes an error (local engine)")
    p.add_argument("--retry-errors", action="store_true", help="drop earlier error records and try those again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from vrgv.batch import parse_inputs, run_batch
    from vrgv.errors import ConfigError

    if not (args.relations or args.relations_file or args.annotations):
        manifest = str(args.input).lower().endswith((".csv", ".jsonl"))
        if not manifest:
            raise ConfigError("say which relations to ground: --relations R..., --relations-file F or "
                              "--annotations DIR (or a manifest with a 'relations' column)")
    items = parse_inputs(args.input, args.relations, args.relations_file, args.annotations)
    summary = run_batch(
        items, args.out, model=args.model, backend=args.backend, device=args.device, threads=args.threads,
        engine=args.engine, workers=args.workers, timeout=args.timeout, cache_regions=args.cache_regions,
        retry_errors=args.retry_errors, progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(summary.format(), file=sys.stderr)
    print(json.dumps(summary.to_dict()))
    return 0 if summary.failed == 0 else 3
