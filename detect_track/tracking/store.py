"""Tracked rows held only until each track's fate is known (streaming track filters).

The tracker hands over one frame of tracked detections at a time. :class:`TrackStore`
keeps the rows of the tracks that may still grow, and releases a track as soon as

1. it has ended: unseen for longer than the tracker can bridge (``max_gap_s``), and
2. whether it is a *satellite* (see below) is settled, and
3. it passes the track filters (``min_track_s``, at least 2 detections,
   ``min_confident_fraction`` of its detections at ``high_confidence`` or more).

Kept tracks come back from :meth:`TrackStore.pop_kept`; the others are forgotten. Memory
therefore follows the number of cells in view, not the length of the video.

A satellite is a track that, in at least ``satellite_fraction`` of its frames, lies
within ``satellite_radius_um`` of a *stronger* track (a mean confidence higher by more
than ``satellite_confidence_margin``): a midpiece, a tail point, a duplicate, or one of two
tracks taking turns on one cell's detections. Two tracks equally sure of themselves (the
points of an annotation, two heads stuck side by side) give no evidence that one of them
is not a cell: both are kept. Positions inside bridged gaps are filled by
linear interpolation before they are compared, as in the trajectory table. "Together"
frames are found online: each frame's positions (and the filled positions of a gap that
closes) are compared with the positions already known for the same frame, kept for the
last ``max_gap_s`` of frames. A track whose together-frames cannot reach the fraction even
if every partner were stronger is settled as soon as it ends; otherwise it waits until its
partners have ended and their strength is final.

:func:`detect_track.tracking.trajectories.build_trajectories` applies the same rules to a
whole table at once; tests check that both give the same tracks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from detect_track.config import TrackerConfig

_FLUSH_ROWS = 4096  # rows buffered frame by frame before they are sorted into tracks


@dataclass(frozen=True)
class TrackRows:
    """The rows of one kept track: one per detection, in frame order (equal-length arrays).

    Attributes:
        track_id: The tracker's id of the track.
        frame: 0-based frame index ``(n,)`` int64.
        x_px: Box centre x ``(n,)``, px.
        y_px: Box centre y ``(n,)``, px.
        w_px: Box width ``(n,)``, px.
        h_px: Box height ``(n,)``, px.
        confidence: Detector score ``(n,)``.
        class_id: Detector class index ``(n,)`` int64.
    """

    track_id: int
    frame: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    w_px: np.ndarray
    h_px: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray

    @classmethod
    def from_block(cls, track_id: int, block: np.ndarray) -> TrackRows:
        """From the store's ``(n, 7)`` float block (frame, x, y, w, h, confidence, class)."""
        return cls(int(track_id), block[:, 0].astype(np.int64), block[:, 1], block[:, 2],
                   block[:, 3], block[:, 4], block[:, 5], block[:, 6].astype(np.int64))

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class _Ended:
    """An ended track waiting for its verdict."""

    first: int
    last: int
    n: int
    n_confident: int


class TrackStore:
    """Per-track rows and the streaming track filters of one video.

    The statistics of the tracks that may still grow live in arrays (one slot per track,
    slots reused), and each frame's rows are appended as one block and sorted into
    per-track chunks every few thousand rows: no Python loop over cells per frame.

    Args:
        cfg: Tracker settings (``max_gap_s``, ``min_track_s``, ``high_confidence``,
            ``min_confident_fraction``, ``satellite_radius_um``, ``satellite_fraction``).
        fps: Frames per second of the video.
        um_per_px: Micrometres per pixel.
    """

    def __init__(self, cfg: TrackerConfig, fps: float, um_per_px: float) -> None:
        self.cfg = cfg
        self.fps = float(fps)
        # a tracker bridges at most floor(max_gap_s * fps) missing frames (every tracker
        # here derives its memory that way); one frame more and a track cannot come back
        self.bridge_frames = int(math.floor(cfg.max_gap_s * self.fps + 1e-9))
        self.radius_px = cfg.satellite_radius_um / float(um_per_px)
        self.check_satellites = self.radius_px > 0 and cfg.satellite_fraction <= 1
        self.reset()

    def reset(self) -> None:
        """Forget everything (new video)."""
        self._slot: dict[int, int] = {}  # alive track id -> slot in the arrays below
        self._grow(0, 64)
        self._buffer: list[np.ndarray] = []  # (N, 8) per frame: track id + TrackRows columns
        self._buffered = 0
        self._chunks: dict[int, list[np.ndarray]] = {}  # track id -> (k, 7) row blocks
        self._ended: dict[int, _Ended] = {}  # ended, fate not settled yet
        self._strength: dict[int, tuple[float, int, int]] = {}  # final, of every ended track
        self._near: dict[int, dict[int, set[int]]] = {}  # track -> partner -> frames
        self._recent: dict[int, tuple[list[int], list[np.ndarray]]] = {}  # frame -> ids, xy
        self._kept: list[TrackRows] = []
        self._dropped: list[int] = []
        self._closed: set[int] = set()
        self.n_late_rows = 0  # rows of a track that had already been settled (not expected)
        self.n_satellites = 0
        self.n_dropped = 0

    def _grow(self, old: int, new: int) -> None:
        """Make room for ``new`` alive tracks (slot arrays copied, free slots added)."""
        def grown(a: np.ndarray | None, fill: float, dtype: Any, shape: tuple[int, ...] = ()
                  ) -> np.ndarray:
            out = np.full((new, *shape), fill, dtype)
            if a is not None:
                out[:old] = a[:old]
            return out

        keep = old > 0
        self._ids = grown(self._ids if keep else None, -1, np.int64)
        self._first = grown(self._first if keep else None, 0, np.int64)
        self._last = grown(self._last if keep else None, 0, np.int64)
        self._n = grown(self._n if keep else None, 0, np.int64)
        self._n_conf = grown(self._n_conf if keep else None, 0, np.int64)
        self._conf = grown(self._conf if keep else None, 0.0, np.float64)
        self._last_xy = grown(self._last_xy if keep else None, 0.0, np.float64, (2,))
        self._free: list[int] = (self._free if keep else []) + list(range(new - 1, old - 1, -1))

    def _open(self, tid: int, frame: int) -> int:
        if not self._free:
            self._grow(len(self._ids), 2 * len(self._ids))
        slot = self._free.pop()
        self._slot[tid] = slot
        self._ids[slot] = tid
        self._first[slot] = self._last[slot] = frame
        self._n[slot] = self._n_conf[slot] = 0
        self._conf[slot] = 0.0
        return slot

    # -- adding -----------------------------------------------------------------------------
    def add(self, frame: int, track_id: np.ndarray, xy: np.ndarray, wh: np.ndarray,
            confidence: np.ndarray, class_id: np.ndarray) -> None:
        """Add one frame's tracked detections (frames in increasing order, ids unique).

        Args:
            frame: 0-based frame index.
            track_id: Track id per detection ``(N,)``.
            xy: Centres ``(N, 2)``, px.
            wh: Box sizes ``(N, 2)``, px.
            confidence: Scores ``(N,)``.
            class_id: Class index per detection ``(N,)``.
        """
        ids = np.asarray(track_id, np.int64).reshape(-1)
        if len(ids):
            slot_of = self._slot
            slots = np.fromiter((slot_of.get(t, -1) for t in ids.tolist()), np.int64, len(ids))
            if (slots < 0).any():
                late = np.array([s < 0 and t in self._closed
                                 for s, t in zip(slots.tolist(), ids.tolist(), strict=True)], bool)
                if late.any():
                    self.n_late_rows += int(late.sum())
                    keep = ~late
                    ids, slots, xy, wh = ids[keep], slots[keep], xy[keep], wh[keep]
                    confidence, class_id = confidence[keep], class_id[keep]
                for i in np.flatnonzero(slots < 0).tolist():
                    slots[i] = self._open(int(ids[i]), frame)
        if len(ids):
            xy = np.asarray(xy, np.float64).reshape(-1, 2)
            conf = np.asarray(confidence, np.float64).reshape(-1)
            if self.check_satellites:
                self._compare(frame, ids, slots, xy)
            self._last[slots] = frame
            self._last_xy[slots] = xy
            self._n[slots] += 1
            self._conf[slots] += conf
            self._n_conf[slots] += conf >= self.cfg.high_confidence
            self._buffer.append(np.column_stack([
                ids.astype(np.float64), np.full(len(ids), frame, np.float64), xy,
                np.asarray(wh, np.float64).reshape(-1, 2), conf,
                np.asarray(class_id, np.float64).reshape(-1)]))
            self._buffered += len(ids)
            if self._buffered >= _FLUSH_ROWS:
                self._flush()
        for old in [f for f in self._recent if f < frame - self.bridge_frames]:
            del self._recent[old]
        ended = np.flatnonzero((self._ids >= 0) & (self._last < frame - self.bridge_frames))
        if len(ended):
            for slot in ended.tolist():
                self._end(slot)
            self._settle()

    def _flush(self) -> None:
        """Sort the buffered rows into per-track chunks (frame order kept)."""
        if not self._buffer:
            return
        rows = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        ids = rows[:, 0].astype(np.int64)
        cuts = np.flatnonzero(np.diff(ids)) + 1
        for tid, part in zip(ids[np.r_[0, cuts]].tolist(), np.split(rows[:, 1:], cuts),
                             strict=True):
            self._chunks.setdefault(tid, []).append(part)

    def _end(self, slot: int) -> None:
        tid = int(self._ids[slot])
        n = int(self._n[slot])
        self._ended[tid] = _Ended(int(self._first[slot]), int(self._last[slot]), n,
                                  int(self._n_conf[slot]))
        self._strength[tid] = (float(self._conf[slot]) / max(n, 1), n, -tid)
        self._ids[slot] = -1
        del self._slot[tid]
        self._free.append(slot)

    def _compare(self, frame: int, ids: np.ndarray, slots: np.ndarray, xy: np.ndarray
                 ) -> None:
        """Record which tracks are within the satellite radius, frame by frame."""
        new: dict[int, tuple[list[int], list[np.ndarray]]] = {frame: (ids.tolist(), [xy])}
        oldest = frame - self.bridge_frames
        last = self._last[slots]
        for i in np.flatnonzero(last < frame - 1).tolist():  # gaps that close: fill them
            tid, p, seen = int(ids[i]), xy[i], int(last[i])
            gap = np.arange(max(seen + 1, oldest), frame)
            if not len(gap):
                continue
            t = ((gap - seen) / (frame - seen))[:, None]
            filled = self._last_xy[slots[i]][None, :] * (1 - t) + p[None, :] * t
            for f, q in zip(gap.tolist(), filled, strict=True):
                entry = new.setdefault(f, ([], []))
                entry[0].append(tid)
                entry[1].append(q[None, :])
        r2 = self.radius_px ** 2
        for f, (new_ids, parts) in new.items():
            pts = np.concatenate(parts)
            nid = np.asarray(new_ids, np.int64)
            old_ids, old_parts = self._recent.get(f, ([], []))
            if old_ids:
                d2 = cdist(pts, np.concatenate(old_parts), "sqeuclidean")
                for a, b in zip(*np.nonzero(d2 <= r2), strict=True):
                    self._together(int(nid[a]), int(old_ids[b]), f)
            if len(nid) > 1:
                pairs = cKDTree(pts).query_pairs(self.radius_px, output_type="ndarray")
                for a, b in pairs.tolist():
                    self._together(int(nid[a]), int(nid[b]), f)
            known = self._recent.setdefault(f, ([], []))
            known[0].extend(new_ids)
            known[1].append(pts)

    def _together(self, a: int, b: int, frame: int) -> None:
        if a == b:
            return
        self._near.setdefault(a, {}).setdefault(b, set()).add(frame)
        self._near.setdefault(b, {}).setdefault(a, set()).add(frame)

    # -- settling ---------------------------------------------------------------------------
    def _satellite(self, tid: int, tr: _Ended) -> bool | None:
        """True / False when settled, None while a partner that matters is alive."""
        near = self._near.get(tid)
        if not self.check_satellites or not near:
            return False
        need = self.cfg.satellite_fraction * (tr.last - tr.first + 1)
        if len(set().union(*near.values())) < need:
            return False
        mine = self._strength[tid][0] + self.cfg.satellite_confidence_margin
        stronger: set[int] = set()
        open_: set[int] = set()
        for p, frames in near.items():
            s = self._strength.get(p)
            if s is None:
                open_ |= frames
            elif s[0] > mine:
                stronger |= frames
        if len(stronger) >= need:
            return True
        if len(stronger | open_) < need:
            return False
        return None

    def _passes(self, tr: _Ended) -> bool:
        c = self.cfg
        return ((tr.last - tr.first) / self.fps >= c.min_track_s - 1e-9 and tr.n >= 2
                and tr.n_confident / tr.n >= c.min_confident_fraction)

    def _settle(self) -> None:
        verdicts = {tid: v for tid, tr in self._ended.items()
                    if (v := self._satellite(tid, tr)) is not None}
        if not verdicts:
            return
        self._flush()  # every row of the settled tracks into their chunks
        for tid, satellite in verdicts.items():
            tr = self._ended.pop(tid)
            chunks = self._chunks.pop(tid, [])
            self._closed.add(tid)
            self._near.pop(tid, None)  # partners keep their own record of the frames shared
            if satellite:
                self.n_satellites += 1
                self._dropped.append(tid)
            elif self._passes(tr):
                self._kept.append(TrackRows.from_block(tid, np.concatenate(chunks)))
            else:
                self.n_dropped += 1
                self._dropped.append(tid)

    def finish(self) -> None:
        """The video has ended: end and settle every track."""
        for slot in np.flatnonzero(self._ids >= 0).tolist():
            self._end(slot)
        self._settle()
        self._recent.clear()

    @property
    def remembered_frames(self) -> int:
        """How many recent frames the store keeps for bridging (bounded by the bridge gap)."""
        return len(self._recent)

    def pop_kept(self) -> list[TrackRows]:
        """Tracks settled and kept since the last call, each with its rows in frame order."""
        out, self._kept = self._kept, []
        return out

    def pop_dropped(self) -> list[int]:
        """Ids of the tracks settled and dropped (satellites, filtered) since the last call."""
        out, self._dropped = self._dropped, []
        return out

    @property
    def n_open(self) -> int:
        """Tracks still held (alive, or ended and waiting for a verdict)."""
        return len(self._slot) + len(self._ended)
