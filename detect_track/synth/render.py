"""Frame renderer: background, heads, flagella, debris, round cells, noise.

Image model (per pixel, grey levels)::

    I = B(x, y) * flicker(t) * (1 + O(x, y, t)) + noise

``B`` is the static background (level, smooth uneven illumination, vignetting, faint
texture, out-of-focus dust, fixed-pattern noise); ``O`` the signed relative contrast of all
objects. Every object is a sharp "density" map ``m`` (anti-aliased, sub-pixel position)
seen through a phase-contrast-like point spread: ``c ((1 + h) G(s1) * m - h G(s2) * m)``
(a difference of Gaussians: the object with its sign, a halo of the opposite sign around
it; ``c`` carries the look's polarity). ``s1`` grows with the object's distance from the
focal plane, which also lowers its contrast (and reverses it well below the plane). Fast
heads are smeared over the exposure time. Flagella are thin travelling-wave curves splatted
into one layer that goes through the same optics. Noise is Gaussian read noise plus
shot-like noise whose variance grows with the signal.

Looks fitted to real footage (``preset_config("visem")``) add, through settings that are
neutral by default: a same-sign glow around heads (``glow``), heads blurred beyond the
rest (``head_extra_blur_um``), dark tails on bright heads (``tail_sign``), hundreds of static
debris specks with a phase halo (``n_specks``) and a fine static grain (``grain``).

Coordinates are in pixels with pixel centres at integers (0-based), x = column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .config import SynthConfig
from .motion import Cell, _smooth_noise

#: Defocus blur grows by this many µm of Gaussian sigma per µm away from the focal plane.
DEFOCUS_BLUR_PER_UM = 0.35
#: Defocus distance (µm) that halves the contrast (squared).
DEFOCUS_CONTRAST_UM = 3.5


#: A head whose defocus leaves less than this fraction of its in-focus peak contrast is
#: unresolved: no annotator would see it, so the truth marks it "ignore" (see video.py).
MIN_RESOLVED_PEAK = 0.3


def defocus_factor(z_um: np.ndarray | float, brightfield: bool) -> np.ndarray:
    """Contrast factor of objects at heights ``z_um`` (µm, ``(N,)`` or scalar), as rendered.

    Away from the focal plane the contrast falls; below it (z < -2.5 µm) the contrast of a
    phase object fades through zero at -4.5 µm and reverses (not in bright field).
    """
    z = np.asarray(z_um, np.float64)
    c = 1.0 / np.sqrt(1 + (np.abs(z) / DEFOCUS_CONTRAST_UM) ** 2)
    if not brightfield:
        c = c * np.where(z < -2.5, 1.0 - 1.5 * np.minimum(1.0, (-z - 2.5) / 3.0), 1.0)
    return c


def relative_peak(z_um: np.ndarray, blur_um: float, half_length_um: float,
                  half_width_um: np.ndarray, brightfield: bool) -> np.ndarray:
    """Peak contrast of a head at height ``z_um`` relative to the same head in focus.

    The head is treated as a Gaussian blob (sigmas half its half-axes); defocus both lowers
    its contrast (:func:`defocus_factor`) and spreads it (blur grows by
    ``DEFOCUS_BLUR_PER_UM`` per µm), which lowers the peak further.

    Args:
        z_um: ``(N,)`` heights above (+) or below (-) the focal plane, µm.
        blur_um: optical blur in focus (Gaussian sigma, µm).
        half_length_um: head half length, µm.
        half_width_um: ``(N,)`` or scalar apparent head half width, µm.
        brightfield: bright-field look (no phase reversal below the focal plane).

    Returns:
        ``(N,)`` absolute peak contrast divided by the in-focus peak (0 to 1).
    """
    z = np.asarray(z_um, np.float64)
    sa2 = (half_length_um / 2) ** 2
    sb2 = np.maximum(np.asarray(half_width_um, np.float64) / 2, 0.1) ** 2

    def spread(blur2: np.ndarray | float) -> np.ndarray:
        return np.sqrt(sa2 / (sa2 + blur2) * sb2 / (sb2 + blur2))

    blur2 = blur_um ** 2 + (DEFOCUS_BLUR_PER_UM * z) ** 2
    return np.abs(defocus_factor(z, brightfield)) * spread(blur2) / spread(blur_um ** 2)


@dataclass(frozen=True)
class LookStyle:
    """Look-dependent rendering constants (resolved from the config)."""

    name: str
    polarity: float  # +1: heads brighter than background, -1: darker
    background: float  # mean background grey level
    head_contrast: float  # peak relative contrast of a sharp head (before its halo)
    halo: float  # halo depth as a fraction of the head contrast
    tail_factor: float  # look-specific multiplier of the flagellum contrast


def resolve_style(cfg: SynthConfig, look: str) -> LookStyle:
    """Fill in look-dependent defaults (negative config values mean "typical")."""
    table = {  # polarity, background, head contrast, halo, tail factor
        "phase_bright": (1.0, 85.0, 0.45, 1.2, 1.0),
        "phase_dark": (-1.0, 140.0, 0.32, 1.3, 1.0),
        "brightfield": (-1.0, 180.0, 0.18, 0.6, 0.5),
    }
    pol, bg, hc, halo, tail = table[look]
    return LookStyle(
        name=look,
        polarity=pol,
        background=cfg.background_level if cfg.background_level >= 0 else bg,
        head_contrast=cfg.head_contrast if cfg.head_contrast >= 0 else hc,
        halo=cfg.halo_strength if cfg.halo_strength >= 0 else halo,
        tail_factor=tail,
    )


def _add(dst: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    """Add ``patch`` to ``dst`` with its top-left corner at (top, left), clipped."""
    h, w = dst.shape
    ph, pw = patch.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + ph, h), min(left + pw, w)
    if y0 < y1 and x0 < x1:
        dst[y0:y1, x0:x1] += patch[y0 - top:y1 - top, x0 - left:x1 - left]


def _stamp(dst: np.ndarray, patch: np.ndarray, x: float, y: float) -> None:
    """Add ``patch`` centred at sub-pixel position (x, y) with bilinear interpolation."""
    ph, pw = patch.shape
    cx, cy = x - (pw - 1) / 2.0, y - (ph - 1) / 2.0
    ix, iy = math.floor(cx), math.floor(cy)
    fx, fy = cx - ix, cy - iy
    h, w = dst.shape
    if ix + pw + 1 <= 0 or iy + ph + 1 <= 0 or ix >= w or iy >= h:
        return
    p = np.zeros((ph + 1, pw + 1), np.float32)
    p[:-1, :-1] += (1 - fx) * (1 - fy) * patch
    p[:-1, 1:] += fx * (1 - fy) * patch
    p[1:, :-1] += (1 - fx) * fy * patch
    p[1:, 1:] += fx * fy * patch
    _add(dst, p, iy, ix)


def _dog(m: np.ndarray, s1: float, s2: float, c: float, halo: float) -> np.ndarray:
    """Phase-contrast-like image of a density map: ``c ((1 + h) G(s1) m - h G(s2) m)``.

    The object keeps (and slightly raises) its contrast ``c``; a halo of the opposite sign,
    of depth about ``h`` times the object's low-frequency content, surrounds it.
    """
    g1 = cv2.GaussianBlur(m, (0, 0), s1, borderType=cv2.BORDER_CONSTANT)
    g2 = cv2.GaussianBlur(m, (0, 0), s2, borderType=cv2.BORDER_CONSTANT)
    return cv2.addWeighted(g1, c * (1 + halo), g2, -c * halo, 0.0)


def _ellipse_cover(dx: np.ndarray, dy: np.ndarray, angle: float, a: float, b: float,
                   pear: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anti-aliased coverage (0..1) of a (pear-shaped) ellipse and normalised coordinates.

    ``dx, dy`` are pixel-centre offsets from the ellipse centre (px); ``a, b`` half length
    and half width (px); ``pear`` > 0 widens the front (+axis) and narrows the back.
    """
    ca, sa = math.cos(angle), math.sin(angle)
    u = dx * ca + dy * sa
    v = -dx * sa + dy * ca
    un = u / a
    bu = b * np.clip(1.0 + pear * un, 0.35, None) / (1.0 + 0.35 * pear)
    vn = v / bu
    r = np.sqrt(un * un + vn * vn)
    grad = np.sqrt((un / a) ** 2 + (vn / bu) ** 2) / np.maximum(r, 1e-6)
    d = (r - 1.0) / np.maximum(grad, 1e-6)
    return np.clip(0.5 - d, 0.0, 1.0), un, vn


def head_geometry(cell: Cell, fps: float, px_per_um: float,
                  k: int | slice = slice(None)) -> tuple[Any, Any, Any, float, Any]:
    """Head centre x, y (px), long-axis angle (rad), half length and apparent half width (px).

    The apparent width oscillates as the flattened head rolls about its long axis; the
    angle follows the beat (yaw). ``k`` selects frames of the cell's life (default all).
    """
    lk = cell.look
    xy = cell.xy[k] * px_per_um
    yaw = cell.heading[k] + lk.angle_amp_base * np.cos(cell.phase[k])
    frames = cell.f0 + np.arange(cell.n)[k]
    roll = lk.roll_phase + 2 * math.pi * lk.roll_hz * frames / fps
    width = lk.width_um * (lk.roll_min + (1 - lk.roll_min) * np.abs(np.cos(roll)))
    return xy[..., 0], xy[..., 1], yaw, lk.length_um / 2 * px_per_um, width / 2 * px_per_um


class Renderer:
    """Render the frames of one simulated video.

    Args:
        cfg: Simulator settings.
        style: Resolved look.
        cells: All cell lives of the video.
        drift_px: Common drift displacement per frame ``(n_frames, 2)`` in px.
        rng: Generator for the static scene (background, debris).
        noise_seed: Seed of the per-frame sensor noise.
    """

    def __init__(self, cfg: SynthConfig, style: LookStyle, cells: list[Cell],
                 drift_px: np.ndarray, rng: np.random.Generator, noise_seed: int) -> None:
        self.cfg = cfg
        self.style = style
        self.cells = cells
        self.h, self.w = cfg.height_px, cfg.width_px
        self.px_per_um = 1.0 / cfg.um_per_px
        self.drift_px = drift_px
        self.first = np.array([c.f0 for c in cells], dtype=np.int64)
        self.last = np.array([c.f0 + c.n for c in cells], dtype=np.int64)
        self.background = self._background(rng)
        self.flicker = self._flicker(rng)
        self.debris = self._debris(rng)
        self.noise_rng = np.random.default_rng(noise_seed)
        self._noise = np.empty((self.h, self.w), np.float32)
        # tail (flagellum) layer optics: thin line blurred by the optics, weaker halo
        blur_px = cfg.blur_um * self.px_per_um
        self.tail_s1 = max(0.55, math.hypot(blur_px, cfg.tail_width_um * self.px_per_um))
        self.tail_s2 = math.hypot(self.tail_s1, cfg.halo_width_um * self.px_per_um)

    # ------------------------------------------------------------------ static scene
    def _background(self, rng: np.random.Generator) -> np.ndarray:
        cfg, h, w = self.cfg, self.h, self.w
        scale = float(max(h, w))
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        xn, yn = (x - w / 2) / scale * 2, (y - h / 2) / scale * 2
        th = rng.uniform(0, 2 * math.pi)
        q = rng.normal(0, 1, 3)
        ill = cfg.illumination
        field = 1 + ill * 0.6 * (math.cos(th) * xn + math.sin(th) * yn)
        field += ill * 0.4 * (q[0] * xn * xn + q[1] * yn * yn + q[2] * xn * yn) / 2
        cx, cy = rng.normal(0, 0.15, 2)
        r2 = ((xn - cx) ** 2 + (yn - cy) ** 2) / ((w / scale) ** 2 + (h / scale) ** 2)
        field *= 1 - cfg.vignetting * np.clip(r2, 0, 1.5) ** rng.uniform(1.0, 2.0)
        tex = np.zeros((h, w), np.float32)
        if cfg.texture > 0:
            for sigma, amp in ((rng.uniform(1.0, 3.0), 1.0), (rng.uniform(10, 40), 0.8)):
                n = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0),
                                     sigma)
                tex += amp * n / max(float(n.std()), 1e-6)
            tex *= cfg.texture / 1.3
        obj = np.zeros((h, w), np.float32)
        # out-of-focus dust on the optics: faint rings and blotches, static in the image
        for _ in range(int(rng.integers(0, 6))):
            rad = rng.uniform(6, 40)
            size = int(2 * rad + 20)
            yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
            ring = np.exp(-((np.hypot(xx, yy) - rad) ** 2) / (2 * rng.uniform(1, 4) ** 2))
            disc = (np.hypot(xx, yy) < rad).astype(np.float32) * rng.uniform(-0.3, 0.3)
            patch = (ring + disc).astype(np.float32) * rng.choice([-1, 1]) * rng.uniform(0.01,
                                                                                         0.04)
            _stamp(obj, patch, rng.uniform(0, w), rng.uniform(0, h))
        # static specks stuck on the slide or the sensor
        for _ in range(int(rng.integers(0, 8))):
            s = rng.uniform(0.5, 1.5) * self.px_per_um
            size = int(6 * s + 3) | 1
            yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
            patch = np.exp(-(xx ** 2 + yy ** 2) / (2 * s * s)).astype(np.float32)
            _stamp(obj, patch * float(rng.uniform(-0.3, 0.3)), rng.uniform(0, w),
                   rng.uniform(0, h))
        for _ in range(int(rng.integers(0, 6))):  # hot / dead pixels
            obj[int(rng.integers(0, h)), int(rng.integers(0, w))] += rng.uniform(-0.4, 0.6)
        column = rng.normal(0, 0.002, w).astype(np.float32)
        if cfg.n_specks > 0:
            obj += self._specks(np.random.default_rng(rng.integers(0, 2 ** 63)))
        if cfg.grain > 0:  # fine static grain of the slide and the optics (~1 px)
            g_rng = np.random.default_rng(rng.integers(0, 2 ** 63))
            grain = cv2.GaussianBlur(g_rng.standard_normal((h, w)).astype(np.float32), (0, 0),
                                     0.7)
            obj += grain * (cfg.grain / max(float(grain.std()), 1e-6))
        bg = self.style.background * np.clip(field, 0.1, None) * (1 + tex + obj + column)
        return bg.astype(np.float32)

    def _specks(self, rng: np.random.Generator) -> np.ndarray:
        """Static debris specks (``n_specks``): small blobs with a phase halo, relative."""
        cfg, h, w, ppu = self.cfg, self.h, self.w, self.px_per_um
        layer = np.zeros((h, w), np.float32)
        pol = self.style.polarity
        for _ in range(cfg.n_specks):
            rad = 0.5 * cfg.speck_size_um * math.exp(rng.normal(0, 0.35)) * ppu
            s1, s2, cf, _ = self._optics(float(rng.normal(0, 1.0)))
            half = int(math.ceil(rad * 1.3 + 3 * s2 + 1))
            yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
            a = max(0.35, rad)
            m, _, _ = _ellipse_cover(xx, yy, rng.uniform(0, 3.14), a,
                                     max(0.35, a * rng.uniform(0.6, 1.0)))
            sign = -pol if rng.random() < cfg.speck_dark_frac else pol
            c = cfg.speck_contrast * math.exp(rng.normal(0, 0.4)) * cf
            # the density is normalised to a unit-area blob so contrast reads as peak contrast
            peak = float(cv2.GaussianBlur(m, (0, 0), s1).max())
            patch = _dog(m / max(peak, 1e-3), s1, s2, sign * c, cfg.speck_halo)
            _stamp(layer, patch, rng.uniform(0, w), rng.uniform(0, h))
        return layer

    def _flicker(self, rng: np.random.Generator) -> np.ndarray:
        n = self.cfg.n_frames
        if self.cfg.flicker <= 0:
            return np.ones(n, np.float32)
        out = _smooth_noise(rng, n, 1.0 / self.cfg.fps, 0.4)  # correlation time 0.4 s
        return (1 + self.cfg.flicker * out).astype(np.float32)

    def _optics(self, z_um: float, blur_um: float | None = None
                ) -> tuple[float, float, float, float]:
        """Blur sigmas (px), contrast factor and halo factor of an object at height ``z_um``.

        Away from the focal plane the object blurs and loses contrast; below it (z < 0)
        the contrast of a phase object fades through zero and reverses, as when focusing
        through a cell in a phase-contrast microscope. ``blur_um`` is the in-focus blur
        (default ``cfg.blur_um``).
        """
        cfg = self.cfg
        d = abs(z_um)
        blur_um = math.hypot(cfg.blur_um if blur_um is None else blur_um,
                             DEFOCUS_BLUR_PER_UM * d)
        s1 = max(0.35, blur_um * self.px_per_um)
        s2 = math.hypot(s1, cfg.halo_width_um * self.px_per_um)
        contrast = float(defocus_factor(z_um, self.style.name == "brightfield"))
        halo = self.style.halo * (1 + 0.15 * d)
        return s1, s2, contrast, halo

    def _debris(self, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """Debris and round cells: (patch, path (n_frames, 2) px) pairs."""
        cfg, st = self.cfg, self.style
        n = cfg.n_frames
        ppu = self.px_per_um
        margin = 20.0 * ppu
        out = []
        items = [("debris", i) for i in range(cfg.n_debris)]
        items += [("round", i) for i in range(cfg.n_round_cells)]
        for kind, _ in items:
            s1, s2, cf, halo = self._optics(float(rng.normal(0, 2.0)))
            if kind == "round":
                rad = rng.uniform(4.0, 6.0) * ppu
                half = int(math.ceil(rad + 3 * s2 + 2))
                yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
                m, _, _ = _ellipse_cover(xx, yy, 0.0, rad, rad * rng.uniform(0.9, 1.0))
                gran = cv2.GaussianBlur(rng.standard_normal(m.shape).astype(np.float32), (0, 0),
                                        max(0.6, 0.4 * ppu))
                m = m * (0.8 + 0.5 * gran / max(float(gran.std()), 1e-6) * 0.3)
                for _ in range(int(rng.integers(1, 4))):  # nucleus lobes: opposite contrast
                    off = rng.normal(0, rad * 0.3, 2)
                    lobe, _, _ = _ellipse_cover(xx - off[0], yy - off[1], rng.uniform(0, 3.14),
                                             rad * rng.uniform(0.25, 0.4),
                                             rad * rng.uniform(0.2, 0.3))
                    m -= 0.6 * lobe
                sign = st.polarity
                c = st.head_contrast * rng.uniform(0.4, 0.9) * cf
            else:
                size_um = math.exp(rng.uniform(math.log(1.0), math.log(15.0)))
                rad = size_um / 2 * ppu
                half = int(math.ceil(rad * 1.6 + 3 * s2 + 2))
                yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
                m = np.zeros_like(xx)
                for _ in range(int(rng.integers(1, 6))):
                    off = rng.normal(0, rad * 0.35, 2)
                    a = max(0.4, rad * rng.uniform(0.3, 0.8))
                    cov, _, _ = _ellipse_cover(xx - off[0], yy - off[1], rng.uniform(0, 3.14), a,
                                            max(0.35, a * rng.uniform(0.3, 1.0)))
                    m = np.maximum(m, cov)
                tex = cv2.GaussianBlur(rng.standard_normal(m.shape).astype(np.float32), (0, 0),
                                       0.8)
                m = m * np.clip(1 + 0.25 * tex, 0.3, 1.7)
                sign = st.polarity if rng.random() < 1.0 - cfg.debris_dark_frac else -st.polarity
                base = cfg.debris_contrast if cfg.debris_contrast >= 0 else st.head_contrast
                c = base * math.exp(rng.normal(-0.3, 0.5)) * cf
            patch = _dog(m.astype(np.float32), s1, s2, sign * c, halo)
            start = np.array([rng.uniform(-margin, self.w + margin),
                              rng.uniform(-margin, self.h + margin)])
            if kind == "debris" and rng.random() < 0.4:
                path = np.broadcast_to(start, (n, 2)).copy()  # stuck on the glass
            else:
                size_um = 2 * rad / ppu
                d_um = 0.15 * 3.0 / max(size_um, 1.0)
                walk = np.cumsum(rng.normal(0, math.sqrt(2 * d_um / cfg.fps), (n, 2)), 0) * ppu
                path = start + walk + self.drift_px - self.drift_px[0]
            out.append((patch, path))
        return out

    # ------------------------------------------------------------------ per frame
    def active(self, frame: int) -> list[int]:
        """Indices of cells alive at ``frame`` (head anywhere in the domain)."""
        return np.flatnonzero((self.first <= frame) & (frame < self.last)).tolist()

    def head_state(self, cell: Cell, frame: int) -> tuple[float, float, float, float, float]:
        """Head centre (px), yaw (rad), half length and apparent half width (px)."""
        x, y, yaw, a, b = head_geometry(cell, self.cfg.fps, self.px_per_um, frame - cell.f0)
        return float(x), float(y), float(yaw), float(a), float(b)

    def _draw_head(self, obj: np.ndarray, cell: Cell, frame: int) -> None:
        x, y, yaw, a, b = self.head_state(cell, frame)
        lk = cell.look
        k = frame - cell.f0
        s1, s2, cf, halo = self._optics(float(cell.height(k)), self.cfg.head_blur_um)
        # motion during the exposure, centred on the frame time (central difference)
        k0, k1 = max(k - 1, 0), min(k + 1, cell.n - 1)
        vx, vy = (cell.xy[k1] - cell.xy[k0]) * self.px_per_um / max(k1 - k0, 1)
        smear = self.cfg.exposure_frac * math.hypot(vx, vy)
        n_sub = 1 if smear < 0.35 else min(8, int(math.ceil(smear / 0.35)) + 1)
        s_glow = math.hypot(s1, self.cfg.glow_width_um * self.px_per_um)
        reach = max(s2, s_glow) if self.cfg.glow > 0 else s2
        half = int(math.ceil(a * 1.25 + 3 * reach + 1 + smear / 2))
        ix, iy = int(round(x)), int(round(y))
        if ix + half < 0 or iy + half < 0 or ix - half >= self.w or iy - half >= self.h:
            return
        r = np.arange(-half, half + 1, dtype=np.float32)
        m = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
        for j in range(n_sub):
            f = (j / (n_sub - 1) - 0.5) * self.cfg.exposure_frac if n_sub > 1 else 0.0
            dx = (r + (ix - x - f * vx))[None, :]
            dy = (r + (iy - y - f * vy))[:, None]
            cov, un, vn = _ellipse_cover(dx, dy, yaw, a, b, lk.pear)
            cov = cov * (1 + lk.gradient * un)
            if lk.vacuole > 0:
                cov = cov * (1 - lk.vacuole * np.exp(-((un - 0.3) ** 2 + vn ** 2) / 0.05))
            m += cov
        m /= n_sub
        edge_on = 1 + 0.25 * (1 - (b * 2 / self.px_per_um) / max(lk.width_um, 1e-6))
        c = self.style.polarity * self.style.head_contrast * lk.contrast * cf * edge_on
        patch = _dog(m, s1, s2, c, halo)
        if self.cfg.glow > 0:
            patch += (c * self.cfg.glow) * cv2.GaussianBlur(m, (0, 0), s_glow,
                                                            borderType=cv2.BORDER_CONSTANT)
        _add(obj, patch, iy - half, ix - half)

    def _tails(self, cells: list[Cell], frame: int) -> np.ndarray | None:
        """Splat the flagella of ``cells`` into a sharp line-density layer.

        Each flagellum is a curve of tangent angles ``heading + pi + curvature * s +
        A(s) cos(k s - phase) + still bends`` along its arc length ``s`` (a travelling wave
        whose amplitude grows towards the end), attached to the back of the head, sampled
        every 0.45 px and splatted bilinearly; contrast is higher on the midpiece, tapers
        along the flagellum and fades where it leaves the focal plane.
        """
        cells = [c for c in cells if c.look.tail_len_um > 0]
        if not cells:
            return None
        ppu = self.px_per_um
        ds = 0.45 / ppu  # µm between samples (< 0.5 px)
        line = math.sqrt(2 * math.pi) * self.tail_s1 * ds * ppu
        base_c = (self.style.polarity * self.style.head_contrast * self.cfg.flagellum_contrast
                  * self.style.tail_factor * self.cfg.tail_sign)
        n = len(cells)
        par = np.empty((n, 16))
        for i, cell in enumerate(cells):
            lk = cell.look
            k = frame - cell.f0
            x, y, yaw, a, _ = self.head_state(cell, frame)
            focus = 1.0 / (1 + (float(cell.defocus(k)) / 1.5) ** 2)
            par[i] = (x - a * math.cos(yaw), y - a * math.sin(yaw), cell.heading[k],
                      cell.phase[k], 2 * math.pi / lk.wavelength_um, lk.angle_amp_base,
                      lk.angle_amp_end, lk.tail_len_um, cell.tail_curv + lk.static_curv,
                      *lk.static_wiggle, lk.midpiece_um, lk.tail_fade_um,
                      base_c * lk.tail_contrast * focus * line, lk.droplet * base_c * 4 * line)
        (bx, by, heading, ph, kw, amp0, amp1, length, curv, w0, w1, w2, mid, fade, c,
         drop) = (par[:, j:j + 1] for j in range(16))
        s = np.arange(int(par[:, 7].max() / ds) + 1) * ds
        frac = s / length
        ang = (heading + math.pi + curv * s + (amp0 + (amp1 - amp0) * frac) * np.cos(kw * s - ph)
               + w0 * np.sin(w1 * s + w2))
        px = bx + np.cumsum(np.cos(ang), 1) * (ds * ppu)
        py = by + np.cumsum(np.sin(ang), 1) * (ds * ppu)
        taper = np.where(s < mid, 1.6, 1.0 - 0.5 * (s - mid) / length)
        taper = np.where(s > length - 5.0, 0.35, taper)
        wgt = c * taper * np.exp(-s / fade) * (s < length)
        j_drop = np.minimum((mid[:, 0] * 0.8 / ds).astype(np.int64), len(s) - 1)
        wgt[np.arange(n), j_drop] += drop[:, 0]
        px, py, wgt = px.ravel(), py.ravel(), wgt.ravel()
        keep = (px > -1) & (px < self.w) & (py > -1) & (py < self.h) & (wgt != 0)
        px, py, wgt = px[keep], py[keep], wgt[keep]
        x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        fx, fy = px - x0, py - y0
        wp, hp = self.w + 2, self.h + 2  # padded by one pixel on each side
        idx = (y0 + 1) * wp + (x0 + 1)
        acc = np.bincount(idx, wgt * (1 - fx) * (1 - fy), minlength=wp * hp)
        acc += np.bincount(idx + 1, wgt * fx * (1 - fy), minlength=wp * hp)
        acc += np.bincount(idx + wp, wgt * (1 - fx) * fy, minlength=wp * hp)
        acc += np.bincount(idx + wp + 1, wgt * fx * fy, minlength=wp * hp)
        return acc.reshape(hp, wp)[1:-1, 1:-1].astype(np.float32)

    def render(self, frame: int) -> np.ndarray:
        """Render one 8-bit grayscale frame (``(height, width)`` uint8)."""
        obj = np.zeros((self.h, self.w), np.float32)
        reach = 70.0 * self.px_per_um
        cells = []
        for i in self.active(frame):
            c = self.cells[i]
            x, y = c.xy[frame - c.f0] * self.px_per_um
            if -reach < x < self.w + reach and -reach < y < self.h + reach:
                cells.append(c)
        tails = self._tails(cells, frame)
        if tails is not None:
            obj += _dog(tails, self.tail_s1, self.tail_s2, 1.0, 0.5 * self.style.halo)
        for patch, path in self.debris:
            _stamp(obj, patch, float(path[frame, 0]), float(path[frame, 1]))
        for c in cells:
            self._draw_head(obj, c, frame)
        obj += 1.0
        img = cv2.multiply(self.background, obj, scale=float(self.flicker[frame]))
        noise = self.noise_rng.standard_normal(out=self._noise, dtype=np.float32)
        if self.cfg.shot_noise > 0:
            np.maximum(img, 0, out=obj)
            var = cv2.addWeighted(obj, self.cfg.shot_noise, obj, 0.0, self.cfg.noise_std ** 2)
            img += cv2.multiply(noise, cv2.sqrt(var))
        else:
            img += noise * self.cfg.noise_std
        np.maximum(img, 0, out=img)
        return cv2.convertScaleAbs(img)  # rounds and saturates at 255
