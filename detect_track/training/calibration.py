"""Choose a detector's operating confidence on validation images (maximum F1)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detect_track.detectors.base import Detector
from detect_track.errors import InputError
from detect_track.eval.boxes import BoxSet, detection_ap
from detect_track.io.datasets import Sample


def operating_point(detector: Detector, samples: list[Sample], class_ids: Sequence[int] = (0,),
                    grid: np.ndarray | None = None) -> tuple[float, dict[str, float]]:
    """Score threshold with the best F1 (IoU 0.5) on validation samples.

    The detector must report raw scores (build it with ``operating_confidence=0.5``,
    which makes the calibration the identity) and keep low scores (``confidence`` near 0).

    Args:
        detector: The detector to calibrate.
        samples: Validation images with boxes.
        class_ids: Classes whose pooled F1 is maximised (default: 0 = sperm).
        grid: Candidate thresholds; default 0.05 to 0.95 in steps of 0.025.

    Returns:
        The best threshold and the metrics (``precision``, ``recall``, ``f1``, ``map50``)
        at it.

    Raises:
        InputError: If there are no samples or an image cannot be read.
    """
    if not samples:
        raise InputError("no validation images to calibrate on")
    gt, pred = {}, {}
    for s in samples:
        img = cv2.imread(str(s.image), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"cannot read image {s.image}")
        d = detector.detect(img)
        gt[str(s.image)] = BoxSet.make(s.boxes, s.classes)
        pred[str(s.image)] = BoxSet.make(d.xyxy, d.class_id, d.confidence)
    return best_threshold(gt, pred, class_ids, grid)


def best_threshold(gt: dict[str, BoxSet], pred: dict[str, BoxSet],
                   class_ids: Sequence[int] = (0,), grid: np.ndarray | None = None
                   ) -> tuple[float, dict[str, float]]:
    """Score threshold with the best F1 (IoU 0.5) over images already detected.

    Args:
        gt: True boxes per image key.
        pred: Detections per image key (raw scores).
        class_ids: Classes whose pooled F1 is maximised.
        grid: Candidate thresholds; default 0.05 to 0.95 in steps of 0.025.

    Returns:
        As :func:`operating_point`.
    """
    grid = np.arange(0.05, 0.951, 0.025) if grid is None else grid
    best_t, best = float(grid[0]), {"f1": -1.0}
    for t in grid:
        r = detection_ap(gt, pred, tuple(class_ids), float(t), thresholds=(0.5,))
        if r["f1"] > best["f1"]:
            best_t, best = float(t), r
    return round(best_t, 3), {k: best[k] for k in ("precision", "recall", "f1", "map50")}
