"""Best head crops per track: sharp, isolated, cut at native resolution, aligned.

While a video is tracked, :class:`CropCollector` looks at every tracked head, skips those
with another detection nearby (``isolation_um``), cuts a square of ``crop_um`` around it
(borders replicated at the frame edge) and keeps, per track, the ``keep`` crops with the
highest focus score (variance of the Laplacian over the crop's centre). Memory stays
bounded: ``keep`` small crops per track. :func:`align_head` turns a crop so that the
head's long axis is horizontal and its midpiece points left (the acrosome right).
The same functions cut crops from still images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from detect_track.types import Detections


def focus_score(patch: np.ndarray) -> float:
    """Variance of the Laplacian of the central half of a gray patch (higher = sharper)."""
    h, w = patch.shape
    c = patch[h // 4: h - h // 4, w // 4: w - w // 4].astype(np.float32)
    return float(cv2.Laplacian(c, cv2.CV_32F).var()) if c.size else 0.0


def cut(frame: np.ndarray, x: float, y: float, side_px: int) -> np.ndarray:
    """Square ``side_px`` crop centred on ``(x, y)`` (px), borders replicated, gray uint8."""
    img = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        from detect_track.morphology.data import to_gray_u8

        img = to_gray_u8(img)
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
        for i in np.flatnonzero(isolated):
            tid = int(tracked.tracker_id[i])
            patch = cut(frame, float(xy[i, 0]), float(xy[i, 1]), self.crop_px)
            score = focus_score(patch)
            kept = self._crops.setdefault(tid, [])
            if len(kept) < self.keep:
                kept.append((score, frame_index, patch))
            elif score > kept[-1][0]:
                kept[-1] = (score, frame_index, patch)
            else:
                continue
            kept.sort(key=lambda t: -t[0])

    def crops(self, track_id: int, aligned: bool = True) -> list[tuple[int, np.ndarray]]:
        """``(frame_index, crop)`` of a track, sharpest first (aligned if asked)."""
        out = self._crops.get(int(track_id), [])
        return [(f, align_head(c) if aligned else c) for _, f, c in out]

    def track_ids(self) -> list[int]:
        """Tracks with at least one crop."""
        return sorted(self._crops)
