"""Ground every annotated relation of a split with a trained model and score it (paper §3.4 + §4.1).

Per video: regions embedded once, all its relations attended in one batch, β = β1 + β2 spread to frames,
then ``vrgv.linking.link_many`` (σ, λ = ``iou_weight``; λ = 0 is vRGV*) and ``vrgv.metric.evaluate``.
CLI: ``python -m vrgv.training.evaluate --checkpoint DIR --annotations DIR (--regions DIR | --simulate-regions)``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vrgv.annotations import VideoAnnotation, ground_truth_from_annotations, load_annotations
from vrgv.errors import RelationError, VrgvError
from vrgv.training.data import VideoRegions
from vrgv.vocab import Vocabulary

log = logging.getLogger(__name__)


def attend_video(model: Any, vocab: Vocabulary, regions: VideoRegions, relations: Sequence[str]) -> tuple[np.ndarray, ...]:
    """α_s, α_o [R,N,M] and β [R,N] (β1 + β2 spread over each clip) of one video's relations."""
    import torch

    from vrgv.training.model import beta_per_frame

    q = torch.from_numpy(vocab.encode_query(list(relations)))
    with torch.no_grad():
        emb = model.embed_regions(torch.from_numpy(regions.boxes_norm), torch.from_numpy(regions.features.astype(np.float32)))
        a_s, a_o, b1, b2 = (t.numpy() for t in model.attend(emb, q))
    return a_s, a_o, beta_per_frame(b1, b2, model.config.clip_len)


def ground_split(model: Any, vocab: Vocabulary, annotations: Sequence[VideoAnnotation],
                 store: dict[str, VideoRegions], *, sigma: float = 0.04, iou_weight: float = 1.0,
                 backend: str = "auto") -> dict[str, dict[str, dict]]:
    """Predictions ``{video_id: {relation: Grounding.to_dict()}}`` for every annotated relation."""
    from vrgv.linking import link_many, to_grounding

    model.eval()
    head = None
    if model.config.instance_choice:  # the runtime's instance choice, with this model's head (vrgv.instances)
        from vrgv.instances import HeadWeights

        head = HeadWeights.from_state({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()
                                       if k.startswith("temporal_head.")}, model.config.to_dict())
    preds: dict[str, dict[str, dict]] = {}
    for k, ann in enumerate(annotations):
        if k % 20 == 0:
            log.info("grounding video %d/%d", k + 1, len(annotations))
        rels = []
        for rel in ann.relation_strings():
            try:
                vocab.canonical(rel)
                rels.append(rel)
            except RelationError:
                log.warning("video %s: relation %r is outside the model's vocabulary; not grounded", ann.video_id, rel)
        if not rels:
            continue
        vr = store[ann.video_id]
        a_s, a_o, beta = attend_video(model, vocab, vr, rels)
        if head is not None:
            from vrgv.instances import choose_instances

            c = model.config
            a_s, a_o, beta = choose_instances(vr.pixel_boxes(), vr.boxes_norm, a_s, a_o, beta, vr.frame_ids,
                                              vocab.encode_query(rels)[:, 1:-1], head, c.instance_temperature,
                                              c.instance_gamma, num_frames=vr.num_frames, linker=backend,
                                              sigma=sigma, iou_weight=iou_weight, proximity=c.instance_proximity)
        results = link_many(vr.pixel_boxes(), a_s, a_o, beta, vr.frame_ids, vr.num_frames, sigma=sigma,
                            iou_weight=iou_weight, backend=backend)
        preds[ann.video_id] = {rel: to_grounding(res, rel, ann.video_id).to_dict()
                               for rel, res in zip(rels, results) if res is not None}
    return preds


def evaluate_split(model: Any, vocab: Vocabulary, annotations: Sequence[VideoAnnotation],
                   store: dict[str, VideoRegions], *, sigma: float = 0.04, iou_weight: float = 1.0,
                   tiou: float = 0.5, backend: str = "auto") -> tuple[Any, dict]:
    """(``vrgv.metric.EvalReport``, predictions) of the model on the annotated split."""
    from vrgv.metric import evaluate

    preds = ground_split(model, vocab, annotations, store, sigma=sigma, iou_weight=iou_weight, backend=backend)
    gt = ground_truth_from_annotations(annotations)
    return evaluate(gt, preds, tiou=tiou, static_words=vocab.static_predicate_words or None), preds


def main(argv: list[str] | None = None) -> int:
    from vrgv.training.checkpoint import load_checkpoint
    from vrgv.training.data import add_region_source_arguments, checkpoint_regions

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint folder written by `vrgv train`")
    p.add_argument("--annotations", required=True, help="folder of VidVRD-format annotation JSON (the split)")
    add_region_source_arguments(p)
    p.add_argument("--sim-seed", type=int, default=1, help="simulation seed (keep it different from training)")
    p.add_argument("--sigma", type=float, default=None,
                   help="linking threshold σ on β (default: the checkpoint's, else the paper's 0.04)")
    p.add_argument("--iou-weight", type=float, default=1.0, help="λ of eq. 12; 0 = vRGV* (greedy linking)")
    p.add_argument("--tiou", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default=None, help="row name in the printed table")
    p.add_argument("--out", help="write {'report': ..., 'command': ...} JSON here")
    p.add_argument("--predictions", help="write the predictions JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    try:
        model, vocab, meta = load_checkpoint(args.checkpoint)
        if args.sigma is None:
            args.sigma = float(meta.get("sigma", 0.04))
        anns = load_annotations(args.annotations)
        c = model.config
        t0 = time.perf_counter()
        store = checkpoint_regions(args, anns, model, vocab, meta, seed=args.sim_seed)
        report, preds = evaluate_split(model, vocab, anns, store, sigma=args.sigma, iou_weight=args.iou_weight,
                                       tiou=args.tiou)
        seconds = time.perf_counter() - t0
    except VrgvError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    name = args.name or f"{c.variant} (λ={args.iou_weight:g}, σ={args.sigma:g})"
    print(report.to_table(name))
    print(f"{len(anns)} videos grounded and scored in {seconds:.1f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "name": name, "seconds": seconds,
                                              "report": report.to_dict(), "markdown": report.to_markdown(name)}, indent=1))
    if args.predictions:
        Path(args.predictions).write_text(json.dumps(preds))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
