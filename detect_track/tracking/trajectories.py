"""From tracked detections to the trajectory table: gap filling, satellites, track filters.

The pipeline applies these rules while it runs
(:class:`~detect_track.tracking.store.TrackStore` decides which tracks are kept, as they
end; :func:`fill_gaps` and :func:`trajectory_table` turn their rows into the table).
:func:`build_trajectories` applies them to a whole table at once: the reference the
streaming version is tested against, and a way to rebuild trajectories from tracked rows
of another program.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from detect_track.config import Config
from detect_track.types import TRAJECTORY_COLUMNS, VideoMeta


def empty_trajectories() -> pd.DataFrame:
    """A trajectory table without rows (``TRAJECTORY_COLUMNS``)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TRAJECTORY_COLUMNS})


def fill_gaps(traj: pd.DataFrame) -> pd.DataFrame:
    """Insert linearly interpolated rows where a track skipped frames.

    Args:
        traj: Columns ``frame, track_id`` and any of ``x_px, y_px, w_px, h_px,
            class_name, confidence`` (one row per detection). Not modified.

    Returns:
        The rows plus one per skipped frame of each track: positions, sizes and
        ``confidence`` interpolated linearly between the detections on either side, the
        track's first class, ``interpolated`` True. The confidence of a filled row is
        not a detector's score: it is there so that a track's mean confidence (in a
        spreadsheet, say) weighs a gap like the detections around it instead of
        skipping it or counting it as 0; leave out the rows with ``interpolated`` = 1 for
        the detector's own scores.
    """
    parts = []
    for tid, g in traj.groupby("track_id", sort=True):
        g = g.sort_values("frame")
        frames = g["frame"].to_numpy()
        if frames[-1] - frames[0] + 1 == len(frames):
            parts.append(g)
            continue
        full = np.arange(frames[0], frames[-1] + 1)
        missing = np.setdiff1d(full, frames)
        fill = pd.DataFrame({"frame": missing, "track_id": tid})
        for col in ("x_px", "y_px", "w_px", "h_px"):
            if col in g:
                fill[col] = np.interp(missing, frames, g[col].to_numpy())
        if "class_name" in g:
            fill["class_name"] = g["class_name"].iloc[0]
        if "confidence" in g:
            fill["confidence"] = np.interp(missing, frames,
                                           g["confidence"].to_numpy(np.float64))
        fill["interpolated"] = True
        parts.append(pd.concat([g, fill], ignore_index=True).sort_values("frame"))
    return pd.concat(parts, ignore_index=True) if parts else traj


def first_appearance_ids(first_frames: Mapping[int, int]) -> dict[int, int]:
    """Track ids 1..N in order of first appearance (ties: the old id's order).

    The tracker's ids have gaps once short tracks, chains of weak candidates and
    satellites are filtered out; the published tables number the kept tracks anew.

    Args:
        first_frames: First frame of each kept track, by the tracker's id.

    Returns:
        The new id of each old one.
    """
    order = sorted(first_frames, key=lambda t: (first_frames[t], t))
    return {int(old): new for new, old in enumerate(order, start=1)}


def satellite_tracks(filled: pd.DataFrame, um_per_px: float, radius_um: float,
                     min_fraction: float, confidence_margin: float = 0.05) -> list[int]:
    """Tracks that shadow a stronger track (a midpiece, a tail point, a duplicate).

    A track is a satellite when, in at least ``min_fraction`` of its frames, a track with
    a mean confidence higher by more than ``confidence_margin`` lies within ``radius_um``.
    Two free cells stay that close for nearly all their lives only when stuck together;
    then both are equally sure of themselves and both are kept (so are annotated points).
    Positions are compared in every frame of a track's span, gaps filled by linear
    interpolation: two tracks that take turns on one cell's detections are caught too.

    Args:
        filled: Gap-filled rows (see :func:`drop_satellites`), columns ``frame, track_id,
            x_px, y_px, confidence, interpolated``.
        um_per_px: Micrometres per pixel.
        radius_um: Distance below which two tracks are "together", µm.
        min_fraction: Fraction of a track's frames spent together that makes it a satellite.
        confidence_margin: The stronger track's mean confidence must be higher by more.

    Returns:
        The ids of the satellite tracks.
    """
    if len(filled) == 0 or radius_um <= 0 or min_fraction > 1:
        return []
    from scipy.spatial import cKDTree

    real = filled[~filled["interpolated"].astype(bool)]
    strength = real.groupby("track_id")["confidence"].mean()
    span = filled.groupby("track_id")["frame"].size()
    tid = filled["track_id"].to_numpy()
    xy = filled[["x_px", "y_px"]].to_numpy() * um_per_px
    frame = filled["frame"].to_numpy()
    weaker_near: dict[int, set[int]] = {}
    order = np.argsort(frame, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(frame[order])) + 1):
        if len(idx) < 2:
            continue
        for a, b in cKDTree(xy[idx]).query_pairs(radius_um, output_type="ndarray"):
            ta, tb = int(tid[idx[a]]), int(tid[idx[b]])
            if ta == tb:
                continue
            for weak, strong in ((ta, tb), (tb, ta)):
                if strength[strong] > strength[weak] + confidence_margin:
                    weaker_near.setdefault(weak, set()).add(int(frame[idx[a]]))
    return [t for t, fr in weaker_near.items() if len(fr) >= min_fraction * span[t]]


def drop_satellites(rows: pd.DataFrame, um_per_px: float, radius_um: float,
                    min_fraction: float, confidence_margin: float = 0.05) -> pd.DataFrame:
    """Remove the tracks :func:`satellite_tracks` finds.

    Args:
        rows: Columns ``frame, track_id, x_px, y_px, confidence`` (one row per detection).
        um_per_px: Micrometres per pixel.
        radius_um: Distance below which two tracks are "together", µm.
        min_fraction: Fraction of a track's frames spent together that makes it a satellite.
        confidence_margin: The stronger track's mean confidence must be higher by more.

    Returns:
        ``rows`` without the satellite tracks.
    """
    if len(rows) == 0:
        return rows
    filled = fill_gaps(rows[["frame", "track_id", "x_px", "y_px", "confidence"]]
                        .assign(interpolated=False))
    drop = satellite_tracks(filled, um_per_px, radius_um, min_fraction, confidence_margin)
    return rows[~rows["track_id"].isin(drop)]


def build_trajectories(rows: pd.DataFrame, meta: VideoMeta, cfg: Config,
                       video_name: str) -> pd.DataFrame:
    """Turn raw tracked detections into the trajectory table, the whole video at once.

    The pipeline applies the same rules while it runs
    (:class:`~detect_track.tracking.store.TrackStore`, whose memory does not grow with the
    video); this whole-table version is the reference the tests compare it with.

    Drops tracks shorter than ``tracker.min_track_s`` (or with fewer than 2 detections),
    tracks in which fewer than ``tracker.min_confident_fraction`` of the detections reach
    ``tracker.high_confidence`` (chains of weak candidates), and satellites of stronger
    tracks (see :func:`drop_satellites`); fills bridged gaps with interpolated rows
    (``interpolated = True``); adds time and µm.

    Args:
        rows: Columns ``frame, track_id, x_px, y_px, w_px, h_px, class_name, confidence``.
        meta: Video metadata (fps, µm/px).
        cfg: Configuration.
        video_name: Value of the ``video`` column.

    Returns:
        DataFrame with ``TRAJECTORY_COLUMNS``, sorted by track then frame.
    """
    if len(rows) == 0:
        return empty_trajectories()
    rows = rows.assign(interpolated=False)
    filled = fill_gaps(rows)  # each track on its own: fill once, select tracks after
    drop = satellite_tracks(filled, meta.um_per_px, cfg.tracker.satellite_radius_um,
                            cfg.tracker.satellite_fraction,
                            cfg.tracker.satellite_confidence_margin)
    rows = rows[~rows["track_id"].isin(drop)]
    g = rows.groupby("track_id")["frame"]
    span = g.transform("max") - g.transform("min")
    count = g.transform("size")
    confident = (rows["confidence"] >= cfg.tracker.high_confidence).groupby(rows["track_id"])
    keep = ((span / meta.fps >= cfg.tracker.min_track_s - 1e-9) & (count >= 2)
            & (confident.transform("mean") >= cfg.tracker.min_confident_fraction))
    traj = filled[filled["track_id"].isin(rows.loc[keep, "track_id"].unique())]
    if len(traj) == 0:
        return empty_trajectories()
    return trajectory_table(traj, meta, video_name)


def trajectory_table(traj: pd.DataFrame, meta: VideoMeta, video_name: str) -> pd.DataFrame:
    """Gap-filled rows as the trajectory table: sorted, time and µm added, typed.

    Args:
        traj: Rows of kept tracks after :func:`fill_gaps` (px, frames; ``interpolated``).
        meta: The fps and µm/px.
        video_name: Value of the ``video`` column.

    Returns:
        The table with ``TRAJECTORY_COLUMNS``, sorted by track then frame.
    """
    traj = traj.sort_values(["track_id", "frame"], ignore_index=True)
    traj["video"] = video_name
    traj["time_s"] = traj["frame"] / meta.fps
    traj["x_um"] = traj["x_px"] * meta.um_per_px
    traj["y_um"] = traj["y_px"] * meta.um_per_px
    traj["frame"] = traj["frame"].astype(np.int64)
    traj["track_id"] = traj["track_id"].astype(np.int64)
    traj["interpolated"] = traj["interpolated"].astype(bool)
    return traj[list(TRAJECTORY_COLUMNS)]
