"""Video input: decode a video file, a frame folder or a frame array into the N sampled RGB frames.

Decoding is sequential (OpenCV ``grab``/``retrieve``), never seeking: ``CAP_PROP_POS_FRAMES`` is
inaccurate on many codecs. The container's frame count is only a hint. One pass suffices when it is
right: every frame is grabbed (cheap, no colour conversion), only the frames sampled from the hinted
count are retrieved, and the pass ends by counting what really decoded. If that true count differs from
the hint (or there is no hint), the sample ids are recomputed from the true count and a second pass
retrieves them. Holding every decoded frame instead would cost O(T) memory, which long videos cannot pay.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from vrgv.errors import VideoError
from vrgv.regions import DEFAULT_NUM_SAMPLES, sample_frame_ids

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VideoSource = Union[str, os.PathLike, np.ndarray]


@dataclass
class VideoFrames:
    """The N sampled frames of one video, RGB uint8 [N,h,w,3], plus what is known about the whole video.

    ``width``/``height`` are the original frame size; ``frames`` may be smaller when the reader was asked
    to downscale (``max_side``); boxes are always reported in original pixels (see :attr:`scale`).
    """

    frames: np.ndarray
    frame_ids: np.ndarray
    num_frames: int
    width: int
    height: int
    fps: float | None = None
    video_id: str = "video"

    def __post_init__(self) -> None:
        name = f"frames of video {self.video_id!r}"
        self.frames = np.asarray(self.frames)
        self.frame_ids = np.asarray(self.frame_ids, dtype=np.int64)
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[3] != 3:
            raise VideoError(
                f"{name}: frames must be uint8 [N,H,W,3] RGB, got {self.frames.dtype} {list(self.frames.shape)}; "
                f"use vrgv.video.read_video to convert"
            )
        n = self.frames.shape[0]
        if n < 1:
            raise VideoError(f"{name}: no frames; a video needs at least one frame")
        if self.frame_ids.shape != (n,):
            raise VideoError(f"{name}: frame_ids must have shape [N={n}], got {list(self.frame_ids.shape)}")
        self.num_frames, self.width, self.height = int(self.num_frames), int(self.width), int(self.height)
        if self.num_frames < 1 or self.width < 1 or self.height < 1:
            raise VideoError(
                f"{name}: num_frames, width and height must be positive, got {self.num_frames}, "
                f"{self.width}x{self.height}"
            )
        if np.any(np.diff(self.frame_ids) < 0) or self.frame_ids[0] < 0 or self.frame_ids[-1] >= self.num_frames:
            raise VideoError(
                f"{name}: frame_ids must be non-decreasing and lie in [0, {self.num_frames - 1}], got "
                f"[{self.frame_ids.min()}, {self.frame_ids.max()}]"
            )
        if self.fps is not None:
            self.fps = float(self.fps) if np.isfinite(self.fps) and self.fps > 0 else None
        self.video_id = str(self.video_id)

    @property
    def num_samples(self) -> int:
        return int(self.frames.shape[0])

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy) that map ``frames`` pixel coordinates to original pixels."""
        return self.width / self.frames.shape[2], self.height / self.frames.shape[1]


def read_video(
    source: VideoSource,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    *,
    video_id: str | None = None,
    fps: float | None = None,
    max_side: int | None = None,
) -> VideoFrames:
    """Read the ``num_samples`` frames ``sample_frame_ids(T, N)`` of a video file, frame folder or array.

    Arrays may be [T,H,W,3] RGB, [T,H,W] / [T,H,W,1] grayscale or [T,H,W,4] RGBA (uint8). ``max_side``
    downscales stored frames (longer side) to bound memory; ``width``/``height`` stay the original size.
    ``fps`` overrides the container's value (arrays and frame folders have none).
    """
    if int(num_samples) < 1:
        raise VideoError(f"num_samples must be at least 1, got {num_samples}")
    if max_side is not None and int(max_side) < 16:
        raise VideoError(f"max_side must be at least 16 pixels (or None), got {max_side}")
    if isinstance(source, np.ndarray):
        frames, ids, total, out_fps = _from_array(source, num_samples, max_side)
        vid = video_id or "video"
        width, height = source.shape[2], source.shape[1]
    else:
        path = Path(source)
        vid = video_id or (path.name if path.is_dir() else path.stem)
        if not path.exists():
            raise VideoError(f"video {str(path)!r} does not exist; check the path")
        if path.is_dir():
            frames, ids, total, (width, height) = _from_folder(path, num_samples, max_side)
            out_fps = None
        else:
            frames, ids, total, out_fps, (width, height) = _from_file(path, num_samples, max_side)
    return VideoFrames(
        frames=frames, frame_ids=ids, num_frames=total, width=width, height=height,
        fps=fps if fps is not None else out_fps, video_id=vid,
    )


# arrays ------------------------------------------------------------------------------------------
def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """[H,W], [H,W,1], [H,W,3] or [H,W,4] uint8 → [H,W,3] RGB."""
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    if frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3])
    return frame


def _from_array(arr: np.ndarray, num_samples: int, max_side: int | None):
    if arr.dtype != np.uint8:
        raise VideoError(
            f"frame array has dtype {arr.dtype}; give uint8 RGB frames (e.g. (x * 255).clip(0, 255).astype(np.uint8))"
        )
    ok = arr.ndim == 3 or (arr.ndim == 4 and arr.shape[3] in (1, 3, 4))
    if not ok:
        raise VideoError(
            f"frame array has shape {list(arr.shape)}; expected [T,H,W,3] RGB, [T,H,W] grayscale or [T,H,W,4] RGBA "
            f"(for a single image use arr[None])"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise VideoError(f"frame array has shape {list(arr.shape)}: it holds no frames or empty frames")
    total = int(arr.shape[0])
    ids = sample_frame_ids(total, num_samples)
    frames = np.stack([_resize(_to_rgb(arr[i]), max_side) for i in ids])
    return frames, ids, total, None


# folders -----------------------------------------------------------------------------------------
def _natural_key(p: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem))


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order (``2.jpg`` before ``10.jpg``)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=_natural_key)


def _from_folder(folder: Path, num_samples: int, max_side: int | None):
    import cv2

    files = list_frame_files(folder)
    if not files:
        raise VideoError(
            f"frame folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); give a video file or a "
            f"folder of frames named 000000.jpg, 000001.jpg, ..."
        )
    ids = sample_frame_ids(len(files), num_samples)
    out: list[np.ndarray] = []
    cache: dict[int, np.ndarray] = {}
    size = None
    for i in ids:
        i = int(i)
        if i not in cache:
            img = cv2.imread(str(files[i]), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise VideoError(f"frame {str(files[i])!r} of folder {str(folder)!r} cannot be decoded; replace or remove it")
            if img.dtype != np.uint8:
                img = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
            img = _bgr_to_rgb(img)
            hw = (img.shape[1], img.shape[0])
            if size is None:
                size = hw
            elif hw != size:
                raise VideoError(
                    f"frame {str(files[i])!r} is {hw[0]}x{hw[1]} but earlier frames of {str(folder)!r} are "
                    f"{size[0]}x{size[1]}; all frames of a video must have one size"
                )
            cache = {i: _resize(img, max_side)}  # ids are non-decreasing: keep only the last one
        out.append(cache[i])
    return np.stack(out), ids, len(files), size


def _bgr_to_rgb(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _resize(img: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(img.shape[:2]) <= max_side:
        return img
    import cv2

    s = max_side / max(img.shape[:2])
    size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


# video files -------------------------------------------------------------------------------------
def _open(path: Path):
    import cv2

    if path.stat().st_size == 0:
        raise VideoError(f"video {str(path)!r} is an empty (0-byte) file; re-export or re-download it")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"video {str(path)!r} cannot be opened: it is not a video OpenCV can decode, or it is truncated or "
            f"corrupted; check it with ffprobe, re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or give a "
            f"folder of frames"
        )
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    if fourcc.to_bytes(4, "little") == b"ansi":  # FFmpeg's tty demuxer draws any text file as a video
        cap.release()
        raise VideoError(
            f"video {str(path)!r} is a text file (FFmpeg would only draw its characters as frames), not a video; "
            f"give a video file (.mp4, .avi, .mkv, ...) or a folder of frames"
        )
    return cap


def count_frames(path: str | os.PathLike) -> int:
    """True number of decodable frames, by grabbing every frame (no colour conversion)."""
    path = Path(path)
    cap = _open(path)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def _decode_pass(path: Path, wanted: np.ndarray, max_side: int | None):
    """Grab every frame, retrieve the ``wanted`` ids; returns (frames by id, true count, fps, (w, h))."""
    import cv2

    cap = _open(path)
    want = set(int(i) for i in wanted)
    kept: dict[int, np.ndarray] = {}
    size = None
    n = 0
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        while cap.grab():
            if n in want:
                ok, img = cap.retrieve()
                if not ok or img is None:
                    log.warning("video %s: frame %d grabbed but not decodable; treating the video as ending there", path, n)
                    break
                img = _bgr_to_rgb(img)
                size = size or (img.shape[1], img.shape[0])
                kept[n] = _resize(img, max_side)
            n += 1
        if size is None and n > 0:
            # nothing wanted was reached (the hint was wrong): take the size from the container
            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    return kept, n, fps, size


def _from_file(path: Path, num_samples: int, max_side: int | None):
    import cv2

    cap = _open(path)
    hint = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    wanted = sample_frame_ids(hint, num_samples) if hint > 0 else np.zeros(1, dtype=np.int64)
    kept, total, fps, size = _decode_pass(path, wanted, max_side)
    if total == 0:
        raise VideoError(
            f"video {str(path)!r} opens but no frame decodes (it is truncated, corrupted or has no video stream); "
            f"re-encode it or give a folder of frames"
        )
    ids = sample_frame_ids(total, num_samples)
    if total != hint or not all(int(i) in kept for i in ids):
        if hint > 0:
            log.warning("video %s: container says %d frames but %d decode; using %d (second pass)", path, hint, total, total)
        kept, total2, fps, size = _decode_pass(path, ids, max_side)
        if total2 != total or not all(int(i) in kept for i in ids):
            raise VideoError(
                f"video {str(path)!r} decodes inconsistently ({total} then {total2} frames); re-encode it "
                f"(ffmpeg -i IN -c:v libx264 OUT.mp4) or give a folder of frames"
            )
    frames = np.stack([kept[int(i)] for i in ids])
    return frames, ids, total, (fps if fps > 0 else None), size
