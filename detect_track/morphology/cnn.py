"""The crop classifier's network, its input and its checkpoint format.

Shared by training (:mod:`detect_track.morphology.training`) and prediction
(:mod:`detect_track.morphology.classifier`): the task and class names, how a crop becomes
the network's input (:func:`fit_crop`, :func:`stack_crops`: gray or colour, fitted into
``size x size`` pixels, standardised), the network itself (:func:`build_net`), the
rotations and flips averaged at prediction (:data:`TTA_VIEWS`, :func:`tta_logits`) and
the checkpoint (:data:`CHECKPOINT_FORMAT`, :func:`save_checkpoint`).

torch is imported only when a network is built or a checkpoint written (the ``ml`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detect_track.ml import require

HEAD_SHAPES = ("normal", "tapered", "pyriform", "amorphous", "small", "not_assessable")
PARTS = ("head", "acrosome", "vacuole", "tail")
TASKS = ("head_shape", *PARTS)
CHECKPOINT_FORMAT = "detect-track-morphology/1"


def fit_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Fit a crop into ``size x size`` (aspect kept, borders replicated), standardised.

    Args:
        image: ``(H, W)`` gray or ``(H, W, C)`` colour crop, uint8 or float.
        size: Side of the output in pixels.

    Returns:
        ``(size, size)`` (or ``(size, size, C)``) float32 array with zero mean and unit
        standard deviation over all its values (a colour crop keeps its hue).
    """
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale != 1.0:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=interp)
    h, w = img.shape[:2]
    top, left = (size - h) // 2, (size - w) // 2
    img = cv2.copyMakeBorder(img, top, size - h - top, left, size - w - left,
                             cv2.BORDER_REPLICATE)
    img -= img.mean()
    return img / max(float(img.std()), 1e-3)


def build_net(n_classes: int, width: int, channels: int = 1) -> Any:
    """The untrained network (torch): four conv stages, global pooling, one linear layer.

    Args:
        n_classes: Outputs (logits).
        width: Channels of the first stage (x2, x4, x8 deeper).
        channels: Input planes: 1 gray, 3 colour.

    Returns:
        A ``torch.nn.Sequential`` mapping ``(B, channels, S, S)`` to ``(B, n_classes)``.
    """
    torch = require("torch")
    nn = torch.nn

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    w = width
    return nn.Sequential(  # 64 px -> one conv -> 32 -> 16 -> 8 -> global pool
        nn.Conv2d(channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2),
        *block(2 * w, 4 * w), nn.MaxPool2d(2), *block(4 * w, 8 * w),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * w, n_classes))


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """A crop as ``channels`` (1: gray, 3: BGR) planes, last axis for colour."""
    img = np.asarray(image)
    if channels == 1:
        return img if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img[..., :3]


def stack_crops(images: Sequence[np.ndarray], size: int, channels: int = 1) -> np.ndarray:
    """``(N, channels, size, size)`` float32 batch of fitted, standardised crops."""
    if len(images) == 0:
        return np.zeros((0, channels, size, size), np.float32)
    shape = (size, size) if channels == 1 else (size, size, channels)
    planes = [to_channels(im, channels) for im in images]
    if all(p.shape == shape for p in planes):  # cut at the input size: standardise at once
        x = np.stack(planes).astype(np.float32)
        axes = tuple(range(1, x.ndim))
        x -= x.mean(axis=axes, keepdims=True)
        x /= np.maximum(x.std(axis=axes, keepdims=True), 1e-3)
    else:
        x = np.stack([fit_crop(p, size) for p in planes])
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


#: Images (crops x views) per model call by default. Measured on 2 cores: 16 per call is
#: as fast as 512, and ONNX Runtime's memory grows by 36 MB instead of 480 MB.
IMAGES_PER_CALL = 16

#: The rotations / flips averaged at prediction, by number of views: (mirrored, k x 90°).
TTA_VIEWS: dict[int, tuple[tuple[bool, int], ...]] = {
    1: ((False, 0),),
    2: ((False, 0), (False, 2)),  # keeps an aligned head's long axis horizontal
    4: tuple((False, k) for k in range(4)),
    8: tuple((flip, k) for flip in (False, True) for k in range(4)),
}


def tta_logits(torch: Any, model: Any, x: Any, views: int = 8) -> Any:
    """Mean log-probabilities over ``views`` rotations / flips (see ``TTA_VIEWS``)."""
    outs = []
    for flip, k in TTA_VIEWS[views]:
        xf = torch.flip(x, dims=[3]) if flip else x
        outs.append(torch.log_softmax(model(torch.rot90(xf, k, dims=[2, 3])), dim=1))
    return torch.stack(outs).mean(0)


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint atomically (torch format)."""
    torch = require("torch")
    from detect_track.io.export import atomic_write

    return atomic_write(path, lambda p: torch.save(ckpt, p))
