"""Image statistics that compare simulated frames with real phase-contrast frames.

Used by ``tools/bench_sim_realism.py`` to fit the ``visem`` simulator preset to real
VISEM-Tracking frames, and by the tests to check that the preset still lands on its fitted
targets. Every function works on 8-bit grayscale frames and head centres in pixels
(x = column, pixel centres at integers); intensities are divided by the frame's
background level (its median), so 1.0 is the background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage

#: Radii (px) of the radial head profile.
PROFILE_RADII: tuple[int, ...] = tuple(range(13))
#: Spatial-frequency bands (cycles / px) of the background power spectrum.
PSD_BANDS: tuple[tuple[float, float], ...] = ((0.02, 0.06), (0.06, 0.12), (0.12, 0.25),
                                              (0.25, 0.5))
#: Relative contrast beyond which a non-head blob counts as debris.
BLOB_THRESHOLD = 0.12


def normalise(frame: np.ndarray) -> np.ndarray:
    """Frame divided by its background level (median grey), float32."""
    f = frame.astype(np.float32)
    return f / max(float(np.median(f)), 1.0)


def refine_centres(norm: np.ndarray, xy: np.ndarray, radius: int = 4) -> np.ndarray:
    """Move each head centre to the brightest point (Gaussian sigma 1) within ``radius`` px."""
    sm = cv2.GaussianBlur(norm, (0, 0), 1.0)
    h, w = sm.shape
    out = np.asarray(xy, np.float64).copy()
    for i, (x, y) in enumerate(out):
        ix, iy = int(round(x)), int(round(y))
        x0, x1 = max(ix - radius, 0), min(ix + radius + 1, w)
        y0, y1 = max(iy - radius, 0), min(iy + radius + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        win = sm[y0:y1, x0:x1]
        j = int(np.argmax(win))
        out[i] = (x0 + j % win.shape[1], y0 + j // win.shape[1])
    return out


def radial_profiles(norm: np.ndarray, xy: np.ndarray, max_r: int = 12) -> np.ndarray:
    """Mean normalised intensity in 1 px rings around each centre, ``(N, max_r + 1)``.

    Heads closer than ``max_r`` px to the frame edge are left out (rows of NaN).
    """
    h, w = norm.shape
    yy, xx = np.mgrid[-max_r:max_r + 1, -max_r:max_r + 1]
    ring = np.rint(np.hypot(xx, yy)).astype(np.int64)
    out = np.full((len(xy), max_r + 1), np.nan)
    for i, (x, y) in enumerate(xy):
        ix, iy = int(round(x)), int(round(y))
        if ix < max_r or iy < max_r or ix >= w - max_r or iy >= h - max_r:
            continue
        win = norm[iy - max_r:iy + max_r + 1, ix - max_r:ix + max_r + 1]
        sums = np.bincount(ring.ravel(), win.ravel(), minlength=2 * max_r)
        cnt = np.bincount(ring.ravel(), minlength=2 * max_r)
        out[i] = (sums / np.maximum(cnt, 1))[:max_r + 1]
    return out


def head_size_px(norm: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Area-equivalent diameter (px) of each head's bright core (above half its peak)."""
    out = np.full(len(xy), np.nan)
    h, w = norm.shape
    for i, (x, y) in enumerate(xy):
        ix, iy = int(round(x)), int(round(y))
        if ix < 8 or iy < 8 or ix >= w - 8 or iy >= h - 8:
            continue
        win = norm[iy - 8:iy + 9, ix - 8:ix + 9]
        peak = float(win[8, 8])
        if peak <= 1.05:
            continue
        lab, _ = ndimage.label(win > 1 + 0.5 * (peak - 1))
        if lab[8, 8] == 0:
            continue
        out[i] = 2 * math.sqrt(float((lab == lab[8, 8]).sum()) / math.pi)
    return out


def head_shape(frame: np.ndarray, norm: np.ndarray, xy: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Elongation of each head's bright core and its number of saturated pixels.

    Returns:
        ``(N,)`` elongation (square root of the ratio of the core's second-moment
        eigenvalues; NaN for cores under 3 px) and ``(N,)`` pixels >= 250 grey within
        7 px of the centre (NaN near the frame edge).
    """
    el = np.full(len(xy), np.nan)
    sat = np.full(len(xy), np.nan)
    h, w = norm.shape
    for i, (x, y) in enumerate(xy):
        ix, iy = int(round(x)), int(round(y))
        if ix < 8 or iy < 8 or ix >= w - 8 or iy >= h - 8:
            continue
        sat[i] = float((frame[iy - 7:iy + 8, ix - 7:ix + 8] >= 250).sum())
        win = norm[iy - 7:iy + 8, ix - 7:ix + 8]
        lab, _ = ndimage.label(win > 1 + 0.5 * (float(win[7, 7]) - 1))
        if lab[7, 7] == 0:
            continue
        yy, xx = np.nonzero(lab == lab[7, 7])
        if len(yy) < 3:
            continue
        ev = np.linalg.eigvalsh(np.cov(np.vstack([xx, yy]).astype(np.float64)))
        el[i] = math.sqrt(ev[1] / max(ev[0], 1e-3))
    return el, sat


def tail_contrast(norm: np.ndarray, xy: np.ndarray, r0: int = 6, r1: int = 16,
                  n_angles: int = 36) -> np.ndarray:
    """Signed contrast of the most deviating ray from each head (the tail, if any).

    The mean normalised intensity along rays from ``r0`` to ``r1`` px in ``n_angles``
    directions; the ray that deviates most from the median of the rays gives the value
    (negative: a dark tail, positive: a bright one).
    """
    h, w = norm.shape
    ang = np.linspace(0, 2 * math.pi, n_angles, endpoint=False)
    rr = np.arange(r0, r1 + 1, 0.5)
    dx = np.cos(ang)[:, None] * rr[None, :]
    dy = np.sin(ang)[:, None] * rr[None, :]
    sm = cv2.GaussianBlur(norm, (0, 0), 0.7)
    out = np.full(len(xy), np.nan)
    for i, (x, y) in enumerate(xy):
        if x < r1 + 1 or y < r1 + 1 or x >= w - r1 - 1 or y >= h - r1 - 1:
            continue
        vals = ndimage.map_coordinates(sm, [y + dy, x + dx], order=1).mean(1)
        dev = vals - np.median(vals)
        out[i] = float(dev[np.argmax(np.abs(dev))])
    return out


def tail_width(norm: np.ndarray, xy: np.ndarray, r0: int = 7, r1: int = 13,
               n_angles: int = 72) -> np.ndarray:
    """Full width at half depth (px) of the darkest ray's cross-profile (a dark tail).

    The darkest direction from each head (rays ``r0``-``r1`` px) is followed; across it,
    the unsmoothed profile (offsets -5..5 px, 0.25 px steps, averaged along the ray) is
    measured against its ends, and the width where it is darker than half its depth is
    returned. NaN where the ray is not darker than the frame's background by 5 %.
    """
    h, w = norm.shape
    ang = np.linspace(0, 2 * math.pi, n_angles, endpoint=False)
    rr = np.arange(r0, r1 + 1, 0.5)
    off = np.arange(-5, 5.001, 0.25)
    sm = cv2.GaussianBlur(norm, (0, 0), 0.7)
    out = np.full(len(xy), np.nan)
    lim = r1 + 7
    for i, (x, y) in enumerate(xy):
        if x < lim or y < lim or x >= w - lim or y >= h - lim:
            continue
        ys = y + np.sin(ang)[:, None] * rr[None, :]
        xs = x + np.cos(ang)[:, None] * rr[None, :]
        vals = ndimage.map_coordinates(sm, [ys, xs], order=1).mean(1)
        j = int(np.argmin(vals))
        if vals[j] > np.median(vals) - 0.05:
            continue
        th = ang[j]
        px, py = -math.sin(th), math.cos(th)
        cy = y + math.sin(th) * rr[None, :] + py * off[:, None]
        cx = x + math.cos(th) * rr[None, :] + px * off[:, None]
        prof = ndimage.map_coordinates(norm, [cy, cx], order=1).mean(1)
        base = 0.5 * (prof[:4].mean() + prof[-4:].mean())
        depth = base - prof.min()
        if depth <= 0.05:
            continue
        below = prof < base - depth / 2
        k = int(np.argmin(prof))
        lo, hi = k, k
        while lo > 0 and below[lo - 1]:
            lo -= 1
        while hi < len(prof) - 1 and below[hi + 1]:
            hi += 1
        out[i] = (hi - lo + 1) * 0.25
    return out


def head_mask(shape: tuple[int, int], xy: np.ndarray, radius: float) -> np.ndarray:
    """Boolean mask of discs of ``radius`` px around the head centres."""
    m = np.zeros(shape, np.uint8)
    for x, y in xy:
        cv2.circle(m, (int(round(x)), int(round(y))), int(math.ceil(radius)), 1, -1)
    return m.astype(bool)


def blobs(norm: np.ndarray, heads_xy: np.ndarray, threshold: float = BLOB_THRESHOLD
          ) -> dict[str, np.ndarray]:
    """Dark and bright non-head blobs: contrast and area-equivalent diameter of each.

    The frame is lightly smoothed (sigma 0.8 px) and its slow illumination removed
    (divided by a 25 px median); connected regions more than ``threshold`` below (dark)
    or above (bright) the background that lie farther than 10 px from every head
    centre are blobs.

    Returns:
        ``dark_contrast``, ``dark_size``, ``bright_contrast``, ``bright_size`` arrays (one
        value per blob), ``bright_isolated`` (per bright blob: True when no dark blob lies
        within 4 px, i.e. it is not a fragment of a dark blob's halo) and ``dark_halo`` (one
        value: the mean relative contrast of the ring 1-3 px around the dark blobs, empty
        without dark blobs).
    """
    sm = cv2.GaussianBlur(norm, (0, 0), 0.8)
    slow = cv2.medianBlur(np.clip(norm * 100, 0, 255).astype(np.uint8), 25).astype(np.float32)
    rel = sm / np.maximum(slow / 100.0, 0.05) - 1.0
    away = ~head_mask(norm.shape, heads_xy, 10)
    out: dict[str, np.ndarray] = {}
    near_dark = np.zeros(norm.shape, bool)
    for name, sel, sign in (("dark", rel < -threshold, -1.0), ("bright", rel > threshold, 1.0)):
        lab, n = ndimage.label(sel & away)
        if n == 0:
            out[f"{name}_contrast"] = np.zeros(0)
            out[f"{name}_size"] = np.zeros(0)
            out["dark_halo" if name == "dark" else "bright_isolated"] = np.zeros(0)
            continue
        idx = np.arange(1, n + 1)
        area = ndimage.sum_labels(np.ones_like(rel), lab, idx)
        ext = sign * ndimage.maximum(sign * rel, lab, idx)
        out[f"{name}_contrast"] = np.asarray(ext, np.float64)
        out[f"{name}_size"] = 2 * np.sqrt(np.asarray(area, np.float64) / math.pi)
        if name == "dark":  # the ring 1-3 px around dark blobs: their (bright) phase halo
            inner = ndimage.binary_dilation(lab > 0, iterations=1)
            ring = ndimage.binary_dilation(lab > 0, iterations=3) & ~inner & away
            out["dark_halo"] = np.asarray([float(rel[ring].mean()) if ring.any() else 0.0])
            near_dark = ndimage.binary_dilation(lab > 0, iterations=4)
        else:  # bright blobs with no dark blob within 4 px (not a halo fragment)
            touch = ndimage.maximum(near_dark.astype(np.float64), lab, idx)
            out["bright_isolated"] = np.asarray(touch, np.float64) == 0
    return out


def background_psd(norm: np.ndarray, heads_xy: np.ndarray, tile: int = 64
                   ) -> np.ndarray:
    """Mean log10 power of the background in :data:`PSD_BANDS` (head-free tiles).

    Tiles of ``tile`` px with no head within 12 px, detrended (mean removed), Hann
    windowed; power of ``norm - 1`` averaged over each band's ring of frequencies.
    """
    h, w = norm.shape
    mask = head_mask(norm.shape, heads_xy, 12)
    win = np.outer(np.hanning(tile), np.hanning(tile)).astype(np.float32)
    f = np.fft.fftfreq(tile)
    fr = np.hypot(f[None, :], f[:, None])
    acc = np.zeros((tile, tile))
    n = 0
    for y0 in range(0, h - tile + 1, tile):
        for x0 in range(0, w - tile + 1, tile):
            if mask[y0:y0 + tile, x0:x0 + tile].any():
                continue
            t = norm[y0:y0 + tile, x0:x0 + tile]
            t = (t - t.mean()) * win
            acc += np.abs(np.fft.fft2(t)) ** 2
            n += 1
    if n == 0:
        return np.full(len(PSD_BANDS), np.nan)
    acc /= n * float((win ** 2).sum())
    return np.array([math.log10(float(acc[(fr >= lo) & (fr < hi)].mean()))
                     for lo, hi in PSD_BANDS])


def background_spread(norm: np.ndarray, heads_xy: np.ndarray) -> float:
    """Interquartile range of the normalised background (pixels > 12 px from every head)."""
    v = norm[~head_mask(norm.shape, heads_xy, 12)]
    q25, q75 = np.percentile(v, [25, 75])
    return float(q75 - q25)


def temporal_noise(norm_a: np.ndarray, norm_b: np.ndarray, heads_xy: np.ndarray) -> float:
    """Relative sensor noise from two consecutive frames: std of their difference / √2.

    Pixels within 15 px of a head are left out, and the 2 % largest differences (moving
    debris) too.
    """
    d = (norm_a - norm_b)[~head_mask(norm_a.shape, heads_xy, 15)]
    d = d - np.median(d)
    keep = np.abs(d) <= np.percentile(np.abs(d), 98)
    return float(np.sqrt(np.mean(d[keep] ** 2)) / math.sqrt(2))


def blockiness(frame: np.ndarray) -> float:
    """JPEG 8x8 blockiness: mean |step| across block borders / mean |step| inside blocks.

    1.0 means no visible blocks; compressed frames score above 1.
    """
    f = frame.astype(np.float32)
    dx = np.abs(np.diff(f, axis=1))
    dy = np.abs(np.diff(f, axis=0))
    bx = (np.arange(dx.shape[1]) % 8) == 7
    by = (np.arange(dy.shape[0]) % 8) == 7
    inner = (dx[:, ~bx].mean() + dy[~by].mean()) / 2
    border = (dx[:, bx].mean() + dy[by].mean()) / 2
    return float(border / max(inner, 1e-6))


def frame_stats(frames: Sequence[np.ndarray], heads: Sequence[np.ndarray]) -> dict[str, float]:
    """Summary statistics of consecutive frames with their head centres.

    Args:
        frames: 8-bit grayscale frames (consecutive, for the temporal noise).
        heads: Head centres ``(N, 2)`` px per frame (approximate; refined here).

    Returns:
        Flat dictionary: ``background`` (grey), ``profile_r{r}`` (median radial profile),
        ``head_peak``, ``halo_min``, ``halo_r``, ``head_size_px``, ``head_elongation``,
        ``head_saturated_px`` (mean pixels >= 250 per head), ``tail_contrast``,
        ``tail_width_px`` (dark tails only),
        ``psd_{i}`` (log10 band power), ``noise`` (relative), ``bg_iqr`` (background
        interquartile range, relative), ``dark_per_kpx2``,
        ``dark_contrast``, ``dark_size``, ``dark_halo`` (mean relative contrast 1-3 px
        around dark blobs), ``bright_per_kpx2``, ``bright_isolated_per_kpx2``,
        ``bright_contrast``,
        ``bright_size``, ``blockiness``, ``heads_per_frame``.
    """
    profs, sizes, tails, psds, noises, blocks, bgs, iqrs = [], [], [], [], [], [], [], []
    widths: list[np.ndarray] = []
    elong: list[np.ndarray] = []
    sats: list[np.ndarray] = []
    blob_parts: dict[str, list[np.ndarray]] = {}
    area_kpx = 0.0
    prev = None
    for frame, xy in zip(frames, heads, strict=True):
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        norm = normalise(frame)
        bgs.append(float(np.median(frame)))
        ref = refine_centres(norm, xy)
        profs.append(radial_profiles(norm, ref))
        sizes.append(head_size_px(norm, ref))
        el, sat = head_shape(frame, norm, ref)
        elong.append(el)
        sats.append(sat)
        tails.append(tail_contrast(norm, ref))
        widths.append(tail_width(norm, ref))
        psds.append(background_psd(norm, ref))
        iqrs.append(background_spread(norm, ref))
        blocks.append(blockiness(frame))
        for k, v in blobs(norm, xy).items():
            blob_parts.setdefault(k, []).append(v)
        area_kpx += frame.size / 1000.0
        if prev is not None:
            noises.append(temporal_noise(prev[0], norm, np.concatenate([prev[1], ref])))
        prev = (norm, ref)
    prof = np.nanmedian(np.concatenate(profs), 0)
    out: dict[str, float] = {"background": float(np.median(bgs))}
    for r, v in zip(PROFILE_RADII, prof, strict=False):
        out[f"profile_r{r}"] = float(v)
    out["head_peak"] = float(prof[0])
    out["halo_min"] = float(prof[2:].min())
    out["halo_r"] = float(2 + int(np.argmin(prof[2:])))
    out["head_size_px"] = float(np.nanmedian(np.concatenate(sizes)))
    out["head_elongation"] = float(np.nanmedian(np.concatenate(elong)))
    out["head_saturated_px"] = float(np.nanmean(np.concatenate(sats)))
    out["tail_contrast"] = float(np.nanmedian(np.concatenate(tails)))
    tw = np.concatenate(widths)
    out["tail_width_px"] = float(np.nanmedian(tw)) if np.isfinite(tw).any() else math.nan
    psd = np.nanmean(np.stack(psds), 0)
    for i, v in enumerate(psd):
        out[f"psd_{i}"] = float(v)
    out["noise"] = float(np.median(noises)) if noises else math.nan
    out["bg_iqr"] = float(np.median(iqrs))
    for kind in ("dark", "bright"):
        c = np.concatenate(blob_parts.get(f"{kind}_contrast", [np.zeros(0)]))
        s = np.concatenate(blob_parts.get(f"{kind}_size", [np.zeros(0)]))
        out[f"{kind}_per_kpx2"] = float(len(c) / max(area_kpx, 1e-9))
        out[f"{kind}_contrast"] = float(np.median(c)) if len(c) else 0.0
        out[f"{kind}_size"] = float(np.median(s)) if len(s) else 0.0
    iso = np.concatenate(blob_parts.get("bright_isolated", [np.zeros(0)]))
    out["bright_isolated_per_kpx2"] = float(iso.sum() / max(area_kpx, 1e-9))
    halo = np.concatenate(blob_parts.get("dark_halo", [np.zeros(0)]))
    out["dark_halo"] = float(np.mean(halo)) if len(halo) else 0.0
    out["blockiness"] = float(np.mean(blocks))
    out["heads_per_frame"] = float(np.mean([len(np.asarray(h).reshape(-1, 2)) for h in heads]))
    return out


def read_simulation(video_path: str | Path, gt_path: str | Path
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (gray) of a simulated video and the head centres (px) of each, from its gt.

    Args:
        video_path: The simulated video (``SimulationResult.video_path``).
        gt_path: Its MOTChallenge ``gt/gt.txt`` (rows with ``conf = 1`` are the heads).

    Returns:
        One gray frame and one ``(N, 2)`` array of head centres per frame.
    """
    cap = cv2.VideoCapture(str(video_path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., 0].copy())
    cap.release()
    gt = pd.read_csv(gt_path, header=None)
    gt = gt[gt[6] == 1]
    heads = []
    for k in range(len(frames)):
        g = gt[gt[0] == k + 1]
        heads.append(np.stack([g[2] + g[4] / 2 - 0.5, g[3] + g[5] / 2 - 0.5], 1))
    return frames, heads
