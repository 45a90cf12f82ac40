"""``vrgv demo``: the README's first command. Renders the fixed-seed demo video of the synthetic world,
grounds all its annotated relations with the default model, writes results, pictures and a score table.

The demo clip (seed ``vrgv.synth.DEMO_SEED``) is outside every training split, so its scores are a fair
(synthetic) check that the shipped model works end to end on this machine.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("vrgv.demo")


@dataclass
class DemoResult:
    """Where the demo wrote its files, the groundings, and per-relation scores against ground truth."""

    out_dir: Path
    video: Path
    annotation: Path
    results_json: Path
    videos: list[Path]
    beta_plot: Path | None
    frame_png: Path | None
    groundings: list[Any]
    rows: list[dict[str, Any]]
    overall: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _tiou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Temporal IoU of two inclusive frame spans."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    union = max(a[1], b[1]) - min(a[0], b[0]) + 1
    return max(0, inter) / union


def best_frame(groundings: list[Any]) -> int:
    """A frame inside as many predicted segments as possible (ties: the middle of the longest overlap)."""
    if not groundings:
        return 0
    last = max(g.end_fid for g in groundings)
    cover = [sum(g.start_fid <= f <= g.end_fid for g in groundings) for f in range(last + 1)]
    top = max(cover)
    frames = [f for f, c in enumerate(cover) if c == top]
    return frames[len(frames) // 2]


def run_demo(
    out_dir: str | os.PathLike = "vrgv-demo",
    *,
    model: str | None = None,
    backend: str = "auto",
    device: str = "cpu",
    threads: int | None = None,
    per_relation: bool = False,
    show: int | None = 3,
    render: bool = True,
    plot: bool = True,
) -> DemoResult:
    """Run the demo into ``out_dir`` and return what it wrote and measured.

    The annotated video shows the ``show`` relations the model is most confident about (``None``: all);
    ``per_relation`` writes one video per relation instead.
    """
    import time

    from vrgv.annotations import VideoAnnotation
    from vrgv.grounder import Grounder
    from vrgv.metric import evaluate, per_relation as score_relations
    from vrgv.synth import demo_video

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    video, ann_path = demo_video(out)
    timings["render_demo_video_s"] = time.perf_counter() - t
    ann = VideoAnnotation.load(ann_path)
    relations = ann.relation_strings()
    t = time.perf_counter()
    grounder = Grounder.load(model, backend=backend, device=device, threads=threads)
    timings["load_model_s"] = time.perf_counter() - t
    t = time.perf_counter()
    groundings = grounder.ground_many(video, relations, video_id=ann.video_id)
    timings["ground_s"] = time.perf_counter() - t
    pred = {ann.video_id: {}}
    for rel, g in zip(relations, groundings):
        d = g.to_dict()
        pred[ann.video_id][rel] = {k: d[k] for k in ("sub", "obj", "segment", "score", "fallback")}
    results_json = out / "results.json"
    results_json.write_text(json.dumps(pred, indent=1) + "\n", encoding="utf-8")

    gt = {ann.video_id: ann.ground_truth()}
    report = evaluate(gt, pred)
    per = {(r.video_id, r.relation): r for r in score_relations(gt, pred)}
    gt_spans: dict[str, list[tuple[int, int]]] = {}
    for inst in ann.relations:
        gt_spans.setdefault(ann.relation_string(inst), []).append((inst.begin_fid, inst.end_fid - 1))
    rows = []
    for rel, g in zip(relations, groundings):
        r = per.get((ann.video_id, rel))
        spans = sorted(gt_spans.get(rel, []), key=lambda s: -_tiou(s, (g.start_fid, g.end_fid)))
        rows.append({
            "relation": rel, "segment": [g.start_fid, g.end_fid], "gt_segments": spans,
            "score": g.score, "fallback": g.fallback,
            "sub": bool(r and r.sub), "obj": bool(r and r.obj), "rel": bool(r and r.rel),
            "t_sub": r.t_sub if r else 0.0, "t_obj": r.t_obj if r else 0.0,
        })
    avg = report.average
    overall = avg.to_dict()

    videos: list[Path] = []
    frame_png = beta_png = None
    if render:
        from vrgv.render import render_frame, render_groundings, save_frame

        t = time.perf_counter()
        if per_relation:
            for rel, g in zip(relations, groundings):
                videos.append(Path(render_groundings(video, [g], out / "relations" / f"{_slug(rel)}.mp4")))
        else:
            shown = sorted(groundings, key=lambda g: -g.score)[: show or len(groundings)]
            videos.append(Path(render_groundings(video, shown, out / "demo_grounded.mp4")))
        picked = sorted(groundings, key=lambda g: -g.score)[: show or len(groundings)]
        frame_png = Path(save_frame(render_frame(video, picked, best_frame(picked)), out / "demo_frame.png"))
        timings["render_s"] = time.perf_counter() - t
    if plot:
        try:
            from vrgv.plot import plot_beta

            beta_png = out / "beta.png"
            top = sorted(groundings, key=lambda g: -g.score)[: show or len(groundings)]  # a readable legend
            what = "temporal head" if grounder.spec.temporal_head else "temporal attention β"
            plot_beta(top, beta_png, sigma=grounder.spec.sigma, ylabel=grounder.spec.beta_label,
                      title=f"{ann.video_id}: {what} ({len(top)} of {len(groundings)} relations)")
        except Exception as exc:  # noqa: BLE001 - matplotlib is an optional extra; the demo goes on
            log.warning("β plot skipped: %s", exc)
            beta_png = None
    (out / "scores.json").write_text(json.dumps({"overall": overall, "relations": rows, "timings": timings},
                                                indent=1) + "\n", encoding="utf-8")
    return DemoResult(out, Path(video), Path(ann_path), results_json, videos, beta_png, frame_png, groundings,
                      rows, overall, timings)


def print_report(result: DemoResult) -> None:
    """The demo's table (rich): each relation's predicted vs annotated segment and AccS/AccO/AccR marks."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    if not console.is_terminal:
        console = Console(stderr=False, width=120)
    table = Table(title=f"vrgv demo: {result.video.name} (synthetic, fixed seed, not in training data)")
    table.add_column("relation", justify="left", no_wrap=True)
    for col, just in (("predicted", "right"), ("annotated", "right"), ("score", "right"),
                      ("AccS", "center"), ("AccO", "center"), ("AccR", "center")):
        table.add_column(col, justify=just, no_wrap=True)
    mark = {True: "[green]✓[/]", False: "[red]✗[/]"}
    for r in result.rows:
        seg = f"{r['segment'][0]}-{r['segment'][1]}" + ("*" if r["fallback"] else "")
        spans = r["gt_segments"]
        gts = (f"{spans[0][0]}-{spans[0][1]}" + (f" (+{len(spans) - 1})" if len(spans) > 1 else "")) if spans else "-"
        table.add_row(r["relation"], seg, gts, f"{r['score']:.3f}", mark[r["sub"]], mark[r["obj"]], mark[r["rel"]])
    o = result.overall
    table.add_section()
    table.add_row("[bold]accuracy (%)[/]", "", "", "", f"{o['AccS']:.1f}", f"{o['AccO']:.1f}", f"{o['AccR']:.1f}")
    console.print(table)
    if any(r["fallback"] for r in result.rows):
        console.print("* no segment passed σ; the lowered threshold of the linking step was used")
    console.print(f"results: {result.results_json}")
    for v in result.videos:
        console.print(f"video:   {v}")
    if result.frame_png:
        console.print(f"frame:   {result.frame_png}")
    if result.beta_plot:
        console.print(f"β plot:  {result.beta_plot}")
