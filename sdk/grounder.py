"""``Grounder``: the SDK facade that turns (video, relation) into a :class:`~vrgv.grounding.Grounding`.

It wires the pieces other modules provide: ``vrgv.video`` + ``vrgv.extractors`` (pixels -> ``Regions``),
``vrgv.backends`` (regions -> attention, paper §3.2-3.3) and ``vrgv.linking`` (attention -> trajectories,
§3.4). A video is decoded and embedded once for any number of relations; one instance is thread-safe.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vrgv.errors import BackendError, BundleError, LinkingError, RegionsError, VideoError
from vrgv.grounding import Grounding
from vrgv.regions import DEFAULT_NUM_SAMPLES, Regions
from vrgv.relation import Relation
from vrgv.vocab import Vocabulary

log = logging.getLogger("vrgv.grounder")

DEFAULT_SIGMA = 0.04
DEFAULT_CLIP_LEN = 4
REGIONS_SUFFIX = ".npz"


class Attention(NamedTuple):
    """The encoder's output for R relations of one video (numpy): unpacks like the backend's 4-tuple."""

    alpha_s: np.ndarray  # [R, N, M] subject attention over regions
    alpha_o: np.ndarray  # [R, N, M] object attention over regions
    beta1: np.ndarray  # [R, N] frame-level temporal attention
    beta2: np.ndarray  # [R, H] clip-level temporal attention

    def beta(self, clip_len: int) -> np.ndarray:
        """Per-frame β = β1 + β2 with each clip's value given to its ``clip_len`` frames: float64 [R, N]."""
        return combine_beta(self.beta1, self.beta2, clip_len)


def combine_beta(beta1: np.ndarray, beta2: np.ndarray, clip_len: int) -> np.ndarray:
    """β per sampled frame (ARCHITECTURE contract): ``beta1 + repeat(beta2, L)``, clipped to N frames."""
    beta1 = np.asarray(beta1, dtype=np.float64)
    beta2 = np.asarray(beta2, dtype=np.float64)
    if beta1.ndim != 2 or beta2.ndim != 2 or beta1.shape[0] != beta2.shape[0]:
        raise BackendError(
            f"backend returned beta1 {list(beta1.shape)} and beta2 {list(beta2.shape)}; expected [R, N] and [R, H]"
        )
    n, h = beta1.shape[1], beta2.shape[1]
    if h == 0:
        return beta1
    clip_of_frame = np.minimum(np.arange(n) // max(1, int(clip_len)), h - 1)
    return beta1 + beta2[:, clip_of_frame]


@dataclass(frozen=True)
class ModelSpec:
    """What the encoder expects of its input: N sampled frames, M regions, D feature dims, L frames per clip."""

    num_samples: int = DEFAULT_NUM_SAMPLES
    num_regions: int | None = None
    feature_dim: int | None = None
    clip_len: int = DEFAULT_CLIP_LEN
    sigma: float = DEFAULT_SIGMA
    temporal_head: bool = False  # β is the temporal head's curve (peak 1, σ a fraction of it), not the attention
    # choose subject and object instances among candidate tracks with the head (vrgv.instances); needs ``head``
    instance_choice: bool = False
    instance_temperature: float = 16.0
    instance_gamma: float = 0.5
    instance_proximity: float = 0.0

    @property
    def beta_label(self) -> str:
        """What β is, for plot axes: the temporal head's curve or the paper's β1 + β2."""
        return "temporal head curve" if self.temporal_head else "β = β₁ + β₂"

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.clip_len < 1:
            raise BundleError(f"model spec needs N >= 1 and L >= 1, got N={self.num_samples}, L={self.clip_len}")
        if not 0.0 <= self.sigma:
            raise BundleError(f"model spec sigma must be non-negative, got {self.sigma}")


class Grounder:
    """Grounds relations in videos with one model bundle; see :meth:`load` for the usual way in.

    ``backend`` has ``embed(boxes_norm, features)`` and ``attend(emb, query_ids)`` (``vrgv.backends``);
    ``extractor`` turns sampled frames into ``Regions`` (``vrgv.extractors``). Either may be wrapped in
    :class:`Lazy` (a zero-argument factory) so it is built on first use (worker processes that only extract never load
    the encoder). ``linker`` is a ``vrgv.linking`` backend name or ``"auto"``.
    """

    def __init__(
        self,
        backend: Any,
        vocabulary: Vocabulary,
        spec: ModelSpec | None = None,
        *,
        extractor: Any = None,
        linker: str = "auto",
        iou_weight: float = 1.0,
        name: str = "custom",
        read_video: Callable[..., Any] | None = None,
        head: Any = None,
    ) -> None:
        if not isinstance(vocabulary, Vocabulary):
            raise BundleError(f"Grounder needs a vrgv.Vocabulary, got {type(vocabulary).__name__}")
        self.vocabulary = vocabulary
        self.spec = spec or ModelSpec()
        self.linker = str(linker)
        self.iou_weight = float(iou_weight)
        self.name = str(name)
        self._backend_src = backend
        self._extractor_src = extractor
        self._read_video = read_video
        self._head_src = head  # vrgv.instances.HeadWeights, or a factory of it (spec.instance_choice)
        self._head: Any = None
        self._backend: Any = None
        self._extractor: Any = None
        self._lock = threading.Lock()
        #: identifies what ``extract`` produces (regions caches are keyed by it)
        self.extractor_id = f"{self.name}-N{self.spec.num_samples}"

    # construction --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        linker: str = "auto",
        extractor: Any = None,
        precision: str = "fp32",
        instance_choice: bool | None = None,
    ) -> "Grounder":
        """Open a bundle folder (``None`` = the bundled default) and pick the backend and linker.

        The encoder session and the region detector are created on first use; ``extractor`` replaces
        the bundle's built-in detector (any callable with the ``vrgv.extractors`` signature). ``precision="fp16"``
        selects the bundle's float16 graphs (onnxruntime, tensorrt) or float16 autocast (torch on CUDA).
        ``instance_choice`` turns the bundle's instance choice (:mod:`vrgv.instances`) on or off; ``None`` keeps
        the bundle's setting. Turning it on needs a bundle with a temporal head.
        """
        from vrgv.bundle import Bundle

        if precision not in ("fp32", "fp16"):
            raise BackendError(f"precision={precision!r} is not supported; use 'fp32' or 'fp16'")
        bundle = Bundle.default() if path is None else Bundle.load(path)
        spec = spec_from_bundle(bundle)
        if instance_choice is not None:
            if instance_choice and not spec.temporal_head:
                raise BundleError(f"bundle {bundle.name!r} has no temporal head, so it cannot choose instances; "
                                  f"leave instance_choice unset or export a model with temporal_head")
            spec = dataclasses.replace(spec, instance_choice=bool(instance_choice))
        vocabulary = _bundle_vocabulary(bundle)

        def make_backend() -> Any:
            from vrgv.backends import load_backend

            options = {} if precision == "fp32" else {"precision": precision}
            return load_backend(bundle, backend=backend, device=device, threads=threads, **options)

        def make_extractor() -> Any:
            return _bundle_extractor(bundle, device=device, threads=threads)

        name = f"{bundle.name}@{bundle.identity}"
        grounder = cls(
            Lazy(make_backend),
            vocabulary,
            spec,
            extractor=extractor if extractor is not None else Lazy(make_extractor),
            linker=linker,
            name=name,
            head=Lazy(lambda: head_from_bundle(bundle)) if spec.instance_choice else None,
        )
        grounder.bundle = bundle  # type: ignore[attr-defined]
        detector = (bundle.manifest.detector or {}).get("file")
        if extractor is None and detector is not None:
            grounder.extractor_id = f"detector-{bundle.manifest.files[detector].sha256[:16]}-N{spec.num_samples}"
        log.info("vrgv: bundle %s (N=%d, L=%d, sigma=%g)", name, spec.num_samples, spec.clip_len, spec.sigma)
        return grounder

    @property
    def backend(self) -> Any:
        """The encoder backend (built on first access; thread-safe)."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    be = self._backend_src() if _is_factory(self._backend_src) else self._backend_src
                    for attr in ("embed", "attend"):
                        if not callable(getattr(be, attr, None)):
                            raise BackendError(f"backend {type(be).__name__} lacks a callable .{attr}(); see vrgv.backends")
                    providers = getattr(be, "providers", None)
                    log.info(
                        "vrgv: encoder backend %s on %s%s, linker %s",
                        getattr(be, "name", type(be).__name__), getattr(be, "device", "?"),
                        f" ({', '.join(providers)})" if providers else "", self.linker_name,
                    )
                    self._backend = be
        return self._backend

    def _build_once(self, slot: str, source: Any, missing: Exception) -> Any:
        """``self.<slot>``, built from ``source`` (an object or a :class:`Lazy` factory) on first use, under the
        lock; ``missing`` is raised when there is no source."""
        if getattr(self, slot) is None:
            with self._lock:
                if getattr(self, slot) is None:
                    if source is None:
                        raise missing
                    built = source() if _is_factory(source) else source
                    setattr(self, slot, built)
                    return built
        return getattr(self, slot)

    @property
    def extractor(self) -> Any:
        """The region extractor (built on first access; thread-safe)."""
        was_built = self._extractor is not None
        ex = self._build_once("_extractor", self._extractor_src, RegionsError(
            "this Grounder has no region extractor; pass Regions (a .npz file or vrgv.Regions) "
            "or build it with Grounder.load(...) / extractor=..."))
        if not was_built:
            log.info("vrgv: region extractor %s", getattr(ex, "name", None) or getattr(ex, "__name__", type(ex).__name__))
        return ex

    @property
    def head(self) -> Any:
        """The temporal head that chooses instances (``spec.instance_choice``; loaded on first use)."""
        return self._build_once("_head", self._head_src, BundleError(
            "this Grounder's spec asks for instance choice but it has no temporal head; pass "
            "head=vrgv.instances.HeadWeights(...) or load a bundle"))

    @property
    def linker_name(self) -> str:
        """The linking backend that ``linker`` resolves to here (``auto`` = fastest available)."""
        from vrgv.linking import resolve_backend

        return resolve_backend(self.linker)

    # the pipeline --------------------------------------------------------------------------------
    def extract(self, video: Any, video_id: str | None = None) -> Regions:
        """Decode the N sampled frames of ``video`` (path, frame folder or array) and detect regions."""
        if isinstance(video, Regions) or (
            isinstance(video, (str, os.PathLike)) and str(video).lower().endswith(REGIONS_SUFFIX)
        ):
            regions = video if isinstance(video, Regions) else Regions.load(video)
            if video_id is not None and str(video_id) != regions.video_id:
                regions = dataclasses.replace(regions, video_id=str(video_id))  # never mutate the caller's object
            return regions
        frames = self._decode(video)
        vid = str(video_id if video_id is not None else getattr(frames, "video_id", None) or _video_id_of(video))
        regions = self.extractor(
            frames.frames,
            frames.frame_ids,
            num_frames=frames.num_frames,
            width=frames.width,
            height=frames.height,
            video_id=vid,
            fps=getattr(frames, "fps", None),
        )
        if not isinstance(regions, Regions):
            raise RegionsError(f"region extractor returned {type(regions).__name__}, expected vrgv.Regions")
        return regions

    def attend(self, regions: Regions | Any, relations: Sequence[str | Relation] | str | Relation) -> Attention:
        """Attention for R relations of one video: alpha_s, alpha_o [R,N,M], beta1 [R,N], beta2 [R,H]."""
        rels = self._relations(relations)
        regions = self.conform(self.extract(regions))
        return self._attend(regions, rels)

    def ground(self, video: Any, relation: str | Relation, video_id: str | None = None) -> Grounding:
        """Where ``relation`` holds in ``video``: segment + subject/object trajectories."""
        return self.ground_many(video, [relation], video_id=video_id)[0]

    def ground_many(
        self, video: Any, relations: Sequence[str | Relation], video_id: str | None = None
    ) -> list[Grounding]:
        """Ground R relations of one video: decoded and embedded once, one ``attend`` call for all R."""
        if isinstance(relations, (str, Relation)):
            relations = [relations]
        rels = self._relations(relations)  # fail on a bad relation before decoding anything
        if not rels:
            return []
        regions = self.conform(self.extract(video, video_id=video_id))
        att = self._attend(regions, rels)
        return self._link(regions, rels, att)

    # helpers -------------------------------------------------------------------------------------
    def _relations(self, relations: Sequence[str | Relation] | str | Relation) -> list[Relation]:
        if isinstance(relations, (str, Relation)):
            relations = [relations]
        if not isinstance(relations, Sequence):
            relations = list(relations)
        return [self.vocabulary.canonical(r) for r in relations]

    def conform(self, regions: Regions) -> Regions:
        """Fit user regions to the model: resample to N frames, keep the top-M scored regions, check D."""
        spec = self.spec
        name = f"regions of video {regions.video_id!r}"
        if spec.feature_dim is not None and regions.feature_dim != spec.feature_dim:
            raise RegionsError(
                f"{name}: features have D={regions.feature_dim} dims but model {self.name!r} expects "
                f"D={spec.feature_dim}; extract them with this model's detector (the bundle's detector.onnx: "
                f"vrgv extract --detector BUNDLE/detector.onnx) or pass the video instead"
            )
        if spec.num_regions is not None and regions.num_regions != spec.num_regions:
            if regions.num_regions > spec.num_regions and regions.scores is not None:
                order = np.argsort(-regions.scores, axis=1, kind="stable")[:, : spec.num_regions]
                regions = Regions(
                    boxes=np.take_along_axis(regions.boxes, order[..., None], axis=1),
                    features=np.take_along_axis(regions.features, order[..., None], axis=1),
                    frame_ids=regions.frame_ids,
                    width=regions.width,
                    height=regions.height,
                    num_frames=regions.num_frames,
                    video_id=regions.video_id,
                    scores=np.take_along_axis(regions.scores, order, axis=1),
                    fps=regions.fps,
                )
            else:
                raise RegionsError(
                    f"{name}: {regions.num_regions} regions per frame but model {self.name!r} expects "
                    f"M={spec.num_regions}; give exactly M regions per frame (or more, with scores, to keep the top M)"
                )
        if regions.num_samples != spec.num_samples:
            idx = np.round(np.linspace(0, regions.num_samples - 1, spec.num_samples)).astype(np.int64)
            log.warning(
                "%s: %d sampled frames resampled to the model's N=%d", name, regions.num_samples, spec.num_samples
            )
            regions = Regions(
                boxes=regions.boxes[idx],
                features=regions.features[idx],
                frame_ids=regions.frame_ids[idx],
                width=regions.width,
                height=regions.height,
                num_frames=regions.num_frames,
                video_id=regions.video_id,
                scores=None if regions.scores is None else regions.scores[idx],
                fps=regions.fps,
            )
        return regions

    def _attend(self, regions: Regions, rels: list[Relation]) -> Attention:
        backend = self.backend
        query = self.vocabulary.encode_query(rels)
        emb = backend.embed(regions.normalized_boxes(), regions.features)
        out = backend.attend(emb, query)
        if not isinstance(out, (tuple, list)) or len(out) != 4:
            raise BackendError(f"backend {getattr(backend, 'name', '?')} attend() must return 4 arrays")
        att = Attention(*(np.asarray(a) for a in out))
        r, n, m = len(rels), regions.num_samples, regions.num_regions
        for label, arr, shape in (("alpha_s", att.alpha_s, (r, n, m)), ("alpha_o", att.alpha_o, (r, n, m)),
                                  ("beta1", att.beta1, (r, n))):
            if arr.shape != shape:
                raise BackendError(f"backend returned {label} of shape {list(arr.shape)}, expected {list(shape)}")
        return att

    def _link(self, regions: Regions, rels: list[Relation], att: Attention) -> list[Grounding]:
        from vrgv.linking import link_many, to_grounding

        beta = att.beta(self.spec.clip_len)
        alpha_s, alpha_o = att.alpha_s.astype(np.float64), att.alpha_o.astype(np.float64)
        if self.spec.instance_choice:
            from vrgv.instances import choose_instances

            alpha_s, alpha_o, beta = choose_instances(
                regions.boxes, regions.normalized_boxes(), alpha_s, alpha_o, beta, regions.frame_ids,
                self.vocabulary.encode_query(rels)[:, 1:-1], self.head,
                self.spec.instance_temperature, self.spec.instance_gamma, num_frames=regions.num_frames,
                linker=self.linker, sigma=self.spec.sigma, iou_weight=self.iou_weight,
                proximity=self.spec.instance_proximity)
        results = link_many(
            regions.boxes.astype(np.float64),
            alpha_s,
            alpha_o,
            beta,
            regions.frame_ids,
            regions.num_frames,
            sigma=self.spec.sigma,
            iou_weight=self.iou_weight,
            strict=False,
            backend=self.linker,
        )
        extra = {"backend": str(getattr(self.backend, "name", type(self.backend).__name__)), "linker": self.linker_name}
        out = []
        for k, (rel, res) in enumerate(zip(rels, results)):
            if res is None:
                raise LinkingError(f"linking found no segment for '{rel}' in video {regions.video_id!r}")
            out.append(to_grounding(res, rel, regions.video_id, beta=beta[k], beta_frame_ids=regions.frame_ids,
                                    extra=dict(extra)))
        return out

    def _decode(self, video: Any) -> Any:
        if self._read_video is not None:
            reader = self._read_video
        else:
            from vrgv.video import read_video as reader
        if hasattr(video, "frames") and hasattr(video, "frame_ids"):
            return video  # already a vrgv.video.VideoFrames
        if isinstance(video, (str, os.PathLike)) and not Path(video).exists():
            raise VideoError(f"video {str(video)!r} does not exist; give a video file, a frame folder or a .npz of Regions")
        max_side = getattr(self.extractor, "read_max_side", None)
        return reader(video, num_samples=self.spec.num_samples, max_side=max_side)

    def __repr__(self) -> str:
        return f"Grounder(model={self.name!r}, N={self.spec.num_samples}, linker={self.linker!r})"


# bundle adapters ---------------------------------------------------------------------------------
def spec_from_bundle(bundle: Any) -> ModelSpec:
    """N, M, D, L and sigma from a ``vrgv.bundle.Bundle`` manifest."""
    m = bundle.manifest
    return ModelSpec(
        num_samples=int(m.num_samples),
        num_regions=int(m.num_regions),
        feature_dim=int(m.feature_dim),
        clip_len=int(m.clip_length),
        sigma=float(m.sigma),
        temporal_head=bool((m.model or {}).get("temporal_head", False)),
        instance_choice=bool((m.model or {}).get("instance_choice", False)),
        instance_temperature=float((m.model or {}).get("instance_temperature", 16.0)),
        instance_gamma=float((m.model or {}).get("instance_gamma", 0.5)),
        instance_proximity=float((m.model or {}).get("instance_proximity", 0.0)),
    )


def head_from_bundle(bundle: Any) -> Any:
    """The bundle's temporal head as :class:`vrgv.instances.HeadWeights` (from its safetensors weights)."""
    from safetensors.numpy import load_file

    from vrgv.instances import HeadWeights

    m = bundle.manifest
    if not m.weights:
        raise BundleError(f"bundle {bundle.root} has no weights file; instance choice needs the temporal head's "
                          f"weights (re-export the bundle)")
    return HeadWeights.from_state(load_file(str(bundle.root / m.weights)), m.model or {})


def _bundle_vocabulary(bundle: Any) -> Vocabulary:
    return bundle.vocabulary


def _bundle_extractor(bundle: Any, device: str, threads: int | None) -> Any:
    """The bundle's own ``detector.onnx`` as a region extractor (ONNX Runtime, CPU)."""
    from vrgv.extractors import get_extractor

    detector = (bundle.manifest.detector or {}).get("file")
    if detector is None:
        log.warning("bundle %s has no detector; using the built-in default detector", bundle.name)
        return get_extractor("builtin", threads=threads, num_regions=bundle.manifest.num_regions)
    return get_extractor("builtin", detector=bundle.file(detector), threads=threads,
                         num_regions=bundle.manifest.num_regions)


class Lazy:
    """Marks a zero-argument factory whose product a :class:`Grounder` builds on first use."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        if not callable(factory):
            raise TypeError("Lazy needs a zero-argument callable")
        self.factory = factory

    def __call__(self) -> Any:
        return self.factory()


def _is_factory(obj: Any) -> bool:
    return isinstance(obj, Lazy)


def _video_id_of(video: Any) -> str:
    if isinstance(video, (str, os.PathLike)):
        p = Path(video)
        return p.stem if p.suffix else p.name
    return "video"


__all__ = ["Attention", "Grounder", "Lazy", "ModelSpec", "combine_beta", "spec_from_bundle"]
