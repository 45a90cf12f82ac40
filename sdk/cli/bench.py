"""``vrgv bench``: latency of every pipeline stage for a bundle and a video (see ``vrgv.bench``)."""
from __future__ import annotations

import argparse
import sys

HELP = "measure decode / extract / encoder / linking / end-to-end latency"
DESCRIPTION = """Measure every stage of grounding on one video, after a warm-up: median, p90, p99,
throughput and peak memory. Defaults: the bundled model, the demo video and its relations.

examples:
  vrgv bench --json
  vrgv bench --model my.vrgv --video clip.mp4 --relations person-ride-bicycle --backends onnxruntime
  vrgv bench --scaling --markdown benchmarks/reports/latency_cpu.md
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="bundle folder or .zip (default: the bundled model)")
    p.add_argument("--video", default=None, help="video file, frame folder (default: the demo video)")
    p.add_argument("--relations", nargs="+", default=None, help="relations to ground (default: the demo's)")
    p.add_argument("--backends", nargs="+", default=["onnxruntime", "torch"], help="encoder backends to time")
    p.add_argument("--linkers", nargs="+", default=None, help="linking backends to time (default: all available)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per stage (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--threads", type=int, default=None, help="encoder threads (default: runtime's choice)")
    p.add_argument("--device", default="cpu", help="device of the encoder backends: cpu or cuda (default: cpu)")
    p.add_argument("--fp16", action="store_true", help="time the encoder in float16 (see `vrgv ground --fp16`)")
    p.add_argument("--scaling", action="store_true", help="also measure cost as N, M, R and video length grow")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--markdown", default=None, metavar="FILE", help="also write the report as Markdown to FILE")


def run(args: argparse.Namespace) -> int:
    from vrgv.bench import run_bench

    if args.repeats < 1 or args.warmup < 0:
        from vrgv.errors import ConfigError

        raise ConfigError(f"--repeats must be >= 1 and --warmup >= 0, got {args.repeats} and {args.warmup}")
    report = run_bench(
        args.model, args.video, args.relations, backends=args.backends, linkers=args.linkers,
        repeats=args.repeats, warmup=args.warmup, threads=args.threads, scaling=args.scaling,
        device=args.device, precision="fp16" if args.fp16 else "fp32",
        progress=lambda msg: print(f"bench: {msg}", file=sys.stderr),
    )
    if args.markdown:
        from pathlib import Path

        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(report.to_markdown())
    if args.json:
        print(report.to_json())
    else:
        print(report.to_markdown())
    return 0
