"""Best head crops per track: sharp, isolated, cut at native resolution, aligned.

While a video is tracked, :class:`CropCollector` looks at every tracked head, skips those
with another detection nearby (``isolation_um``), cuts a square of ``crop_um`` around it
(borders replicated at the frame edge) and keeps, per track, the ``keep`` crops with the
highest focus score (variance of the Laplacian over the crop's centre, read for all
heads of a frame at once; a head is cut only when it beats its track's worst kept crop).
Memory stays bounded: ``keep`` small crops per track, dropped with
:meth:`CropCollector.forget` once the track is measured. :func:`align_head` turns a crop
so that the head's long axis is horizontal and its midpiece points left (the acrosome
right).
The same functions cut crops from still images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

from detect_track.types import Detections


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A frame as one gray uint8 image (colour converted, 16-bit / float rescaled)."""
    img = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        from detect_track.morphology.data import to_gray_u8

        img = to_gray_u8(img)
    return img


def window_focus(gray: np.ndarray, xy: np.ndarray, crop_px: int) -> np.ndarray:
    """Focus score of many crops at once, read straight from the frame.

    The window is the central half of a ``crop_px`` crop around each rounded centre (the
    frame's edge pixels repeated beyond its border); the Laplacian (the 4-neighbour kernel
    of ``cv2.Laplacian`` with ``ksize=1``) sees the frame's own pixels around the window.

    Args:
        gray: Gray frame ``(H, W)``.
        xy: Crop centres ``(N, 2)``, px.
        crop_px: Crop side, px.

    Returns:
        Variance of the Laplacian per window ``(N,)`` (higher = sharper).
    """
    side = crop_px - 2 * (crop_px // 4)
    if len(xy) == 0 or side <= 0:
        return np.zeros(len(xy))
    h, w = gray.shape
    start = np.rint(np.asarray(xy, np.float64)).astype(np.int64) - side // 2 - 1
    span = np.arange(side + 2)
    rows = np.clip(start[:, 1, None] + span, 0, h - 1)
    cols = np.clip(start[:, 0, None] + span, 0, w - 1)
    win = gray[rows[:, :, None], cols[:, None, :]].astype(np.float32)  # (N, s+2, s+2)
    lap = (win[:, :-2, 1:-1] + win[:, 2:, 1:-1] + win[:, 1:-1, :-2] + win[:, 1:-1, 2:]
           - 4.0 * win[:, 1:-1, 1:-1])
    return lap.reshape(len(xy), -1).var(axis=1).astype(np.float64)


def cut(frame: np.ndarray, x: float, y: float, side_px: int) -> np.ndarray:
    """Square ``side_px`` crop centred on ``(x, y)`` (px), borders replicated, gray uint8."""
    img = to_gray(frame)
    half = side_px / 2.0
    m = np.array([[1.0, 0.0, half - x], [0.0, 1.0, half - y]], np.float32)
    return cv2.warpAffine(img, m, (side_px, side_px), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def align_head(crop: np.ndarray) -> np.ndarray:
    """Rotate a head crop to a canonical pose: long axis horizontal, midpiece on the left.

    The head is the connected region of strongest contrast to the background nearest the
    centre; its orientation comes from its second moments; the side of the head where more
    off-background signal continues beyond it (the midpiece and tail) is turned left.

    Args:
        crop: ``(S, S)`` gray uint8 crop centred on the head.

    Returns:
        The rotated crop, same shape (borders replicated).
    """
    img = crop.astype(np.float32)
    dev = np.abs(cv2.GaussianBlur(img, (0, 0), 1.0) - np.median(img))
    if dev.max() <= 0:
        return crop
    thr = max(0.35 * float(dev.max()), 1e-3)
    n, lab = cv2.connectedComponents((dev >= thr).astype(np.uint8))
    s = crop.shape[0]
    if n <= 1:
        return crop
    yy, xx = np.mgrid[0:s, 0:s]
    c = (s - 1) / 2.0
    best, best_d = 1, math.inf
    for k in range(1, n):
        ys, xs = np.nonzero(lab == k)
        d = float(np.min((xs - c) ** 2 + (ys - c) ** 2))
        if d < best_d:
            best, best_d = k, d
    ys, xs = np.nonzero(lab == best)
    if len(xs) < 3:
        return crop
    mx, my = xs.mean(), ys.mean()
    cov = np.cov(np.vstack([xs - mx, ys - my]))
    evals, evecs = np.linalg.eigh(cov)
    axis = evecs[:, np.argmax(evals)]
    # signal beyond the head on each side of the long axis: the midpiece side is stronger
    proj = (xx - mx) * axis[0] + (yy - my) * axis[1]
    extent = float(np.max(np.abs((xs - mx) * axis[0] + (ys - my) * axis[1])))
    outside = lab != best
    plus = float(dev[(proj > extent) & outside].sum())
    minus = float(dev[(proj < -extent) & outside].sum())
    if plus > minus:
        axis = -axis  # make +axis point to the front (acrosome)
    angle = math.degrees(math.atan2(axis[1], axis[0]))
    m = cv2.getRotationMatrix2D((float(mx), float(my)), angle, 1.0)
    m[:, 2] += [c - mx, c - my]
    return cv2.warpAffine(crop, m, (s, s), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


class CropCollector:
    """Keeps the ``keep`` sharpest isolated head crops of every track.

    Args:
        crop_px: Crop side in pixels (native resolution).
        isolation_px: A head with another detection closer than this is not cropped.
        keep: Crops kept per track.
    """

    def __init__(self, crop_px: int, isolation_px: float, keep: int = 3) -> None:
        self.crop_px = max(8, int(crop_px))
        self.isolation_px = float(isolation_px)
        self.keep = max(1, int(keep))
        self.reset()

    def reset(self) -> None:
        """Forget all crops (new video)."""
        self._crops: dict[int, list[tuple[float, int, np.ndarray]]] = {}

    def update(self, frame_index: int, frame: np.ndarray, tracked: Detections,
               others: Detections | None = None) -> None:
        """Look at one frame's tracked heads (``tracked.tracker_id`` set).

        Args:
            frame_index: 0-based frame number (kept with each crop).
            frame: The frame ``(H, W)`` or ``(H, W, 3)``.
            tracked: Tracked detections of this frame.
            others: All detections of the frame (for the isolation test; default
                ``tracked``).
        """
        if len(tracked) == 0 or tracked.tracker_id is None:
            return
        xy = tracked.xy
        ref = (others if others is not None else tracked).xy
        d = np.hypot(xy[:, None, 0] - ref[None, :, 0], xy[:, None, 1] - ref[None, :, 1])
        d[d < 1e-6] = np.inf  # itself
        isolated = d.min(axis=1) >= self.isolation_px if ref.shape[0] > 1 else np.ones(
            len(xy), bool)
        idx = np.flatnonzero(isolated)
        if not len(idx):
            return
        gray = to_gray(frame)
        scores = window_focus(gray, xy[idx], self.crop_px)
        for i, score in zip(idx.tolist(), scores.tolist(), strict=True):
            tid = int(tracked.tracker_id[i])
            kept = self._crops.setdefault(tid, [])
            if len(kept) >= self.keep and score <= kept[-1][0]:
                continue  # not sharper than the worst kept: nothing to cut
            patch = cut(gray, float(xy[i, 0]), float(xy[i, 1]), self.crop_px)
            if len(kept) < self.keep:
                kept.append((score, frame_index, patch))
            else:
                kept[-1] = (score, frame_index, patch)
            kept.sort(key=lambda t: -t[0])

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the crops of these tracks (measured or dropped: no longer needed)."""
        for tid in track_ids:
            self._crops.pop(int(tid), None)

    def crops(self, track_id: int, aligned: bool = True) -> list[tuple[int, np.ndarray]]:
        """``(frame_index, crop)`` of a track, sharpest first (aligned if asked)."""
        out = self._crops.get(int(track_id), [])
        return [(f, align_head(c) if aligned else c) for _, f, c in out]

    def track_ids(self) -> list[int]:
        """Tracks with at least one crop."""
        return sorted(self._crops)
