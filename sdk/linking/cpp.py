"""C++ backend: thin wrapper over the pybind11 module ``vrgv._linking_cpp`` built from ``cpp_ext/``.

The module is optional (built by ``pip install`` when a compiler is present); :func:`available` says
whether it imported. The C++ code releases the GIL and spreads ``link_many`` over threads.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vrgv.linking.reference import RawLink

try:  # pragma: no branch - depends on the build
    from vrgv import _linking_cpp as _ext
except ImportError:  # pragma: no cover - no compiler at install time
    _ext = None


def available() -> bool:
    """True when the compiled extension imported."""
    return _ext is not None


def screen_active() -> bool:
    """True when the C++ Viterbi step divides only where a pair can win (an AVX-512 CPU); results are the same."""
    probe = getattr(_ext, "screen_active", None)  # absent from builds older than session 9
    return probe is not None and bool(probe())


def _module() -> Any:
    if _ext is None:
        from vrgv.errors import BackendError

        raise BackendError(
            "linking backend 'cpp' is not built (vrgv._linking_cpp missing); reinstall with a C++17 compiler "
            "(pip install -e . --no-build-isolation) or pass backend='numba' / 'numpy'"
        )
    return _ext


def link_arrays(
    boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, beta: np.ndarray,
    frame_ids: np.ndarray, num_frames: int, sigma: float, iou_weight: float, strict: bool,
) -> RawLink | None:
    """Steps 1-8 for one relation (validated arrays) in C++; same contract as ``reference.link_arrays``."""
    return _module().link(boxes, alpha_s, alpha_o, beta, frame_ids, int(num_frames), float(sigma),
                          float(iou_weight), bool(strict))


def link_many_arrays(
    boxes: np.ndarray, alpha_s: np.ndarray, alpha_o: np.ndarray, beta: np.ndarray,
    frame_ids: np.ndarray, num_frames: int, sigma: float, iou_weight: float, strict: bool,
    threads: int | None = None,
) -> list[RawLink | None]:
    """R relations (alpha [R,N,M], beta [R,N]) on ``threads`` C++ threads (None: one per core)."""
    return list(_module().link_many(boxes, alpha_s, alpha_o, beta, frame_ids, int(num_frames), float(sigma),
                                    float(iou_weight), bool(strict), int(threads or 0)))
