"""YOLO detector (ultralytics) with a stride-4 output for 3-15 px sperm heads.

The shipped model (``weights/yolo-sperm.pt``, card ``weights/yolo-sperm.md``) is built from
``detect_track/models/yolo-sperm-p2.yaml`` and trained on simulated videos by
``detect-track train yolo``. Frames run at native resolution, padded to a multiple of 32.
Classes follow VISEM-Tracking: ``sperm``, ``cluster``, ``small_or_pinhead``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from detect_track.config import Config, LearnedConfig
from detect_track.detectors.base import register_detector
from detect_track.detectors.learned import (
    LearnedDetector,
    batches,
    finish,
    magnification_scale,
    min_box_px,
)
from detect_track.errors import ConfigError
from detect_track.ml import prepare_ultralytics, torch_threads
from detect_track.trust import require_trusted
from detect_track.types import Detections, ImageScale
from detect_track.weights import resolve_model, resolve_weights

DEFAULT_WEIGHTS = "yolo-sperm"


class YoloDetector(LearnedDetector):
    """Ultralytics YOLO behind the :class:`~detect_track.detectors.base.Detector` protocol.

    Args:
        cfg: Learned-detector settings (weights, thresholds, device, magnification range).
        um_per_px: Micrometres per pixel of the frames to come.
        scale_known: Whether ``um_per_px`` was stated (not assumed): only then are
            boxes too small for a head dropped (``cfg.min_head_um``).
    """

    name = "yolo"
    backend = "torch"

    def __init__(self, cfg: LearnedConfig, um_per_px: float, scale_known: bool = True) -> None:
        prepare_ultralytics()
        import torch
        from ultralytics import YOLO

        self.cfg = cfg
        self.weights: Path = resolve_weights(cfg.weights, DEFAULT_WEIGHTS, ".pt")
        require_trusted(self.weights, "YOLO checkpoint")  # ultralytics unpickles it
        try:
            self._model = YOLO(str(self.weights), task="detect")
        except Exception as exc:  # noqa: BLE001 - any loader failure is one message
            raise ConfigError(f"cannot load YOLO weights {self.weights}: {exc}") from exc
        names = self._model.names
        self.class_names: tuple[str, ...] = tuple(str(names[i]) for i in sorted(names))
        self.stride = max(32, int(max(self._model.model.stride)))
        self.scale = magnification_scale(um_per_px, cfg)
        self.min_side_px = min_box_px(self.class_names, um_per_px, cfg, scale_known)
        self._threads = torch_threads()
        self._torch = torch

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames (same-size frames share one forward pass)."""
        frames = list(frames)
        out: list[Detections] = [Detections.empty()] * len(frames)
        for idx, images in batches(frames, self.scale, self.stride):
            self._torch.set_num_threads(self._threads)
            results = self._model.predict(
                list(images), imgsz=list(images.shape[1:3]), conf=self.cfg.confidence,
                iou=self.cfg.iou, max_det=self.cfg.max_det, device=self.cfg.device,
                verbose=False, rect=False, batch=len(idx))
            for i, res in zip(idx, results, strict=True):
                b = res.boxes
                out[i] = finish(b.xyxy.cpu().numpy(), b.conf.cpu().numpy(),
                                b.cls.cpu().numpy().astype(np.int64), self.scale,
                                frames[i].shape[:2], len(self.class_names),
                                self.cfg.operating_confidence, merge=True,
                                min_side_px=self.min_side_px)
        return out


@register_detector("yolo")
def _make_yolo(cfg: Config, scale: ImageScale) -> LearnedDetector:
    """The torch or the ONNX Runtime YOLO, as ``detector.backend`` says.

    ``auto`` takes ONNX Runtime when it is installed and the weights have an ``.onnx``
    export (the shipped ones do), else torch.
    """
    from detect_track.detectors.onnx_yolo import YoloOnnxDetector
    from detect_track.detectors.verify import with_verifier
    from detect_track.detectors.views import with_views

    yolo = cfg.detector.yolo
    known = scale.known
    path = resolve_model(yolo.weights, DEFAULT_WEIGHTS, cfg.detector.backend)
    yolo = dataclasses.replace(yolo, weights=str(path))
    if path.suffix == ".onnx":
        def make(c: LearnedConfig) -> LearnedDetector:
            return with_views(lambda v: YoloOnnxDetector(v, scale.um_per_px, DEFAULT_WEIGHTS,
                                                         cfg.detector.onnx_runtime,
                                                         scale_known=known), c)
    else:
        def make(c: LearnedConfig) -> LearnedDetector:
            return with_views(lambda v: YoloDetector(v, scale.um_per_px, scale_known=known), c)
    return with_verifier(make, yolo, scale.um_per_px, cfg.detector.backend)
