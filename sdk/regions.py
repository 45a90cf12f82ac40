"""``Regions``: M region proposals per sampled frame, the public input format of the grounding model.

Users produce it with any detector and save it as ``.npz`` (no pickle). Arrays:
``boxes`` float32 [N,M,4] (x1,y1,x2,y2, original pixels), ``features`` float32 [N,M,D], ``scores`` float32
[N,M] (optional), ``frame_ids`` int64 [N] (real frame index of each sample, non-decreasing, repeats allowed).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrgv.errors import RegionsError

DEFAULT_NUM_SAMPLES = 120
FORMAT_VERSION = 1
BOX_TOLERANCE = 1.0  # pixels a box may stick out of the frame (detectors round outward)


def sample_frame_ids(num_frames: int, num_samples: int = DEFAULT_NUM_SAMPLES) -> np.ndarray:
    """``round(linspace(0, num_frames - 1, N))`` as int64 (paper §4.2); repeats when the video is short."""
    if int(num_frames) < 1:
        raise RegionsError(f"num_frames must be at least 1 to sample frames, got {num_frames}")
    if int(num_samples) < 1:
        raise RegionsError(f"the number of sampled frames must be at least 1, got {num_samples}")
    return np.round(np.linspace(0, int(num_frames) - 1, int(num_samples))).astype(np.int64)


@dataclass
class Regions:
    """Region proposals of one video at its N sampled frames (validated on construction)."""

    boxes: np.ndarray
    features: np.ndarray
    frame_ids: np.ndarray
    width: int
    height: int
    num_frames: int
    video_id: str = "video"
    scores: np.ndarray | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        name = f"regions of video {self.video_id!r}"
        self.boxes = _as_array(self.boxes, np.float32, "boxes", name)
        self.features = _as_array(self.features, np.float32, "features", name)
        self.frame_ids = _as_array(self.frame_ids, np.int64, "frame_ids", name)
        if self.boxes.ndim != 3 or self.boxes.shape[2] != 4:
            raise RegionsError(f"{name}: boxes must have shape [N, M, 4], got {list(self.boxes.shape)}")
        n, m, _ = self.boxes.shape
        if n < 1 or m < 1:
            raise RegionsError(f"{name}: boxes must hold at least one frame and one region, got {list(self.boxes.shape)}")
        if self.features.ndim != 3 or self.features.shape[:2] != (n, m) or self.features.shape[2] < 1:
            raise RegionsError(
                f"{name}: features must have shape [N={n}, M={m}, D], got {list(self.features.shape)}"
            )
        if self.frame_ids.shape != (n,):
            raise RegionsError(f"{name}: frame_ids must have shape [N={n}], got {list(self.frame_ids.shape)}")
        if self.scores is not None:
            self.scores = _as_array(self.scores, np.float32, "scores", name)
            if self.scores.shape != (n, m):
                raise RegionsError(f"{name}: scores must have shape [N={n}, M={m}], got {list(self.scores.shape)}")
        for label, arr in (("boxes", self.boxes), ("features", self.features), ("scores", self.scores)):
            if arr is not None and not np.all(np.isfinite(arr)):
                bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
                raise RegionsError(f"{name}: {label} holds {bad} NaN or infinite value(s); fix the detector output")
        try:
            self.width, self.height, self.num_frames = int(self.width), int(self.height), int(self.num_frames)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: inf
            raise RegionsError(f"{name}: width, height and num_frames must be integers ({exc})") from None
        if self.width < 1 or self.height < 1:
            raise RegionsError(f"{name}: width and height must be positive, got {self.width}x{self.height}")
        if self.num_frames < 1:
            raise RegionsError(f"{name}: num_frames must be at least 1, got {self.num_frames}")
        if np.any(np.diff(self.frame_ids) < 0):
            i = int(np.argmax(np.diff(self.frame_ids) < 0))
            raise RegionsError(
                f"{name}: frame_ids must be non-decreasing, but frame_ids[{i}]={self.frame_ids[i]} > "
                f"frame_ids[{i + 1}]={self.frame_ids[i + 1]}; sort the samples by frame"
            )
        if self.frame_ids[0] < 0 or self.frame_ids[-1] >= self.num_frames:
            raise RegionsError(
                f"{name}: frame_ids must lie in [0, num_frames-1] = [0, {self.num_frames - 1}], "
                f"got [{self.frame_ids[0]}, {self.frame_ids[-1]}]; check num_frames"
            )
        x1, y1, x2, y2 = (self.boxes[..., k] for k in range(4))
        if np.any(x2 < x1) or np.any(y2 < y1):
            raise RegionsError(f"{name}: some boxes are inverted (x2 < x1 or y2 < y1); boxes are x1,y1,x2,y2")
        tol = BOX_TOLERANCE
        if np.any(x1 < -tol) or np.any(y1 < -tol) or np.any(x2 > self.width + tol) or np.any(y2 > self.height + tol):
            raise RegionsError(
                f"{name}: some boxes lie outside the {self.width}x{self.height} frame; boxes must be in original "
                f"pixels (clip them with np.clip, or pass the right width/height)"
            )
        self.video_id = str(self.video_id)
        if self.fps is not None:
            self.fps = float(self.fps)

    # shape helpers -------------------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_regions(self) -> int:
        return int(self.boxes.shape[1])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[2])

    def normalized_boxes(self) -> np.ndarray:
        """float32 [N,M,5]: x1/W, y1/H, x2/W, y2/H, area/(W*H) (the model's box input)."""
        b = self.boxes
        w, h = float(self.width), float(self.height)
        area = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) / (w * h)
        return np.stack([b[..., 0] / w, b[..., 1] / h, b[..., 2] / w, b[..., 3] / h, area], axis=-1).astype(np.float32)

    # serialization -------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "boxes": self.boxes,
            "features": self.features,
            "frame_ids": self.frame_ids,
            "width": np.array(self.width, dtype=np.int64),
            "height": np.array(self.height, dtype=np.int64),
            "num_frames": np.array(self.num_frames, dtype=np.int64),
            "video_id": np.array(self.video_id),
        }
        if self.scores is not None:
            arrays["scores"] = self.scores
        if self.fps is not None:
            arrays["fps"] = np.array(self.fps, dtype=np.float64)
        return arrays

    def save(self, path: str | os.PathLike) -> Path:
        """Write an uncompressed ``.npz`` atomically (temp file + rename); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **self.to_arrays())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Regions":
        """Read a ``.npz`` written by :meth:`save` or by a user's detector; never unpickles."""
        path = Path(path)
        if not path.exists():
            raise RegionsError(f"regions file {str(path)!r} does not exist")
        if path.is_dir():
            raise RegionsError(f"regions path {str(path)!r} is a directory; give one .npz file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, MemoryError) as exc:  # MemoryError: a 2 kB file
            # whose .npy header claims terabytes
            raise RegionsError(
                f"regions file {str(path)!r} is not a readable .npz without pickled objects ({exc}); "
                f"write it with Regions.save or np.savez"
            ) from None
        missing = [k for k in ("boxes", "features", "frame_ids", "width", "height", "num_frames") if k not in arrays]
        if missing:
            raise RegionsError(f"regions file {str(path)!r} lacks array(s) {missing}; see the Regions format in the README")
        try:
            version = int(arrays.get("format_version", FORMAT_VERSION))
        except (TypeError, ValueError, OverflowError):
            raise RegionsError(f"regions file {str(path)!r}: format_version must be an integer; "
                               f"write the file with Regions.save") from None
        if version > FORMAT_VERSION:
            raise RegionsError(
                f"regions file {str(path)!r} has format version {version}, newer than this vrgv ({FORMAT_VERSION}); upgrade vrgv"
            )
        try:
            return cls(
                boxes=arrays["boxes"],
                features=arrays["features"],
                frame_ids=arrays["frame_ids"],
                width=int(arrays["width"]),
                height=int(arrays["height"]),
                num_frames=int(arrays["num_frames"]),
                video_id=str(arrays["video_id"]) if "video_id" in arrays else path.stem,
                scores=arrays.get("scores"),
                fps=float(arrays["fps"]) if "fps" in arrays else None,
            )
        except RegionsError as exc:
            raise RegionsError(f"regions file {str(path)!r}: {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise RegionsError(f"regions file {str(path)!r}: invalid scalar field ({exc})") from None


def _as_array(value: object, dtype: type, label: str, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - anything array-like may fail in its own way
        raise RegionsError(f"{name}: {label} is not array-like ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise RegionsError(f"{name}: {label} must be numeric, got dtype {arr.dtype}")
    if np.dtype(dtype).kind == "i" and arr.dtype.kind == "f":
        if np.any(~np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise RegionsError(f"{name}: {label} must hold integers, got non-integer floats")
    return np.ascontiguousarray(arr, dtype=dtype)
