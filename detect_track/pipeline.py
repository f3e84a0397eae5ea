"""The video pipeline: frames -> detections -> tracks -> trajectory table -> kinematics.

:func:`run_video` is a plain loop over the stages and returns pandas DataFrames with
the same columns as the CSV files the command line writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detect_track import __version__
from detect_track.config import Config, check_um_per_px, load_config, to_dict
from detect_track.detectors import create_detector
from detect_track.detectors.familiarity import ConfidenceProfile
from detect_track.errors import ConfigError, InputError, OutputError
from detect_track.io.export import (
    EXPORT_FORMATS,
    FILE_MODE,
    copy_file,
    ensure_output_dir,
    escape_formulas,
    write_csv,
    write_json,
    write_mot,
)
from detect_track.io.video import FrameSource, printable_name, read_ahead
from detect_track.kinematics import kinematics_table
from detect_track.motility import classify_motility, sample_summary
from detect_track.tracking import create_tracker
from detect_track.types import TRACK_COLUMNS, TRAJECTORY_COLUMNS, Detections, VideoMeta

ProgressFn = Callable[[int, int], None]
SINGLE_FRAME = "has a single frame; tracking needs a video (still images: --config sperm-slide)"


class Results:
    """Everything one video produced.

    Args:
        trajectories: The trajectory table, or None when it was streamed to
            ``trajectories_path`` (then read back from there on first access).
        tracks: One row per track (``TRACK_COLUMNS``).
        summary: Counts, percentages, parameters used and their sources, versions.
        meta: The video's metadata as used.
        warnings: Problems the user should know about (also in the summary).
        crops: Aligned head crops per track id, sharpest first (video input with
            morphology on; empty otherwise).
        trajectories_path: The ``trajectories.csv`` the rows were streamed to, if any.
    """

    def __init__(self, trajectories: pd.DataFrame | None, tracks: pd.DataFrame,
                 summary: dict[str, Any], meta: VideoMeta, warnings: list[str] | None = None,
                 crops: dict[int, list[np.ndarray]] | None = None,
                 trajectories_path: Path | None = None) -> None:
        if trajectories is None and trajectories_path is None:
            raise ValueError("Results needs the trajectory table or the file it was written to")
        self._trajectories = trajectories
        self.tracks = tracks
        self.summary = summary
        self.meta = meta
        self.warnings = list(warnings or [])
        self.crops = dict(crops or {})
        self.trajectories_path = trajectories_path

    @property
    def trajectories(self) -> pd.DataFrame:
        """One row per cell per frame (``TRAJECTORY_COLUMNS``), sorted by track then frame.

        A streamed table is read from ``trajectories_path`` on first access (it holds
        every row of the video: on long videos, prefer reading the file in chunks).
        """
        if self._trajectories is None:
            assert self.trajectories_path is not None
            self._trajectories = read_trajectories(self.trajectories_path)
        return self._trajectories

    @property
    def streamed(self) -> bool:
        """True when the trajectory rows were written to ``trajectories_path`` as they came."""
        return self.trajectories_path is not None


def read_trajectories(path: str | os.PathLike[str], columns: Sequence[str] | None = None
                      ) -> pd.DataFrame:
    """Read a ``trajectories.csv`` back with its column types, sorted by track then frame.

    Args:
        path: The file (``TRAJECTORY_COLUMNS``).
        columns: Read only these columns (less memory on long videos); all if None. The
            rows are sorted by ``track_id`` and ``frame`` when both are read.

    Returns:
        The trajectory table.
    """
    wanted = list(columns) if columns is not None else None
    types = {"video": str, "frame": np.int64, "track_id": np.int64, "class_name": str}
    table = pd.read_csv(path, usecols=wanted, keep_default_na=False,
                        dtype={k: v for k, v in types.items() if wanted is None or k in wanted},
                        na_values={"confidence": [""]})
    for col in ("time_s", "x_px", "y_px", "x_um", "y_um", "w_px", "h_px", "confidence"):
        if col in table:
            table[col] = table[col].astype(np.float64)
    if "interpolated" in table:
        table["interpolated"] = table["interpolated"].astype(str).str.lower().eq("true")
    if {"track_id", "frame"} <= set(table.columns):
        table = table.sort_values(["track_id", "frame"], ignore_index=True, kind="stable")
    return table[[c for c in TRAJECTORY_COLUMNS if c in table.columns]]


def _empty_trajectories() -> pd.DataFrame:
    """A trajectory table without rows (``TRAJECTORY_COLUMNS``)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TRAJECTORY_COLUMNS})


def _in_range(value: float, label: str, top: float) -> float:
    """``value`` as a float if it is a finite number in (0, top], else a ConfigError."""
    if not (np.isfinite(value) and 0 < value <= top):
        raise ConfigError(f"{label} must be a number in (0, {top:g}], got {value:g}")
    return float(value)


def resolve_um_per_px(cfg: Config, um_per_px: float | None = None
                      ) -> tuple[float, str, list[str]]:
    """The µm/px to use, where it came from, and a warning when it is only the default.

    Priority: ``um_per_px`` (``cli``) > ``video.um_per_px`` (``config``) >
    ``video.default_um_per_px`` (``default``, warned).

    Raises:
        ConfigError: If ``um_per_px`` is not a plausible scale (``check_um_per_px``).
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

    Raises:
        ConfigError: If a given value is not positive or is absurd.
        InputError: If no frame rate is known (image folder without ``fps``).
    """
    warnings: list[str] = []
    max_fps = cfg.video.max_fps
    if fps is not None:
        fps_used, fps_src = _in_range(fps, "--fps", max_fps), "cli"
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


def track_class_ids(class_names: tuple[str, ...], track_classes: str) -> np.ndarray:
    """Indices of the detector classes that are linked into tracks.

    Args:
        class_names: The detector's class names.
        track_classes: Comma-separated names (``detector.track_classes``). Names the
            detector does not have are ignored; a single-class detector's class is always
            tracked.

    Raises:
        ConfigError: If none of the names is a class of the detector.
    """
    if len(class_names) == 1:
        return np.array([0], np.int64)
    wanted = {n.strip() for n in track_classes.split(",") if n.strip()}
    ids = [i for i, n in enumerate(class_names) if n in wanted]
    if not ids:
        raise ConfigError(f"detector.track_classes '{track_classes}' names none of the "
                          f"detector's classes ({', '.join(class_names)})")
    return np.array(ids, np.int64)


def _fill_gaps(traj: pd.DataFrame) -> pd.DataFrame:
    """Insert linearly interpolated rows where a track skipped frames."""
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
        fill["confidence"] = np.nan
        fill["interpolated"] = True
        parts.append(pd.concat([g, fill], ignore_index=True).sort_values("frame"))
    return pd.concat(parts, ignore_index=True) if parts else traj


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
    filled = _fill_gaps(rows[["frame", "track_id", "x_px", "y_px", "confidence"]]
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
        return _empty_trajectories()
    rows = rows.assign(interpolated=False)
    filled = _fill_gaps(rows)  # each track on its own: fill once, select tracks after
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
        return _empty_trajectories()
    return _with_units(traj, meta, video_name)


def _with_units(traj: pd.DataFrame, meta: VideoMeta, video_name: str) -> pd.DataFrame:
    """Gap-filled rows as the trajectory table: sorted, time and µm added, typed."""
    traj = traj.sort_values(["track_id", "frame"], ignore_index=True)
    traj["video"] = video_name
    traj["time_s"] = traj["frame"] / meta.fps
    traj["x_um"] = traj["x_px"] * meta.um_per_px
    traj["y_um"] = traj["y_px"] * meta.um_per_px
    traj["frame"] = traj["frame"].astype(np.int64)
    traj["track_id"] = traj["track_id"].astype(np.int64)
    traj["interpolated"] = traj["interpolated"].astype(bool)
    return traj[list(TRAJECTORY_COLUMNS)]


def analyse(trajectories: pd.DataFrame, meta: VideoMeta, cfg: Config) -> pd.DataFrame:
    """Kinematics and motility class per track (``TRACK_COLUMNS``)."""
    kin = kinematics_table(trajectories, um_per_px=meta.um_per_px, fps=meta.fps,
                           window_frames=cfg.kinematics.smoothing_window_frames,
                           progression_window_s=cfg.kinematics.progression_window_s)
    tracks = classify_motility(kin, cfg.motility)
    tracks["morphology"] = pd.Series([""] * len(tracks), index=tracks.index, dtype=object)
    tracks["morphology_confidence"] = np.nan
    return tracks[list(TRACK_COLUMNS)].reset_index(drop=True)


def _versions() -> dict[str, str]:
    import sys

    import cv2
    import scipy

    versions = {"detect_track": __version__, "python": platform.python_version(),
                "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
                "opencv": cv2.__version__}
    for name in ("onnxruntime", "openvino", "torch", "ultralytics", "effdet"):  # loaded ones
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def detect_stream(detector: Any, frames: Iterable[tuple[int, np.ndarray]]
                  ) -> Iterator[tuple[int, np.ndarray, Detections]]:
    """``(index, frame, detections)`` for each frame, in order.

    Detectors with a ``detect_stream`` method (the ONNX YOLO) run several frames at once;
    the others one frame at a time (their state may depend on the order).
    """
    stream = getattr(detector, "detect_stream", None)
    if stream is not None:
        yield from stream(frames)
        return
    for index, frame in frames:
        yield index, frame, detector.detect(frame)


class _StageClock:
    """Seconds spent per pipeline stage (``decode`` = waiting for the next frame).

    Stages are exclusive: while a stage runs inside another (the frame reader is pulled
    from inside the detector's stream), the outer one's clock stops, so the stage times
    add up to the time spent.
    """

    def __init__(self) -> None:
        self._totals: dict[str, float] = {}
        self._running: list[list[Any]] = []  # [name, since] of the open stages, innermost last

    def _add(self, name: str, seconds: float) -> None:
        self._totals[name] = self._totals.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name`` (times of one name add up)."""
        now = time.perf_counter()
        if self._running:  # pause the enclosing stage
            outer = self._running[-1]
            self._add(outer[0], now - outer[1])
        self._running.append([name, now])
        try:
            yield
        finally:
            end = time.perf_counter()
            inner = self._running.pop()
            self._add(inner[0], end - inner[1])
            if self._running:
                self._running[-1][1] = end  # resume the enclosing stage

    def iterate(self, name: str, items: Iterable[Any]) -> Iterator[Any]:
        """Yield from ``items``, timing each ``next()`` under ``name``."""
        it = iter(items)
        while True:
            with self.stage(name):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item

    def totals(self) -> dict[str, float]:
        """Seconds per stage, rounded to the millisecond."""
        return {k: round(v, 3) for k, v in self._totals.items()}


class _TrajectorySink:
    """Where settled tracks' trajectory rows go: memory, or a CSV file written as they come.

    Args:
        path: ``trajectories.csv`` to stream to (written under a temporary name in the same
            folder and renamed by :meth:`close`); None keeps the rows in memory.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._parts: list[pd.DataFrame] = []
        self._tmp: Path | None = None
        self._handle: Any = None
        if self.path is not None:
            import tempfile

            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                           dir=self.path.parent)
            except OSError as exc:
                raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            self._tmp = Path(tmp)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="")
            self.write(_empty_trajectories())  # the header

    def write(self, traj: pd.DataFrame) -> None:
        """Add the rows of some settled tracks.

        Raises:
            OutputError: If the file cannot be written (disk full, ...).
        """
        if self._handle is None:
            self._parts.append(traj)
            return
        try:
            escape_formulas(traj).to_csv(self._handle, index=False,
                                         header=self._handle.tell() == 0, float_format="%.6g")
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> pd.DataFrame | None:
        """Finish: the table sorted by track and frame (in memory), or None (file renamed).

        Raises:
            OutputError: If the file cannot be written.
        """
        if self._handle is None:
            if not self._parts:
                return _empty_trajectories()
            return pd.concat(self._parts, ignore_index=True).sort_values(
                ["track_id", "frame"], ignore_index=True)
        assert self.path is not None and self._tmp is not None
        try:
            self._handle.close()
            os.chmod(self._tmp, FILE_MODE)
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._handle = None
        return None

    def discard(self) -> None:
        """Drop what was written (the run failed): no partial file is left behind."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


class _Collector:
    """Feeds each frame's detections to the tracker; measures each track once it is settled.

    Detections of classes that are not tracked (e.g. clusters) are counted, not linked.
    Tracked rows wait in a :class:`~detect_track.tracking.store.TrackStore` until their
    track has ended and passed the filters; then, a batch at a time, they are gap-filled,
    measured (kinematics, motility, morphology) and handed to the sink, so memory follows
    the cells in view rather than the length of the video.
    """

    #: Settled tracks are measured in batches of at least this many (or every
    #: ``FLUSH_FRAMES`` frames), which keeps pandas' per-call cost low.
    FLUSH_TRACKS = 64
    FLUSH_FRAMES = 500

    def __init__(self, tracker: Any, class_names: tuple[str, ...], tracked_ids: np.ndarray,
                 meta: VideoMeta, cfg: Config, name: str, sink: _TrajectorySink,
                 morphology: Any = None, clock: _StageClock | None = None) -> None:
        from detect_track.tracking.store import TrackStore

        self.tracker = tracker
        self.names = class_names
        self.tracked_ids = tracked_ids
        self.meta, self.cfg, self.name = meta, cfg, name
        self.sink = sink
        self.morphology = morphology
        self.clock = clock or _StageClock()
        self.store = TrackStore(cfg.tracker, meta.fps, meta.um_per_px)
        self.n_other = np.zeros(len(class_names), np.int64)
        self.profile = ConfidenceProfile()  # tells footage unlike the detector's training
        self.n_frames = 0
        self.n_detections = 0
        self.n_rows = 0
        self.n_interpolated = 0
        self.crops: dict[int, list[np.ndarray]] = {}
        self._tracks: list[pd.DataFrame] = []
        self._ready: list[tuple[int, np.ndarray]] = []

    def add(self, index: int, dets: Detections) -> Detections:
        """Track one frame (``index`` 0-based, frames in order, none skipped).

        Returns:
            The tracked detections of the frame (``tracker_id`` set).
        """
        linkable = np.isin(dets.class_id, self.tracked_ids)
        if not linkable.all():
            other = dets.class_id[~linkable]
            other = other[(other >= 0) & (other < len(self.names))]
            self.n_other += np.bincount(other, minlength=len(self.names))[:len(self.names)]
            dets = dets[linkable]
        self.profile.update(dets.confidence)
        tracked = self.tracker.update(dets)
        n = len(tracked)
        self.store.add(index, tracked.tracker_id if n else np.zeros(0, np.int64), tracked.xy,
                       tracked.wh, tracked.confidence, tracked.class_id)
        self.n_detections += n
        self.n_frames = index + 1
        self._ready += self.store.pop_kept()
        if len(self._ready) >= self.FLUSH_TRACKS or (
                self._ready and (index + 1) % self.FLUSH_FRAMES == 0):
            self._measure()
        return tracked

    def _measure(self) -> None:
        """Trajectory rows, kinematics, motility and morphology of the settled tracks."""
        ready, self._ready = self._ready, []
        if self.morphology is not None:
            self.morphology.forget(self.store.pop_dropped())
        if not ready:
            return
        with self.clock.stage("kinematics"):
            ids = np.concatenate([np.full(len(r), t, np.int64) for t, r in ready])
            rows = np.concatenate([r for _, r in ready])
            cls = rows[:, 6].astype(np.int64)
            names = np.array([*self.names, "?"], dtype=object)
            table = pd.DataFrame({
                "frame": rows[:, 0].astype(np.int64), "track_id": ids,
                "x_px": rows[:, 1], "y_px": rows[:, 2], "w_px": rows[:, 3], "h_px": rows[:, 4],
                "class_name": names[np.where((cls >= 0) & (cls < len(self.names)), cls, -1)],
                "confidence": rows[:, 5], "interpolated": False})
            traj = _with_units(_fill_gaps(table), self.meta, self.name)
            tracks = analyse(traj, self.meta, self.cfg)
        if self.morphology is not None:
            with self.clock.stage("morphology"):
                tracks, crops = self.morphology.classify(tracks)
                self.morphology.forget([t for t, _ in ready])
            self.crops.update(crops)
        self.n_rows += len(traj)
        self.n_interpolated += int(traj["interpolated"].sum())
        with self.clock.stage("export"):
            self.sink.write(traj)
        self._tracks.append(tracks)

    def finish(self) -> pd.DataFrame:
        """End of the video: settle and measure every remaining track.

        Returns:
            The track table (``TRACK_COLUMNS``), sorted by track id.
        """
        self.store.finish()
        self._ready += self.store.pop_kept()
        self._measure()
        if not self._tracks:
            return analyse(_empty_trajectories(), self.meta, self.cfg)
        tracks = pd.concat(self._tracks, ignore_index=True)
        return tracks.sort_values("track_id", ignore_index=True)

    def untracked_per_frame(self) -> dict[str, float]:
        """Mean detections per frame of each class that was counted, not tracked."""
        n = max(self.n_frames, 1)
        return {self.names[c]: round(float(self.n_other[c]) / n, 3)
                for c in range(len(self.names)) if c not in self.tracked_ids}


def _finish(collector: _Collector, path: Path, warnings: list[str], started: float,
            detector: dict[str, Any]) -> Results:
    """Settle the last tracks, close the trajectory sink and write the summary."""
    from detect_track.morphology.stage import morphology_summary

    meta, cfg, name = collector.meta, collector.cfg, collector.name

    tracks = collector.finish()
    traj = collector.sink.close()
    morphology = collector.morphology
    morph_info = morphology.info() if morphology is not None else {"morphology_model": None}
    if collector.store.n_late_rows:
        warnings = warnings + [f"{collector.store.n_late_rows} detections were linked to "
                               "tracks that had already ended and were left out"]
    warnings = warnings + speed_warnings(tracks, meta)
    summary = {
        "video": name,
        "path": str(path.resolve()),
        "n_frames": meta.n_frames,
        "duration_s": meta.n_frames / meta.fps,
        "width_px": meta.width_px,
        "height_px": meta.height_px,
        "fps": meta.fps,
        "fps_source": meta.fps_source,
        "um_per_px": meta.um_per_px,
        "um_per_px_source": meta.um_per_px_source,
        **detector,
        "tracker": cfg.tracker.name,
        **sample_summary(tracks),
        **morphology_summary(tracks),
        **morph_info,
        **concentration(collector.n_rows, meta, cfg.video.chamber_depth_um),
        "n_detections": collector.n_detections,
        "n_interpolated": collector.n_interpolated,
        "untracked_detections_per_frame": collector.untracked_per_frame(),
        "warnings": warnings,
        "elapsed_s": round(time.perf_counter() - started, 3),
        "timings_s": collector.clock.totals(),
        "config": to_dict(cfg),
        "versions": _versions(),
    }
    return Results(traj, tracks, summary, meta, warnings, collector.crops,
                   trajectories_path=collector.sink.path)


#: Median VCL of motile cells (µm/s) above which the fps or µm/px is probably wrong.
IMPLAUSIBLE_VCL_UM_S = 300.0


def speed_warnings(tracks: pd.DataFrame, meta: VideoMeta) -> list[str]:
    """A warning when motile cells swim implausibly fast (a wrong fps or µm/px).

    Human sperm swim at roughly 20-250 µm/s (VCL); a median far above that usually means
    the container's frame rate or the scale is wrong, and so is every speed.

    Args:
        tracks: Track table with ``vcl_um_s`` and ``motility``.
        meta: The fps and µm/px used, and their sources.

    Returns:
        Zero or one warning.
    """
    if not len(tracks) or "vcl_um_s" not in tracks or "motility" not in tracks:
        return []
    motile = tracks.loc[tracks["motility"] != "immotile", "vcl_um_s"].dropna()
    if len(motile) < 3:
        return []
    median = float(motile.median())
    if median <= IMPLAUSIBLE_VCL_UM_S:
        return []
    return [f"motile cells swim at a median VCL of {median:.0f} µm/s, far above human sperm "
            f"(about 20-250 µm/s): check the frame rate ({meta.fps:g} fps, from "
            f"{meta.fps_source}) and the scale ({meta.um_per_px:g} µm/px, from "
            f"{meta.um_per_px_source})"]


def concentration(trajectories: pd.DataFrame | int, meta: VideoMeta,
                  chamber_depth_um: float | None) -> dict[str, float | None]:
    """Sperm concentration from the cells counted per frame and the imaged volume.

    Concentration = mean tracked cells per frame / (field width x height x chamber
    depth), the field size being ``width_px x height_px x um_per_px**2``. Only cells
    kept as tracks count (short tracks and debris filtered out), including
    interpolated positions across gaps.

    Args:
        trajectories: Trajectory table (one row per cell per frame), or its row count.
        meta: Video size in px (``width_px``, ``height_px``), ``n_frames``, µm/px.
        chamber_depth_um: Depth of the counting chamber in µm; None = not computed.

    Returns:
        ``cells_per_frame``, ``chamber_depth_um`` and ``concentration_million_per_ml``
        (10^6 cells per mL; None without a depth or a frame size).
    """
    n_frames = max(int(meta.n_frames), 1)
    n_rows = trajectories if isinstance(trajectories, int) else len(trajectories)
    per_frame = float(n_rows) / n_frames
    out: dict[str, float | None] = {"cells_per_frame": round(per_frame, 3),
                                    "chamber_depth_um": chamber_depth_um,
                                    "concentration_million_per_ml": None}
    area_um2 = meta.width_px * meta.height_px * meta.um_per_px ** 2
    if chamber_depth_um and area_um2 > 0:
        volume_ml = area_um2 * chamber_depth_um * 1e-12  # 1 mL = 1e12 µm³
        out["concentration_million_per_ml"] = round(per_frame / volume_ml / 1e6, 3)
    return out


def _morphology_stage(cfg: Config, meta: VideoMeta, warnings: list[str]) -> Any:
    """The morphology stage, or None (disabled, or its model unavailable: warned)."""
    if not cfg.morphology.enabled:
        return None
    from detect_track.morphology.stage import MorphologyStage

    try:
        return MorphologyStage(cfg.morphology, meta.um_per_px, cfg.detector.backend)
    except ConfigError as exc:
        if cfg.morphology.weights:  # asked for a model explicitly: that is an error
            raise
        warnings.append(f"morphology skipped: {exc}")
        return None


def run_video(source: str | os.PathLike[str], cfg: Config | None = None, *,
              fps: float | None = None, um_per_px: float | None = None,
              progress: ProgressFn | None = None,
              trajectories_csv: str | os.PathLike[str] | None = None) -> Results:
    """Detect, track and measure every cell in a video.

    Each track is measured as soon as it has ended, and with ``trajectories_csv`` its rows
    go straight to that file, so memory does not grow with the length of the video.

    Args:
        source: Video file (AVI, MP4, ...), folder of frames, or multi-page TIFF.
        cfg: Configuration (defaults if None).
        fps: Frame rate to use instead of the container's (frames per second).
        um_per_px: Micrometres per pixel (else from the config, else the default, flagged).
        progress: Called as ``progress(frames_done, frames_total)`` after each frame
            (``frames_total`` may be -1 when unknown).
        trajectories_csv: Write the trajectory table to this file while the video runs
            (rows grouped by track, tracks in the order they end; renamed into place at
            the end, removed on failure) instead of keeping it in memory.

    Returns:
        Trajectory table, track table (kinematics in µm and s, motility) and summary.

    Raises:
        InputError: Missing, unreadable, empty or one-frame input.
        ConfigError: Invalid settings.
    """
    cfg = cfg or load_config()
    started = time.perf_counter()
    src = FrameSource(source, max_pixels=cfg.video.max_pixels)
    if src.info.n_frames == 1:
        raise InputError(f"{src.path} {SINGLE_FRAME}")
    meta, warnings = resolve_meta(src, cfg, fps, um_per_px)
    detector = create_detector(cfg.detector.name, cfg, meta)
    tracker = create_tracker(cfg.tracker.name, cfg, meta)
    names = tuple(detector.class_names)
    morphology = _morphology_stage(cfg, meta, warnings)
    clock = _StageClock()
    sink = _TrajectorySink(trajectories_csv)
    collector = _Collector(tracker, names, track_class_ids(names, cfg.detector.track_classes),
                           meta, cfg, printable_name(Path(source).name), sink, morphology,
                           clock)
    try:
        frames = clock.iterate("decode", read_ahead(src, depth=cfg.video.read_ahead_frames))
        for index, frame, dets in clock.iterate("detect", detect_stream(detector, frames)):
            with clock.stage("track"):
                tracked = collector.add(index, dets)
            if morphology is not None:
                with clock.stage("morphology"):
                    morphology.update(index, frame, tracked, dets)
            if progress is not None:
                progress(index + 1, len(src) if len(src) else -1)
        n_read = collector.n_frames
        if n_read == 0:
            raise InputError(f"no frame could be decoded from {src.path}")
        if n_read == 1:
            raise InputError(f"{src.path} {SINGLE_FRAME}")
        if src.info.n_frames > 0 and n_read < src.info.n_frames:
            warnings.append(f"the container announced {src.info.n_frames} frames but only "
                            f"{n_read} could be decoded (truncated file?)")
        collector.meta = meta = dataclasses.replace(meta, n_frames=n_read)
        unfamiliar = collector.profile.warning()
        if unfamiliar is not None:
            warnings.append(unfamiliar)
        weights = getattr(detector, "weights", None)
        info = {"detector": cfg.detector.name,
                "detector_weights": Path(str(weights)).name if weights else None,
                "detector_backend": getattr(detector, "backend", None),
                "detector_runtime": getattr(detector, "runtime", None)}
        return _finish(collector, Path(source), warnings, started, info)
    except BaseException:
        sink.discard()
        raise


def track_detections(detections: pd.DataFrame, cfg: Config | None = None, *, fps: float,
                     um_per_px: float, name: str = "detections",
                     path: str | os.PathLike[str] | None = None,
                     n_frames: int | None = None,
                     progress: ProgressFn | None = None,
                     trajectories_csv: str | os.PathLike[str] | None = None) -> Results:
    """Link per-frame detections from any source into tracks and measure them.

    The same tracker, track filters, kinematics and outputs as :func:`run_video`, from a
    table instead of a video (see :func:`detect_track.io.detections.read_detections`).

    Args:
        detections: Columns ``frame`` (0-based int), ``x_px, y_px`` (centre, px), and
            optionally ``w_px, h_px`` (px), ``confidence`` (0..1), ``class_name``.
            Missing optional columns get a 5 µm box, confidence 1 and class ``sperm``.
            Rows whose class is not in ``detector.track_classes`` are counted, not
            linked, when some rows are (else every row is linked).
        cfg: Configuration (defaults if None).
        fps: Frame rate of the video the detections come from (frames per second).
        um_per_px: Micrometres per pixel.
        name: Value of the ``video`` column.
        path: Where the detections came from (recorded in the summary).
        n_frames: Frames in the video (default: last frame + 1).
        progress: Called as ``progress(frames_done, frames_total)``.
        trajectories_csv: Stream the trajectory table to this file (as :func:`run_video`).

    Returns:
        Trajectory table, track table and summary, as :func:`run_video`.

    Raises:
        ConfigError: Invalid settings, fps or µm/px.
        InputError: Missing columns or invalid values.
    """
    from detect_track.io.detections import normalise_detections

    cfg = cfg or load_config()
    started = time.perf_counter()
    _in_range(fps, "--fps", cfg.video.max_fps)
    check_um_per_px(um_per_px, "--um-per-px")
    table = normalise_detections(detections, box_px=5.0 / um_per_px)
    last = int(table["frame"].max()) if len(table) else -1
    total = max(last + 1, int(n_frames or 0))
    if total < 2:
        raise InputError("the detections span fewer than 2 frames; tracking needs a video")
    class_names = tuple(dict.fromkeys(["sperm", *table["class_name"].unique()]))
    wanted = {n.strip() for n in cfg.detector.track_classes.split(",") if n.strip()}
    ids = [i for i, n in enumerate(class_names) if n in wanted and (table["class_name"] == n).any()]
    tracked_ids = np.array(ids or range(len(class_names)), np.int64)
    class_index = {n: i for i, n in enumerate(class_names)}
    meta = VideoMeta(str(path or name), float(fps), total, 0, 0, float(um_per_px), "cli", "cli")
    tracker = create_tracker(cfg.tracker.name, cfg, meta)
    frames = table["frame"].to_numpy()
    starts = np.searchsorted(frames, np.arange(total + 1))
    xy = table[["x_px", "y_px"]].to_numpy()
    wh = table[["w_px", "h_px"]].to_numpy()
    conf = table["confidence"].to_numpy()
    cls = table["class_name"].map(class_index).to_numpy(np.int64)
    sink = _TrajectorySink(trajectories_csv)  # created last: removed by the except below
    collector = _Collector(tracker, class_names, tracked_ids, meta, cfg, name, sink)
    try:
        for index in range(total):
            sl = slice(starts[index], starts[index + 1])
            dets = Detections(np.hstack([xy[sl] - wh[sl] / 2, xy[sl] + wh[sl] / 2]), conf[sl],
                              cls[sl])
            with collector.clock.stage("track"):
                collector.add(index, dets)
            if progress is not None:
                progress(index + 1, total)
        source = Path(path) if path is not None else Path(name)
        return _finish(collector, source, [], started,
                       {"detector": "external", "detector_weights": None})
    except BaseException:
        sink.discard()
        raise


def write_results(results: Results, out_dir: str | os.PathLike[str],
                  exports: Sequence[str] = (), save_crops: bool = False) -> dict[str, Path]:
    """Write ``trajectories.csv``, ``tracks.csv`` and ``summary.json`` atomically.

    Args:
        results: What :func:`run_video` or :func:`track_detections` returned.
        out_dir: Output folder (created if needed).
        exports: Extra formats from :data:`~detect_track.io.export.EXPORT_FORMATS`:
            ``"mot"`` writes ``mot.txt`` (MOTChallenge tracks, 1-based frames).
        save_crops: Also write each track's head crops as ``crops/<video>_track<id>_<k>.png``.

    Returns:
        The paths written, by name.

    Raises:
        ConfigError: On an unknown export format.
    """
    unknown = [e for e in exports if e not in EXPORT_FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format '{unknown[0]}' (available: "
                          f"{', '.join(EXPORT_FORMATS)})")
    out = ensure_output_dir(out_dir)
    target = out / "trajectories.csv"
    streamed = results.trajectories_path
    if streamed is not None and streamed.resolve() == target.resolve():
        traj_path = target  # written while the video ran
    elif streamed is not None:
        traj_path = copy_file(streamed, target)
    else:
        traj_path = write_csv(results.trajectories, target)
    paths = {"trajectories": traj_path, "tracks": write_csv(results.tracks, out / "tracks.csv")}
    if "mot" in exports:
        paths["mot"] = write_mot(results.trajectories, out / "mot.txt")
    if save_crops:
        from detect_track.morphology.stage import write_crops

        paths["crops"] = write_crops(results.crops, out / "crops", results.summary["video"])
    paths["summary"] = write_json(results.summary, out / "summary.json")
    return paths
