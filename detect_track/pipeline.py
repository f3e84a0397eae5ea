"""The video pipeline: frames -> detections -> tracks -> trajectory table -> kinematics.

:func:`run_video` is a plain loop over the stages and returns pandas DataFrames with
the same columns as the CSV files the command line writes; :func:`track_detections`
enters at the tracker with detections from elsewhere. The stages live in their own
modules: fps and scale in :mod:`detect_track.io.meta`, detectors in
:mod:`detect_track.detectors`, linking and track filters in :mod:`detect_track.tracking`
(gap filling in :mod:`~detect_track.tracking.trajectories`), measuring in
:mod:`detect_track.measure`; what a run returns and writes in :mod:`detect_track.results`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from detect_track.config import Config, load_config, to_dict
from detect_track.detectors import Detector, create_detector
from detect_track.detectors.familiarity import ConfidenceProfile
from detect_track.errors import ConfigError, InputError
from detect_track.io.meta import check_fps, check_um_per_px, resolve_meta
from detect_track.io.video import FrameSource, printable_name, read_ahead
from detect_track.measure.motility import analyse
from detect_track.measure.sample import concentration, sample_summary, speed_warnings
from detect_track.results import (
    EXTERNAL_DETECTOR,
    Results,
    Summary,
    TrajectorySink,
    library_versions,
    with_clinical,
)
from detect_track.tracking import Tracker, create_tracker
from detect_track.tracking.store import TrackRows, TrackStore
from detect_track.tracking.trajectories import (
    empty_trajectories,
    fill_gaps,
    first_appearance_ids,
    trajectory_table,
)
from detect_track.types import Detections, VideoMeta

if TYPE_CHECKING:  # loaded only when morphology is on
    from detect_track.morphology.stage import MorphologyStage

ProgressFn = Callable[[int, int], None]
SINGLE_FRAME = "has a single frame; tracking needs a video (still images: --config sperm-slide)"


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

    def __init__(self, tracker: Tracker, class_names: tuple[str, ...], tracked_ids: np.ndarray,
                 meta: VideoMeta, cfg: Config, name: str, sink: TrajectorySink,
                 morphology: MorphologyStage | None = None, clock: _StageClock | None = None
                 ) -> None:
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
        self.first_frames: dict[int, int] = {}  # of the kept tracks, by the tracker's id
        self._tracks: list[pd.DataFrame] = []
        self._ready: list[TrackRows] = []

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
        self.first_frames.update((int(r.track_id), int(r.frame.min())) for r in ready)
        with self.clock.stage("kinematics"):
            cls = np.concatenate([r.class_id for r in ready])
            names = np.array([*self.names, "?"], dtype=object)
            table = pd.DataFrame({
                "frame": np.concatenate([r.frame for r in ready]),
                "track_id": np.concatenate([np.full(len(r), r.track_id, np.int64)
                                            for r in ready]),
                "x_px": np.concatenate([r.x_px for r in ready]),
                "y_px": np.concatenate([r.y_px for r in ready]),
                "w_px": np.concatenate([r.w_px for r in ready]),
                "h_px": np.concatenate([r.h_px for r in ready]),
                "class_name": names[np.where((cls >= 0) & (cls < len(self.names)), cls, -1)],
                "confidence": np.concatenate([r.confidence for r in ready]),
                "interpolated": False})
            traj = trajectory_table(fill_gaps(table), self.meta, self.name)
            tracks = analyse(traj, self.meta, self.cfg)
        if self.morphology is not None:
            with self.clock.stage("morphology"):
                tracks, crops = self.morphology.classify(tracks)
                self.morphology.forget([r.track_id for r in ready])
            self.crops.update(crops)
        self.n_rows += len(traj)
        self.n_interpolated += int(traj["interpolated"].sum())
        with self.clock.stage("export"):
            self.sink.write(traj)
        self._tracks.append(tracks)

    def finish(self) -> tuple[pd.DataFrame, dict[int, int]]:
        """End of the video: settle and measure every remaining track.

        Returns:
            The track table (``TRACK_COLUMNS``) with the tracks numbered 1..N in order of
            first appearance, sorted by that id; and the new id of each tracker id (the
            trajectory rows and crops are renumbered with it).
        """
        self.store.finish()
        self._ready += self.store.pop_kept()
        self._measure()
        if not self._tracks:
            return analyse(empty_trajectories(), self.meta, self.cfg), {}
        id_map = first_appearance_ids(self.first_frames)
        tracks = pd.concat(self._tracks, ignore_index=True)
        tracks["track_id"] = tracks["track_id"].map(id_map).astype(np.int64)
        self.crops = {id_map[t]: c for t, c in self.crops.items() if t in id_map}
        return tracks.sort_values("track_id", ignore_index=True), id_map

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

    tracks, id_map = collector.finish()
    traj = collector.sink.close(id_map)
    morphology = collector.morphology
    morph_info = (morphology.info() if morphology is not None else
                  {"morphology_model": None, "morphology_screening": False})
    if morphology is not None and not morphology.resolved and len(tracks):
        warnings = warnings + [morphology.unresolved_warning(len(tracks))]
    if collector.store.n_late_rows:
        warnings = warnings + [f"{collector.store.n_late_rows} detections were linked to "
                               "tracks that had already ended and were left out"]
    warnings = warnings + speed_warnings(tracks, meta)
    summary = Summary.from_dict({
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
        "versions": library_versions(),
    })
    summary = with_clinical(summary, tracks)
    return Results(traj, tracks, summary, meta, warnings, collector.crops,
                   trajectories_path=collector.sink.path)


def _morphology_stage(cfg: Config, meta: VideoMeta, warnings: list[str]
                      ) -> MorphologyStage | None:
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
    detector: Detector = create_detector(cfg.detector.name, cfg, meta)
    tracker: Tracker = create_tracker(cfg.tracker.name, cfg, meta)
    names = tuple(detector.class_names)
    morphology = _morphology_stage(cfg, meta, warnings)
    clock = _StageClock()
    sink = TrajectorySink(trajectories_csv)
    collector = _Collector(tracker, names, track_class_ids(names, cfg.detector.track_classes),
                           meta, cfg, printable_name(Path(source).name), sink, morphology,
                           clock)
    try:
        frames = clock.iterate("decode", read_ahead(src, depth=cfg.video.read_ahead_frames))
        for index, frame, dets in clock.iterate("detect", detector.detect_stream(frames)):
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
        weights = detector.weights
        info = {"detector": cfg.detector.name,
                "detector_weights": Path(str(weights)).name if weights else None,
                "detector_backend": detector.backend, "detector_runtime": detector.runtime}
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
    check_fps(fps, "--fps", cfg.video.max_fps)
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
    tracker: Tracker = create_tracker(cfg.tracker.name, cfg, meta)
    frames = table["frame"].to_numpy()
    starts = np.searchsorted(frames, np.arange(total + 1))
    xy = table[["x_px", "y_px"]].to_numpy()
    wh = table[["w_px", "h_px"]].to_numpy()
    conf = table["confidence"].to_numpy()
    cls = table["class_name"].map(class_index).to_numpy(np.int64)
    sink = TrajectorySink(trajectories_csv)  # created last: removed by the except below
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
                       {"detector": EXTERNAL_DETECTOR, "detector_weights": None})
    except BaseException:
        sink.discard()
        raise
