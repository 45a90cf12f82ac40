"""``vrgv eval``: score predictions against ground truth with the paper's AccS/AccO/AccR (§4.1)."""
from __future__ import annotations

import argparse
import json

HELP = "score groundings against ground truth: AccS/AccO/AccR as in the paper's Table 2 and Table 5"
DESCRIPTION = """\
Score predicted subject/object trajectories against ground truth with the paper's metric (ECCV 2020, §4.1).

  vrgv eval --gt annotations/ --pred predictions.json
  vrgv eval --gt gt.json --pred batch.jsonl --tiou 0.3 --json

GT is a JSON {video_id: {relation: [{"sub": {fid: box}, "obj": {fid: box}}, ...]}}, a folder of official
ImageNet-VidVRD / VidOR annotation files, or one such file. PRED is a JSON
{video_id: {relation: {"sub": {fid: box}, "obj": {fid: box}}}} or the JSONL that `vrgv batch` writes
(records with status "error" count as misses). A ground-truth relation without a prediction is a miss;
a video without any prediction scores 0."""


def _tiou(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tiou must be a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"--tiou must lie in (0, 1] (the paper uses 0.3, 0.5, 0.7), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, metavar="GT", help="ground-truth JSON, annotation folder or annotation file")
    parser.add_argument("--pred", required=True, metavar="PRED", help="prediction JSON or batch JSONL")
    parser.add_argument("--tiou", type=_tiou, default=0.5, help="temporal overlap threshold τ (default: 0.5)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON instead of tables")
    parser.add_argument("--name", default="vrgv", help="row label in the tables (default: vrgv)")
    parser.add_argument("--per-relation", action="store_true",
                        help="also list every (video, relation) with its best tIoU and whether it is correct")


def run(args: argparse.Namespace) -> int:
    from vrgv.errors import AnnotationError
    from vrgv.metric import evaluate, per_relation
    from vrgv.predictions import load_ground_truth, read_predictions

    gt = load_ground_truth(args.gt)
    pred_file = read_predictions(args.pred)
    try:
        report = evaluate(gt, pred_file.predictions, tiou=args.tiou)
        rows = per_relation(gt, pred_file.predictions, tiou=args.tiou) if args.per_relation else []
    except AnnotationError as exc:
        raise AnnotationError(f"--gt {args.gt!r} / --pred {args.pred!r}: {exc}") from None
    if args.json:
        out = report.to_dict()
        out["num_error_records"] = pred_file.num_errors
        if rows:
            out["per_relation"] = [r.to_dict() for r in rows]
        print(json.dumps(out, indent=2))
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if rows:
        table = Table(title=f"Per relation (tIoU ≥ {args.tiou:g}; t = best over ground-truth instances)")
        for col, justify in (("video", "left"), ("relation", "left"), ("inst", "right"), ("t_sub", "right"),
                             ("t_obj", "right"), ("sub", "center"), ("obj", "center"), ("rel", "center")):
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for r in rows:
            mark = lambda ok: "[green]✓[/]" if ok else "[red]✗[/]"  # noqa: E731
            t_sub = f"{r.t_sub:.3f}" if r.predicted else "-"
            t_obj = f"{r.t_obj:.3f}" if r.predicted else "-"
            table.add_row(r.video_id, r.relation, str(r.num_instances), t_sub, t_obj, mark(r.sub), mark(r.obj), mark(r.rel))
        console.print(table)
    for table in report.rich_tables(args.name, compact=console.width < 120):
        console.print(table)
    console.print(
        f"{report.num_videos} videos, {report.num_relations} ground-truth relations "
        f"({report.num_static_relations} static, {report.num_dynamic_relations} dynamic), "
        f"{report.num_predicted} predicted"
        + (f", {pred_file.num_errors} error records counted as misses" if pred_file.num_errors else "")
    )
    if report.num_ignored_predictions:
        console.print(
            f"[yellow]{report.num_ignored_predictions} prediction(s) match no ground-truth video/relation and were "
            f"ignored; check that video ids and relation strings agree[/]"
        )
    return 0
