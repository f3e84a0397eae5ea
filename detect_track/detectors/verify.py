"""A second look at every sperm box: a crop classifier tells heads from debris.

A small detector ranks head-sized debris (dark specks, bright refractile grains, pairs
of blobs, out-of-focus clumps) about as high as heads: on the held-out simulated videos
most of its false positives at the operating point lie far from any cell
(``benchmarks/detection.md``). A head comes with a neck and a tail and has a head's
outline; a crop a few head lengths wide, at a fixed size in micrometres, shows that
better than the detector's coarse feature map. The verifier (a small CNN,
:class:`~detect_track.morphology.classifier.MorphologyClassifier` with
``task = "sperm_verify"`` and classes ``not_sperm, sperm``; ``tools/train_sperm_verifier.py``)
reads a gray square of ``train.crop_um`` µm (recorded in its checkpoint) around each
``sperm`` box, and the box's score becomes the geometric mean of the detector's raw
score and the verifier's probability of ``sperm``, calibrated at the detector's
``verifier_operating`` point. Boxes of other classes keep the detector's own score,
calibrated at its ``operating_confidence`` as without the verifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from detect_track.config import LearnedConfig
from detect_track.detectors.base import PostFn
from detect_track.detectors.learned import LearnedDetector, calibrate
from detect_track.errors import ConfigError
from detect_track.types import Detections

#: The task name of a verifier checkpoint, and its classes.
VERIFY_TASK = "sperm_verify"
VERIFY_CLASSES = ("not_sperm", "sperm")
#: The detector class the verifier looks at.
VERIFIED_CLASS = "sperm"


class HeadVerifier:
    """Probability that each box of a frame is a sperm head, from crops around it.

    Args:
        path: Verifier checkpoint (``.pt``) or its ONNX export.

    Raises:
        ConfigError: Missing or unreadable file, another task, or no recorded crop size.
    """

    def __init__(self, path: str) -> None:
        from detect_track.morphology.classifier import MorphologyClassifier

        self.model = MorphologyClassifier(path, threads=1)  # a few dozen tiny crops per
        # frame gain nothing from more threads, and frames run side by side (detect_stream)
        if self.model.task != VERIFY_TASK or self.model.class_names != VERIFY_CLASSES:
            raise ConfigError(f"{path} is a '{self.model.task}' model, not a sperm verifier "
                              f"('{VERIFY_TASK}' with classes {', '.join(VERIFY_CLASSES)})")
        crop_um = float(self.model.info.get("crop_um") or 0.0)
        if crop_um <= 0:
            raise ConfigError(f"{path} does not record its crop size (train.crop_um)")
        self.crop_um = crop_um

    def probability(self, frame: np.ndarray, xy: np.ndarray, um_per_px: float) -> np.ndarray:
        """P(sperm) ``(N,)`` of the cells centred at ``xy`` ``(N, 2)`` px in ``frame``.

        Args:
            frame: ``(H, W)`` or ``(H, W, 3)`` image, any integer or float type.
            xy: Box centres in frame pixels.
            um_per_px: Micrometres per pixel of ``frame`` (sets the crop side).
        """
        if len(xy) == 0:
            return np.zeros(0)
        crops = verifier_crops(frame, xy, self.crop_um / um_per_px, self.model.size)
        return self.model.predict_proba(list(crops), batch=len(crops), views=1)[:, 1]


def verifier_crops(frame: np.ndarray, xy: np.ndarray, side_px: float, size: int
                   ) -> np.ndarray:
    """The verifier's input: gray squares of ``side_px`` around ``xy``, at ``size`` px.

    Training (``tools/train_sperm_verifier.py``) and prediction cut them the same way.
    A side more than twice ``size`` (fine still images) is area-averaged first, as
    bilinear sampling alone would alias.

    Args:
        frame: ``(H, W)`` or ``(H, W, 3)`` image.
        xy: Centres ``(N, 2)`` in px.
        side_px: Crop side in image pixels.
        size: Output side in pixels.

    Returns:
        ``(N, size, size)`` crops, the frame's dtype.
    """
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame[..., :3], cv2.COLOR_BGR2GRAY)
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if side_px > 2 * size:
        f = 1.5 * size / side_px
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * f)),
                                 max(1, round(gray.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
        fx, fy = gray.shape[1] / frame.shape[1], gray.shape[0] / frame.shape[0]
        xy, side_px = xy * (fx, fy), side_px * fx
    return cut_gray(gray, xy, side_px, size)


def cut_gray(gray: np.ndarray, xy: np.ndarray, side_px: float, size: int) -> np.ndarray:
    """Square crops centred on points, resampled to ``size`` px, in one pass.

    The same crops as :func:`~detect_track.detectors.reclassify.cut_colour` (bilinear,
    borders reflected, pixel edges at integers), cut by one ``cv2.remap`` call.

    Args:
        gray: ``(H, W)`` image.
        xy: Centres ``(N, 2)`` in px.
        side_px: Crop side in image pixels.
        size: Output side in pixels.

    Returns:
        ``(N, size, size)`` crops, the image's dtype.
    """
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return np.zeros((0, size, size), gray.dtype)
    # output pixel u (centre u + 0.5 in the edge convention) samples image x at
    # x_c + (u + 0.5 - size / 2) * side / size; OpenCV's pixel centres are at integers
    step = (np.arange(size) + 0.5 - size / 2.0) * (float(side_px) / size) - 0.5
    map_x = (xy[:, 0, None, None] + step[None, None, :]).repeat(size, axis=1)
    map_y = (xy[:, 1, None, None] + step[None, :, None]).repeat(size, axis=2)
    out = cv2.remap(gray, map_x.reshape(-1, size).astype(np.float32),
                    map_y.reshape(-1, size).astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT_101)
    return out.reshape(len(xy), size, size)


class VerifiedDetector(LearnedDetector):
    """A learned detector whose ``sperm`` scores are checked by a :class:`HeadVerifier`.

    Args:
        base: The detector (or its view fusion), built to report raw scores
            (``operating_confidence = 0.5``).
        verifier: The verifier.
        um_per_px: Micrometres per pixel of the frames to come.
        operating: Raw score of the unverified classes reported as 0.5 (the detector's
            ``operating_confidence``).
        verified_operating: Verified score of ``sperm`` boxes reported as 0.5
            (``verifier_operating``).
    """

    def __init__(self, base: LearnedDetector, verifier: HeadVerifier, um_per_px: float,
                 operating: float, verified_operating: float) -> None:
        self.base = base
        self.verifier = verifier
        self.um_per_px = float(um_per_px)
        self.operating = operating
        self.verified_operating = verified_operating
        self.name: str = base.name  # type: ignore[attr-defined]
        self.class_names: tuple[str, ...] = base.class_names  # type: ignore[attr-defined]
        self.weights, self.backend, self.runtime = base.weights, base.backend, base.runtime
        self._cls = self.class_names.index(VERIFIED_CLASS) if VERIFIED_CLASS in \
            self.class_names else -1

    def verify(self, frame: np.ndarray, d: Detections) -> Detections:
        """Detections with raw scores -> calibrated, ``sperm`` ones verified first."""
        score = calibrate(d.confidence, self.operating)
        mine = d.class_id == self._cls
        if mine.any():
            p = self.verifier.probability(frame, d.xy[mine], self.um_per_px)
            score[mine] = calibrate(np.sqrt(d.confidence[mine] * p), self.verified_operating)
        return Detections(xyxy=d.xyxy, confidence=score, class_id=d.class_id)

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames ``(H, W[, C])``; boxes in frame pixels."""
        frames = list(frames)
        return [self.verify(f, d) for f, d in zip(frames, self.base.detect_batch(frames),
                                                   strict=True)]

    def detect_stream(self, frames: Iterable[tuple[int, np.ndarray]], workers: int = 0,
                      post: PostFn | None = None
                      ) -> Iterator[tuple[int, np.ndarray, Detections]]:
        """The base detector's stream (several frames in flight where it has one), verified.

        Args:
            frames: ``(index, frame)`` pairs.
            workers: Frames in flight (see the base detector's ``detect_stream``).
            post: Run on each frame's verified detections.

        Yields:
            ``(index, frame, detections)`` in the order of ``frames``.
        """
        def verified(frame: np.ndarray, d: Detections) -> Detections:
            d = self.verify(frame, d)
            return d if post is None else post(frame, d)

        yield from self.base.detect_stream(frames, workers, post=verified)  # in the workers

    def __getattr__(self, name: str) -> Any:
        # everything else (scale, stride, backend...) is the base detector's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def with_verifier(make: Callable[[LearnedConfig], LearnedDetector], cfg: LearnedConfig,
                  um_per_px: float, backend: str) -> LearnedDetector:
    """``make(cfg)``, wrapped in :class:`VerifiedDetector` when ``cfg.verifier`` names one.

    Args:
        make: Builds the detector (views included) from a ``LearnedConfig``.
        cfg: The detector's ``LearnedConfig``.
        um_per_px: Micrometres per pixel of the frames.
        backend: ``detector.backend``: which file of the verifier to load (onnx / torch).

    Raises:
        ConfigError: The verifier cannot be found or is not a sperm verifier.
    """
    if not cfg.verifier:
        return make(cfg)
    from dataclasses import replace

    from detect_track.weights import resolve_model

    verifier = HeadVerifier(str(resolve_model(cfg.verifier, cfg.verifier, backend)))
    base = make(replace(cfg, operating_confidence=0.5))  # raw scores, calibrated after
    return VerifiedDetector(base, verifier, um_per_px, cfg.operating_confidence,
                            cfg.verifier_operating)
