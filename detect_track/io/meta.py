"""The frame rate and scale a run uses, where each came from, and their range checks.

Every fps and µm/px the user can give (command line, config, batch list file) is checked
here, by :func:`check_fps` and :func:`check_um_per_px`, and nowhere else.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from detect_track.errors import ConfigError, InputError
from detect_track.types import VideoMeta

if TYPE_CHECKING:
    from detect_track.config import Config
    from detect_track.io.video import FrameSource

#: Scales accepted (µm per pixel): from a 100x objective with extra magnification to a
#: 0.5x macro lens; outside, a 4.5 µm head is under a pixel or thousands of pixels long.
MIN_UM_PER_PX, MAX_UM_PER_PX = 0.01, 100.0


def check_um_per_px(value: float, label: str = "--um-per-px") -> float:
    """``value`` as a float if it is a plausible scale in µm/px.

    Args:
        value: The scale, µm per pixel.
        label: How the user gave it (named in the error).

    Returns:
        ``float(value)``.

    Raises:
        ConfigError: If it is not a finite number in [``MIN_UM_PER_PX``, ``MAX_UM_PER_PX``].
    """
    if not (math.isfinite(value) and MIN_UM_PER_PX <= value <= MAX_UM_PER_PX):
        raise ConfigError(f"{label} must be a number in [{MIN_UM_PER_PX:g}, {MAX_UM_PER_PX:g}] "
                          f"µm/px (a sperm head is about 4.5 µm long), got {value:g}")
    return float(value)


def check_fps(value: float, label: str = "--fps", max_fps: float | None = None) -> float:
    """``value`` as a float if it is a plausible frame rate.

    Args:
        value: Frames per second.
        label: How the user gave it (named in the error).
        max_fps: Largest rate accepted (``video.max_fps``); None: any finite rate > 0.

    Returns:
        ``float(value)``.

    Raises:
        ConfigError: If it is not a finite number in (0, ``max_fps``].
    """
    if max_fps is None:
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{label} must be a number > 0, got {value:g}")
    elif not (math.isfinite(value) and 0 < value <= max_fps):
        raise ConfigError(f"{label} must be a number in (0, {max_fps:g}], got {value:g}")
    return float(value)


def resolve_um_per_px(cfg: Config, um_per_px: float | None = None
                      ) -> tuple[float, str, list[str]]:
    """The µm/px to use, where it came from, and a warning when it is only the default.

    Priority: ``um_per_px`` (``cli``) > ``video.um_per_px`` (``config``) >
    ``video.default_um_per_px`` (``default``, warned).

    Args:
        cfg: Configuration (``video`` section, already validated).
        um_per_px: The scale the user gave, if any.

    Returns:
        ``(um_per_px, source, warnings)``.

    Raises:
        ConfigError: If ``um_per_px`` is not a plausible scale (:func:`check_um_per_px`).
    """
    if um_per_px is not None:
        return check_um_per_px(um_per_px, "--um-per-px"), "cli", []
    if cfg.video.um_per_px is not None:
        return float(cfg.video.um_per_px), "config", []
    scale = cfg.video.default_um_per_px
    return scale, "default", [f"µm/px not given: assumed {scale:g} µm/px; pass --um-per-px "
                              "for correct distances and speeds"]


def resolve_meta(source: FrameSource, cfg: Config, fps: float | None = None,
                 um_per_px: float | None = None) -> tuple[VideoMeta, list[str]]:
    """Decide the fps and µm/px to use, and record where each came from.

    Priority: explicit argument (``cli``) > config (``config``) > container / default.

    Args:
        source: The opened video (its container's fps and size).
        cfg: Configuration (``video`` section).
        fps: The frame rate the user gave, if any.
        um_per_px: The scale the user gave, if any.

    Returns:
        The metadata to use and warnings (a default was assumed).

    Raises:
        ConfigError: If a given value is not positive or is absurd.
        InputError: If no frame rate is known (image folder without ``fps``).
    """
    warnings: list[str] = []
    max_fps = cfg.video.max_fps
    if fps is not None:
        fps_used, fps_src = check_fps(fps, "--fps", max_fps), "cli"
    elif cfg.video.fps is not None:
        fps_used, fps_src = float(cfg.video.fps), "config"
    elif source.info.fps is not None:
        fps_used, fps_src = float(source.info.fps), "container"
        if fps_used > max_fps:
            raise InputError(f"the video reports an implausible frame rate of {fps_used:g} fps; "
                             "pass the real one with --fps")
    elif cfg.video.default_fps is not None:
        fps_used, fps_src = float(cfg.video.default_fps), "default"
        warnings.append(f"{source.path.name} carries no frame rate: assumed {fps_used:g} fps "
                        "(video.default_fps)")
    else:
        raise InputError(f"the frame rate of {source.path} is unknown; pass it with --fps "
                         "(or video.default_fps=F for every input without one)")
    scale, scale_src, scale_warnings = resolve_um_per_px(cfg, um_per_px)
    warnings += scale_warnings
    meta = VideoMeta(str(source.path), fps_used, source.info.n_frames, source.info.width_px,
                     source.info.height_px, scale, fps_src, scale_src)
    return meta, warnings
