"""Draw groundings onto their video: subject boxes red, object boxes green, the relation, and a β strip.

The strip under the picture plots each relation's temporal attention β over the whole video with the
chosen segment shaded and a cursor at the current frame. Every input frame gives one output frame, so
the mp4 has the video's frame count. Small videos are upscaled so the text stays readable.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vrgv.errors import VideoError
from vrgv.grounding import Grounding

SUBJECT_BGR = (40, 40, 230)  # red
OBJECT_BGR = (40, 200, 40)  # green
SEGMENT_BGR = (0, 200, 255)  # amber
BETA_BGR = (235, 180, 90)  # light blue bars
TEXT_BGR = (255, 255, 255)
STRIP_BG = (32, 32, 32)
DEFAULT_FPS = 25.0


def iter_frames(video: Any) -> Iterator[np.ndarray]:
    """Every frame of a video file, frame folder or uint8 array [T,H,W,(3)] (RGB), as BGR uint8 [H,W,3]."""
    import cv2

    if isinstance(video, np.ndarray):
        arr = video
        if arr.dtype != np.uint8 or arr.ndim not in (3, 4):
            raise VideoError(f"video array must be uint8 [T,H,W,3] RGB, got {arr.dtype} {list(arr.shape)}")
        for frame in arr:
            if frame.ndim == 2 or frame.shape[-1] == 1:
                yield cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
            else:
                yield np.ascontiguousarray(frame[..., 2::-1])
        return
    path = Path(video)
    if not path.exists():
        raise VideoError(f"video {str(path)!r} does not exist; rendering needs the original video or frame folder")
    if path.is_dir():
        from vrgv.video import list_frame_files

        for f in list_frame_files(path):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise VideoError(f"frame {str(f)!r} cannot be read as an image")
            yield img
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"video {str(path)!r} cannot be opened by OpenCV; is it a video file?")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    finally:
        cap.release()


def video_fps(video: Any) -> float | None:
    """The container's frame rate of a video file (None for folders, arrays or a missing value)."""
    if isinstance(video, (str, os.PathLike)) and Path(video).is_file():
        import cv2

        cap = cv2.VideoCapture(str(video))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        if fps and math.isfinite(fps) and 0 < fps < 1000:
            return float(fps)
    return None


class Renderer:
    """Draws a fixed list of groundings onto frames of one video (``num_frames`` frames, ``width``×``height``)."""

    def __init__(
        self,
        groundings: Sequence[Grounding],
        width: int,
        height: int,
        num_frames: int,
        *,
        min_width: int = 640,
        strip_row: int | None = None,
        show_text: bool = True,
    ) -> None:
        self.groundings = [g if isinstance(g, Grounding) else Grounding.from_dict(g) for g in groundings]
        self.width, self.height, self.num_frames = int(width), int(height), max(1, int(num_frames))
        self.scale = max(1, math.ceil(min_width / self.width)) if min_width else 1
        self.out_w, self.pic_h = self.width * self.scale, self.height * self.scale
        self.font = 0.35 + 0.25 * (self.out_w / 640)
        self.thick = max(1, round(self.out_w / 480))
        self.row = int(strip_row or max(22, round(self.font * 60)))
        self.show_text = show_text
        self.strip = self._strip_background()
        self.out_h = self.pic_h + self.strip.shape[0]

    # layout helpers -------------------------------------------------------------------------
    def _x(self, fid: float) -> int:
        return int(round(fid / max(1, self.num_frames - 1) * (self.out_w - 1)))

    def _text(self, img: np.ndarray, text: str, org: tuple[int, int], color=TEXT_BGR, bg=None, scale=None) -> None:
        import cv2

        scale = scale or self.font
        if bg is not None:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, self.thick)
            x, y = org
            cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), bg, -1)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, self.thick, cv2.LINE_AA)

    def _strip_background(self) -> np.ndarray:
        """One row per grounding: β as a filled curve over time, the segment in amber, the relation named."""
        import cv2

        rows = max(1, len(self.groundings))
        strip = np.zeros((rows * self.row, self.out_w, 3), np.uint8)
        strip[:] = STRIP_BG
        xs = np.arange(self.out_w, dtype=np.float64) / max(1, self.out_w - 1) * max(1, self.num_frames - 1)
        for k, g in enumerate(self.groundings):
            top, bottom = k * self.row + 1, (k + 1) * self.row - 2
            height = bottom - top
            x1 = self._x(g.start_fid)
            x2 = self._x(g.end_fid + 1) - 1 if g.end_fid + 1 < self.num_frames else self.out_w - 1
            x2 = max(x1, x2)
            strip[top : bottom + 1, x1 : x2 + 1] = (0.6 * strip[top : bottom + 1, x1 : x2 + 1]
                                                   + 0.4 * np.array(SEGMENT_BGR)).astype(np.uint8)
            if g.beta is not None and len(g.beta):
                beta = np.asarray(g.beta, dtype=np.float64)
                lo, hi = min(0.0, float(beta.min())), float(beta.max())
                span = hi - lo if hi > lo else 1.0
                fids = np.asarray(g.beta_frame_ids, dtype=np.float64)
                curve = np.interp(xs, fids, beta)
                heights = np.clip(((curve - lo) / span * (height - 1)).astype(int), 0, height)
                rows_idx = np.arange(top, bottom + 1)[:, None]
                fill = rows_idx >= (bottom - heights)[None, :]
                region = strip[top : bottom + 1]
                region[fill] = (0.35 * region[fill] + 0.65 * np.array(BETA_BGR)).astype(np.uint8)
            cv2.line(strip, (x1, top), (x1, bottom), SEGMENT_BGR, max(1, self.thick))
            cv2.line(strip, (x2, top), (x2, bottom), SEGMENT_BGR, max(1, self.thick))
            cv2.line(strip, (x1, top), (x2, top), SEGMENT_BGR, max(1, self.thick))
            if self.show_text:
                label = f"{self._tag(k)}{g.relation}  [{g.start_fid}-{g.end_fid}]" + ("  fallback" if g.fallback else "")
                self._text(strip, label, (4, top + int(self.row * 0.68)), scale=self.font * 0.8, bg=STRIP_BG)
        return strip

    def _tag(self, k: int) -> str:
        return f"{k + 1}: " if len(self.groundings) > 1 else ""

    # drawing --------------------------------------------------------------------------------
    def draw(self, frame_bgr: np.ndarray, fid: int) -> np.ndarray:
        """The annotated picture of frame ``fid`` (BGR in, BGR out, with the β strip below)."""
        import cv2

        if frame_bgr.shape[:2] != (self.height, self.width):
            frame_bgr = cv2.resize(frame_bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        pic = frame_bgr if self.scale == 1 else cv2.resize(
            frame_bgr, (self.out_w, self.pic_h), interpolation=cv2.INTER_NEAREST if self.scale > 2 else cv2.INTER_LINEAR)
        out = np.empty((self.out_h, self.out_w, 3), np.uint8)
        out[: self.pic_h] = pic
        out[self.pic_h :] = self.strip
        active = [f"{self._tag(k)}{g.relation}" for k, g in enumerate(self.groundings) if g.start_fid <= fid <= g.end_fid]
        if self.show_text:  # drawn first so box labels stay on top
            header = "  |  ".join(active) if len(active) <= 2 else f"{len(active)} relations hold"
            if header:
                self._text(out, header, (6, self.pic_h - int(self.font * 14)), bg=(0, 0, 0))
            self._text(out, f"#{fid}", (self.out_w - int(self.font * 120), int(self.font * 40)), bg=(0, 0, 0))
        # one rectangle per distinct (box, role); its label lists every relation that uses it
        drawn: dict[tuple, list[str]] = {}
        for k, g in enumerate(self.groundings):
            for traj, color, word in ((g.subject, SUBJECT_BGR, g.relation.subject), (g.object, OBJECT_BGR, g.relation.object)):
                box = traj.box_at(fid)
                if box is None:
                    continue
                x1, y1, x2, y2 = (int(round(v * self.scale)) for v in box)
                key = (x1, min(y1, self.pic_h - 1), x2, min(y2, self.pic_h - 1), color, word)
                drawn.setdefault(key, []).append(str(k + 1))
        for (x1, y1, x2, y2, color, word), tags in drawn.items():
            cv2.rectangle(out, (x1, y1), (x2, y2), color, self.thick + 1)
        if self.show_text:
            for (x1, y1, x2, y2, color, word), tags in drawn.items():
                label = word + (f" {','.join(tags)}" if len(self.groundings) > 1 else "")
                self._text(out, label, (x1 + 2, max(int(self.font * 28), y1 - 4)), bg=color)
        x = self._x(fid)
        cv2.line(out, (x, self.pic_h), (x, self.out_h - 1), TEXT_BGR, max(1, self.thick))
        return out


def render_groundings(
    video: Any,
    groundings: Sequence[Grounding] | Grounding,
    out_path: str | os.PathLike,
    *,
    fps: float | None = None,
    min_width: int = 640,
    codec: str = "mp4v",
    show_text: bool = True,
) -> str:
    """Write ``out_path`` (mp4): every frame of ``video`` with the groundings drawn; returns the path.

    ``video`` is the file, frame folder or RGB array the groundings came from (not ``Regions``, which
    hold no pixels). The file is written next to ``out_path`` and renamed when complete.
    """
    import cv2

    if isinstance(groundings, Grounding):
        groundings = [groundings]
    if not groundings:
        raise VideoError("render_groundings needs at least one grounding to draw")
    from vrgv.regions import Regions

    if isinstance(video, Regions):
        raise VideoError("cannot render Regions (they hold no pixels); pass the original video file, frame folder or array")
    frames = iter_frames(video)
    first = next(frames, None)
    if first is None:
        raise VideoError(f"video {video if not isinstance(video, np.ndarray) else 'array'!r} has no decodable frames")
    num_frames = _count(video, groundings)
    renderer = Renderer(groundings, first.shape[1], first.shape[0], num_frames, min_width=min_width, show_text=show_text)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix or '.mp4'}")
    rate = float(fps or video_fps(video) or DEFAULT_FPS)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), rate, (renderer.out_w, renderer.out_h))
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {codec!r} video to {str(out)!r}; try another codec or a .avi path")
    try:
        writer.write(renderer.draw(first, 0))
        for fid, frame in enumerate(frames, start=1):
            writer.write(renderer.draw(frame, fid))
    finally:
        writer.release()
    os.replace(tmp, out)
    return str(out)


def render_frame(video: Any, groundings: Sequence[Grounding] | Grounding, fid: int, *, min_width: int = 640) -> np.ndarray:
    """One annotated frame (RGB uint8) of ``video`` at real frame ``fid`` — for figures and thumbnails."""
    if isinstance(groundings, Grounding):
        groundings = [groundings]
    num_frames = _count(video, groundings)
    for k, frame in enumerate(iter_frames(video)):
        if k == fid:
            r = Renderer(groundings, frame.shape[1], frame.shape[0], num_frames, min_width=min_width)
            return r.draw(frame, fid)[..., ::-1].copy()
    raise VideoError(f"frame {fid} is past the end of the video")


def save_frame(image_rgb: np.ndarray, path: str | os.PathLike) -> str:
    """Write an RGB image as PNG/JPEG (by suffix); returns the path."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image_rgb[..., ::-1])):
        raise VideoError(f"cannot write image {str(path)!r}; check the folder and the suffix (.png, .jpg)")
    return str(path)


def _count(video: Any, groundings: Sequence[Grounding]) -> int:
    """Frames in the video: the array length, frame files, or a decoding pass (never the container's hint)."""
    if isinstance(video, np.ndarray):
        return int(video.shape[0])
    path = Path(video)
    if path.is_dir():
        from vrgv.video import list_frame_files

        return len(list_frame_files(path))
    from vrgv.video import count_frames

    return int(count_frames(path))
