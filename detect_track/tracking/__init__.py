"""Trackers behind one protocol, selected by name."""

from detect_track.tracking import sort as _sort  # noqa: F401  (registers itself)
from detect_track.tracking import trackpy_linker as _trackpy  # noqa: F401
from detect_track.tracking import ultralytics_trackers as _ultralytics  # noqa: F401
from detect_track.tracking.base import Tracker, available_trackers, create_tracker
from detect_track.tracking.link import LinkedFrame, link, link_iter

__all__ = ["LinkedFrame", "Tracker", "available_trackers", "create_tracker", "link", "link_iter"]
