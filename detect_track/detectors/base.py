"""Detector protocol and registry.

A detector turns one frame ``(H, W)`` into :class:`~detect_track.types.Detections`.
Raw model outputs never leave the detector: boxes are in pixels of the input frame,
scores in ``[0, 1]``, classes index into ``class_names``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from detect_track.config import Config
from detect_track.registry import Registry
from detect_track.types import Detections, VideoMeta


@runtime_checkable
class Detector(Protocol):
    """What every detector provides."""

    name: str
    class_names: tuple[str, ...]

    def detect(self, frame: np.ndarray) -> Detections:
        """Find objects in one frame ``(H, W)`` or ``(H, W, 3)``; boxes in pixels."""
        ...

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames; same result as calling :meth:`detect` on each."""
        ...

    def reset(self) -> None:
        """Forget per-video state (call between videos)."""
        ...


DetectorFactory = Callable[[Config, VideoMeta], Detector]
_REGISTRY: Registry[Detector] = Registry("detector")


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator adding a detector factory ``(cfg, meta) -> Detector`` to the registry."""
    return _REGISTRY.register(name)


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return _REGISTRY.names()


def create_detector(name: str, cfg: Config, meta: VideoMeta) -> Detector:
    """Instantiate a registered detector for one video.

    Args:
        name: Registered name (see :func:`available_detectors`).
        cfg: Full configuration (each detector reads its own section).
        meta: The video's metadata (fps and µm/px set time and distance scales).

    Raises:
        ConfigError: If ``name`` is not registered (the message lists valid names).
    """
    return _REGISTRY.create(name, cfg, meta)
