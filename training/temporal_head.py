"""Fit a trained model's temporal head from video-level labels only (``ModelConfig.temporal_head``).

The head is a per-frame predicate classifier on the attended pair's geometry (``pair_geometry_features`` of the
α-pooled subject and object boxes). It is fitted after the encoder, which stays frozen, by multiple-instance
learning: one bag per (video, subject category, object category) named in the video's labels, the predicates the
labels give for that pair positive, every other predicate negative. A bag's score for a predicate is the mean of
its top ``temporal_head_topk`` fraction of frame scores: a relation that is labelled holds on a stretch of frames,
not on one, so a max would reward a single lucky frame. No time span and no object id is read.

At inference ``attend`` returns the head's curve for the query's predicate (smoothed, divided by its peak) as β1,
and linking cuts the segments where it passes σ (``HEAD_SIGMA``, written into the checkpoint's meta) of the peak.

    python -m vrgv.training.temporal_head --checkpoint C --annotations DIR --regions DIR --out C2
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from vrgv.errors import ConfigError, VrgvError
from vrgv.training.data import Sample, VideoRegions
from vrgv.vocab import QUERY_LEN, Vocabulary

log = logging.getLogger(__name__)

#: Linking threshold for a model with a temporal head, as a fraction of the curve's peak (its β1 has maximum 1),
#: chosen on the grounding world's 100-video validation split: 0.2 in session 11, 0.15 with the session-12 bundle
#: (top-30% bag score, nearness in the candidate tracks; accuracy_synthetic.md).
HEAD_SIGMA = 0.15


def predicate_token_table(vocab: Vocabulary) -> np.ndarray:
    """int64 [P, 3]: the query's predicate token ids of every vocabulary predicate, in ``vocab.predicates`` order."""
    subject = vocab.objects[0]
    queries = vocab.encode_query([f"{subject}-{p}-{subject}" for p in vocab.predicates])
    return np.ascontiguousarray(queries[:, 1:QUERY_LEN - 1], dtype=np.int64)


def _pair_bags(vocab: Vocabulary, samples: Sequence[Sample]) -> dict[str, dict[tuple[str, str], set[str]]]:
    """video id -> (subject, object) -> the predicates its weak labels give that pair."""
    bags: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for s in samples:
        rel = vocab.canonical(s.relation)
        bags[s.video_id][(rel.subject, rel.object)].add(rel.predicate)
    return bags


def _attended_bags(model: Any, vocab: Vocabulary, bags: dict[str, dict[tuple[str, str], set[str]]],
                   store: dict[str, VideoRegions]) -> Iterator[tuple[VideoRegions, Any, Any, Any, Any]]:
    """Per video (sorted), its bags in sorted (subject, object) order: (regions, normalised boxes [N,M,5], α_s and
    α_o [R,N,M] from the model, labels [R,P]). α does not depend on the predicate. Call under ``torch.no_grad``."""
    import torch

    index = {p: i for i, p in enumerate(vocab.predicates)}
    model.eval()
    for video_id in sorted(bags):
        pairs = sorted(bags[video_id])
        vr = store[video_id]
        q = torch.from_numpy(vocab.encode_query([f"{s}-{vocab.predicates[0]}-{o}" for s, o in pairs]))
        bn = torch.from_numpy(vr.boxes_norm.astype(np.float32))
        a_s, a_o = model.attend(model.embed_regions(bn, torch.from_numpy(vr.features.astype(np.float32))), q)[:2]
        y = torch.zeros(len(pairs), len(vocab.predicates))
        for k, key in enumerate(pairs):
            for p in bags[video_id][key]:
                y[k, index[p]] = 1.0
        yield vr, bn, a_s, a_o, y


def geometry_bags(model: Any, vocab: Vocabulary, samples: Sequence[Sample], store: dict[str, VideoRegions],
                  negative_pairs: bool = False) -> tuple[Any, Any]:
    """(geometry f32 [B,N,27], labels f32 [B,P]): one bag per (video, subject, object) of the weak samples, the
    boxes pooled with the model's α for that subject and object (α does not depend on the predicate). With
    ``negative_pairs``, also one all-negative bag per ordered pair of different categories that the video's labels
    name but never relate to each other."""
    import torch

    bags = _pair_bags(vocab, samples)
    if negative_pairs:  # two named categories that no label relates: every predicate is negative for them
        for pairs in bags.values():
            named = sorted({c for pair in pairs for c in pair})
            for s_cat in named:
                for o_cat in named:
                    if s_cat != o_cat and (s_cat, o_cat) not in pairs:
                        pairs[(s_cat, o_cat)] = set()
    geometry, labels = [], []
    with torch.no_grad():
        for _, bn, a_s, a_o, y in _attended_bags(model, vocab, bags, store):
            b_s, b_o = torch.einsum("rnm,nmk->rnk", a_s, bn), torch.einsum("rnm,nmk->rnk", a_o, bn)
            geometry.append(model.head_features(b_s, b_o))
            labels.append(y)
    if not geometry:
        raise ConfigError("temporal head: no training samples to fit it on")
    return torch.cat(geometry), torch.cat(labels)


def track_bags(model: Any, vocab: Vocabulary, samples: Sequence[Sample], store: dict[str, VideoRegions], *,
               margin: float = 2.0, linker: str = "auto") -> tuple[Any, Any, Any]:
    """(features f32 [B,C,N,F], mask bool [B,C], labels f32 [B,P]): the bags of ``geometry_bags``, but each bag
    holds up to C = 4 candidate (subject, object) *track pairs*, the ones instance choice weighs at grounding time
    (``vrgv.instances.candidate_pairs``, with the config's T and the linking's λ = 1), featurised on their hard
    boxes as at inference. Pairs whose attention evidence is more than ``margin`` (log) below the bag's best are
    left out, so a bag whose categories name one object each keeps about one pair, and one with two persons keeps
    both. A bag without any candidate keeps its α-pooled pair."""
    import torch

    from vrgv.instances import candidate_pairs

    c = model.config
    features, masks, labels = [], [], []
    with torch.no_grad():
        for vr, bn, a_s, a_o, y in _attended_bags(model, vocab, _pair_bags(vocab, samples), store):
            pooled = (torch.einsum("rnm,nmk->rnk", a_s, bn), torch.einsum("rnm,nmk->rnk", a_o, bn))
            cands = candidate_pairs(vr.pixel_boxes(), a_s.numpy(), a_o.numpy(), vr.frame_ids,
                                    c.instance_temperature, num_frames=vr.num_frames, linker=linker,
                                    proximity=c.instance_proximity)
            rows = torch.arange(bn.shape[0])
            box_s = pooled[0][:, None].repeat(1, 4, 1, 1)  # [R,4,N,5]; slot 0 is the α-pooled fallback
            box_o = pooled[1][:, None].repeat(1, 4, 1, 1)
            mask = torch.zeros(a_s.shape[0], 4, dtype=torch.bool)
            best = defaultdict(lambda: -np.inf)
            for cand in cands:
                best[cand.relation] = max(best[cand.relation], cand.evidence)
            for cand in cands:
                r = cand.relation
                if cand.evidence < best[r] - margin:
                    continue
                slot = int(mask[r].sum())
                box_s[r, slot] = bn[rows, torch.from_numpy(cand.subject)]
                box_o[r, slot] = bn[rows, torch.from_numpy(cand.object)]
                mask[r, slot] = True
            mask[:, 0] = True  # no candidate: the α-pooled pair stands in
            r_, c_, n_, _ = box_s.shape
            feats = model.head_features(box_s.reshape(r_ * c_, n_, 5), box_o.reshape(r_ * c_, n_, 5))
            features.append(feats.reshape(r_, c_, n_, -1))
            masks.append(mask)
            labels.append(y)
    if not features:
        raise ConfigError("temporal head: no training samples to fit it on")
    return torch.cat(features), torch.cat(masks), torch.cat(labels)


def fit_temporal_head(model: Any, vocab: Vocabulary, samples: Sequence[Sample], store: dict[str, VideoRegions],
                      *, steps: int = 400, lr: float = 3e-3, seed: int = 0, negative_pairs: bool = False,
                      sigma: float = HEAD_SIGMA, fit_on: str = "attention", track_margin: float = 2.0,
                      linker: str = "auto") -> dict[str, Any]:
    """Fit ``model.temporal_head`` in place (full-batch Adam on the top-k bag loss; the encoder is untouched) and
    return a record of the fit for the checkpoint's meta. ``fit_on="attention"`` fits on the α-pooled pair;
    ``"tracks"`` on the candidate track pairs of instance choice (``track_bags``), a bag's score being its best
    pair's, so the head learns on the hard tracks it scores at grounding time and which pair holds the relation."""
    import torch

    c = model.config
    if not c.temporal_head:
        raise ConfigError("this model has no temporal head: set model.temporal_head to true in the config")
    if steps <= 0 or lr <= 0:
        raise ConfigError(f"temporal head: steps and lr must be positive, got {steps} and {lr}")
    if not 0.0 < float(sigma) < 1.0:
        raise ConfigError(f"temporal head: sigma is a fraction of the curve's peak, in (0, 1); got {sigma}")
    if fit_on not in ("attention", "tracks"):
        raise ConfigError(f"temporal head: fit_on is 'attention' or 'tracks', got {fit_on!r}")
    if fit_on == "tracks" and negative_pairs:
        raise ConfigError("temporal head: negative_pairs is only implemented for fit_on='attention'")
    t0 = time.perf_counter()
    if fit_on == "tracks":
        geometry, mask, labels = track_bags(model, vocab, samples, store, margin=track_margin, linker=linker)
        valid = geometry[mask]  # [pairs,N,F]
    else:
        geometry, labels = geometry_bags(model, vocab, samples, store, negative_pairs)
        mask, valid = None, geometry
    log.info("temporal head: %d bags, %d pairs, built in %.0f s", labels.shape[0], valid.shape[0],
             time.perf_counter() - t0)
    head = model.temporal_head
    k = max(1, int(round(float(c.temporal_head_topk) * geometry.shape[-2])))
    with torch.no_grad():
        head.mean.copy_(valid.mean((0, 1)))
        head.std.copy_(valid.std((0, 1)) + 1e-6)
        head.predicate_tokens.copy_(torch.from_numpy(predicate_token_table(vocab)))
        head.w_out.zero_()
        head.b_out.zero_()
    normed = (geometry - head.mean) / head.std
    # Only predicates some bag names are fitted (about 6x less work on VidVRD's 132). The others keep a zero
    # output row: their curve is the flat σ(0), so a query about one links every frame rather than noise.
    seen = torch.nonzero(labels.sum(0) > 0).squeeze(1)
    first, last = [], []
    for member in range(head.members):
        losses = _fit_member(head, member, normed, labels, seen, k, steps, lr, seed + member, mask)
        first.append(losses[0])
        last.append(losses[-1])
        log.info("temporal head member %d/%d: bag loss %.4f -> %.4f (%.0f s so far)", member + 1, head.members,
                 losses[0], losses[-1], time.perf_counter() - t0)
    model.eval()
    record = {"bags": int(geometry.shape[0]), "pairs": int(valid.shape[0]), "fit_on": fit_on,
              **({"track_margin": float(track_margin)} if fit_on == "tracks" else {}),
              "predicates_fitted": int(seen.numel()),
              "videos": len({s.video_id for s in samples}), "topk_frames": k, "negative_pairs": negative_pairs, "steps": steps, "lr": lr, "seed": seed, "members": head.members,
              "loss_first": round(float(np.mean(first)), 5), "loss_last": round(float(np.mean(last)), 5),
              "seconds": round(time.perf_counter() - t0, 1), "sigma": float(sigma)}
    log.info("temporal head (%d members) fitted on %d bags of %d videos: mean bag loss %.4f -> %.4f in %.0f s",
             head.members, record["bags"], record["videos"], record["loss_first"], record["loss_last"], record["seconds"])
    return record


def _fit_member(head: Any, member: int, normed: Any, labels: Any, seen: Any, k: int, steps: int, lr: float,
                seed: int, mask: Any = None) -> list[float]:
    """Fit one ensemble member from its own seed (full-batch Adam, top-k bag BCE); returns the loss per step.
    ``normed`` is [B,N,F], or [B,C,N,F] with ``mask`` [B,C]: then a bag's score is its best valid pair's."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    F_, h = head.w1.shape[1:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        l1, l2, out = nn.Linear(F_, h), nn.Linear(h, h), nn.Linear(h, len(seen))  # PyTorch's default initialisation
    opt = torch.optim.Adam([*l1.parameters(), *l2.parameters(), *out.parameters()], lr=lr)
    x = normed if mask is None else normed[mask]  # only the valid pairs go through the MLP
    losses = []
    for _ in range(steps):
        scores = out(F.relu(l2(F.relu(l1(x)))))  # [B or valid pairs,N,seen]
        bag = scores.topk(k, dim=-2).values.mean(-2)  # [B or valid pairs,seen]
        if mask is not None:  # a bag scores as its best valid pair
            bag = torch.full((*mask.shape, len(seen)), float("-inf")).masked_scatter(mask[..., None], bag).amax(1)
        loss = F.binary_cross_entropy_with_logits(bag, labels[:, seen])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        head.w1[member] = l1.weight.t()
        head.b1[member, 0] = l1.bias
        head.w2[member] = l2.weight.t()
        head.b2[member, 0] = l2.bias
        head.w_out[member, seen] = out.weight
        head.b_out[member, seen] = out.bias
    return losses


def with_temporal_head(model: Any, members: int | None = None, features: str | None = None,
                       distinct_same_category: bool | None = None, instance_choice: bool | None = None,
                       topk: float | None = None, instance_proximity: float | None = None) -> Any:
    """A copy of a trained model with ``temporal_head`` switched on (same encoder weights, a fresh head to fit):
    ``members`` MLPs on ``features`` ("geometry" or "relative"), ``distinct_same_category`` and
    ``instance_choice`` set (its candidate tracks with nearness weight ``instance_proximity``), its bag score the
    mean of the top ``topk`` fraction of frames; each defaults to the config's."""
    from dataclasses import replace

    c = model.config
    wanted = replace(c, temporal_head=True, temporal_head_members=members or c.temporal_head_members,
                     temporal_head_features=features or c.temporal_head_features,
                     temporal_head_topk=c.temporal_head_topk if topk is None else float(topk),
                     instance_proximity=c.instance_proximity if instance_proximity is None
                     else float(instance_proximity),
                     distinct_same_category=c.distinct_same_category if distinct_same_category is None
                     else bool(distinct_same_category),
                     instance_choice=c.instance_choice if instance_choice is None else bool(instance_choice))
    return attach_head(model, wanted)


def attach_head(model: Any, config: Any) -> Any:
    """A copy of a trained model under ``config`` (a ``ModelConfig`` that differs from the model's only in its
    temporal head and instance choice settings): same encoder weights, a fresh head to fit."""
    from vrgv.training.model import VRGVModel

    c = model.config
    if config == c:
        return model
    if c.num_predicates <= 0:
        raise ConfigError("the checkpoint's config has no num_predicates; retrain with model.temporal_head: true")
    new = VRGVModel(config)
    encoder = {k: v for k, v in model.state_dict().items() if not k.startswith("temporal_head.")}  # an old head goes
    missing, unexpected = new.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith("temporal_head.") for k in missing):
        raise ConfigError(f"cannot add a temporal head: weights differ beyond the head ({unexpected[:3]}, {missing[:3]})")
    new.eval()
    return new


def main(argv: list[str] | None = None) -> int:
    from vrgv.annotations import load_annotations
    from vrgv.training.checkpoint import load_checkpoint, save_checkpoint
    from vrgv.training.config import TrainConfig
    from vrgv.training.data import add_region_source_arguments, checkpoint_regions, split_by_video, weak_samples

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint folder written by `vrgv train`")
    p.add_argument("--annotations", required=True, help="the training annotations (only their relation labels are read)")
    add_region_source_arguments(p)
    p.add_argument("--out", required=True, help="checkpoint folder to write (may equal --checkpoint)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--negative-pairs", action="store_true",
                   help="also fit all-negative bags: named categories the labels never relate (lower AccR here)")
    p.add_argument("--members", type=int, default=None, help="ensemble size (default: the config's, 5)")
    p.add_argument("--seed", type=int, default=None, help="seed of the head's initialisation (default: the training seed)")
    p.add_argument("--features", choices=["geometry", "relative"], default=None,
                   help="what the head sees per frame (default: the config's temporal_head_features)")
    p.add_argument("--distinct-same-category", action=argparse.BooleanOptionalAction, default=None,
                   help="separate the object's attention from the subject's for same-category queries and let the "
                        "head order the roles (default: the config's distinct_same_category)")
    p.add_argument("--instance-choice", action=argparse.BooleanOptionalAction, default=None,
                   help="at grounding time, choose the subject and object instances among two candidate tracks per "
                        "role by the head's score (default: the config's instance_choice)")
    p.add_argument("--topk", type=float, default=None,
                   help="a bag's score is the mean of this fraction of its frames' scores (default: the config's "
                        "temporal_head_topk)")
    p.add_argument("--instance-proximity", type=float, default=None,
                   help="with instance choice: weight of consecutive boxes' nearness in the candidate tracks "
                        "(default: the config's instance_proximity)")
    p.add_argument("--sigma", type=float, default=HEAD_SIGMA,
                   help=f"linking threshold stored with the checkpoint, a fraction of the curve's peak (default {HEAD_SIGMA})")
    p.add_argument("--fit-on", choices=["attention", "tracks"], default="attention",
                   help="fit on the α-pooled pair (default) or on instance choice's candidate track pairs, a bag "
                        "scoring as its best pair (needs --instance-choice to be used at grounding time)")
    p.add_argument("--track-margin", type=float, default=2.0,
                   help="with --fit-on tracks: keep pairs whose log attention evidence is within this of the bag's best")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    try:
        model, vocab, meta = load_checkpoint(args.checkpoint)
        cfg = TrainConfig.from_dict(meta.get("train_config", {}))
        model = with_temporal_head(model, args.members, args.features, args.distinct_same_category,
                                   args.instance_choice, args.topk, args.instance_proximity)
        anns = load_annotations(args.annotations)
        samples = weak_samples(anns, vocab)
        train_set, _ = split_by_video(samples, cfg.val_fraction, cfg.seed)  # the videos the encoder trained on
        used = {s.video_id for s in train_set}
        store = checkpoint_regions(args, [a for a in anns if a.video_id in used], model, vocab, meta, seed=cfg.seed)
        record = fit_temporal_head(model, vocab, train_set, store, steps=args.steps,
                                   seed=cfg.seed if args.seed is None else args.seed,
                                   negative_pairs=args.negative_pairs, sigma=args.sigma, fit_on=args.fit_on,
                                   track_margin=args.track_margin)
        record["command"] = " ".join(["python -m vrgv.training.temporal_head", *(argv if argv is not None else sys.argv[1:])])
        save_checkpoint(model, vocab, args.out, {**meta, "sigma": record["sigma"], "temporal_head": record})
    except VrgvError as exc:
        print(f"temporal_head: error: {exc}", file=sys.stderr)
        return 2
    print(f"temporal head fitted on {record['bags']} bags in {record['seconds']:.0f} s; checkpoint {args.out} "
          f"(link with sigma = {record['sigma']:g})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
