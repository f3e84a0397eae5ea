"""ByteTrack and BoT-SORT from ultralytics, behind detect-track's tracker protocol.

Both associate by box IoU (fused with the detection score), as published; they are here
as references for the centre-distance SORT tracker, which suits small fast cells better.
BoT-SORT runs without camera-motion compensation and without re-identification (a
microscope stage does not pan, and sperm heads look alike). ``max_gap_s`` is converted
to frames with the video's real fps (ultralytics' own scaling assumes 30 fps).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from detect_track.config import Config, TrackerConfig
from detect_track.ml import prepare_ultralytics, require
from detect_track.tracking.base import register_tracker, with_ids
from detect_track.types import Detections, VideoMeta


class _Boxes:
    """The slice of ultralytics' ``Boxes`` interface its trackers read (numpy-backed)."""

    def __init__(self, xywh: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xywh, self.conf, self.cls = xywh, conf, cls

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> _Boxes:
        return _Boxes(self.xywh[index], self.conf[index], self.cls[index])


class UltralyticsTracker:
    """Adapter running ultralytics' ``BYTETracker`` or ``BOTSORT`` on :class:`Detections`.

    Args:
        kind: ``"bytetrack"`` or ``"botsort"``.
        cfg: Tracker settings (confidences, ``max_gap_s``, ``iou_match``).
        fps: Frames per second of the video.
    """

    def __init__(self, kind: str, cfg: TrackerConfig, fps: float) -> None:
        if not fps > 0:
            raise ValueError("fps must be > 0")
        prepare_ultralytics()
        require("lap")  # else ultralytics tries to pip-install it at run time
        self.name = kind
        self.cfg = cfg
        self._args = SimpleNamespace(
            tracker_type=kind, track_high_thresh=cfg.high_confidence,
            track_low_thresh=cfg.min_confidence, new_track_thresh=cfg.high_confidence,
            track_buffer=max(1, int(np.floor(cfg.max_gap_s * fps + 1e-9))),
            match_thresh=cfg.iou_match, fuse_score=True, gmc_method="none",
            proximity_thresh=0.5, appearance_thresh=0.8, with_reid=False, model="auto")
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids restart at 1."""
        if self.name == "botsort":
            from ultralytics.trackers.bot_sort import BOTSORT

            self._tracker: Any = BOTSORT(self._args)
        else:
            from ultralytics.trackers.byte_tracker import BYTETracker

            self._tracker = BYTETracker(self._args)

    def update(self, detections: Detections) -> Detections:
        """Advance one frame; return the detections of confirmed tracks with ``tracker_id``.

        Args:
            detections: This frame's detections (boxes in px).

        Returns:
            The detections the tracker assigned to a track, in input order.
        """
        dets = detections[detections.confidence >= self.cfg.min_confidence]
        xyxy = dets.xyxy
        xywh = np.column_stack([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]])
        boxes = _Boxes(xywh.astype(np.float32), dets.confidence.astype(np.float32),
                       dets.class_id.astype(np.float32))
        out = self._tracker.update(boxes, None)
        ids = np.zeros(len(dets), np.int64)
        if len(out):
            out = np.asarray(out).reshape(len(out), -1)
            idx = out[:, -1].astype(np.int64)
            ids[idx] = out[:, 4].astype(np.int64)
        return with_ids(dets, ids)


@register_tracker("bytetrack")
def _make_bytetrack(cfg: Config, meta: VideoMeta) -> UltralyticsTracker:
    return UltralyticsTracker("bytetrack", cfg.tracker, meta.fps)


@register_tracker("botsort")
def _make_botsort(cfg: Config, meta: VideoMeta) -> UltralyticsTracker:
    return UltralyticsTracker("botsort", cfg.tracker, meta.fps)
