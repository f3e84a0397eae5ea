"""Test-time views: a learned detector run on flipped and transposed copies of each image.

Cells on a slide or a smear have no preferred orientation, and the shipped detectors were
trained with flips and 90° rotations, yet a small model answers slightly differently for
each orientation. Running it on the image and its flips (4 views) or on every 90° rotation
and flip (8 views), mapping the boxes back and fusing the answers that fall on the same
cell (weighted box fusion: the fused box is the score-weighted mean, the fused score the
mean over views of each view's best score, 0 where a view missed the cell) ranks a cell
found in every view above one found in a single view. On the held-out synthetic smears
this raised the YOLO's mAP50 by about 0.08 (``benchmarks/still_images.md``), at N times
the detection time: it suits still images, not the video default.

Scores are fused raw and calibrated once (``operating_confidence`` is the fused score
reported as 0.5), so a preset that turns views on needs its own calibration
(``tools/calibrate_detector.py`` with the preset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from detect_track.config import LearnedConfig
from detect_track.detectors.learned import LearnedDetector, calibrate, duplicate_groups
from detect_track.errors import ConfigError
from detect_track.types import Detections

#: Accepted values of ``detector.<name>.tta_views``.
VIEW_COUNTS = (1, 4, 8)

#: Boxes of one class from different views are one cell above this IoU (or with centres
#: as close as :data:`~detect_track.detectors.learned.DUPLICATE_FRACTION` of a side).
FUSE_IOU = 0.55

# (flip x, flip y, transpose), applied in this order to the image
VIEWS = ((False, False, False), (True, False, False), (False, True, False), (True, True, False),
          (False, False, True), (True, False, True), (False, True, True), (True, True, True))


def view_image(image: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """The image ``(H, W[, C])`` flipped in x and/or y, then transposed, as ``view`` says."""
    fx, fy, tr = view
    out = image
    if fx:
        out = out[:, ::-1]
    if fy:
        out = out[::-1]
    if tr:
        out = out.swapaxes(0, 1)
    return np.ascontiguousarray(out)


def unview_boxes(xyxy: np.ndarray, view: tuple[bool, bool, bool],
                 shape: tuple[int, int]) -> np.ndarray:
    """Boxes ``(N, 4)`` found in :func:`view_image`'s output, in the original image's pixels.

    Args:
        xyxy: Boxes in the viewed image.
        view: The view that made it.
        shape: ``(H, W)`` of the original image.
    """
    fx, fy, tr = view
    h, w = shape
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if tr:
        b = b[:, [1, 0, 3, 2]]
    b = b.copy()
    if fx:
        b[:, [0, 2]] = w - b[:, [2, 0]]
    if fy:
        b[:, [1, 3]] = h - b[:, [3, 1]]
    return b


def fuse_views(xyxy: np.ndarray, score: np.ndarray, cls: np.ndarray, view: np.ndarray,
               n_views: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted box fusion of the answers of ``n_views`` views of one image.

    The answers are grouped per class by
    :func:`~detect_track.detectors.learned.duplicate_groups` (IoU >= :data:`FUSE_IOU`,
    or centres closer than ``DUPLICATE_FRACTION`` of the stronger box's shorter side, for
    boxes of a few pixels).

    Args:
        xyxy: Boxes of all views ``(N, 4)``, in the original image's pixels.
        score: Raw scores ``(N,)``.
        cls: Class ids ``(N,)``.
        view: Which view found each box ``(N,)``, ``0 <= view < n_views``.
        n_views: Number of views run.

    Returns:
        Fused boxes ``(K, 4)``, scores ``(K,)`` (mean over views of each view's best score
        in the group) and class ids ``(K,)``, strongest first.
    """
    order, owner = duplicate_groups(xyxy, score, cls, min_iou=FUSE_IOU)
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)[order]
    s = np.asarray(score, np.float64).reshape(-1)[order]
    c, v = np.asarray(cls, np.int64)[order], np.asarray(view, np.int64)[order]
    heads = np.flatnonzero(owner == np.arange(len(b)))
    if len(heads) == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    group = np.searchsorted(heads, owner)
    best = np.zeros((len(heads), n_views))  # each view's best score in each group
    np.maximum.at(best, (group, v), s)
    weight = np.zeros((len(heads), len(b)))
    weight[group, np.arange(len(b))] = s
    boxes = (weight @ b) / np.maximum(weight.sum(axis=1, keepdims=True), 1e-12)
    fused = best.sum(axis=1) / n_views
    rank = np.argsort(-fused, kind="stable")
    return boxes[rank], fused[rank], c[heads][rank]


class ViewFusion(LearnedDetector):
    """A learned detector run on ``n_views`` flipped / transposed views, answers fused.

    Args:
        base: The detector, built to report raw scores (``operating_confidence = 0.5``).
        n_views: 4 (the image and its x, y and xy flips) or 8 (also transposed).
        operating: Fused raw score reported as 0.5 (see
            :func:`~detect_track.detectors.learned.calibrate`).
    """

    def __init__(self, base: LearnedDetector, n_views: int, operating: float) -> None:
        self.base = base
        self.views = VIEWS[:n_views]
        self.operating = operating
        self.name: str = base.name  # type: ignore[attr-defined]
        self.class_names: tuple[str, ...] = base.class_names  # type: ignore[attr-defined]
        self.weights, self.backend, self.runtime = base.weights, base.backend, base.runtime

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames ``(H, W[, C])``; boxes in frame pixels."""
        return [self._one(frame) for frame in frames]

    def _one(self, frame: np.ndarray) -> Detections:
        shape = frame.shape[:2]
        # one view at a time: as fast as a batch for the YOLO export, and 1.7x faster for
        # EfficientDet on CPU (8 views of a 768x1024 smear: 1.7 s against 3.0 s)
        found = [self.base.detect_batch([view_image(frame, v)])[0] for v in self.views]
        parts = [(unview_boxes(d.xyxy, v, shape), d.confidence, d.class_id, np.full(len(d), k))
                 for k, (d, v) in enumerate(zip(found, self.views, strict=True))]
        xyxy, score, cls, view = (np.concatenate(p) for p in zip(*parts, strict=True))
        if len(score) == 0:
            return Detections.empty()
        xyxy, score, cls = fuse_views(xyxy, score, cls, view, len(self.views))
        return Detections(xyxy=xyxy, confidence=calibrate(score, self.operating), class_id=cls)

    def __getattr__(self, name: str) -> Any:
        # everything else (scale, stride...) is the base detector's; not its detect_stream
        # (DetectorBase's, one frame at a time through the views, is found first)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def with_views(make: Callable[[LearnedConfig], LearnedDetector],
               cfg: LearnedConfig) -> LearnedDetector:
    """``make(cfg)``, wrapped in :class:`ViewFusion` when ``cfg.tta_views`` > 1.

    Raises:
        ConfigError: If ``cfg.tta_views`` is not one of :data:`VIEW_COUNTS`.
    """
    if cfg.tta_views not in VIEW_COUNTS:
        raise ConfigError(f"tta_views must be one of {', '.join(map(str, VIEW_COUNTS))}, "
                          f"got {cfg.tta_views}")
    if cfg.tta_views == 1:
        return make(cfg)
    from dataclasses import replace

    base = make(replace(cfg, operating_confidence=0.5))  # raw scores, calibrated after fusion
    return ViewFusion(base, cfg.tta_views, cfg.operating_confidence)
