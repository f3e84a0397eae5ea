"""A second look at small cells: detections re-labelled by a colour crop classifier.

A detector sees a small cell through a coarse feature map, and some classes differ by a
detail a few pixels across: a cytoplasmic droplet at the neck tells an immature sperm
from a mature one, a residual cytoplasm and a short tail an elongated spermatid from a
sperm. The crop classifier looks again at every detection of the classes it knows, in
colour at the image's own resolution (a square of ``crop_um`` around the box centre,
resampled to the classifier's input), and its answer replaces the detector's class among
those classes. Detections of other classes are left as they are. Two answers that now
name the same cell with one class are merged into one box
(:func:`~detect_track.detectors.learned.merge_duplicates`); the confidence stays the
detector's, so the operating point keeps its meaning.

The classifier is a :class:`~detect_track.morphology.classifier.MorphologyClassifier`
trained with ``task = "cell_class"`` and ``channels = 3`` (``tools/train_cell_classifier.py``);
its checkpoint records the crop side in µm (``train["crop_um"]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from detect_track.errors import ConfigError
from detect_track.types import Detections

#: The task name of a crop classifier that re-labels detections.
CELL_TASK = "cell_class"


def cut_colour(image: np.ndarray, xy: np.ndarray, side_px: float, size: int
               ) -> list[np.ndarray]:
    """Square crops centred on points, resampled to ``size`` px, borders reflected.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` image.
        xy: Centres ``(N, 2)`` in px (pixel edges at integers).
        side_px: Crop side in image pixels.
        size: Output side in pixels.

    Returns:
        ``N`` crops of shape ``(size, size)`` or ``(size, size, 3)``, the image's dtype.
    """
    s = size / float(side_px)
    out = []
    for x, y in np.asarray(xy, np.float64).reshape(-1, 2):
        # OpenCV indexes pixel centres: image pixel j (centre j + 0.5 here) is j there, so
        # output index u = s * (j + 0.5 - x) + size / 2 - 0.5
        m = np.array([[s, 0.0, s * (0.5 - x) + size / 2.0 - 0.5],
                      [0.0, s, s * (0.5 - y) + size / 2.0 - 0.5]], np.float64)
        out.append(cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT_101))
    return out


class CellReclassifier:
    """Re-labels a detector's small-cell detections from colour crops.

    Args:
        path: Classifier checkpoint (``.pt``) or its ONNX export.
        device: ``cpu`` or a CUDA device (torch only).
        views: Rotations / flips averaged per crop (1, 2, 4 or 8); 4 (the 90°
            rotations) is as accurate as 8 on the validation smears in half the time.

    Raises:
        ConfigError: Missing or unreadable file, or a model of another task.
    """

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", views: int = 4
                 ) -> None:
        from detect_track.morphology.classifier import MorphologyClassifier

        self.model = MorphologyClassifier(path, device)
        if self.model.task != CELL_TASK:
            raise ConfigError(f"{path} is a '{self.model.task}' model, not a cell "
                              f"classifier ('{CELL_TASK}')")
        crop_um = self.model.info.get("crop_um")
        if not crop_um or float(crop_um) <= 0:
            raise ConfigError(f"{path} does not record its crop size (train.crop_um)")
        self.crop_um = float(crop_um)
        self.views = views
        self.class_names: tuple[str, ...] = self.model.class_names

    def class_map(self, detector_names: Sequence[str]) -> np.ndarray:
        """Detector class id of each of the classifier's classes ``(K,)``.

        Raises:
            ConfigError: A class of the classifier is not one of the detector's.
        """
        names = list(detector_names)
        missing = [c for c in self.class_names if c not in names]
        if missing:
            raise ConfigError(f"the cell classifier's classes {missing} are not among the "
                              f"detector's {names}; turn it off with still.reclassify=\"\"")
        return np.array([names.index(c) for c in self.class_names], np.int64)

    def apply(self, image: np.ndarray, detections: Detections,
              detector_names: Sequence[str], um_per_px: float) -> Detections:
        """Detections with the classes the classifier knows decided again.

        Args:
            image: The image the detections were found in, ``(H, W)`` or ``(H, W, 3)``.
            detections: Its detections (boxes in image px).
            detector_names: The detector's class names (index = ``class_id``).
            um_per_px: Micrometres per pixel of ``image``.

        Returns:
            The detections, those of the classifier's classes re-labelled and merged
            where two now share a cell and a class.
        """
        ids = self.class_map(detector_names)
        mine = np.isin(detections.class_id, ids)
        if not mine.any():
            return detections
        idx = np.flatnonzero(mine)
        crops = cut_colour(image, detections.xy[idx], self.crop_um / um_per_px,
                           self.model.size)
        proba = self.model.predict_proba(crops, views=self.views)
        cls = ids[proba.argmax(axis=1)]
        xyxy, conf = detections.xyxy[idx], detections.confidence[idx]
        if len(idx) > 1:
            from detect_track.detectors.learned import merge_duplicates

            xyxy, conf, cls = merge_duplicates(xyxy, conf, cls)
        rest = detections[~mine]
        return Detections(np.concatenate([rest.xyxy, xyxy]),
                          np.concatenate([rest.confidence, conf]),
                          np.concatenate([rest.class_id, cls]))


def load_reclassifier(name_or_path: str, backend: str = "auto", device: str = "cpu",
                      views: int = 4) -> CellReclassifier:
    """The cell classifier ``still.reclassify`` names (a file, or a name in weights/).

    Raises:
        ConfigError: If it cannot be found or loaded, or is not a cell classifier.
    """
    from detect_track.weights import resolve_model

    return CellReclassifier(resolve_model(name_or_path, name_or_path, backend), device, views)
