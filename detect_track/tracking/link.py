"""Linking detections into tracks from Python: frame by frame (:func:`link_iter`) or a table.

Like trackpy's ``link_iter`` beside ``link``: :func:`link_iter` takes the detections of
one frame at a time (from a generator, a camera, a detector running elsewhere) and yields
each frame's detections with their track ids as soon as the frame is linked; :func:`link`
does the same for a whole table. Both run the configured tracker (``tracker.name``) and
nothing else: the track filters (short, weak and satellite tracks), gap filling and
kinematics are the pipeline's (:func:`detect_track.pipeline.track_detections` for a
table, :func:`detect_track.tracking.trajectories.build_trajectories` for linked rows).

Inputs are in pixels and frames; the tracker's gates are set in µm and seconds, hence
``fps`` and ``um_per_px``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from detect_track.config import Config, load_config
from detect_track.io.detections import normalise_detections
from detect_track.io.meta import check_fps, check_um_per_px
from detect_track.tracking.base import Tracker, create_tracker
from detect_track.types import Detections, VideoMeta

#: Side of the box given to bare centre points, µm (about a sperm head).
POINT_BOX_UM = 5.0


class LinkedFrame(NamedTuple):
    """One frame's linked detections.

    Attributes:
        frame: 0-based frame index (the position of the frame in the input).
        detections: The detections the tracker kept, ``tracker_id`` set (ids start at 1).
    """

    frame: int
    detections: Detections


def _tracker(cfg: Config, fps: float, um_per_px: float, n_frames: int = -1) -> Tracker:
    fps = check_fps(fps, "fps", cfg.video.max_fps)
    um_per_px = check_um_per_px(um_per_px, "um_per_px")
    meta = VideoMeta("link", fps, n_frames, 0, 0, um_per_px, "cli", "cli")
    return create_tracker(cfg.tracker.name, cfg, meta)


def link_iter(frames: Iterable[Detections | np.ndarray], cfg: Config | None = None, *,
              fps: float, um_per_px: float) -> Iterator[LinkedFrame]:
    """Link detections into tracks one frame at a time, lazily.

    Each frame is read from ``frames`` only when the previous one has been yielded, so a
    live source can be linked as it comes; memory holds the tracker's open tracks only.

    Args:
        frames: Per frame, in order and none skipped (an empty frame is an empty
            :class:`~detect_track.types.Detections` or a ``(0, 2)`` array): the frame's
            :class:`~detect_track.types.Detections` (boxes in px), or its centres as an
            ``(N, 2)`` array in px (given a ``POINT_BOX_UM`` box, confidence 1, class 0).
        cfg: Configuration (``tracker`` section; defaults if None).
        fps: Frames per second of the video the detections come from.
        um_per_px: Micrometres per pixel.

    Yields:
        A :class:`LinkedFrame` per input frame: the detections that got a track, with
        ``tracker_id`` set.

    Raises:
        ConfigError: ``fps`` or ``um_per_px`` is out of range, or an unknown tracker.
    """
    cfg = cfg or load_config()
    tracker = _tracker(cfg, fps, um_per_px)
    box_px = POINT_BOX_UM / um_per_px
    for index, dets in enumerate(frames):
        if not isinstance(dets, Detections):
            dets = Detections.from_centroids(np.asarray(dets, np.float64).reshape(-1, 2), box_px)
        yield LinkedFrame(index, tracker.update(dets))


def link(detections: pd.DataFrame, cfg: Config | None = None, *, fps: float,
         um_per_px: float, n_frames: int | None = None) -> pd.DataFrame:
    """Link a table of per-frame detections into tracks (the tracker only, no filters).

    Args:
        detections: Columns ``frame`` (0-based int), ``x_px, y_px`` (centre, px), and
            optionally ``w_px, h_px`` (px; else a ``POINT_BOX_UM`` box), ``confidence``
            (else 1), ``class_name`` (else ``sperm``). Not modified.
        cfg: Configuration (``tracker`` section; defaults if None).
        fps: Frames per second.
        um_per_px: Micrometres per pixel.
        n_frames: Frames in the video (default: last frame + 1).

    Returns:
        One row per linked detection: ``frame, track_id, x_px, y_px, w_px, h_px,
        confidence, class_name``, in frame order (positions as the tracker returns them).

    Raises:
        ConfigError: ``fps`` or ``um_per_px`` is out of range, or an unknown tracker.
        InputError: Missing columns or invalid values.
    """
    table = normalise_detections(detections, box_px=POINT_BOX_UM / um_per_px)
    total = max(int(table["frame"].max()) + 1 if len(table) else 0, int(n_frames or 0))
    names = tuple(dict.fromkeys(["sperm", *table["class_name"].unique()]))
    cls = table["class_name"].map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    starts = np.searchsorted(table["frame"].to_numpy(), np.arange(total + 1))
    xy = table[["x_px", "y_px"]].to_numpy()
    wh = table[["w_px", "h_px"]].to_numpy()
    conf = table["confidence"].to_numpy()

    def per_frame() -> Iterator[Detections]:
        for f in range(total):
            sl = slice(starts[f], starts[f + 1])
            yield Detections(np.hstack([xy[sl] - wh[sl] / 2, xy[sl] + wh[sl] / 2]), conf[sl],
                             cls[sl])

    parts = [linked_rows(out, names)
             for out in link_iter(per_frame(), cfg, fps=fps, um_per_px=um_per_px)]
    if not parts:
        return linked_rows(LinkedFrame(0, Detections.empty()), names)
    return pd.concat(parts, ignore_index=True)


def linked_rows(linked: LinkedFrame, class_names: tuple[str, ...]) -> pd.DataFrame:
    """One linked frame as table rows (see :func:`link`).

    Args:
        linked: What :func:`link_iter` yielded for one frame.
        class_names: Names of the class ids (``class_name`` is ``?`` for unknown ids).

    Returns:
        Columns ``frame, track_id, x_px, y_px, w_px, h_px, confidence, class_name``.
    """
    d = linked.detections
    n = len(d)
    names = np.array([*class_names, "?"], dtype=object)
    cls = d.class_id
    return pd.DataFrame({
        "frame": np.full(n, linked.frame, np.int64),
        "track_id": (d.tracker_id if d.tracker_id is not None
                     else np.zeros(0, np.int64)).astype(np.int64),
        "x_px": d.xy[:, 0], "y_px": d.xy[:, 1], "w_px": d.wh[:, 0], "h_px": d.wh[:, 1],
        "confidence": d.confidence,
        "class_name": names[np.where((cls >= 0) & (cls < len(class_names)), cls, -1)]})
