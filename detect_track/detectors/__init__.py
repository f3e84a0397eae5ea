"""Detectors behind one protocol, selected by name."""

from detect_track.detectors import classical as _classical  # noqa: F401  (registers itself)
from detect_track.detectors import effdet as _effdet  # noqa: F401  (torch loaded on first use)
from detect_track.detectors import yolo as _yolo  # noqa: F401  (ultralytics loaded on first use)
from detect_track.detectors.base import (
    Detector,
    available_detectors,
    create_detector,
    register_detector,
)

__all__ = ["Detector", "available_detectors", "create_detector", "register_detector"]
