"""SORT tracker for small fast cells: Kalman filter + Hungarian assignment on distance.

Unlike SORT on IoU, association uses the centroid distance in µm between each
track's predicted position and each detection (the cost), and only allows pairs
whose displacement from the track's last observed position is one a cell can swim
(``max_speed_um_s`` times the time since it was last seen: the gate). Everything that
depends on time is configured in seconds and converted with the video's real fps.

State per track (filterpy ``KalmanFilter``): ``[x, y, w, h, vx, vy]`` with x, y in µm,
w, h in px (a random walk), vx, vy in µm/s; constant-velocity model.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from detect_track.config import Config, TrackerConfig
from detect_track.tracking.base import register_tracker
from detect_track.types import Detections, VideoMeta

_BIG = 1e9


def _make_filter(z: np.ndarray, dt: float, cfg: TrackerConfig) -> KalmanFilter:
    """Constant-velocity Kalman filter initialised at measurement ``z = [x_um, y_um, w, h]``."""
    kf = KalmanFilter(dim_x=6, dim_z=4)
    kf.F = np.eye(6)
    kf.F[0, 4] = kf.F[1, 5] = dt
    kf.H = np.zeros((4, 6))
    kf.H[0, 0] = kf.H[1, 1] = kf.H[2, 2] = kf.H[3, 3] = 1.0
    r = cfg.measurement_noise_um**2
    kf.R = np.diag([r, r, 1.0, 1.0])
    q = cfg.process_noise_um_s2**2
    qa = np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]]) * q
    kf.Q = np.zeros((6, 6))
    for pos, vel in ((0, 4), (1, 5)):
        kf.Q[np.ix_([pos, vel], [pos, vel])] = qa
    kf.Q[2, 2] = kf.Q[3, 3] = 0.25
    kf.P = np.diag([r, r, 4.0, 4.0, (cfg.max_speed_um_s / 2) ** 2, (cfg.max_speed_um_s / 2) ** 2])
    kf.x = np.array([z[0], z[1], z[2], z[3], 0.0, 0.0]).reshape(6, 1)
    return kf


class _Track:
    __slots__ = ("kf", "track_id", "misses", "last_xy")

    def __init__(self, kf: KalmanFilter, track_id: int, xy_um: np.ndarray) -> None:
        self.kf = kf
        self.track_id = track_id
        self.misses = 0
        self.last_xy = xy_um


class SortTracker:
    """SORT with centroid-distance gating in µm and gap bridging in seconds.

    Args:
        cfg: Tracker settings (µm, s).
        fps: Frames per second of the video (float > 0).
        um_per_px: Micrometres per pixel of the video.
    """

    name = "sort"

    def __init__(self, cfg: TrackerConfig, fps: float, um_per_px: float) -> None:
        if not fps > 0 or not um_per_px > 0:
            raise ValueError("fps and um_per_px must be > 0")
        self.cfg = cfg
        self.fps = float(fps)
        self.um_per_px = float(um_per_px)
        self.dt = 1.0 / self.fps
        self.max_misses = int(np.floor(cfg.max_gap_s * self.fps + 1e-9))
        self.reset()

    def reset(self) -> None:
        """Drop all tracks; the next new track gets id 1."""
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def n_active(self) -> int:
        """Number of tracks currently alive (seen or bridging a gap)."""
        return len(self._tracks)

    def _gate_um(self, misses: np.ndarray) -> np.ndarray:
        return np.maximum(self.cfg.gate_min_um, self.cfg.max_speed_um_s * self.dt * (misses + 1))

    def _associate(self, track_idx: np.ndarray, z: np.ndarray, det_idx: np.ndarray
                   ) -> list[tuple[int, int]]:
        """Hungarian assignment of tracks to detections; returns gated (track, det) pairs."""
        if len(track_idx) == 0 or len(det_idx) == 0:
            return []
        tracks = [self._tracks[i] for i in track_idx]
        pred = np.array([t.kf.x[:2, 0] for t in tracks])
        last = np.array([t.last_xy for t in tracks])
        misses = np.array([t.misses for t in tracks])
        zd = z[det_idx, :2]
        dist = np.linalg.norm(pred[:, None, :] - zd[None, :, :], axis=2)
        jump = np.linalg.norm(last[:, None, :] - zd[None, :, :], axis=2)
        cost = np.where(jump <= self._gate_um(misses)[:, None], dist, _BIG)
        rows, cols = linear_sum_assignment(cost)
        return [(int(track_idx[r]), int(det_idx[c]))
                for r, c in zip(rows, cols, strict=True) if cost[r, c] < _BIG]

    def update(self, detections: Detections) -> Detections:
        """Associate one frame's detections with the tracks, in two stages.

        Stage 1 matches confident detections (score >= ``high_confidence``) to all tracks;
        stage 2 matches weaker ones (>= ``min_confidence``) to the tracks still unmatched
        (ByteTrack's idea: a faint or defocused head keeps its track alive, but cannot start
        one). Unmatched confident detections start new tracks; unmatched weak ones are dropped.

        Args:
            detections: This frame's detections (boxes in px).

        Returns:
            The detections that were kept, in input order, with ``tracker_id`` set.
        """
        dets = detections[detections.confidence >= self.cfg.min_confidence]
        for t in self._tracks:
            t.kf.predict()
        n_d = len(dets)
        z = np.hstack([dets.xy * self.um_per_px, dets.wh]) if n_d else np.zeros((0, 4))
        ids = np.zeros(n_d, dtype=np.int64)
        strong = dets.confidence >= self.cfg.high_confidence
        all_tracks = np.arange(len(self._tracks))
        pairs = self._associate(all_tracks, z, np.nonzero(strong)[0])
        used = {r for r, _ in pairs}
        free_tracks = np.array([i for i in all_tracks if i not in used], dtype=np.int64)
        pairs += self._associate(free_tracks, z, np.nonzero(~strong)[0])
        matched_t = np.zeros(len(self._tracks), dtype=bool)
        for r, c in pairs:
            t = self._tracks[r]
            t.kf.update(z[c].reshape(4, 1))
            t.last_xy = z[c, :2].copy()
            t.misses = 0
            ids[c] = t.track_id
            matched_t[r] = True
        for r in np.nonzero(~matched_t)[0]:
            self._tracks[r].misses += 1
        self._tracks = [t for t in self._tracks if t.misses <= self.max_misses]
        for c in np.nonzero((ids == 0) & strong)[0]:
            t = _Track(_make_filter(z[c], self.dt, self.cfg), self._next_id, z[c, :2].copy())
            self._next_id += 1
            self._tracks.append(t)
            ids[c] = t.track_id
        keep = ids > 0
        out = dets[keep]
        out.tracker_id = ids[keep]
        return out


@register_tracker("sort")
def _make_sort(cfg: Config, meta: VideoMeta) -> SortTracker:
    return SortTracker(cfg.tracker, meta.fps, meta.um_per_px)
