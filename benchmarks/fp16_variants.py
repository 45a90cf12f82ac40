"""Which parts of the relation graph can run in float16 without moving a trajectory? (issue 6: "the chosen
segment and boxes must still match on the synthetic test split").

Copies an fp32 bundle once per variant, writes its ``encoder_relation.fp16.onnx`` with
``vrgv.export.onnx_export.to_fp16`` (the video graph stays float32 in every variant), and runs
``benchmarks/backend_agreement.py --against fp16`` on the split. Prints one row per variant.

    .venv/bin/python benchmarks/fp16_variants.py --bundle sdk/data/default.vrgv \\
        --split /work/data/gw/test --regions /work/data/gw/det2_test
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# name -> (outputs whose upstream stays float32, op types in float16; None = all)
VARIANTS = {
    "all ops float16": ((), None),
    "alpha path float32, rest float16": (("alpha_s", "alpha_o"), None),
    "alpha path float32, LSTM + Gemm + MatMul float16": (("alpha_s", "alpha_o"), ("LSTM", "Gemm", "MatMul")),
    "alpha path float32, LSTM float16 (the --fp16 default)": (("alpha_s", "alpha_o"), ("LSTM",)),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="fp32 bundle folder (vrgv export without --fp16)")
    p.add_argument("--split", required=True)
    p.add_argument("--regions", required=True)
    p.add_argument("--out", help="markdown report path")
    args = p.parse_args()

    from vrgv.bundle import sha256_file
    from vrgv.export.onnx_export import RELATION_FILE, to_fp16

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (keep, ops)) in enumerate(VARIANTS.items()):
            folder = Path(tmp) / f"v{i}.vrgv"
            shutil.copytree(args.bundle, folder)
            half = folder / "encoder_relation.fp16.onnx"
            to_fp16(folder / RELATION_FILE, half, keep_float32=keep, float16_ops=ops)
            manifest = json.loads((folder / "manifest.json").read_text())
            manifest["graphs"]["relation"]["fp16"] = half.name
            manifest["graphs"]["video"]["fp16"] = manifest["graphs"]["video"]["fp32"]
            manifest["files"][half.name] = {"bytes": half.stat().st_size, "sha256": sha256_file(half)}
            (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
            out = Path(tmp) / f"v{i}.md"
            proc = subprocess.run([sys.executable, str(Path(__file__).with_name("backend_agreement.py")), "--bundle",
                                   str(folder), "--split", args.split, "--regions", args.regions, "--against", "fp16",
                                   "--out", str(out)], capture_output=True, text=True)
            if not out.exists():  # (exit status 1 alone only means the metrics differ)
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                rows.append(f"| {name} | grounding failed: {last[:160]} | | |")
                print(rows[-1], flush=True)
                continue
            text = out.read_text()
            seg = re.search(r"segments that differ: (\d+)", text).group(1)
            box = re.search(r"boxes differ \(>= 1e-3 px\): (\d+ of \d+)", text).group(1)
            same = "identical metrics: True" in text
            rows.append(f"| {name} | {seg} | {box} | {'yes' if same else 'no'} |")
            print(rows[-1], flush=True)
    lines = ["# fp16 variants of the relation graph: which parts may run in float16 (synthetic split)", "",
             f"- command: `.venv/bin/python benchmarks/fp16_variants.py {' '.join(sys.argv[1:])}`",
             f"- bundle: {args.bundle}; split: {args.split}; regions: {args.regions}; synthetic data",
             "- the video graph stays float32 in every variant; each row compares ONNX Runtime fp32 with that fp16 "
             "graph (`backend_agreement.py --against fp16`)", "",
             "| relation graph variant | segments that differ | pairs whose boxes differ | identical metrics |",
             "| --- | ---: | ---: | --- |", *rows]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
