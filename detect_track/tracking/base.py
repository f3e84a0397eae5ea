"""Tracker protocol and registry.

A tracker is stateful: :meth:`Tracker.update` takes one frame's detections and
returns them with ``tracker_id`` set; :meth:`Tracker.reset` starts a new video
(ids restart at 1: the id counter belongs to the tracker instance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from detect_track.config import Config
from detect_track.registry import Registry
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


def with_ids(detections: Detections, ids: np.ndarray) -> Detections:
    """The detections that got a track (``ids > 0``), with ``tracker_id`` set.

    Args:
        detections: One frame's detections (N).
        ids: Track id per detection ``(N,)``, 0 where none was given.
    """
    keep = ids > 0
    out = detections[keep]
    out.tracker_id = np.asarray(ids, np.int64)[keep]
    return out


TrackerFactory = Callable[[Config, VideoMeta], Tracker]
_REGISTRY: Registry[Tracker] = Registry("tracker")


def register_tracker(name: str) -> Callable[[TrackerFactory], TrackerFactory]:
    """Decorator adding a tracker factory ``(cfg, meta) -> Tracker`` to the registry."""
    return _REGISTRY.register(name)


def available_trackers() -> list[str]:
    """Names accepted by :func:`create_tracker`."""
    return _REGISTRY.names()


def create_tracker(name: str, cfg: Config, meta: VideoMeta) -> Tracker:
    """Instantiate a registered tracker for one video.

    Args:
        name: Registered name (see :func:`available_trackers`).
        cfg: Full configuration (each tracker reads its own section).
        meta: The video's metadata (fps and µm/px set time and distance scales).

    Raises:
        ConfigError: If ``name`` is not registered (the message lists valid names).
    """
    return _REGISTRY.create(name, cfg, meta)
