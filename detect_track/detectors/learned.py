"""What the learned detectors share: frame preparation, magnification, score calibration.

Frames are never shrunk to a network size: they are padded (bottom and right, by edge
replication) to the next multiple of the network stride and boxes are clipped back to
the frame. Only when the video's µm/px lies outside the magnification range the model
was trained on (``min_um_per_px``-``max_um_per_px``) is the frame resized, so that a head
has the size in pixels the model knows; boxes are mapped back to the original pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from detect_track.config import LearnedConfig
from detect_track.detectors.base import DetectorBase
from detect_track.errors import ConfigError
from detect_track.types import Detections


def magnification_scale(um_per_px: float, cfg: LearnedConfig) -> float:
    """Resize factor that brings ``um_per_px`` into the trained range (1.0 inside it)."""
    target = min(max(um_per_px, cfg.min_um_per_px), cfg.max_um_per_px)
    return float(um_per_px / target)


#: Classes whose boxes must be at least a head long (``LearnedConfig.min_head_um``).
HEAD_CLASSES = ("sperm",)


def min_box_px(class_names: tuple[str, ...], um_per_px: float, cfg: LearnedConfig,
               scale_known: bool) -> np.ndarray:
    """Shortest allowed longer box side per class, in frame pixels ``(n_classes,)``.

    A sperm head is 4-5.5 µm long (WHO), so a ``sperm`` box whose longer side is under
    ``cfg.min_head_um`` is a speck of debris or stain, whatever its score; at 0.3 µm/px
    that is 6.7 px. Only a stated scale can say so: with an assumed one (``scale_known``
    false) and for the other classes (pinheads, clusters, other cell types) the bound is 0.
    """
    out = np.zeros(len(class_names))
    if scale_known and cfg.min_head_um > 0 and um_per_px > 0:
        out[[i for i, n in enumerate(class_names) if n in HEAD_CLASSES]] = \
            cfg.min_head_um / um_per_px
    return out


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """A frame ``(H, W)``, ``(H, W, 1|3|4)``, uint8 or uint16, as 8-bit gray BGR ``(H, W, 3)``.

    Colour frames are converted to gray first (three equal channels), as the models are
    trained on grayscale microscopy: stain colours do not change what they see.

    Raises:
        ConfigError: On an empty frame or an unsupported shape or dtype.
    """
    if frame.size == 0 or frame.ndim not in (2, 3):
        raise ConfigError(f"a frame must be (H, W) or (H, W, C) and not empty, got {frame.shape}")
    if frame.dtype != np.uint8:
        f = frame.astype(np.float32)
        lo, hi = float(np.percentile(f, 0.1)), float(np.percentile(f, 99.9))
        frame = np.clip((f - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    channels = frame.shape[2]
    if channels == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels in (3, 4):
        code = cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(cv2.cvtColor(frame, code), cv2.COLOR_GRAY2BGR)
    raise ConfigError(f"a frame must have 1, 3 or 4 channels, got {channels}")


def prepare(frame: np.ndarray, scale: float, stride: int) -> np.ndarray:
    """BGR frame ``(H', W', 3)`` resized by ``scale`` (if not 1), padded to ``stride``."""
    img = to_bgr(frame)
    if abs(scale - 1.0) > 1e-6:
        h, w = img.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, size, interpolation=interp)
    h, w = img.shape[:2]
    ph, pw = -h % stride, -w % stride
    if ph or pw:
        img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    return img


def batches(frames: list[np.ndarray], scale: float, stride: int
            ) -> list[tuple[list[int], np.ndarray]]:
    """Prepared frames grouped by size: ``(frame indices, images (B, H', W', 3))`` each."""
    groups: dict[tuple[int, ...], list[int]] = {}
    prepared = [prepare(f, scale, stride) for f in frames]
    for i, img in enumerate(prepared):
        groups.setdefault(img.shape, []).append(i)
    return [(idx, np.stack([prepared[i] for i in idx])) for idx in groups.values()]


#: Two boxes are one head when their centres are closer than this fraction of the
#: stronger box's shorter side (see :func:`merge_duplicates`).
DUPLICATE_FRACTION = 0.5


def calibrate(score: np.ndarray, operating: float) -> np.ndarray:
    """Map raw model scores so that ``operating`` becomes 0.5, piecewise linearly.

    Every detector then shares one meaning of confidence: 0.5 is its operating point
    (chosen on validation data and recorded in the model card), where the tracker may
    start a track. The map is monotone, so rankings and AP are unchanged.
    """
    s = np.clip(np.asarray(score, np.float64), 0.0, 1.0)
    return np.where(s <= operating, 0.5 * s / operating,
                    0.5 + 0.5 * (s - operating) / (1.0 - operating))


def duplicate_groups(xyxy: np.ndarray, score: np.ndarray, cls: np.ndarray,
                     min_iou: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Group the answers that share one object, greedily, strongest first.

    Each box still free absorbs every weaker free box of its class whose centre lies
    closer to its own than ``DUPLICATE_FRACTION`` of its shorter side (and, with
    ``min_iou``, every one that overlaps it by at least that IoU).

    Args:
        xyxy: Boxes ``(N, 4)``.
        score: Scores ``(N,)``.
        cls: Class ids ``(N,)``.
        min_iou: Also group boxes overlapping at least this much; None: centres only.

    Returns:
        ``order`` ``(N,)``: the boxes' indices, strongest first, and ``owner`` ``(N,)``:
        for each position of ``order``, the position of its group's strongest box.
    """
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(score, np.float64).reshape(-1), kind="stable")
    b, c = b[order], np.asarray(cls, np.int64).reshape(-1)[order]
    n = len(b)
    owner = np.arange(n)
    if n < 2:
        return order, owner
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    dist = np.hypot(cx[:, None] - cx[None, :], cy[:, None] - cy[None, :])
    clash = dist < DUPLICATE_FRACTION * side[:, None]
    if min_iou is not None:
        # here, not at the top: detect_track.eval pulls in pandas and trackeval
        from detect_track.eval.boxes import box_iou

        clash |= box_iou(b, b) >= min_iou
    clash &= c[:, None] == c[None, :]
    np.fill_diagonal(clash, False)
    for i in np.flatnonzero(clash.any(axis=1)):
        if owner[i] == i:  # i is still its own box: it absorbs the weaker free ones
            members = np.flatnonzero(clash[i, i + 1:]) + i + 1
            members = members[owner[members] == members]
            owner[members] = i
    return order, owner


def merge_duplicates(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One box per object: fuse the answers that share a head into one.

    Small heads give boxes of a few pixels, where two answers for the same head can
    overlap little (IoU NMS keeps both) yet share the head; the end-to-end YOLO head has no
    NMS at all. The answers are grouped by :func:`duplicate_groups` (centres closer than
    ``DUPLICATE_FRACTION`` of the stronger box's shorter side); the fused box is the
    score-weighted mean of its members (as in weighted box fusion) and keeps the strongest
    score. Adjacent heads lie about a head width apart and stay separate.

    Args:
        xyxy: Boxes ``(N, 4)``.
        conf: Scores ``(N,)``.
        cls: Class ids ``(N,)``.

    Returns:
        Boxes ``(K, 4)``, scores ``(K,)`` and class ids ``(K,)``, K <= N, strongest first.
    """
    order, owner = duplicate_groups(xyxy, conf, cls)
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)[order]
    s = np.asarray(conf, np.float64).reshape(-1)[order]
    c = np.asarray(cls, np.int64).reshape(-1)[order]
    n = len(b)
    heads = np.flatnonzero(owner == np.arange(n))
    if len(heads) == n:
        return b, s, c
    w = np.zeros((len(heads), n))
    w[np.searchsorted(heads, owner), np.arange(n)] = s + 1e-9
    fused = (w @ b) / w.sum(axis=1, keepdims=True)
    return fused, s[heads], c[heads]


def finish(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, scale: float,
           shape: tuple[int, int], n_classes: int, operating: float = 0.5,
           merge: bool = False, min_side_px: np.ndarray | None = None) -> Detections:
    """Detections in original-frame pixels from boxes in (resized) model pixels.

    Boxes are mapped back by ``1 / scale``, clipped to the frame ``shape = (H, W)``;
    boxes whose centre lies in the padding are dropped, as are unknown class ids; with
    ``merge`` (models without NMS), answers that share a head are fused
    (:func:`merge_duplicates`); boxes whose longer side is under ``min_side_px[class]``
    (``(n_classes,)`` frame pixels, :func:`min_box_px`) are dropped unless they touch the
    frame edge, where a head may be cut. Scores are calibrated with :func:`calibrate`.
    """
    h, w = shape
    if len(xyxy) == 0:
        return Detections.empty()
    xyxy = np.asarray(xyxy, np.float64) / scale
    cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
    keep = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h) & (cls >= 0) & (cls < n_classes)
    xyxy, score, cls = xyxy[keep], np.asarray(conf)[keep], np.asarray(cls, np.int64)[keep]
    if merge:
        xyxy, score, cls = merge_duplicates(xyxy, score, cls)
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
    if min_side_px is not None and np.any(min_side_px > 0):
        long_side = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        at_edge = (xyxy[:, :2].min(axis=1) <= 1) | (xyxy[:, 2] >= w - 1) | (xyxy[:, 3] >= h - 1)
        keep = at_edge | (long_side >= np.asarray(min_side_px)[cls])
        xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
    return Detections(xyxy=xyxy, confidence=calibrate(score, operating), class_id=cls)


class LearnedDetector(DetectorBase):
    """Shared by the YOLO and EfficientDet wrappers; subclasses implement ``detect_batch``.

    One frame is a batch of one, and nothing is kept between frames.
    """

    def detect_batch(self, frames: list[np.ndarray]) -> list[Detections]:  # pragma: no cover
        """Detect in several frames."""
        raise NotImplementedError

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect heads in one frame ``(H, W)`` or ``(H, W, 3)``; boxes in frame pixels."""
        return self.detect_batch([frame])[0]
