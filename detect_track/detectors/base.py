"""Detector protocol and registry.

A detector turns one frame ``(H, W)`` into :class:`~detect_track.types.Detections`.
Raw model outputs never leave the detector: boxes are in pixels of the input frame,
scores in ``[0, 1]``, classes index into ``class_names``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from detect_track.config import Config
from detect_track.registry import Registry
from detect_track.types import Detections, ImageScale, VideoMeta

#: Run on one frame's detections right after they are found: ``post(frame, detections)``.
PostFn = Callable[[np.ndarray, Detections], Detections]


@runtime_checkable
class Detector(Protocol):
    """What every detector provides: all that the pipeline and the still-image path use.

    Attributes:
        name: The registered name (``yolo``, ``effdet``, ``classical``).
        class_names: Class names; ``Detections.class_id`` indexes into them.
        weights: The model file loaded, or None (no model).
        backend: The inference backend (``onnx``) where the detector reports one, else None.
        runtime: The runtime running the backend (``openvino``, ``onnxruntime``), or None.
    """

    name: str
    class_names: tuple[str, ...]
    weights: Path | None
    backend: str | None
    runtime: str | None

    def detect(self, frame: np.ndarray) -> Detections:
        """Find objects in one frame ``(H, W)`` or ``(H, W, 3)``; boxes in pixels."""
        ...

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames; same result as calling :meth:`detect` on each."""
        ...

    def detect_stream(self, frames: Iterable[tuple[int, np.ndarray]], workers: int = 0,
                      post: PostFn | None = None
                      ) -> Iterator[tuple[int, np.ndarray, Detections]]:
        """Detect in a stream of ``(index, frame)`` pairs; ``(index, frame, detections)`` out.

        Results come in the order of ``frames``. Detectors that can run several frames at
        once (the ONNX YOLO) do; the others detect one frame at a time (their state may
        depend on the order): see :class:`DetectorBase`.
        """
        ...

    def reset(self) -> None:
        """Forget per-video state (call between videos)."""
        ...


class DetectorBase:
    """Defaults for a :class:`Detector`: no model file, backend or runtime; frames one by one.

    Subclasses provide ``name``, ``class_names``, :meth:`detect` and ``detect_batch``.
    """

    weights: Path | None = None
    backend: str | None = None
    runtime: str | None = None

    def detect(self, frame: np.ndarray) -> Detections:  # pragma: no cover
        """Find objects in one frame (subclasses implement it)."""
        raise NotImplementedError

    def detect_stream(self, frames: Iterable[tuple[int, np.ndarray]], workers: int = 0,
                      post: PostFn | None = None
                      ) -> Iterator[tuple[int, np.ndarray, Detections]]:
        """One frame at a time, in order, with :meth:`detect` (``workers`` is ignored).

        Args:
            frames: ``(index, frame)`` pairs.
            workers: Frames in flight (detectors without a stream of their own: 1).
            post: Run on each frame's detections, ``post(frame, detections)``.

        Yields:
            ``(index, frame, detections)`` in the order of ``frames``.
        """
        for index, frame in frames:
            found = self.detect(frame)
            yield index, frame, found if post is None else post(frame, found)

    def reset(self) -> None:
        """Nothing is kept between frames."""


DetectorFactory = Callable[[Config, ImageScale], Detector]
_REGISTRY: Registry[Detector] = Registry("detector")


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator adding a detector factory ``(cfg, scale) -> Detector`` to the registry."""
    return _REGISTRY.register(name)


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return _REGISTRY.names()


def create_detector(name: str, cfg: Config, scale: ImageScale | VideoMeta) -> Detector:
    """Instantiate a registered detector for one video or set of images.

    Args:
        name: Registered name (see :func:`available_detectors`).
        cfg: Full configuration (each detector reads its own section).
        scale: The µm/px of the images to come and where it came from (a video's
            :class:`~detect_track.types.VideoMeta` carries it too): sizes in µm become
            pixels, and boxes too small for a head are dropped only when the scale was
            stated.

    Raises:
        ConfigError: If ``name`` is not registered (the message lists valid names).
    """
    if isinstance(scale, VideoMeta):
        scale = scale.scale
    return _REGISTRY.create(name, cfg, scale)
