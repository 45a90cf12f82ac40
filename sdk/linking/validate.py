"""Input checks shared by every linking backend: shapes, dtypes, NaN/inf, frame ids, box corners.

Each failure raises :class:`vrgv.errors.LinkingError` naming the array, what is wrong and what to do.
The checked arrays come back as C-contiguous float64 / int64 so the kernels can trust them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vrgv.errors import LinkingError

try:  # one-pass checks in C++ when the extension is built (the NumPy versions make several passes)
    from vrgv._linking_cpp import all_finite as _all_finite_cpp
    from vrgv._linking_cpp import corners_ordered as _corners_ordered_cpp
except ImportError:  # pragma: no cover - no compiler at install time
    _all_finite_cpp = _corners_ordered_cpp = None
try:  # older builds of the extension lack it
    from vrgv._linking_cpp import inputs_ok as _inputs_ok_cpp
except ImportError:  # pragma: no cover
    _inputs_ok_cpp = None


def _all_finite(arr: np.ndarray) -> bool:
    if _all_finite_cpp is not None:
        return bool(_all_finite_cpp(arr))
    return bool(np.isfinite(arr).all())


def _corners_ordered(boxes: np.ndarray) -> bool:
    if _corners_ordered_cpp is not None:
        return bool(_corners_ordered_cpp(boxes))
    flat = boxes.reshape(-1, 4)
    return not ((flat[:, 2] < flat[:, 0]).any() or (flat[:, 3] < flat[:, 1]).any())


@dataclass(frozen=True)
class LinkInputs:
    """Validated linking inputs; ``alpha_s``/``alpha_o`` are [R,N,M] and ``beta`` [R,N] (R=1 for ``link``)."""

    boxes: np.ndarray
    alpha_s: np.ndarray
    alpha_o: np.ndarray
    beta: np.ndarray
    frame_ids: np.ndarray
    num_frames: int
    sigma: float
    iou_weight: float


def _float_array(value: object, name: str) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LinkingError(f"linking input {name} must be a numeric array ({exc})") from None
    if not _all_finite(arr):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise LinkingError(
            f"linking input {name} holds {bad} NaN or infinite value(s); check the model output or the "
            "region boxes before linking"
        )
    return arr


def _finite_scalar(value: object, name: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LinkingError(f"linking parameter {name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise LinkingError(f"linking parameter {name} must be finite, got {out}")
    return out


def check_inputs(
    boxes: object,
    alpha_s: object,
    alpha_o: object,
    beta: object,
    frame_ids: object,
    num_frames: object,
    sigma: object,
    iou_weight: object,
    *,
    many: bool,
) -> LinkInputs:
    """Validate and convert; ``many=True`` expects a leading relation axis R on alpha_s, alpha_o and beta."""
    quick = _quick_check(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames, sigma, iou_weight, many)
    if quick is not None:
        return quick
    b = _float_array(boxes, "boxes")
    if b.ndim != 3 or b.shape[2] != 4 or b.shape[0] < 1 or b.shape[1] < 1:
        raise LinkingError(
            f"linking input boxes must have shape [N, M, 4] with N, M >= 1 (x1, y1, x2, y2 per region), "
            f"got {list(b.shape)}"
        )
    n, m, _ = b.shape
    if not _corners_ordered(b):
        raise LinkingError(
            "linking input boxes has boxes with x2 < x1 or y2 < y1; pass corners as (x1, y1, x2, y2), not (x, y, w, h)"
        )
    lead = "R, " if many else ""
    want_alpha = (n, m)
    a_s = _float_array(alpha_s, "alpha_s")
    a_o = _float_array(alpha_o, "alpha_o")
    be = _float_array(beta, "beta")
    if many:
        if a_s.ndim != 3:
            raise LinkingError(f"linking input alpha_s must have shape [R, N={n}, M={m}], got {list(a_s.shape)}")
        r = a_s.shape[0]
        want_alpha_full: tuple[int, ...] = (r, n, m)
        want_beta: tuple[int, ...] = (r, n)
    else:
        want_alpha_full = want_alpha
        want_beta = (n,)
    for name, arr in (("alpha_s", a_s), ("alpha_o", a_o)):
        if arr.shape != want_alpha_full:
            raise LinkingError(
                f"linking input {name} must have shape [{lead}N={n}, M={m}] to match boxes {list(b.shape)}, "
                f"got {list(arr.shape)}"
            )
    if be.shape != want_beta:
        raise LinkingError(f"linking input beta must have shape [{lead}N={n}] to match boxes, got {list(be.shape)}")
    fid_raw = np.asarray(frame_ids)
    if fid_raw.dtype.kind not in "iu" and not (
        fid_raw.dtype.kind == "f" and np.all(np.isfinite(fid_raw)) and np.all(fid_raw == np.round(fid_raw))
    ):
        raise LinkingError(f"linking input frame_ids must be integers, got dtype {fid_raw.dtype}")
    fids = np.ascontiguousarray(fid_raw, dtype=np.int64)
    if fids.shape != (n,):
        raise LinkingError(f"linking input frame_ids must have shape [N={n}] to match boxes, got {list(fids.shape)}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)):
        raise LinkingError(f"linking parameter num_frames must be an integer, got {num_frames!r}")
    nf = int(num_frames)
    if nf < 1:
        raise LinkingError(f"linking parameter num_frames must be at least 1, got {nf}")
    if n > 1 and (fids[1:] < fids[:-1]).any():
        i = int(np.argmax(np.diff(fids) < 0))
        raise LinkingError(
            f"linking input frame_ids must be non-decreasing; frame_ids[{i}]={fids[i]} > frame_ids[{i + 1}]={fids[i + 1]}"
        )
    if fids[0] < 0 or fids[-1] >= nf:
        raise LinkingError(
            f"linking input frame_ids must lie in [0, num_frames={nf}), got range [{fids[0]}, {fids[-1]}]; "
            "pass the video's real frame count as num_frames"
        )
    return LinkInputs(
        boxes=b,
        alpha_s=a_s if many else a_s[None],
        alpha_o=a_o if many else a_o[None],
        beta=be if many else be[None],
        frame_ids=fids,
        num_frames=nf,
        sigma=_finite_scalar(sigma, "sigma"),
        iou_weight=_finite_scalar(iou_weight, "iou_weight"),
    )


def _is_array(value: object, dtype: type, ndim: int) -> bool:
    return (type(value) is np.ndarray and value.dtype == dtype and value.ndim == ndim  # type: ignore[union-attr]
            and value.flags.c_contiguous)  # type: ignore[union-attr]


def _quick_check(boxes: object, alpha_s: object, alpha_o: object, beta: object, frame_ids: object,
                 num_frames: object, sigma: object, iou_weight: object, many: bool) -> LinkInputs | None:
    """The common case in one C++ pass: arrays already float64/int64, C-contiguous, of matching shapes, and
    valid. None sends the caller to the detailed checks (other types, or anything wrong: they name it)."""
    if _inputs_ok_cpp is None or not _is_array(boxes, np.float64, 3):
        return None
    n, m, four = boxes.shape  # type: ignore[union-attr]
    lead = 3 if many else 2
    if not (four == 4 and n >= 1 and m >= 1 and _is_array(alpha_s, np.float64, lead)
            and _is_array(alpha_o, np.float64, lead) and _is_array(beta, np.float64, lead - 1)
            and _is_array(frame_ids, np.int64, 1) and type(num_frames) is int
            and type(sigma) in (float, int) and type(iou_weight) in (float, int)):
        return None
    r = alpha_s.shape[0] if many else 1  # type: ignore[union-attr]
    want = (r, n, m) if many else (n, m)
    if (alpha_s.shape != want or alpha_o.shape != want or beta.shape != want[:-1]  # type: ignore[union-attr]
            or frame_ids.shape != (n,) or num_frames < 1  # type: ignore[union-attr,operator]
            or not (math.isfinite(sigma) and math.isfinite(iou_weight))):  # type: ignore[arg-type]
        return None
    if not _inputs_ok_cpp(boxes, alpha_s, alpha_o, beta, frame_ids, num_frames):
        return None
    return LinkInputs(
        boxes=boxes,  # type: ignore[arg-type]
        alpha_s=alpha_s if many else alpha_s[None],  # type: ignore[index]
        alpha_o=alpha_o if many else alpha_o[None],  # type: ignore[index]
        beta=beta if many else beta[None],  # type: ignore[index]
        frame_ids=frame_ids,  # type: ignore[arg-type]
        num_frames=num_frames,  # type: ignore[arg-type]
        sigma=float(sigma),  # type: ignore[arg-type]
        iou_weight=float(iou_weight),  # type: ignore[arg-type]
    )
