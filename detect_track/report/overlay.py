"""Overlay video: the source video with tracked cells, trails and motility colours drawn on.

:func:`write_overlay` re-reads the source video, draws each frame with
:class:`~detect_track.report.overlay_renderer.OverlayRenderer` (boxes and track ids, fading
trails, a legend of the motility classes, a scale bar and a time stamp) and writes an MP4
(MJPG ``.avi`` when no MP4 codec is available), atomically (temporary file, then rename).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from detect_track.errors import ConfigError, InputError, OutputError
from detect_track.io.export import FILE_MODE
from detect_track.io.video import FrameSource
from detect_track.report.overlay_renderer import OverlayRenderer, choose_scale_bar_um

__all__ = ["write_overlay", "choose_scale_bar_um", "OverlayRenderer"]


def _to_bgr(frame: np.ndarray) -> np.ndarray:
    """Convert a gray ``(H, W)`` frame (uint8, uint16 or float) to BGR uint8 ``(H, W, 3)``."""
    if frame.ndim == 3:  # already colour (not produced by FrameSource, but harmless)
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.shape[2] == 3 else frame[..., 0]
    if frame.dtype != np.uint8:
        sample = frame[::4, ::4].astype(np.float32)
        lo = min(float(sample.min()), 0.0) if frame.dtype.kind == "f" else 0.0
        hi = float(np.percentile(sample, 99.9))
        scale = 255.0 / max(hi - lo, 1e-6)
        frame = cv2.convertScaleAbs(frame.astype(np.float32), alpha=scale, beta=-lo * scale)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def _select_video(trajectories: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Keep the rows of ``source`` when the table holds results of several videos."""
    if "video" not in trajectories.columns or trajectories["video"].nunique(dropna=True) <= 1:
        return trajectories
    names = trajectories["video"].astype(str)
    keep = names.isin({str(source), source.name, source.stem}) | names.map(
        lambda v: Path(v).name == source.name)
    if not keep.any():
        raise InputError(f"overlay: the trajectory table holds several videos and none is "
                         f"named {source.name!r}")
    return trajectories[keep.to_numpy()]


def _open_writer(out: Path, fps: float, size: tuple[int, int]
                 ) -> tuple[cv2.VideoWriter, Path, Path]:
    """Open a writer on a temporary file next to the output.

    Returns:
        ``(writer, temp_path, final_path)``; ``final_path`` ends in ``.avi`` when only the
        MJPG fallback could be opened.

    Raises:
        OutputError: If no codec can be opened.
    """
    suffix = out.suffix.lower()
    if suffix == ".avi":
        attempts = [("MJPG", out)]
    else:
        attempts = [("mp4v", out), ("avc1", out), ("MJPG", out.with_suffix(".avi"))]
    for fourcc, target in attempts:
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f"{target.stem}.",
                                            suffix=f".tmp{target.suffix}", dir=target.parent)
            os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
        tmp = Path(tmp_name)
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, size, True)
        if writer.isOpened():
            return writer, tmp, target
        writer.release()
        tmp.unlink(missing_ok=True)
    raise OutputError(f"cannot open a video writer (mp4v, avc1, MJPG) for {out}")


def write_overlay(source: str | os.PathLike[str], trajectories: pd.DataFrame,
                  tracks: pd.DataFrame, out_path: str | os.PathLike[str], *, fps: float,
                  um_per_px: float, trail_s: float = 1.0,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the source video with tracks, trails, legend, scale bar and time drawn on.

    Per frame: a box (solid; dashed for ``interpolated`` rows) and the track id around every
    cell of ``trajectories`` in that frame, a trail of its last ``trail_s`` seconds fading
    with age, all coloured by the track's motility class (:data:`MOTILITY_COLOURS`;
    tracks without a class are gray), a legend with the number of cells of each class in
    the frame, a scale bar of a round length (about 15 % of the width) and ``t = … s
    frame …`` at the top left.

    Args:
        source: The video (or image folder / TIFF) the results were computed from; read
            with :class:`~detect_track.io.video.FrameSource`. Gray ``(H, W)`` uint8 frames
            are used as is, uint16 ones are scaled by their robust (99.9 %) maximum.
        trajectories: Long table with ``TRAJECTORY_COLUMNS`` (``frame`` 0-based, ``x_px``,
            ``y_px`` box centre and ``w_px``, ``h_px`` box size in pixels). If it holds
            several videos (column ``video``), the rows of ``source`` are used.
        tracks: Per-track table with ``track_id`` and ``motility`` (one of
            ``MOTILITY_CLASSES``, or empty/NaN when unclassified); may be empty.
        out_path: Output file, normally ``.mp4`` (``.avi`` writes MJPG).
        fps: Frame rate of the output and of the time stamp, frames/s (> 0).
        um_per_px: Micrometres per pixel (> 0), for the scale bar.
        trail_s: Trail length in seconds (0: no trails).
        progress: Called as ``progress(frames_done, n_frames)`` after each frame
            (``n_frames`` is 0 when the source does not know its length).

    Returns:
        The path written: ``out_path``, or ``out_path`` with suffix ``.avi`` when no MP4
        codec (``mp4v``, ``avc1``) is available and MJPG was used instead.

    Raises:
        ConfigError: If ``fps`` or ``um_per_px`` is not > 0, or ``trail_s`` < 0.
        InputError: If the source cannot be read or the trajectory table is unusable.
        OutputError: If the output cannot be written.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"overlay: fps must be > 0, got {fps}")
    if not (math.isfinite(um_per_px) and um_per_px > 0):
        raise ConfigError(f"overlay: um_per_px must be > 0, got {um_per_px}")
    src = FrameSource(source)
    size = (src.info.width_px, src.info.height_px)
    renderer = OverlayRenderer(_select_video(trajectories, Path(source)), tracks, size,
                               fps=fps, um_per_px=um_per_px, trail_s=trail_s)
    out = Path(out_path)
    if not out.suffix:
        out = out.with_suffix(".mp4")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {out.parent}: {exc.strerror or exc}") from exc
    writer, tmp, target = _open_writer(out, float(fps), size)
    total = len(src)
    try:
        done = 0
        for idx, gray in src:
            writer.write(renderer.render(_to_bgr(gray), idx))
            done += 1
            if progress is not None:
                progress(done, total)
        writer.release()
        if done == 0:
            raise InputError(f"no frame could be read from {source}")
        os.chmod(tmp, FILE_MODE)  # mkstemp made it private; results are shared files
        os.replace(tmp, target)
    except OSError as exc:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    return target
