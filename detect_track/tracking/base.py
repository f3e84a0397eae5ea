"""Tracker protocol and registry.

A tracker is stateful: :meth:`Tracker.update` takes one frame's detections and
returns them with ``tracker_id`` set; :meth:`Tracker.reset` starts a new video
(ids restart at 1: the id counter belongs to the tracker instance).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from detect_track.config import Config
from detect_track.errors import ConfigError
from detect_track.types import Detections, VideoMeta


@runtime_checkable
class Tracker(Protocol):
    """What every tracker provides."""

    name: str

    def update(self, detections: Detections) -> Detections:
        """Advance one frame; return the detections kept, with ``tracker_id`` set."""
        ...

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1."""
        ...


TrackerFactory = Callable[[Config, VideoMeta], Tracker]
_REGISTRY: dict[str, TrackerFactory] = {}


def register_tracker(name: str) -> Callable[[TrackerFactory], TrackerFactory]:
    """Decorator adding a tracker factory to the registry."""

    def wrap(factory: TrackerFactory) -> TrackerFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_trackers() -> list[str]:
    """Names accepted by :func:`create_tracker`."""
    return sorted(_REGISTRY)


def create_tracker(name: str, cfg: Config, meta: VideoMeta) -> Tracker:
    """Instantiate a registered tracker for one video (needs its fps and µm/px).

    Raises:
        ConfigError: If ``name`` is not registered (the message lists valid names).
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown tracker '{name}'{hint} (available: {', '.join(available_trackers())})"
        )
    return _REGISTRY[name](cfg, meta)
