"""Overlay video: the source video with tracked cells, trails and motility colours drawn on.

:func:`write_overlay` re-reads the source video, draws each frame with
:class:`~detect_track.report.overlay_renderer.OverlayRenderer` (boxes and track ids, fading
trails, a legend of the motility classes, a scale bar and a time stamp, the last three in a
strip above the frame) and writes it atomically (temporary file, then rename).

The file is H.264 in MP4 (``libx264`` through PyAV), which every current browser plays, so
``report.html`` embeds it in a ``<video>`` element. detect-track is AGPL-3.0-or-later, which
is compatible with x264's GPL-2.0-or-later, so using the x264 of PyAV's FFmpeg raises no
licence conflict. Without it: Cisco's ``libopenh264`` (MP4), then VP9 in WebM (libvpx),
then OpenCV's ``mp4v`` MP4 or MJPG ``.avi``, which desktop players open but browsers do not
(:attr:`OverlayVideo.browser_playable`; the report says so).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from detect_track.errors import ConfigError, InputError, OutputError
from detect_track.io.export import FILE_MODE
from detect_track.io.video import FrameSource
from detect_track.report.overlay_renderer import OverlayRenderer, choose_scale_bar_um

__all__ = ["CODECS", "OverlayRenderer", "OverlayVideo", "available_codecs",
           "choose_scale_bar_um", "write_overlay", "write_overlay_video"]


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


#: Encoders tried in order: ``(encoder, container suffix, MIME type, browser playable)``.
#: H.264 (libx264, else Cisco's libopenh264) in MP4 plays in every current browser (Chrome,
#: Edge, Firefox, Safari); VP9 in WebM (libvpx) in Chrome, Edge, Firefox and Safari 14.1+.
#: OpenCV's ``mp4v`` (MPEG-4 part 2) plays in desktop players but in no browser, MJPG ``.avi``
#: only in desktop players: both are fallbacks for an installation without PyAV's encoders.
CODECS: tuple[tuple[str, str, str, bool], ...] = (
    ("libx264", ".mp4", "video/mp4", True),
    ("libopenh264", ".mp4", "video/mp4", True),
    ("libvpx-vp9", ".webm", "video/webm", True),
    ("mp4v", ".mp4", "video/mp4", False),
    ("MJPG", ".avi", "video/x-msvideo", False),
)
_PYAV_OPTIONS: dict[str, dict[str, str]] = {
    # crf 20: boxes, ids and thin trails stay sharp; faststart: plays before fully loaded
    "libx264": {"crf": "20", "preset": "veryfast"},
    "libopenh264": {"b": "4M"},
    "libvpx-vp9": {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8",
                   "row-mt": "1"},
}


@dataclass(frozen=True)
class OverlayVideo:
    """An overlay video written by :func:`write_overlay_video`.

    Attributes:
        path: The file written.
        codec: The encoder used (``libx264``, ``libopenh264``, ``libvpx-vp9``, ``mp4v`` or
            ``MJPG``).
        mime: Its MIME type, for ``<video><source type=...>``.
        browser_playable: Whether web browsers play it (H.264 / VP9); False for the OpenCV
            fallbacks, which only desktop players (VLC, ...) open.
        frames: Number of frames written.
    """

    path: Path
    codec: str
    mime: str
    browser_playable: bool
    frames: int

    def as_dict(self) -> dict[str, object]:
        """Plain values (for ``summary.json`` or a report context)."""
        return {"file": self.path.name, "codec": self.codec, "mime": self.mime,
                "browser_playable": self.browser_playable, "frames": self.frames}


def available_codecs(candidates: Sequence[str] | None = None) -> list[str]:
    """The encoders of :data:`CODECS` (or of ``candidates``) usable here, in order.

    PyAV encoders (``libx264``, ``libopenh264``, ``libvpx-vp9``) need the ``av`` package
    and an FFmpeg build with that encoder; ``mp4v`` and ``MJPG`` come with OpenCV.
    """
    names = [c[0] for c in CODECS] if candidates is None else list(candidates)
    try:
        import av

        have = set(av.codecs_available)
    except ImportError:  # the OpenCV fallbacks only
        have = set()
    return [n for n in names if n in ("mp4v", "MJPG") or n in have]


class _Writer:
    """Frames to one file: a PyAV encoder or an OpenCV ``VideoWriter``."""

    def __init__(self, path: Path, codec: str, fps: float, size: tuple[int, int]) -> None:
        self.codec = codec
        self._cv: cv2.VideoWriter | None = None
        self._container = None
        if codec in ("mp4v", "MJPG"):
            self._cv = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size,
                                       True)
            if not self._cv.isOpened():
                self._cv.release()
                raise OSError(f"OpenCV cannot open a {codec} writer")
            return
        import av

        # 4:2:0 chroma needs even sides: odd frames get one replicated row / column
        self._pad = (size[1] % 2, size[0] % 2)
        size = (size[0] + self._pad[1], size[1] + self._pad[0])
        fmt = "webm" if path.suffix == ".webm" else "mp4"
        options = {"movflags": "+faststart"} if fmt == "mp4" else {}
        self._container = av.open(str(path), mode="w", format=fmt, options=options)
        try:
            rate = Fraction(fps).limit_denominator(1001)
            stream = self._container.add_stream(codec, rate=rate)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = dict(_PYAV_OPTIONS.get(codec, {}))
            self._stream = stream
        except BaseException:
            self._container.close()
            raise
        self._av = av

    def write(self, bgr: np.ndarray) -> None:
        if self._cv is not None:
            self._cv.write(bgr)
            return
        if any(self._pad):
            bgr = cv2.copyMakeBorder(bgr, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_REPLICATE)
        frame = self._av.VideoFrame.from_ndarray(bgr, format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._cv is not None:
            self._cv.release()
            return
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None

    def abort(self) -> None:
        """Close without flushing (the file is removed by the caller)."""
        if self._cv is not None:
            self._cv.release()
        elif self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - a broken file is deleted anyway
                pass
            self._container = None


def _open_writer(out: Path, fps: float, size: tuple[int, int],
                 codecs: Sequence[str] | None) -> tuple[_Writer, Path, Path, tuple]:
    """Open the first encoder that works on a temporary file next to the output.

    Returns:
        ``(writer, temp_path, final_path, codec_row)``; ``final_path`` takes the suffix of
        the container (``.mp4``, ``.webm``, ``.avi``).

    Raises:
        OutputError: If no encoder can be opened.
    """
    if codecs is None:
        suffix = out.suffix.lower()
        codecs = ["MJPG"] if suffix == ".avi" else [c[0] for c in CODECS]
        if suffix == ".webm":  # asked for WebM: VP9 first
            codecs = ["libvpx-vp9", *[c for c in codecs if c != "libvpx-vp9"]]
    rows = {c[0]: c for c in CODECS}
    tried: list[str] = []
    for name in available_codecs([c for c in codecs if c in rows]):
        row = rows[name]
        target = out.with_suffix(row[1])
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f"{target.stem}.",
                                            suffix=f".tmp{target.suffix}", dir=target.parent)
            os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
        tmp = Path(tmp_name)
        try:
            return _Writer(tmp, name, fps, size), tmp, target, row
        except Exception as exc:  # noqa: BLE001 - try the next encoder
            tried.append(f"{name} ({exc})")
            tmp.unlink(missing_ok=True)
    raise OutputError(f"cannot open a video writer for {out}: tried "
                      + (", ".join(tried) or ", ".join(codecs)))


def write_overlay(source: str | os.PathLike[str], trajectories: pd.DataFrame,
                  tracks: pd.DataFrame, out_path: str | os.PathLike[str], *, fps: float,
                  um_per_px: float, trail_s: float = 1.0,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the overlay video; :func:`write_overlay_video` returning only the path.

    Returns:
        The path written: ``out_path`` with the suffix of the container used (``.mp4``
        normally; ``.webm`` or ``.avi`` when only those encoders are available).
    """
    return write_overlay_video(source, trajectories, tracks, out_path, fps=fps,
                               um_per_px=um_per_px, trail_s=trail_s, progress=progress).path


def write_overlay_video(source: str | os.PathLike[str], trajectories: pd.DataFrame,
                        tracks: pd.DataFrame, out_path: str | os.PathLike[str], *, fps: float,
                        um_per_px: float, trail_s: float = 1.0,
                        progress: Callable[[int, int], None] | None = None,
                        codecs: Sequence[str] | None = None,
                        legend: str = "strip") -> OverlayVideo:
    """Write the source video with tracks, trails, legend, scale bar and time drawn on.

    Per frame: a box (solid; dashed for ``interpolated`` rows) and the track id around every
    cell of ``trajectories`` in that frame, a trail of its last ``trail_s`` seconds fading
    with age, all coloured by the track's motility class (:data:`MOTILITY_COLOURS`;
    tracks without a class are gray); above the frame, a strip with ``t = … s frame …``, a
    legend with the number of cells of each class in the frame and a scale bar of a round
    length (about 15 % of the width).

    Args:
        source: The video (or image folder / TIFF) the results were computed from; read
            with :class:`~detect_track.io.video.FrameSource`. Gray ``(H, W)`` uint8 frames
            are used as is, uint16 ones are scaled by their robust (99.9 %) maximum.
        trajectories: Long table with ``TRAJECTORY_COLUMNS`` (``frame`` 0-based, ``x_px``,
            ``y_px`` box centre and ``w_px``, ``h_px`` box size in pixels). If it holds
            several videos (column ``video``), the rows of ``source`` are used.
        tracks: Per-track table with ``track_id`` and ``motility`` (one of
            ``MOTILITY_CLASSES``, or empty/NaN when unclassified); may be empty.
        out_path: Output file, normally ``.mp4`` (``.webm`` prefers VP9, ``.avi`` writes
            MJPG); the suffix follows the container actually written.
        fps: Frame rate of the output and of the time stamp, frames/s (> 0).
        um_per_px: Micrometres per pixel (> 0), for the scale bar.
        trail_s: Trail length in seconds (0: no trails).
        progress: Called as ``progress(frames_done, n_frames)`` after each frame
            (``n_frames`` is 0 when the source does not know its length).
        codecs: Encoders to try, in order (names of :data:`CODECS`); default all of them.
        legend: ``"strip"`` (above the frame) or ``"inside"`` (panels in the corners).

    Returns:
        What was written: path, encoder, MIME type, whether browsers play it.

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
                               fps=fps, um_per_px=um_per_px, trail_s=trail_s, legend=legend)
    out = Path(out_path)
    if not out.suffix:
        out = out.with_suffix(".mp4")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {out.parent}: {exc.strerror or exc}") from exc
    out_w, out_h = renderer.output_size
    writer, tmp, target, row = _open_writer(out, float(fps), (out_w, out_h), codecs)
    total = len(src)
    try:
        done = 0
        for idx, gray in src:
            writer.write(renderer.render(_to_bgr(gray), idx))
            done += 1
            if progress is not None:
                progress(done, total)
        writer.close()
        if done == 0:
            raise InputError(f"no frame could be read from {source}")
        os.chmod(tmp, FILE_MODE)  # mkstemp made it private; results are shared files
        os.replace(tmp, target)
    except OSError as exc:
        writer.abort()
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        writer.abort()
        tmp.unlink(missing_ok=True)
        raise
    return OverlayVideo(target, row[0], row[2], row[3], done)
