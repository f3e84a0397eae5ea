"""trackpy's linker, the classical reference of particle tracking, as an online tracker.

trackpy links each frame's points to the previous ones within a search range (here the
distance a cell can swim in one frame at ``max_speed_um_s``, never less than
``gate_min_um``), solving conflicts in small subnetworks, and remembers a vanished point
for ``memory`` frames (``max_gap_s`` at the video's fps). When a subnetwork grows too
large, the search range shrinks adaptively for that subnetwork.
"""

from __future__ import annotations

import numpy as np

from detect_track.config import Config, TrackerConfig
from detect_track.tracking.base import register_tracker
from detect_track.types import Detections, VideoMeta


class TrackpyTracker:
    """Online adapter over ``trackpy.linking.Linker``.

    Args:
        cfg: Tracker settings (``max_speed_um_s``, ``gate_min_um``, ``max_gap_s``,
            ``high_confidence``).
        fps: Frames per second of the video.
        um_per_px: Micrometres per pixel of the video.
    """

    name = "trackpy"

    def __init__(self, cfg: TrackerConfig, fps: float, um_per_px: float) -> None:
        if not fps > 0 or not um_per_px > 0:
            raise ValueError("fps and um_per_px must be > 0")
        from trackpy.linking import Linker

        self._linker_cls = Linker
        self.cfg = cfg
        self.search_range_px = max(cfg.gate_min_um, cfg.max_speed_um_s / fps) / um_per_px
        self.memory = int(np.floor(cfg.max_gap_s * fps + 1e-9))
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids restart at 1."""
        self._linker = None
        self._t = 0
        self._map: dict[int, int] = {}
        self._next_id = 1

    def update(self, detections: Detections) -> Detections:
        """Link one frame's confident detections to the previous frames.

        Args:
            detections: This frame's detections (boxes in px); only those with
                ``confidence >= high_confidence`` are linked (trackpy has no second stage).

        Returns:
            The linked detections, in input order, with ``tracker_id`` set.
        """
        dets = detections[detections.confidence >= self.cfg.high_confidence]
        coords = dets.xy[:, ::-1].copy()  # trackpy works in (row, column)
        t, self._t = self._t, self._t + 1
        if self._linker is None:
            if len(dets) == 0:
                dets.tracker_id = np.zeros(0, np.int64)
                return dets
            self._linker = self._linker_cls(
                self.search_range_px, memory=self.memory,
                adaptive_stop=0.2 * self.search_range_px, adaptive_step=0.9)
            self._linker.init_level(coords, t)
        else:
            self._linker.next_level(coords, t)
        raw = list(self._linker.particle_ids)
        ids = np.zeros(len(dets), np.int64)
        for i, pid in enumerate(raw):
            if pid not in self._map:
                self._map[pid] = self._next_id
                self._next_id += 1
            ids[i] = self._map[pid]
        dets.tracker_id = ids
        return dets


@register_tracker("trackpy")
def _make_trackpy(cfg: Config, meta: VideoMeta) -> TrackpyTracker:
    return TrackpyTracker(cfg.tracker, meta.fps, meta.um_per_px)
