"""Microscopy augmentations of training images; the dataset formats moved to io/.

Reading and writing YOLO and COCO datasets is in :mod:`detect_track.io.datasets` (below
the stages, which write training sets too); its names stay importable from here.
"""

from __future__ import annotations

import cv2
import numpy as np

from detect_track.io.datasets import (
    rotate_flip,
    window_boxes,
)


def random_tile(img: np.ndarray, boxes: np.ndarray, classes: np.ndarray, size: int,
                rng: np.random.Generator, min_visible: float = 0.6
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` tile at native resolution from anywhere in the image.

    Smaller images are padded with their median; boxes are shifted and clipped, and
    dropped when less than ``min_visible`` of them remains in the tile.
    """
    h, w = img.shape[:2]
    x0 = int(rng.integers(0, max(1, w - size + 1)))
    y0 = int(rng.integers(0, max(1, h - size + 1)))
    tile = np.full((size, size, *img.shape[2:]), np.median(img), img.dtype)
    crop = img[y0:y0 + size, x0:x0 + size]
    tile[:crop.shape[0], :crop.shape[1]] = crop
    c, keep = window_boxes(boxes, x0, y0, min(size, w - x0), min(size, h - y0), min_visible)
    return tile, c[keep], classes[keep]


def augment(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Microscopy-safe augmentation of a square gray or colour image and its boxes.

    90° rotations and flips (no other angles: boxes would grow), brightness and contrast
    jitter, occasional Gaussian blur and sensor noise; never a hue shift.
    """
    k = int(rng.integers(0, 4))
    img, boxes = rotate_flip(img, boxes, k, bool(rng.random() < 0.5))
    f = img.astype(np.float32)
    mean = float(f.mean())
    f = (f - mean) * rng.uniform(0.7, 1.3) + mean * rng.uniform(0.75, 1.25)
    if rng.random() < 0.2:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.3:
        f = f + rng.normal(0, rng.uniform(1, 8), f.shape).astype(np.float32)
    return np.clip(f, 0, 255).astype(np.uint8), boxes.reshape(-1, 4)
