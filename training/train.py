"""The training loop (paper §3.4, §4.2): Adam, reconstruction loss, ReduceLROnPlateau and early stopping on
the loss of held-out training videos, a seed that fixes everything, time and peak memory logged.
"""
from __future__ import annotations

import logging
import random
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vrgv.errors import ConfigError
from vrgv.training.config import ModelConfig, TrainConfig
from vrgv.training.data import (
    Sample, VideoRegions, cap_per_video, iterate_batches, make_batch, split_by_video, video_labels,
)
from vrgv.training.word_vectors import WordVectorTable, vocabulary_matrix
from vrgv.vocab import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns: the best model and its training record (also in ``meta.json``)."""

    model: Any
    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float = float("inf")
    best_epoch: int = 0
    seconds: float = 0.0
    peak_memory_mb: float = 0.0


def seed_everything(seed: int, threads: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.mkldnn.enabled = False  # oneDNN's LSTM backward is ~20x slower than the native one on CPU


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_model_config(store: dict[str, VideoRegions], vocab: Vocabulary, table: WordVectorTable,
                       overrides: dict[str, Any]) -> ModelConfig:
    first = next(iter(store.values()))
    n, m, d = first.features.shape
    base = dict(vocab_size=len(vocab), feature_dim=d, word_dim=table.dim, num_frames=n, num_regions=m)
    if float(overrides.get("temporal_mil_weight", 0.0)) > 0 or overrides.get("temporal_head", False):
        base["num_predicates"] = len(vocab.predicates)
    if float(overrides.get("region_mil_weight", 0.0)) > 0:
        base["num_objects"] = len(vocab.objects)
    if overrides.get("temporal_head") and overrides.get("variant") in ("cooccurrence", "no_temporal"):
        log.info("temporal head (and instance choice) off: variant %s has no predicate or no temporal attention "
                 "to replace", overrides["variant"])
        overrides = {**overrides, "temporal_head": False, "instance_choice": False}
    for key in ("vocab_size", "feature_dim", "word_dim", "num_frames", "num_regions"):
        if key in overrides and overrides[key] != base[key]:
            raise ConfigError(f"model.{key}={overrides[key]} contradicts the data ({key}={base[key]}); remove it")
    return ModelConfig(**{**base, **overrides})


def encoder_config(config: ModelConfig) -> ModelConfig:
    """The config the encoder trains under: ``config`` without the temporal head, distinct roles and instance
    choice, which act only after training (``attach_head`` adds them to the trained encoder)."""
    return replace(config, temporal_head=False, distinct_same_category=False, instance_choice=False)


def evaluate_loss(model: Any, samples: Sequence[Sample], store: dict[str, VideoRegions], vocab: Vocabulary,
                  batch_size: int, labels: dict[str, set[str]] | None = None) -> float:
    """Mean per-sample training loss (reconstruction plus the config's auxiliary terms; eval mode, no gradients),
    the model-selection criterion. The temporal MIL term is left out: its bag classifier overfits the held-out
    videos' labels long before the grounding stops improving; so is the region MIL term, for the same reason."""
    import torch

    if not samples:
        return float("nan")
    model.eval()
    total = 0.0
    with torch.no_grad():
        for chunk in iterate_batches(samples, batch_size, None):
            b = make_batch(chunk, store, vocab, model.config.uses_predicate, labels)
            out = model(*b.model_inputs())
            loss = out["loss"]
            if "temporal_mil_loss" in out:
                loss = loss - model.config.temporal_mil_weight * out["temporal_mil_loss"]
            if "region_mil_loss" in out:
                loss = loss - model.config.region_mil_weight * out["region_mil_loss"]
            total += float(loss) * len(chunk)
    return total / len(samples)


def train(samples: Sequence[Sample], store: dict[str, VideoRegions], vocab: Vocabulary, table: WordVectorTable,
          cfg: TrainConfig, out: str | Path | None = None, meta: dict[str, Any] | None = None) -> TrainResult:
    """Train on weak samples; keep the model with the best held-out loss; save it to ``out`` each time it
    improves (a checkpoint folder, see :mod:`vrgv.training.checkpoint`)."""
    import torch

    from vrgv.training.checkpoint import save_checkpoint
    from vrgv.training.model import VRGVModel

    if not samples:
        raise ConfigError("no training samples: the annotations hold no relation inside the vocabulary")
    seed_everything(cfg.seed, cfg.threads)
    model_cfg = build_model_config(store, vocab, table, cfg.model)
    # The encoder trains without the head and instance choice, which are fitted and used after training: the
    # head's settings then cannot change the encoder (with them in the model, its random stream drifted).
    model = VRGVModel(encoder_config(model_cfg), vocabulary_matrix(vocab, table, seed=cfg.seed))
    train_set, val_set = split_by_video(samples, cfg.val_fraction, cfg.seed)
    labels = video_labels(samples) if (model_cfg.temporal_mil_weight > 0 or model_cfg.region_mil_weight > 0) else None
    val_set = cap_per_video(val_set, cfg.max_relations_per_video, np.random.default_rng(cfg.seed + 1))
    log.info("training %s on %d samples (%d videos), validating on %d samples; %d trainable parameters",
             model_cfg.variant, len(train_set), len({s.video_id for s in train_set}), len(val_set),
             sum(p.numel() for p in model.parameters() if p.requires_grad))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience)
    rng = np.random.default_rng(cfg.seed)
    result = TrainResult(model=model)
    best_state = None
    bad_epochs = 0
    start = time.perf_counter()
    meta = dict(meta or {})
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        epoch_set = cap_per_video(train_set, cfg.max_relations_per_video, rng)
        for step, chunk in enumerate(iterate_batches(epoch_set, cfg.batch_size, rng)):
            b = make_batch(chunk, store, vocab, model_cfg.uses_predicate, labels)
            loss = model(*b.model_inputs())["loss"]
            opt.zero_grad()
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            total += loss.item() * len(chunk)
            count += len(chunk)
            if step % 20 == 0:
                log.debug("epoch %d step %d loss %.4f (%.1f s)", epoch, step, loss.item(), time.perf_counter() - t0)
        val_loss = evaluate_loss(model, val_set, store, vocab, cfg.batch_size, labels)
        sched.step(val_loss)
        row = {"epoch": epoch, "train_loss": total / max(count, 1), "val_loss": val_loss,
               "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        result.history.append(row)
        log.info("epoch %d: train loss %.4f, val loss %.4f, lr %.1e, %.0f s, peak memory %.0f MB", epoch,
                 row["train_loss"], val_loss, row["lr"], row["seconds"], peak_memory_mb())
        if val_loss < result.best_val_loss - 1e-4 or not np.isfinite(result.best_val_loss):
            result.best_val_loss, result.best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if out is not None:
                save_checkpoint(model, vocab, out, _meta(meta, cfg, result, start))
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                log.info("early stopping after epoch %d (best epoch %d)", epoch, result.best_epoch)
                break
        if cfg.max_minutes and (time.perf_counter() - start) / 60.0 >= cfg.max_minutes:
            log.info("stopping after epoch %d: time budget of %.0f min used", epoch, cfg.max_minutes)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if model_cfg.temporal_head:  # fitted on the frozen best encoder, from the training videos' labels only
        from vrgv.training.temporal_head import attach_head, fit_temporal_head

        model = attach_head(model, model_cfg)
        result.model = model
        record = fit_temporal_head(model, vocab, train_set, store, seed=cfg.seed)
        meta.update(sigma=record["sigma"], temporal_head=record)
    result.seconds = time.perf_counter() - start
    result.peak_memory_mb = peak_memory_mb()
    if out is not None:
        save_checkpoint(model, vocab, out, _meta(meta, cfg, result, start))
    return result


def _meta(meta: dict[str, Any], cfg: TrainConfig, result: TrainResult, start: float) -> dict[str, Any]:
    return {
        **meta,
        "seed": cfg.seed,
        "train_config": cfg.to_dict(),
        "train_seconds": round(time.perf_counter() - start, 1),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "history": result.history,
    }
