"""Trackers behind one protocol, selected by name."""

from detect_track.tracking import sort as _sort  # noqa: F401  (registers itself)
from detect_track.tracking.base import Tracker, available_trackers, create_tracker

__all__ = ["Tracker", "available_trackers", "create_tracker"]
