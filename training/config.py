"""Model and training configuration dataclasses, validated on construction and saved with every checkpoint.

Defaults follow the paper (§4.2): N=120 sampled frames, clips of L=12, M=40 regions, 256-d region and word
features, 512-d LSTMs, dropout 0.2, Adam lr 1e-4, batch 32, at most 20 epochs with early stopping.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrgv.errors import ConfigError

VARIANTS = ("full", "no_message", "no_clip", "no_temporal", "cooccurrence")


def _check_positive(owner: str, **values: int | float) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{owner}.{name} must be a positive number, got {value!r}")


@dataclass
class ModelConfig:
    """Every size and switch of :class:`vrgv.training.model.VRGVModel`."""

    vocab_size: int
    feature_dim: int
    word_dim: int = 300
    region_dim: int = 256
    attention_dim: int = 256
    hidden_dim: int = 512
    num_frames: int = 120
    clip_len: int = 12
    num_regions: int = 40
    dropout: float = 0.2
    variant: str = "full"
    relation_context_predicate: bool = True
    attention_init_scale: float = 1.0  # multiplies the initial attention output weights (sharper start)
    # Deviations from the paper, off by default (see training/README.md "Model switches"):
    word_norm: bool = False  # unit-length word vectors (raw ones have norm ~11 and saturate the attention tanh)
    temporal_scoring: str = "additive"  # "dot": TAU scores (W x)·(W' c)/sqrt(A), which cannot saturate into uniform
    spatial_scoring: str = "additive"  # "dot": SAU scores (W f(B))·(W' g(w))/sqrt(A): one MatMul per relation batch
    context_norm: bool = False  # LayerNorm on the relation context f_R (else it grows and saturates TAU2's tanh)
    region_norm: bool = False  # LayerNorm on the appearance and box halves of f(B), so position is not swamped
    pair_geometry: bool = False  # node input also gets W_g [b_s, b_o, b_s - b_o] of the attended boxes
    node_norm: bool = False  # LayerNorm on the node inputs f_i, so the frame LSTM's gates do not saturate
    frame_skip: bool = False  # f_l1 = LSTM(f) + W f: frame features keep what is local to their frame
    clip_pooling: bool = False  # featv pools with (β1 + β2 spread over its frames) / 2, so β2 gets a direct gradient
    word_aux_weight: float = 0.0  # per-frame reconstruction of the subject (object) word from f_s (f_o)
    temporal_aux_weight: float = 0.0  # predicate words reconstructed per frame, pooled by attention (MIL)
    # multi-label MIL over predicates: a per-frame classifier trained with max-pooled bags, where the predicates
    # the video's labels give for the (subject, object) pair are positive and every other predicate negative;
    # the temporal attention is pulled to the frames it fires on for the query's predicate (weak labels only)
    temporal_mil_weight: float = 0.0
    num_predicates: int = 0  # set from the vocabulary when temporal_mil_weight > 0
    # what the MIL frame classifier sees: "node" (learned node inputs and their change) or "geometry" (the
    # attended subject and object boxes, their offset, size ratios and velocities: the cues predicates depend on)
    temporal_mil_input: str = "node"
    # how the MIL classifier steers the temporal attention: "pool" (-log Σ_t pool_t p_t: attention onto the best
    # frames) or "distill" (cross-entropy of β1 and β2 against the classifier's firing map p^γ, normalised, over
    # frames and over clips: the attention covers every frame where the predicate shows and leaves the rest,
    # which is what the σ threshold of linking needs)
    temporal_mil_target: str = "pool"
    temporal_mil_sharpness: float = 4.0  # γ of the distillation target
    # region-level MIL over object categories (weakly supervised detection): a region classifier whose max over a
    # video's regions must fire for the categories its labels name and for no other; the spatial attention is
    # pulled to the regions it scores as the query's subject (object) category. Keeps α off background regions.
    region_mil_weight: float = 0.0
    num_objects: int = 0  # set from the vocabulary when region_mil_weight > 0
    clip_entropy_weight: float = 0.0  # penalty on the entropy of β2, so σ = 0.04 can cut segments (β2 ≥ 0.1 if flat)
    # temporal head (a deviation, off by default; vrgv.training.temporal_head): a per-frame predicate classifier on the
    # attended pair's geometry, fitted after training by top-k multiple-instance learning on the weak labels. With it
    # ``attend`` returns the head's smoothed firing map for the query's predicate, divided by its maximum, as β1 and
    # zeros as β2, and linking thresholds that curve (σ in the checkpoint's meta, 0.5: half the peak)
    temporal_head: bool = False
    temporal_head_hidden: int = 64
    temporal_head_members: int = 5  # ensemble size: the curve is the members' mean firing probability
    temporal_head_smooth: int = 9  # odd box-filter width (sampled frames) applied to the firing map
    temporal_head_topk: float = 0.2  # fraction of frames whose mean score is a bag's score (the shortest instance)
    # what the head sees per frame: "geometry" (pair_geometry_features: boxes, offset, velocities, 27 numbers) or
    # "relative" (pair_relative_features: those plus the pair's layout and motion in its own size unit, 57)
    temporal_head_features: str = "geometry"
    # a query whose subject and object are one category (person-chase-person) has identical spatial queries, so α_s
    # and α_o pick the same box. With this switch the object's attention leaves the subject's box in every frame,
    # and with a temporal head the two roles go to whichever order the head scores higher for the predicate
    distinct_same_category: bool = False
    # with a temporal head, choose each relation's subject and object *instances* after attention: link two
    # candidate tracks per role on α^(1/T) (T = instance_temperature flattens α between two objects of a category,
    # so a track keeps one of them), and keep the (subject, object) pair with the best head score for the predicate
    # plus instance_gamma · log of each track's mean attention. Runs in the runtime (vrgv.instances), not the graph
    instance_choice: bool = False
    instance_temperature: float = 16.0
    instance_gamma: float = 0.5
    # > 0: candidate tracks also score ν · exp(-d²/2s²) per step for the nearness of consecutive boxes (d centre
    # distance, s mean side): fast objects have IoU 0 with themselves between samples (vrgv.instances)
    instance_proximity: float = 0.0

    def __post_init__(self) -> None:
        _check_positive(
            "ModelConfig", vocab_size=self.vocab_size, feature_dim=self.feature_dim, word_dim=self.word_dim,
            region_dim=self.region_dim, attention_dim=self.attention_dim, hidden_dim=self.hidden_dim,
            num_frames=self.num_frames, clip_len=self.clip_len, num_regions=self.num_regions,
        )
        if self.variant not in VARIANTS:
            raise ConfigError(f"ModelConfig.variant {self.variant!r} is unknown; choose one of {list(VARIANTS)}")
        if self.num_frames % self.clip_len:
            raise ConfigError(
                f"ModelConfig: num_frames={self.num_frames} is not a multiple of clip_len={self.clip_len}; "
                f"choose N = H * L (the paper uses 120 = 10 * 12)"
            )
        if self.temporal_mil_weight > 0 and self.num_predicates <= 0:
            raise ConfigError("ModelConfig.temporal_mil_weight > 0 needs num_predicates (the vocabulary's predicate count)")
        if self.temporal_head and not (self.uses_predicate and self.temporal_attention):
            raise ConfigError(f"ModelConfig.temporal_head localizes the query's predicate in time; variant {self.variant!r} "
                              f"has no predicate or no temporal attention, so set temporal_head to false")
        if self.temporal_head and self.num_predicates <= 0:
            raise ConfigError("ModelConfig.temporal_head needs num_predicates (the vocabulary's predicate count)")
        if (min(self.temporal_head_hidden, self.temporal_head_members, self.temporal_head_smooth) <= 0
                or self.temporal_head_smooth % 2 == 0):
            raise ConfigError(f"ModelConfig.temporal_head_hidden and temporal_head_members must be positive and "
                              f"temporal_head_smooth a positive odd number, got {self.temporal_head_hidden}, "
                              f"{self.temporal_head_members} and {self.temporal_head_smooth}")
        if not 0.0 < float(self.temporal_head_topk) <= 1.0:
            raise ConfigError(f"ModelConfig.temporal_head_topk must lie in (0, 1], got {self.temporal_head_topk!r}")
        if self.temporal_head_features not in ("geometry", "relative"):
            raise ConfigError(f"ModelConfig.temporal_head_features must be 'geometry' or 'relative', "
                              f"got {self.temporal_head_features!r}")
        if self.instance_choice and not self.temporal_head:
            raise ConfigError("ModelConfig.instance_choice scores candidate tracks with the temporal head; set "
                              "temporal_head to true or instance_choice to false")
        if not 0.0 <= float(self.instance_proximity) <= 1000.0:
            raise ConfigError(f"ModelConfig.instance_proximity must lie in [0, 1000], got {self.instance_proximity!r}")
        if not 1.0 <= float(self.instance_temperature) <= 1000.0 or not 0.0 <= float(self.instance_gamma) <= 10.0:
            raise ConfigError(f"ModelConfig.instance_temperature must lie in [1, 1000] and instance_gamma in [0, 10], "
                              f"got {self.instance_temperature!r} and {self.instance_gamma!r}")
        if self.region_mil_weight > 0 and self.num_objects <= 0:
            raise ConfigError("ModelConfig.region_mil_weight > 0 needs num_objects (the vocabulary's object count)")
        for name in ("word_aux_weight", "temporal_aux_weight", "temporal_mil_weight", "region_mil_weight",
                     "clip_entropy_weight"):
            if not 0.0 <= float(getattr(self, name)) <= 100.0:
                raise ConfigError(f"ModelConfig.{name} must lie in [0, 100], got {getattr(self, name)!r}")
        if self.temporal_mil_target not in ("pool", "distill"):
            raise ConfigError(f"ModelConfig.temporal_mil_target must be 'pool' or 'distill', got {self.temporal_mil_target!r}")
        if not 0.0 < float(self.temporal_mil_sharpness) <= 64.0:
            raise ConfigError(f"ModelConfig.temporal_mil_sharpness must lie in (0, 64], got {self.temporal_mil_sharpness!r}")
        if self.temporal_mil_input not in ("node", "geometry"):
            raise ConfigError(f"ModelConfig.temporal_mil_input must be 'node' or 'geometry', got {self.temporal_mil_input!r}")
        for name in ("temporal_scoring", "spatial_scoring"):
            if getattr(self, name) not in ("additive", "dot"):
                raise ConfigError(f"ModelConfig.{name} must be 'additive' or 'dot', got {getattr(self, name)!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"ModelConfig.dropout must lie in [0, 1), got {self.dropout!r}")

    @property
    def num_clips(self) -> int:
        return self.num_frames // self.clip_len

    @property
    def message_passing(self) -> bool:
        return self.variant != "no_message"

    @property
    def clip_attention(self) -> bool:
        return self.variant not in ("no_clip", "no_temporal")

    @property
    def temporal_attention(self) -> bool:
        return self.variant != "no_temporal"

    @property
    def uses_predicate(self) -> bool:
        """False for the Co-occurrence baseline: predicate out of the query and the reconstruction."""
        return self.variant != "cooccurrence"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data)


@dataclass
class TrainConfig:
    """Optimisation settings of :func:`vrgv.training.train.train`."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 3
    lr_patience: int = 1
    lr_factor: float = 0.5
    grad_clip: float = 5.0
    seed: int = 0
    threads: int = 2
    max_minutes: float = 0.0  # 0 = no wall-clock budget
    max_relations_per_video: int = 0  # per epoch, a fresh random subset of each video's relations; 0 = all
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides (variant, sizes)

    def __post_init__(self) -> None:
        _check_positive("TrainConfig", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                        patience=self.patience, lr_patience=self.lr_patience, threads=self.threads)
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise ConfigError(f"TrainConfig.val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if not 0.0 < float(self.lr_factor) < 1.0:
            raise ConfigError(f"TrainConfig.lr_factor must lie in (0, 1), got {self.lr_factor!r}")
        if self.max_relations_per_video < 0:
            raise ConfigError(f"TrainConfig.max_relations_per_video must be >= 0, got {self.max_relations_per_video!r}")
        if self.max_minutes < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("TrainConfig.max_minutes, weight_decay and grad_clip must be >= 0")
        if not isinstance(self.model, dict):
            raise ConfigError(f"TrainConfig.model must be a JSON object of ModelConfig fields, got {self.model!r}")
        known = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ConfigError(f"TrainConfig.model has unknown ModelConfig field(s) {unknown}; known: {sorted(known)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, data)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Read a JSON config file (see ``training/configs/*.json``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"training config {str(path)!r} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"training config {str(path)!r} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"training config {str(path)!r} must hold a JSON object")
        return cls.from_dict(data)


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be built from a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__} has unknown field(s) {unknown}; known fields: {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None
