"""Linking (paper §3.4, eq. 12-14): turn spatio-temporal attention into a subject/object trajectory pair.

``link(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames)`` thresholds beta into candidate segments,
links boxes with a Viterbi path per segment and interpolates every real frame; ``link_many`` does R
relations of one video. Three backends implement the same algorithm (``reference.py`` is the spec):
``cpp`` (pybind11, optional), ``numba`` and ``numpy``; ``backend="auto"`` takes the first available.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from vrgv.errors import BackendError, LinkingError  # noqa: F401  (LinkingError re-exported)
from vrgv.linking.result import LinkResult, to_grounding
from vrgv.linking.validate import LinkInputs, check_inputs

__all__ = ["BACKENDS", "LinkResult", "LinkingError", "available_backends", "link", "link_many", "resolve_backend",
           "to_grounding", "warmup"]

BACKENDS = ("cpp", "numba", "numpy")
DEFAULT_SIGMA = 0.04  # paper §4.2: temporal attention threshold
log = logging.getLogger("vrgv.linking")


@lru_cache(maxsize=None)
def _works(name: str) -> bool:
    """Whether backend ``name`` imports here (numba's import takes about a second, so it is checked lazily)."""
    if name == "cpp":
        from vrgv.linking import cpp

        return cpp.available()
    if name == "numba":
        try:
            import vrgv.linking.numba_impl  # noqa: F401
        except Exception as exc:  # pragma: no cover - numba missing or broken
            log.debug("numba linking backend unavailable: %s", exc)
            return False
        return True
    return name == "numpy"


def available_backends() -> tuple[str, ...]:
    """The subset of ("cpp", "numba", "numpy") that works here, in preference order."""
    return tuple(name for name in BACKENDS if _works(name))


_announced: set[str] = set()


def resolve_backend(backend: str = "auto") -> str:
    """Name of the backend ``backend`` selects; "auto" = the first that works of cpp, numba, numpy (logged once)."""
    if backend == "auto":
        name = next(b for b in BACKENDS if _works(b))
        if name not in _announced:
            _announced.add(name)
            log.info("linking backend: %s", name)
        return name
    if backend not in BACKENDS:
        raise BackendError(f"unknown linking backend {backend!r}; choose one of 'auto', {', '.join(map(repr, BACKENDS))}")
    if not _works(backend):
        raise BackendError(
            f"linking backend {backend!r} is not available here (available: {', '.join(available_backends())}); "
            "use backend='auto' or install the missing piece (numba, or a C++ compiler for 'cpp')"
        )
    return backend


def _kernel(name: str):
    if name == "cpp":
        from vrgv.linking.cpp import link_arrays
    elif name == "numba":
        from vrgv.linking.numba_impl import link_arrays
    else:
        from vrgv.linking.reference import link_arrays
    return link_arrays


def _to_result(raw: tuple | None, backend: str) -> LinkResult | None:
    if raw is None:
        return None
    kept, sp, op, ss, os_, fallback, start, end, sub, obj = raw
    return LinkResult(start_fid=start, end_fid=end, sub_boxes=sub, obj_boxes=obj, score=(ss + os_) / 2.0,
                      sub_score=ss, obj_score=os_, fallback=fallback, kept_indices=kept, sub_indices=sp,
                      obj_indices=op, backend=backend)


def link(
    boxes: np.ndarray,
    alpha_s: np.ndarray,
    alpha_o: np.ndarray,
    beta: np.ndarray,
    frame_ids: np.ndarray,
    num_frames: int,
    *,
    sigma: float = DEFAULT_SIGMA,
    iou_weight: float = 1.0,
    strict: bool = False,
    backend: str = "auto",
) -> LinkResult | None:
    """Link one relation: boxes [N,M,4], alpha_s/alpha_o [N,M], beta [N] (= beta1 + beta2 per sampled frame),
    frame_ids [N] (real, non-decreasing) of a ``num_frames``-frame video.

    Returns the best segment's trajectories, or None only when ``strict`` and no segment passes ``sigma``
    (otherwise the fallback of step 8 answers with ``fallback=True``). ``iou_weight=0`` is the paper's vRGV*.
    """
    name = resolve_backend(backend)
    x = check_inputs(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames, sigma, iou_weight, many=False)
    raw = _kernel(name)(x.boxes, x.alpha_s[0], x.alpha_o[0], x.beta[0], x.frame_ids, x.num_frames, x.sigma,
                        x.iou_weight, bool(strict))
    return _to_result(raw, name)


def link_many(
    boxes: np.ndarray,
    alpha_s: np.ndarray,
    alpha_o: np.ndarray,
    beta: np.ndarray,
    frame_ids: np.ndarray,
    num_frames: int,
    *,
    sigma: float = DEFAULT_SIGMA,
    iou_weight: float = 1.0,
    strict: bool = False,
    backend: str = "auto",
    threads: int | None = None,
) -> list[LinkResult | None]:
    """Link R relations of one video: alpha_s/alpha_o [R,N,M], beta [R,N]; one result (or None) per relation.

    The C++ backend runs relations on ``threads`` worker threads (None: one per core) without the GIL.
    """
    name = resolve_backend(backend)
    x: LinkInputs = check_inputs(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames, sigma, iou_weight, many=True)
    if name == "cpp":
        from vrgv.linking.cpp import link_many_arrays

        raws = link_many_arrays(x.boxes, x.alpha_s, x.alpha_o, x.beta, x.frame_ids, x.num_frames, x.sigma,
                                x.iou_weight, bool(strict), threads)
    else:
        kernel = _kernel(name)
        raws = [kernel(x.boxes, x.alpha_s[r], x.alpha_o[r], x.beta[r], x.frame_ids, x.num_frames, x.sigma,
                       x.iou_weight, bool(strict)) for r in range(x.alpha_s.shape[0])]
    return [_to_result(raw, name) for raw in raws]


def warmup(backend: str = "auto") -> float:
    """Prepare ``backend`` before the first real call (numba compiles or loads its cache); returns seconds.

    The SDK calls this when it loads a model so the first grounding is not slowed by compilation.
    """
    name = resolve_backend(backend)
    if name != "numba":
        return 0.0
    from vrgv.linking.numba_impl import warmup as numba_warmup

    seconds = numba_warmup()
    log.debug("numba linking kernel ready in %.3f s", seconds)
    return seconds


