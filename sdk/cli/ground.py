"""``vrgv ground``: ground relations in one video (or its saved Regions) and write the prediction JSON."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "ground relations in one video: when each holds and where its subject and object are"
DESCRIPTION = """Ground RELATION(s) (subject-predicate-object, e.g. person-ride-bicycle) in a video file, a
frame folder or a .npz of Regions. Writes the metric's prediction format
{video_id: {relation: {"sub", "obj", "segment", "score"}}} to --out (or stdout).

examples:
  vrgv ground video.mp4 person-ride-bicycle dog-chase-person --out pred.json
  vrgv ground regions.npz person-ride-bicycle --model my.vrgv --backend onnxruntime
  vrgv ground video.mp4 person-ride-bicycle --render annotated.mp4 --plot beta.png
  vrgv ground --list-vocabulary
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", metavar="VIDEO_OR_REGIONS", help="video file, frame folder or Regions .npz")
    p.add_argument("relations", nargs="*", metavar="RELATION", help="relations like person-ride-bicycle")
    p.add_argument("--model", "-m", metavar="BUNDLE", help="model bundle folder or zip (default: the bundled model)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch (default: auto)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    p.add_argument("--fp16", action="store_true",
                   help="float16 inference: the bundle's fp16 graphs (onnxruntime, tensorrt) or autocast (torch, cuda)")
    p.add_argument("--linker", default="auto", help="linking backend: auto, cpp, numba or numpy")
    p.add_argument("--instance-choice", action=argparse.BooleanOptionalAction, default=None,
                   help="choose subject and object instances with the temporal head (default: as the bundle says; "
                        "--no-instance-choice is faster and grounds each role on its attention's own track)")
    p.add_argument("--out", "-o", metavar="F.json", help="write predictions here (default: print to stdout)")
    p.add_argument("--render", metavar="OUT.mp4", help="also write the video with the groundings drawn")
    p.add_argument("--plot", metavar="BETA.png", help="also plot the temporal attention β (needs matplotlib)")
    p.add_argument("--video-id", help="key of the video in the output (default: the file name)")
    p.add_argument("--list-vocabulary", action="store_true", help="print the objects and predicates the model knows")


def predictions(groundings: list, requested: list[str]) -> dict:
    """``{video_id: {relation: {"sub","obj","segment","score"}}}`` keyed by the requested relation strings."""
    out: dict = {}
    for rel, g in zip(requested, groundings):
        d = g.to_dict()
        entry = {k: d[k] for k in ("sub", "obj", "segment", "score")}
        entry["fallback"] = d["fallback"]
        out.setdefault(g.video_id, {})[rel] = entry
    return out


def write_json(data: dict, path: str | None) -> None:
    text = json.dumps(data, indent=1)
    if path is None:
        sys.stdout.write(text + "\n")
        return
    target = Path(path)
    if target.exists() and not target.is_file():  # /dev/stdout, /dev/full, a FIFO: write to it, never replace it
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise


def run(args: argparse.Namespace) -> int:
    import logging

    from vrgv.errors import ConfigError
    from vrgv.grounder import Grounder

    log = logging.getLogger("vrgv.cli.ground")
    if args.list_vocabulary:
        from vrgv.bundle import Bundle

        vocab = (Bundle.default() if args.model is None else Bundle.load(args.model)).vocabulary
        print(f"objects ({len(vocab.objects)}): " + ", ".join(vocab.objects))
        print(f"predicates ({len(vocab.predicates)}): " + ", ".join(vocab.predicates))
        if vocab.aliases:
            print("aliases: " + ", ".join(f"{k}->{v}" for k, v in sorted(vocab.aliases.items())))
        return 0
    if not args.video or not args.relations:
        raise ConfigError("give a video (or Regions .npz) and at least one relation, e.g. "
                          "`vrgv ground video.mp4 person-ride-bicycle`; see --list-vocabulary")
    if args.render and str(args.video).lower().endswith(".npz"):
        raise ConfigError("--render draws on the video's pixels; give the video or frame folder, not a Regions .npz")
    requested = [r.strip() for r in args.relations]
    g = Grounder.load(args.model, backend=args.backend, device=args.device, threads=args.threads, linker=args.linker,
                       precision="fp16" if args.fp16 else "fp32", instance_choice=args.instance_choice)
    results = g.ground_many(args.video, requested, video_id=args.video_id)
    write_json(predictions(results, requested), args.out)
    for rel, res in zip(requested, results):
        log.info("%s: frames [%d, %d], score %.3f%s", rel, res.start_fid, res.end_fid, res.score,
                 " (fallback)" if res.fallback else "")
    if args.render:
        from vrgv.render import render_groundings

        log.info("wrote %s", render_groundings(args.video, results, args.render))
    if args.plot:
        from vrgv.plot import plot_beta

        plot_beta(results, args.plot, sigma=g.spec.sigma, ylabel=g.spec.beta_label)
        log.info("wrote %s", args.plot)
    return 0
