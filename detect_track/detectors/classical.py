"""Classical detector: flat-field, band-pass, robust threshold, local maxima.

No weights are needed. All sizes are configured in µm and converted with the
video's µm/px, so the same settings hold at any magnification. The steps, per frame:

1. divide by a smooth background (removes uneven illumination);
2. pick the polarity (heads brighter or darker than the background) once per video;
3. open (grey morphology) with a disk narrower than a head but wider than a flagellum,
   which removes tails and midpieces, then band-pass at the scale of a sperm head
   (difference of Gaussians), which suppresses large debris and slow shading;
4. threshold at ``threshold_sigma`` robust noise standard deviations, estimated per
   tile (the noise is uneven under uneven light) and never below ``min_contrast``
   (clean, compressed frames have almost no noise); drop blobs larger than
   ``max_area_um2`` (debris, round cells);
5. one detection per local maximum (closer maxima than ``min_separation_um`` merge),
   refined to the centroid of the response above half the peak; peaks whose half-height
   area is below ``min_area_um2`` (specks) are dropped; box size from second moments.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from detect_track.config import ClassicalConfig, Config
from detect_track.detectors.base import DetectorBase, register_detector
from detect_track.types import Detections, ImageScale

_POLARITY_FRAMES = 8  # frames used to decide the polarity in "auto" mode
_SCORE_WIDTH_SIGMA = 0.75  # confidence = logistic((snr - midpoint) / width)


def _gauss(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas keep linear gradients exact at the borders.

    For large sigmas (the background), the image is first averaged down by a factor
    ``f``, then padded by point reflection (``2*edge - mirror``, harmless once the noise is
    averaged away) so that shading which falls off towards a border is not mistaken for
    objects there, blurred, and interpolated back up.
    """
    if sigma < 4.0:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    h, w = img.shape
    f = int(min(8, sigma // 2))
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape
    pad = int(min(3.0 * sigma / f, max(sh, sw) - 1))
    if pad > 0 and min(sh, sw) > 1:
        small = np.pad(small, pad, mode="reflect", reflect_type="odd")
        small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REFLECT)
        small = small[pad:pad + sh, pad:pad + sw]
    else:
        small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class ClassicalDetector(DetectorBase):
    """Band-pass + threshold + local-maxima detector of sperm heads.

    Args:
        cfg: Classical detector settings (sizes in µm).
        um_per_px: Micrometres per pixel of the frames to come.
    """

    name = "classical"
    class_names: tuple[str, ...] = ("sperm",)

    def __init__(self, cfg: ClassicalConfig, um_per_px: float) -> None:
        self.cfg = cfg
        self.um_per_px = float(um_per_px)
        head_px = cfg.head_length_um / self.um_per_px
        self.head_px = head_px
        self.sigma_small = max(0.6, 0.18 * head_px)
        self.sigma_large = max(1.5, 0.7 * head_px)
        self.sigma_bg = max(self.sigma_large * 2.0, cfg.background_sigma_um / self.um_per_px)
        sep = max(2, int(round(cfg.min_separation_um / self.um_per_px)))
        self.min_sep_px = sep
        self._peak_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * sep + 1, 2 * sep + 1))
        px_area = self.um_per_px**2
        self.min_area_px = max(1.0, cfg.min_area_um2 / px_area)
        self.max_area_px = cfg.max_area_um2 / px_area
        self.win = max(2, int(round(0.6 * head_px)))  # half-size of the centroid window
        self._tile = int(max(24, round(4.0 * self.sigma_bg)))  # noise-estimation tile, px
        k_open = max(3, 2 * int(round(0.2 * head_px)) + 1)  # odd, ~40 % of a head's length
        self._open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k_open, k_open))
        self.reset()

    def reset(self) -> None:
        """Forget the polarity decided on the previous video."""
        self._polarity = {"bright": 1.0, "dark": -1.0}.get(self.cfg.polarity, 0.0)
        self._votes: list[float] = []

    # -- steps ----------------------------------------------------------------------------------
    def flat_field(self, frame: np.ndarray) -> np.ndarray:
        """Relative contrast ``I / background - 1`` as float32 ``(H, W)``."""
        img = np.asarray(frame)
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        img = img.astype(np.float32)
        bg = _gauss(img, self.sigma_bg)
        return img / np.maximum(bg, max(1e-3, float(bg.mean()) * 0.05)) - 1.0

    def band_pass(self, flat: np.ndarray) -> np.ndarray:
        """Difference of Gaussians at the head scale ``(H, W)``."""
        small = cv2.GaussianBlur(flat, (0, 0), self.sigma_small, borderType=cv2.BORDER_REFLECT)
        return small - _gauss(flat, self.sigma_large)

    def response(self, flat: np.ndarray, polarity: float) -> np.ndarray:
        """Head response ``(H, W)`` float32 for heads of the given polarity (+1 bright, -1 dark).

        The polarity-signed contrast (``flat`` from :meth:`flat_field`) is opened with a disk
        narrower than a head but wider than a flagellum, so thin tails and midpieces vanish
        while heads keep their shape, then band-passed.
        """
        opened = cv2.morphologyEx(flat * np.float32(polarity), cv2.MORPH_OPEN,
                                  self._open_kernel, borderType=cv2.BORDER_REFLECT)
        return self.band_pass(opened)

    def _decide_polarity(self, flat: np.ndarray) -> float:
        if self._polarity:
            return self._polarity
        sample = self.band_pass(flat)[::2, ::2]
        hi = float(np.percentile(sample, 99.9))
        lo = -float(np.percentile(sample, 0.1))
        self._votes.append(hi - lo)
        sign = 1.0 if np.median(self._votes) >= 0 else -1.0
        if len(self._votes) >= _POLARITY_FRAMES:
            self._polarity = sign
        return sign

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect sperm heads in one frame.

        Args:
            frame: Grayscale ``(H, W)`` or BGR ``(H, W, 3)`` image, any numeric dtype.

        Returns:
            Detections (class 0 = sperm) with boxes in pixels. Scores are a logistic function
            of the peak's signal-to-noise ratio (0.5 at ``score_midpoint_sigma``); weak
            candidates down to ``threshold_sigma`` are included with low scores.
        """
        frame = np.asarray(frame)
        if frame.size == 0 or min(frame.shape[:2]) < 3:
            return Detections.empty()
        flat = self.flat_field(frame)
        return self._detect_from_response(self.response(flat, self._decide_polarity(flat)))

    def _noise_map(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local median and robust noise std of the response, per tile, smoothly upsampled.

        Uneven illumination makes the noise uneven after flat-fielding (a dim corner is
        noisier); a single global threshold would flood it with false detections.
        """
        h, w = r.shape
        t = max(1, min(self._tile, h, w))
        ny, nx = -(-h // t), -(-w // t)  # tiles cover the whole frame (edge tiles mirrored)
        padded = np.pad(r, ((0, ny * t - h), (0, nx * t - w)), mode="symmetric")
        tiles = padded.reshape(ny, t, nx, t).transpose(0, 2, 1, 3).reshape(ny, nx, t * t)
        tiles = tiles[:, :, ::3]
        med = np.median(tiles, axis=2)
        mad = 1.4826 * np.median(np.abs(tiles - med[:, :, None]), axis=2)
        mad = np.maximum(mad, 0.25 * float(np.median(mad)) + 1e-9)
        size = (nx * t, ny * t)
        med_map = cv2.resize(med.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        mad_map = cv2.resize(mad.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        return med_map[:h, :w], mad_map[:h, :w]

    def _detect_from_response(self, r: np.ndarray) -> Detections:
        h, w = r.shape
        med, noise = self._noise_map(r)
        noise = np.maximum(noise, self.cfg.min_contrast / self.cfg.threshold_sigma)
        snr = (r - med) / noise
        k = self.cfg.threshold_sigma
        mask = (snr > k).astype(np.uint8)
        if not mask.any():
            return Detections.empty()
        n_lab, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
        good = area <= self.max_area_px  # (the smallest size is checked per peak below)
        good[0] = False
        dil = cv2.dilate(snr, self._peak_kernel)
        peaks = (snr >= dil) & (mask > 0)
        ys, xs = np.nonzero(peaks)
        keep = good[labels[ys, xs]]
        ys, xs = ys[keep], xs[keep]
        if len(xs) == 0:
            return Detections.empty()
        vals = snr[ys, xs]
        order = np.argsort(-vals)
        ys, xs, vals = ys[order], xs[order], vals[order]
        ys, xs, vals = self._suppress_close(ys, xs, vals)
        cx, cy, sw, sh, half_area = self._refine(snr, xs, ys, labels, vals)
        big = half_area >= self.min_area_px
        cx, cy, sw, sh, vals = cx[big], cy[big], sw[big], sh[big], vals[big]
        conf = 1.0 / (1.0 + np.exp(-(vals - self.cfg.score_midpoint_sigma) / _SCORE_WIDTH_SIGMA))
        wh = np.stack([sw, sh], axis=1)
        # pixel indices -> box coordinates (pixel edges at integers: a pixel's centre is +0.5)
        xy = np.stack([cx, cy], axis=1) + 0.5
        xyxy = np.hstack([xy - wh / 2.0, xy + wh / 2.0])
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0.0, float(w))
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0.0, float(h))
        return Detections(xyxy, np.clip(conf, 0.0, 1.0), np.zeros(len(xy), dtype=np.int64))

    def _suppress_close(self, ys: np.ndarray, xs: np.ndarray, vals: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop maxima closer than ``min_sep_px`` to a stronger one (inputs sorted by value)."""
        if len(xs) < 2:
            return ys, xs, vals
        from scipy.spatial import cKDTree

        pts = np.stack([xs, ys], axis=1).astype(np.float64)
        pairs = cKDTree(pts).query_pairs(self.min_sep_px, output_type="ndarray")
        if len(pairs) == 0:
            return ys, xs, vals
        removed = np.zeros(len(xs), dtype=bool)
        for i, j in pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]:
            if not removed[i]:
                removed[max(i, j)] = True
        keep = ~removed
        return ys[keep], xs[keep], vals[keep]

    def _refine(self, snr: np.ndarray, xs: np.ndarray, ys: np.ndarray, labels: np.ndarray,
                peak: np.ndarray) -> tuple[np.ndarray, ...]:
        """Centroid, extent and area of each peak, measured at half its own height.

        Weighting by ``snr - peak / 2`` (not by ``snr - threshold``) keeps the centroid on
        the head whatever the threshold, even when a faint head's blob merges with its
        midpiece or a neighbour at a low threshold.

        Returns:
            ``cx, cy`` (N,) px, ``w, h`` (N,) px (4 standard deviations of the weights),
            ``area`` (N,) px: pixels above half the peak.
        """
        h, w = snr.shape
        k = self.win
        off = np.arange(-k, k + 1)
        wy = np.clip(ys[:, None] + off[None, :], 0, h - 1)  # (N, 2k+1)
        wx = np.clip(xs[:, None] + off[None, :], 0, w - 1)
        patch = snr[wy[:, :, None], wx[:, None, :]]  # (N, 2k+1, 2k+1)
        same = labels[wy[:, :, None], wx[:, None, :]] == labels[ys, xs][:, None, None]
        excess = patch - 0.5 * peak[:, None, None]
        wgt = np.where(same, np.maximum(excess, 0.0), 0.0).astype(np.float64)
        area = ((excess >= 0) & same).sum(axis=(1, 2)).astype(np.float64)
        tot = wgt.sum(axis=(1, 2)) + 1e-12
        gy = wy[:, :, None].astype(np.float64)
        gx = wx[:, None, :].astype(np.float64)
        cy = (wgt * gy).sum(axis=(1, 2)) / tot
        cx = (wgt * gx).sum(axis=(1, 2)) / tot
        vy = (wgt * (gy - cy[:, None, None]) ** 2).sum(axis=(1, 2)) / tot
        vx = (wgt * (gx - cx[:, None, None]) ** 2).sum(axis=(1, 2)) / tot
        lo, hi = 0.5 * self.head_px, 2.0 * self.head_px
        sw = np.clip(4.0 * np.sqrt(vx), lo, hi)
        sh = np.clip(4.0 * np.sqrt(vy), lo, hi)
        return cx, cy, sw, sh, area

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in each frame in turn."""
        return [self.detect(f) for f in frames]


@register_detector("classical")
def _make_classical(cfg: Config, scale: ImageScale) -> ClassicalDetector:
    return ClassicalDetector(cfg.detector.classical, scale.um_per_px)
