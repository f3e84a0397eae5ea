"""Central data types exchanged between pipeline stages.

* :class:`Detections`: the per-frame output of every detector and the input and
  output of every tracker (arrays of equal length, checked on construction).
* :class:`VideoMeta`: what is known about a source, and where fps and µm/px came from.
* ``TRAJECTORY_COLUMNS`` / ``TRACK_COLUMNS``: the long-format trajectory table and the
  per-track table, in the order they are written to CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Columns of ``trajectories.csv``: one row per cell per frame (frame is 0-based).
TRAJECTORY_COLUMNS: tuple[str, ...] = (
    "video",
    "frame",
    "time_s",
    "track_id",
    "x_px",
    "y_px",
    "x_um",
    "y_um",
    "w_px",
    "h_px",
    "class_name",
    "confidence",
    "interpolated",
)

#: Kinematics columns of ``tracks.csv`` (see :mod:`detect_track.measure.kinematics`).
KINEMATICS_COLUMNS: tuple[str, ...] = (
    "track_id",
    "n_frames",
    "duration_s",
    "vcl_um_s",
    "vsl_um_s",
    "vap_um_s",
    "lin",
    "str",
    "wob",
    "alh_um",
    "alh_max_um",
    "bcf_hz",
    "mad_deg",
    "progression_um_s",
    "motion_um_s",
)

#: Columns of ``tracks.csv``: one row per track.
TRACK_COLUMNS: tuple[str, ...] = (*KINEMATICS_COLUMNS, "motility", "who_grade", "morphology",
                                  "morphology_confidence")

#: Motility classes, in the order used for summaries.
MOTILITY_CLASSES: tuple[str, ...] = ("progressive", "non_progressive", "immotile")


def _as_array(value: Any, dtype: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Detections.{name} cannot be converted to {dtype}: {exc}") from exc


@dataclass
class Detections:
    """Objects found in one frame.

    Attributes:
        xyxy: Boxes ``(N, 4)`` float64, ``x1, y1, x2, y2`` in pixels (x = column), with
            pixel edges at integers as in COCO, ultralytics and OpenCV rectangles: the
            frame spans ``[0, width] x [0, height]`` and pixel ``(col, row)`` is centred at
            ``(col + 0.5, row + 0.5)``, so a box that just covers pixel columns 3 to 6 is
            ``x1 = 3, x2 = 7``.
        confidence: Scores ``(N,)`` float64 in ``[0, 1]``.
        class_id: Class indices ``(N,)`` int64 (0 = sperm by convention).
        tracker_id: Track ids ``(N,)`` int64, or ``None`` before tracking.
        data: Extra per-detection arrays, each with first dimension ``N``.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as_array(self.xyxy, np.float64, "xyxy").reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = _as_array(self.confidence, np.float64, "confidence").reshape(-1)
        self.class_id = _as_array(self.class_id, np.int64, "class_id").reshape(-1)
        if self.tracker_id is not None:
            self.tracker_id = _as_array(self.tracker_id, np.int64, "tracker_id").reshape(-1)
        arrays = {"confidence": self.confidence, "class_id": self.class_id}
        if self.tracker_id is not None:
            arrays["tracker_id"] = self.tracker_id
        self.data = {k: np.asarray(v) for k, v in self.data.items()}
        arrays.update({f"data[{k!r}]": v for k, v in self.data.items()})
        for name, arr in arrays.items():
            if len(arr) != n:
                raise ValueError(f"Detections.{name} has length {len(arr)}, expected {n}")
        if n and not np.all(np.isfinite(self.xyxy)):
            raise ValueError("Detections.xyxy contains NaN or infinite values")

    @classmethod
    def empty(cls) -> Detections:
        """Return detections with no objects."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))

    @classmethod
    def from_centroids(
        cls,
        xy_px: np.ndarray,
        wh_px: np.ndarray | float = 6.0,
        confidence: np.ndarray | float = 1.0,
        class_id: np.ndarray | int = 0,
    ) -> Detections:
        """Build detections from centre points.

        Args:
            xy_px: Centres ``(N, 2)`` in pixels.
            wh_px: Box sizes ``(N, 2)`` or one size for all, in pixels.
            confidence: Scores ``(N,)`` or one score for all.
            class_id: Class indices ``(N,)`` or one class for all.

        Returns:
            Detections with boxes centred on ``xy_px``.
        """
        xy = np.asarray(xy_px, dtype=np.float64).reshape(-1, 2)
        n = len(xy)
        wh = np.broadcast_to(np.asarray(wh_px, dtype=np.float64), (n, 2)) if n else np.zeros((0, 2))
        xyxy = np.hstack([xy - wh / 2.0, xy + wh / 2.0])
        conf = np.broadcast_to(np.asarray(confidence, dtype=np.float64), (n,)).copy()
        cls_ = np.broadcast_to(np.asarray(class_id, dtype=np.int64), (n,)).copy()
        return cls(xyxy, conf, cls_)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | list[int] | int) -> Detections:
        """Select detections by boolean mask, integer indices or slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            None if self.tracker_id is None else self.tracker_id[index],
            {k: v[index] for k, v in self.data.items()},
        )

    @property
    def xy(self) -> np.ndarray:
        """Box centres ``(N, 2)`` in pixels."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2.0

    @property
    def wh(self) -> np.ndarray:
        """Box widths and heights ``(N, 2)`` in pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    def to_supervision(self) -> Any:
        """Convert to ``supervision.Detections`` (for its annotators and sinks)."""
        import supervision as sv

        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            confidence=self.confidence.astype(np.float32),
            class_id=self.class_id.astype(int),
            tracker_id=None if self.tracker_id is None else self.tracker_id.astype(int),
            data={k: v for k, v in self.data.items()},
        )

    @classmethod
    def from_supervision(cls, detections: Any) -> Detections:
        """Convert from ``supervision.Detections`` (missing scores become 1, classes 0)."""
        n = len(detections.xyxy)
        conf = detections.confidence if detections.confidence is not None else np.ones(n)
        cls_ = detections.class_id if detections.class_id is not None else np.zeros(n)
        return cls(
            detections.xyxy,
            conf,
            cls_,
            detections.tracker_id,
            {k: np.asarray(v) for k, v in dict(detections.data).items()},
        )


@dataclass(frozen=True)
class ImageScale:
    """The scale of a set of images (a video's frames, or still images) and its source.

    Attributes:
        um_per_px: Micrometres per pixel.
        um_per_px_source: Where it came from: ``"cli"``, ``"config"``, ``"default"``.
    """

    um_per_px: float
    um_per_px_source: str = "default"

    @property
    def known(self) -> bool:
        """True when the scale was stated (not the assumed default)."""
        return self.um_per_px_source != "default"


@dataclass(frozen=True)
class VideoMeta:
    """What is known about a frame source.

    Attributes:
        path: The source as given (file or folder).
        fps: Frames per second used for all timing (float, > 0).
        n_frames: Frame count reported by the container (may be approximate; -1 if unknown).
        width_px: Frame width in pixels.
        height_px: Frame height in pixels.
        um_per_px: Micrometres per pixel used for all distances.
        fps_source: Where ``fps`` came from: ``"cli"``, ``"config"``, ``"container"``,
            ``"default"`` (``video.default_fps``, for inputs without a frame rate).
        um_per_px_source: Where ``um_per_px`` came from: ``"cli"``, ``"config"``, ``"default"``.
    """

    path: str
    fps: float
    n_frames: int
    width_px: int
    height_px: int
    um_per_px: float
    fps_source: str = "container"
    um_per_px_source: str = "default"

    @property
    def scale(self) -> ImageScale:
        """The video's µm/px and its source."""
        return ImageScale(self.um_per_px, self.um_per_px_source)
