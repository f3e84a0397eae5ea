"""SORT tracker for small fast cells: Kalman filter + optimal assignment on distance.

Unlike SORT on IoU, association works on centre positions in µm: a sperm head of 5 µm
swimming at 100 µm/s at 9 fps moves two head lengths per frame, so its boxes never
overlap. Each pair of (track, detection) is allowed only when the detection lies where
the cell could have swum since it was last seen (``max_speed_um_s`` times the elapsed
time: the gate, physical and independent of fps) and, for a track bridging a gap, within
``gate_sigma`` standard deviations of where its Kalman filter predicts it (so a track that
has been lost for a while cannot grab a far-away newcomer just because it could have swum
there; a track seen in the last frame is gated by speed alone, as a cell turning sharply
between two frames at 9 fps lands far from a one-frame prediction). Among
allowed pairs the cost is the distance to the Kalman prediction (``association:
distance``) or its negative log-likelihood under the prediction's covariance
(``association: mahalanobis``), plus ``coast_penalty_um_s`` times the time a track has
been coasting: among equally close candidates the track seen in the last frame wins, but
a coasting track whose prediction sits on a detection is not robbed of it by a passer-by
(a strict matching cascade, fresh tracks first, swapped such pairs on real videos).
Everything that depends on time is configured in seconds and converted with the video's
real fps.

The Kalman filters of all tracks are stepped together (:class:`KalmanBank`); the
per-track filterpy filters of :class:`FilterpyBank` are the reference
(``kalman: filterpy``) and give the same tracks.
"""

from __future__ import annotations

import numpy as np

from detect_track.config import Config, TrackerConfig
from detect_track.errors import ConfigError
from detect_track.tracking.association import (
    INFEASIBLE,
    assign,
    mahalanobis_cost,
    mahalanobis_sq,
    pairwise_distance,
)
from detect_track.tracking.base import register_tracker, with_ids
from detect_track.tracking.kalman import FilterpyBank, KalmanBank, motion_model
from detect_track.types import Detections, VideoMeta

_BANKS = {"numpy": KalmanBank, "filterpy": FilterpyBank}
_COSTS = ("distance", "mahalanobis")


class SortTracker:
    """SORT with speed gating in µm/s, two-stage association and gap bridging in seconds.

    Args:
        cfg: Tracker settings (µm, s).
        fps: Frames per second of the video (float > 0).
        um_per_px: Micrometres per pixel of the video.

    Raises:
        ValueError: If ``fps`` or ``um_per_px`` is not positive.
        ConfigError: If ``cfg.kalman`` or ``cfg.association`` is not a known choice.
    """

    name = "sort"

    def __init__(self, cfg: TrackerConfig, fps: float, um_per_px: float) -> None:
        if not fps > 0 or not um_per_px > 0:
            raise ValueError("fps and um_per_px must be > 0")
        if cfg.kalman not in _BANKS:
            raise ConfigError(f"tracker.kalman must be one of {', '.join(_BANKS)}, "
                              f"got '{cfg.kalman}'")
        if cfg.association not in _COSTS:
            raise ConfigError(f"tracker.association must be one of {', '.join(_COSTS)}, "
                              f"got '{cfg.association}'")
        self.cfg = cfg
        self.fps = float(fps)
        self.um_per_px = float(um_per_px)
        self.dt = 1.0 / self.fps
        self.max_misses = int(np.floor(cfg.max_gap_s * self.fps + 1e-9))
        self.model = motion_model(self.dt, cfg.process_noise_um_s2, cfg.measurement_noise_um,
                                  cfg.initial_speed_um_s)
        self.reset()

    def reset(self) -> None:
        """Drop all tracks; the next new track gets id 1."""
        self._kf = _BANKS[self.cfg.kalman](self.model)
        self._ids = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)
        self._last_um = np.zeros((0, 2))
        self._next_id = 1

    @property
    def n_active(self) -> int:
        """Number of tracks currently alive (seen or bridging a gap)."""
        return len(self._ids)

    def _cost(self, tracks: np.ndarray, z: np.ndarray, pred: np.ndarray,
              S: np.ndarray | None) -> np.ndarray:
        """Gated costs ``(len(tracks), len(z))``.

        ``pred (N, 2)`` and ``S (N, 2, 2)`` are all tracks' predicted positions and
        innovation covariances (``S`` None when neither the gate nor the cost uses it).
        """
        reach = np.maximum(self.cfg.gate_min_um,
                           self.cfg.max_speed_um_s * self.dt * (self._misses[tracks] + 1))
        r, c = np.nonzero(pairwise_distance(self._last_um[tracks], z) <= reach[:, None])
        p, zz, miss = pred[tracks[r]], z[c], self._misses[tracks[r]]
        if S is not None:
            s_rc = S[tracks[r]]
            if self.cfg.gate_sigma > 0:
                # only for tracks bridging a gap: one frame ahead, a sharp turn at low fps
                # leaves the prediction but not the speed gate
                ok = (mahalanobis_sq(p, s_rc, zz) <= self.cfg.gate_sigma**2) | (miss == 0)
                r, c, p, zz, s_rc, miss = r[ok], c[ok], p[ok], zz[ok], s_rc[ok], miss[ok]
        if S is not None and self.cfg.association == "mahalanobis":
            pair_cost = mahalanobis_cost(p, s_rc, zz)
        else:
            pair_cost = np.hypot(zz[:, 0] - p[:, 0], zz[:, 1] - p[:, 1])
        pair_cost = pair_cost + self.cfg.coast_penalty_um_s * self.dt * miss
        cost = np.full((len(tracks), len(z)), INFEASIBLE)
        cost[r, c] = pair_cost
        return cost

    def update(self, detections: Detections) -> Detections:
        """Associate one frame's detections with the tracks in one optimal assignment.

        All tracks (those seen in the previous frame and those bridging a gap, whose cost
        carries the coasting penalty) meet all detections down to ``min_confidence``; a
        weaker detection (score < ``high_confidence``) costs ``weak_penalty_um`` more, so
        it wins only when clearly closer. Like ByteTrack's second stage, a faint or
        defocused head keeps its track alive but cannot start one; unlike a strict
        confident-first stage, two cells crossing, one of them faint, are not swapped
        because the confident detection went to the wrong one first. Unmatched confident
        detections start new tracks, unless they lie within ``new_track_min_distance_um``
        of a detection already linked (a second answer on the same cell); unmatched weak
        ones are dropped; tracks unseen for longer than ``max_gap_s`` end.

        Args:
            detections: This frame's detections (boxes in px).

        Returns:
            The detections that were kept, in input order, with ``tracker_id`` set.
        """
        dets = detections[detections.confidence >= self.cfg.min_confidence]
        n_t = len(self._ids)
        self._kf.predict()
        z = dets.xy * self.um_per_px
        ids = np.zeros(len(dets), np.int64)
        strong = dets.confidence >= self.cfg.high_confidence
        matched = np.zeros(n_t, bool)
        if n_t and len(dets):
            pred = self._kf.position
            S = (self._kf.innovation_cov()
                 if self.cfg.association == "mahalanobis" or self.cfg.gate_sigma > 0 else None)
            tracks = np.arange(n_t)
            cost = self._cost(tracks, z, pred, S)
            weak = ~strong & (cost < INFEASIBLE)
            cost[weak] += self.cfg.weak_penalty_um
            r, c = assign(cost)
            if len(r):
                matched[r] = True
                self._kf.update(r, z[c])
                self._last_um[r] = z[c]
                ids[c] = self._ids[r]
        self._misses = np.where(matched, 0, self._misses + 1)
        alive = self._misses <= self.max_misses
        if not alive.all():
            self._kf.keep(alive)
            self._ids, self._misses = self._ids[alive], self._misses[alive]
            self._last_um = self._last_um[alive]
        new = np.flatnonzero((ids == 0) & strong)
        if len(new) and (ids > 0).any() and self.cfg.new_track_min_distance_um > 0:
            # a second answer on a cell that already has its track starts nothing
            near = pairwise_distance(z[new], z[ids > 0]).min(axis=1)
            new = new[near >= self.cfg.new_track_min_distance_um]
        if len(new):
            new_ids = np.arange(self._next_id, self._next_id + len(new))
            self._next_id += len(new)
            self._kf.add(z[new])
            self._ids = np.concatenate([self._ids, new_ids])
            self._misses = np.concatenate([self._misses, np.zeros(len(new), np.int64)])
            self._last_um = np.concatenate([self._last_um, z[new]])
            ids[new] = new_ids
        return with_ids(dets, ids)


@register_tracker("sort")
def _make_sort(cfg: Config, meta: VideoMeta) -> SortTracker:
    return SortTracker(cfg.tracker, meta.fps, meta.um_per_px)
