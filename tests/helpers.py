"""Test helpers: tiny hand-built frames and videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def render_blobs(
    centres: np.ndarray,
    shape: tuple[int, int] = (120, 160),
    amplitude: float = 80.0,
    sigma: tuple[float, float] = (2.2, 1.5),
    background: float = 100.0,
    noise: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """Grey frame with elliptical Gaussian 'heads' at sub-pixel ``centres`` (N, 2) x, y.

    Centres are in detect-track's box coordinates: pixel edges at integers, so pixel
    ``(col, row)`` is sampled at ``(col + 0.5, row + 0.5)``.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    img = np.full(shape, background, dtype=np.float64)
    for x, y in np.asarray(centres, dtype=np.float64).reshape(-1, 2):
        img += amplitude * np.exp(-((xx - x) ** 2 / (2 * sigma[0] ** 2)
                                    + (yy - y) ** 2 / (2 * sigma[1] ** 2)))
    img += np.random.default_rng(seed).normal(0, noise, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Write grayscale frames to an MJPG AVI."""
    h, w = frames[0].shape
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return path


def right_class_recall(truth: pd.DataFrame, found: pd.DataFrame) -> float:
    """Share of true boxes (``x1, y1, x2, y2, class_name``) that a found box of the same
    class overlaps at IoU >= 0.5."""
    from detect_track.eval.boxes import box_iou

    iou = box_iou(truth[["x1", "y1", "x2", "y2"]].to_numpy(),
                  found[["x1", "y1", "x2", "y2"]].to_numpy())
    same = truth["class_name"].to_numpy()[:, None] == found["class_name"].to_numpy()[None]
    return float(np.mean((np.where(same, iou, 0) >= 0.5).any(axis=1)))
