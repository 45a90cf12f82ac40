"""The built-in region extractor: the project's own detector (``detector.onnx``) run with ONNX Runtime, no torch.

Frames are letterboxed (scaled to fit, padded bottom/right) to the model's fixed input size; the model
returns its top-M boxes, objectness scores and L2-normalized appearance features; boxes are mapped back
to original pixels. The model is found at an explicit path, else ``$VRGV_DETECTOR``, else the default
bundle (``vrgv/data/default.vrgv/detector.onnx``), else ``training/detector/artifacts/`` of a source tree.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from vrgv.errors import BackendError, ConfigError
from vrgv.extractors.base import RegionExtractor
from vrgv.regions import Regions
from vrgv.video import VideoFrames

log = logging.getLogger(__name__)

DETECTOR_FILE = "detector.onnx"
PAD_VALUE = 0


def default_detector_candidates() -> list[Path]:
    """Where the built-in detector is looked for, in order."""
    here = Path(__file__).resolve()
    out = []
    if os.environ.get("VRGV_DETECTOR"):
        out.append(Path(os.environ["VRGV_DETECTOR"]))
    out.append(here.parents[1] / "data" / "default.vrgv" / DETECTOR_FILE)
    out.append(here.parents[2] / "training" / "detector" / "artifacts" / DETECTOR_FILE)
    return out


def resolve_detector(path: str | os.PathLike | None) -> Path:
    """The ``detector.onnx`` for ``path`` (a file, or a folder holding one), or the default one."""
    if path is not None:
        p = Path(path)
        if p.is_dir():
            p = p / DETECTOR_FILE
        if not p.is_file():
            raise ConfigError(f"detector {str(path)!r} not found; give a detector.onnx file or a folder holding one")
        return p
    for cand in default_detector_candidates():
        if cand.is_file():
            return cand
    tried = ", ".join(str(c) for c in default_detector_candidates())
    raise ConfigError(
        f"no built-in detector found (looked at {tried}); pass --detector PATH/detector.onnx, set VRGV_DETECTOR, "
        f"or use another extractor (--extractor precomputed)"
    )


def letterbox(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Scale ``frame`` [h,w,3] to fit width×height (aspect kept), pad bottom/right; returns (image, scale)."""
    import cv2

    h, w = frame.shape[:2]
    s = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * s))), max(1, min(height, round(h * s)))
    out = np.full((height, width, 3), PAD_VALUE, np.uint8)
    if (nw, nh) == (w, h):
        out[:h, :w] = frame
    else:
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        out[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=interp)
    return out, s


class OnnxDetectorExtractor(RegionExtractor):
    """Regions from the built-in ONNX detector; thread-safe (one ORT session, runs are independent)."""

    name = "builtin"

    def __init__(
        self,
        detector: str | os.PathLike | None = None,
        *,
        num_regions: int | None = None,
        threads: int | None = None,
        batch_size: int = 8,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = resolve_detector(detector)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        if threads != 1:  # an idle pool that spins keeps the cores from decoding and the encoder's sessions
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise BackendError(f"detector {str(self.path)!r} cannot be loaded by ONNX Runtime ({exc}); re-export it") from None
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[2], int) or shape[3] != 3:
            raise BackendError(f"detector {str(self.path)!r} has input {inp.name} {shape}; expected uint8 [B,H,W,3]")
        self.input_name = inp.name
        self.input_height, self.input_width = int(shape[1]), int(shape[2])
        outs = {o.name: o.shape for o in self.session.get_outputs()}
        for key in ("boxes", "scores", "features"):
            if key not in outs:
                raise BackendError(f"detector {str(self.path)!r} lacks output {key!r} (has {sorted(outs)}); re-export it")
        # output dims may be symbolic in the graph: read them from one run on a blank frame
        probe = np.zeros((1, self.input_height, self.input_width, 3), np.uint8)
        p_boxes, _, p_feats = self.session.run(["boxes", "scores", "features"], {self.input_name: probe})
        self.model_regions, self._feature_dim = int(p_boxes.shape[1]), int(p_feats.shape[2])
        self.num_regions = int(num_regions) if num_regions is not None else self.model_regions
        if not 1 <= self.num_regions <= self.model_regions:
            raise ConfigError(f"num_regions={num_regions} must lie in 1..{self.model_regions} for detector {str(self.path)!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.read_max_side = 2 * max(self.input_width, self.input_height)
        cfg_path = self.path.with_name("config.json")
        self.config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def detect(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw model outputs for letterboxed uint8 [B,H,W,3] images: boxes (input pixels), scores, features."""
        outs = []
        for i in range(0, images.shape[0], self.batch_size):
            outs.append(self.session.run(["boxes", "scores", "features"], {self.input_name: images[i : i + self.batch_size]}))
        return tuple(np.concatenate([o[k] for o in outs]) for k in range(3))  # type: ignore[return-value]

    def extract_frames(self, video: VideoFrames) -> Regions:
        uniq, inverse = np.unique(video.frame_ids, return_inverse=True)
        first = np.array([int(np.argmax(inverse == k)) for k in range(uniq.size)])
        boxed = [letterbox(video.frames[i], self.input_width, self.input_height) for i in first]
        images = np.stack([b[0] for b in boxed])
        scales = np.array([b[1] for b in boxed], np.float32)
        boxes, scores, feats = self.detect(images)
        m = self.num_regions
        boxes, scores, feats = boxes[:, :m], scores[:, :m], feats[:, :m]
        sx, sy = video.scale
        boxes = boxes / scales[:, None, None]
        boxes = boxes * np.array([sx, sy, sx, sy], np.float32)
        boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0, video.width)
        boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0, video.height)
        return Regions(
            boxes=boxes[inverse], features=feats[inverse], scores=scores[inverse], frame_ids=video.frame_ids,
            width=video.width, height=video.height, num_frames=video.num_frames, video_id=video.video_id, fps=video.fps,
        )
