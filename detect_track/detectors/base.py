"""Detector protocol and registry.

A detector turns one frame ``(H, W)`` into :class:`~detect_track.types.Detections`.
Raw model outputs never leave the detector: boxes are in pixels of the input frame,
scores in ``[0, 1]``, classes index into ``class_names``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from detect_track.config import Config
from detect_track.errors import ConfigError
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
_REGISTRY: dict[str, DetectorFactory] = {}


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Class or function decorator adding a detector factory to the registry."""

    def wrap(factory: DetectorFactory) -> DetectorFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return sorted(_REGISTRY)


def create_detector(name: str, cfg: Config, meta: VideoMeta) -> Detector:
    """Instantiate a registered detector for one video.

    Args:
        name: Registered name (see :func:`available_detectors`).
        cfg: Full configuration (each detector reads its own section).
        meta: The video's metadata (detectors scale with ``meta.um_per_px``).

    Raises:
        ConfigError: If ``name`` is not registered (the message lists valid names).
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown detector '{name}'{hint} (available: {', '.join(available_detectors())})"
        )
    return _REGISTRY[name](cfg, meta)
