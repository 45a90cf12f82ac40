"""``vrgv export``: a trained checkpoint -> model bundle (ONNX encoder graphs, weights, detector, manifest)."""
from __future__ import annotations

import argparse
import json

HELP = "export a trained checkpoint to a model bundle (ONNX, optional fp16/TensorRT)"
DESCRIPTION = """Export a checkpoint folder (from `vrgv train`) to a bundle NAME.vrgv (or NAME.vrgv.zip).

Every export runs onnx.checker (full) and checks parity against PyTorch for R in {1, 7, 32}
(max |delta| <= 1e-4 in fp32; fp16 errors are reported). Needs the train extra (torch, onnx).

examples:
  vrgv export --checkpoint runs/default --out models/default.vrgv
  vrgv export --checkpoint runs/default --out default.vrgv.zip --fp16 --detector detector.onnx
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder written by `vrgv train`")
    parser.add_argument("--out", required=True, help="bundle folder NAME.vrgv, or a .zip")
    parser.add_argument("--fp16", action="store_true", help="also write a mixed-precision relation graph: the temporal half in float16, the video graph and the spatial attention in float32 (and fp16 TensorRT engines)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--trt", action="store_true", help="pre-build TensorRT engines for this GPU (needs tensorrt)")
    parser.add_argument("--simplify", action="store_true", help="simplify graphs with onnxslim or onnxsim")
    parser.add_argument("--detector", help="region detector ONNX (or folder holding detector.onnx) to include")
    parser.add_argument("--metrics", help="JSON file of evaluation metrics to record in the manifest")
    parser.add_argument("--name", help="bundle name (default: from --out)")
    parser.add_argument("--sigma", type=float, help="temporal attention threshold (default: checkpoint's, or 0.04)")
    parser.add_argument("--embed-chunk-kib", type=int, metavar="KIB",
                        help="size of one chunk of the one-thread video graph (encoder_video.chunked.onnx) in KiB; "
                             "default 512, for a 2 MB L2 cache; at least N frames' worth writes no chunked graph")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import sys

    from vrgv.export import export_bundle

    result = export_bundle(
        args.checkpoint, args.out, fp16=args.fp16, opset=args.opset, trt=args.trt, simplify=args.simplify,
        detector=args.detector, metrics=args.metrics, name=args.name, sigma=args.sigma,
        overwrite=args.overwrite, command=" ".join(["vrgv", *sys.argv[1:]]) if sys.argv else None,
        embed_chunk_bytes=None if args.embed_chunk_kib is None else args.embed_chunk_kib * 1024,
    )
    if args.json:
        print(json.dumps({"bundle": str(result.path), "files": result.files, "parity": result.parity}, indent=2))
    else:
        print(result.summary())
    return 0
