"""Detectors behind one protocol, selected by name."""

from detect_track.detectors import classical as _classical  # noqa: F401  (registers itself)
from detect_track.detectors.base import (
    Detector,
    available_detectors,
    create_detector,
    register_detector,
)

__all__ = ["Detector", "available_detectors", "create_detector", "register_detector"]
