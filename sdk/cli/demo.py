"""``vrgv demo``: ground the annotated relations of the built-in demo video and show how well it did."""
from __future__ import annotations

import argparse

HELP = "render the demo video, ground its relations with the bundled model, write pictures and scores"
DESCRIPTION = """Renders the fixed-seed demo video of the synthetic world (not in the training data), grounds
all of its annotated relations with the default model (or --model), and writes into --out:
results.json (prediction format), demo_grounded.mp4 (subject red, object green, β strip; the --show
relations with the highest scores, or --per-relation for one video each),
demo_frame.png, beta.png (β over time) and scores.json; prints AccS/AccO/AccR per relation.

example:
  vrgv demo --out vrgv-demo
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", "-o", default="vrgv-demo", metavar="DIR", help="output folder (default: vrgv-demo)")
    p.add_argument("--model", "-m", metavar="BUNDLE", help="model bundle (default: the bundled model)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    p.add_argument("--per-relation", action="store_true", help="one annotated mp4 per relation instead of one video")
    p.add_argument("--show", type=int, default=3, metavar="K",
                   help="relations drawn in the one video: the K the model is most confident about (0 = all)")
    p.add_argument("--no-render", action="store_true", help="skip the annotated video and frame")
    p.add_argument("--no-plot", action="store_true", help="skip the β plot")


def run(args: argparse.Namespace) -> int:
    from vrgv.demo import print_report, run_demo

    result = run_demo(args.out, model=args.model, backend=args.backend, device=args.device, threads=args.threads,
                      per_relation=args.per_relation, show=args.show or None, render=not args.no_render, plot=not args.no_plot)
    print_report(result)
    return 0
