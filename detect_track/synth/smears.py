"""Synthetic stained still images: testicular touch-print smears and semen slides.

A bright-field stained preparation is rendered as light absorbed by two stains
(Beer-Lambert): every object adds hematoxylin (nuclei, blue-purple) and eosin (cytoplasm,
pink) optical density to two maps, and the image is ``background * exp(-(H od_H +
E od_E))`` per colour channel. Stain colours, strengths, background tint, uneven
illumination, focus, noise and JPEG compression vary per image; overlapping cells absorb
together, as on a real slide.

The six testicular cell types (sizes in µm, drawn per cell):

* ``sertoli``: large, irregular, pale nucleus (9-14 µm) with one prominent nucleolus,
  often in a wispy pale cytoplasm (18-30 µm);
* ``primary_spermatocyte``: the largest round germ cell (13-18 µm), large round nucleus
  with thread-like chromatin;
* ``round_spermatid``: small round cell (7-9 µm), dense round nucleus (4.5-6 µm), often an
  acrosomal granule;
* ``elongated_spermatid``: elongated dense nucleus (4.5-7 x 1.5-2.5 µm) in a cytoplasm
  remnant, sometimes a short tail;
* ``immature_sperm``: sperm head with a cytoplasmic droplet at the neck, and a tail;
* ``mature_sperm``: sperm head (4-5 x 2.5-3.2 µm, pale acrosome), midpiece and tail.

Unlabelled look-alikes are added too: red blood cells, lymphocytes, debris specks and
nuclear fragments. A box covers the whole cell for the first four types and the head
(with its droplet) for sperm, whose long thin tails would otherwise make boxes mostly
background; the smallest boxes are ~8 px at the default 0.55 µm/px of a 768x1024 image.

:func:`render_smear` draws one image; :func:`build_still_dataset` writes a YOLO + COCO
dataset of many (``preset="testicular"`` or ``"slide"``, where sperm on a semen slide
are rendered at 100x).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detect_track.errors import ConfigError
from detect_track.io.datasets import add_coco_image, write_data_yaml, write_yolo_labels

#: Classes of the testicular smear models (index = class id).
SMEAR_CLASSES: tuple[str, ...] = ("sertoli", "primary_spermatocyte", "round_spermatid",
                                  "elongated_spermatid", "immature_sperm", "mature_sperm")
#: Classes of the synthetic semen slides: whole cell and head (as the real-slide model).
SLIDE_CLASSES: tuple[str, ...] = ("sperm", "sperm_head")

#: Optical density per unit stain in R, G, B (Ruifrok & Johnston's H&E vectors).
_OD_H = np.array([0.65, 0.70, 0.29])
_OD_E = np.array([0.07, 0.99, 0.11])


@dataclass(frozen=True)
class SmearSpec:
    """How one synthetic still image is drawn.

    Attributes:
        width_px: Image width in px.
        height_px: Image height in px.
        um_per_px: Micrometres per pixel (0.55: a 40x smear where a sperm head is ~8 px).
        n_cells: Labelled cells in the image (before those cut by the edge are dropped).
        mix: Relative frequency of each labelled class (``SMEAR_CLASSES`` order; for the
            slide preset only mature and immature sperm are drawn).
        n_confusers: Unlabelled look-alikes (red cells, lymphocytes, debris).
        clumping: Fraction of cells placed in clusters (touch prints are patchy).
        preset: ``"testicular"`` or ``"slide"``.
    """

    width_px: int = 1024
    height_px: int = 768
    um_per_px: float = 0.55
    n_cells: int = 120
    mix: tuple[float, ...] = (0.06, 0.14, 0.28, 0.2, 0.12, 0.2)
    n_confusers: int = 30
    clumping: float = 0.5
    preset: str = "testicular"

    def __post_init__(self) -> None:
        if self.width_px < 32 or self.height_px < 32:
            raise ConfigError("images must be at least 32 x 32 px")
        if not 0.02 <= self.um_per_px <= 5.0:
            raise ConfigError(f"um_per_px {self.um_per_px} is outside 0.02-5")
        if len(self.mix) != len(SMEAR_CLASSES) or min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ConfigError(f"mix needs {len(SMEAR_CLASSES)} non-negative weights")
        if self.preset not in ("testicular", "slide"):
            raise ConfigError(f"preset must be 'testicular' or 'slide', not {self.preset!r}")


@dataclass
class SmearImage:
    """One rendered image and its truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR.
        boxes: ``(N, 4)`` float ``x1, y1, x2, y2`` in px.
        classes: ``(N,)`` int class ids (``SMEAR_CLASSES`` or ``SLIDE_CLASSES``).
        names: Class names.
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    names: tuple[str, ...] = field(default=SMEAR_CLASSES)


class _Canvas:
    """Hematoxylin and eosin density maps with a margin, so cells may cross the edge."""

    def __init__(self, h: int, w: int, margin: int) -> None:
        self.m = margin
        self.h_map = np.zeros((h + 2 * margin, w + 2 * margin), np.float32)
        self.e_map = np.zeros_like(self.h_map)

    def add(self, which: str, x0: int, y0: int, patch: np.ndarray) -> None:
        """Add a density patch whose top-left corner is at image ``(x0, y0)``."""
        target = self.h_map if which == "h" else self.e_map
        ys, xs = y0 + self.m, x0 + self.m
        ph, pw = patch.shape
        y1, x1 = max(ys, 0), max(xs, 0)
        y2, x2 = min(ys + ph, target.shape[0]), min(xs + pw, target.shape[1])
        if y2 > y1 and x2 > x1:
            target[y1:y2, x1:x2] += patch[y1 - ys:y2 - ys, x1 - xs:x2 - xs]


def _blob(a_px: float, b_px: float, angle: float, rough: float, rng: np.random.Generator,
          soft_px: float = 0.7, harmonics: int = 5) -> tuple[np.ndarray, int]:
    """Anti-aliased mask of a rough ellipse (semi-axes ``a_px`` along ``angle``, ``b_px``).

    Returns:
        The mask ``(S, S)`` in [0, 1] centred in its patch, and the patch half-size.
    """
    amp = rng.normal(0, rough, harmonics) / np.arange(1, harmonics + 1)
    amp[0] = 0.0
    phase = rng.uniform(0, 2 * math.pi, harmonics)
    half = int(math.ceil(max(a_px, b_px) * (1 + np.abs(amp).sum()) + 3))
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u = (xx * c + yy * s) / max(a_px, 0.3)
    v = (-xx * s + yy * c) / max(b_px, 0.3)
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    edge = 1 + sum(amp[k] * np.cos((k + 1) * theta + phase[k]) for k in range(harmonics))
    scale = min(a_px, b_px) / max(soft_px, 0.2)
    return np.clip((edge - rho) * scale + 0.5, 0, 1).astype(np.float32), half


def _texture(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Smooth noise ``shape`` with zero mean and unit std (granular chromatin)."""
    t = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), max(sigma, 0.3))
    return (t - t.mean()) / max(float(t.std()), 1e-6)


def _threads(size: int, rng: np.random.Generator, n: int, step: float) -> np.ndarray:
    """Thread-like chromatin: ``n`` random curvy strands in a ``size`` x ``size`` patch."""
    canvas = np.zeros((size * 4, size * 4), np.uint8)
    for _ in range(n):
        p = rng.uniform(0.2, 0.8, 2) * size * 4
        heading = rng.uniform(0, 2 * math.pi)
        pts = []
        for _ in range(int(rng.integers(5, 12))):
            pts.append(p.copy())
            heading += rng.normal(0, 0.6)
            p = p + 4 * step * np.array([math.cos(heading), math.sin(heading)])
        cv2.polylines(canvas, [np.int32(pts)], False, 255, max(1, round(2.5 * step / 2)),
                      cv2.LINE_AA)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _curve_patch(points: np.ndarray, thickness_px: float) -> tuple[np.ndarray, int, int]:
    """Anti-aliased polyline (``(K, 2)`` image px) as a density patch and its corner."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 3
    up = 4
    canvas = np.zeros(((y1 - y0) * up, (x1 - x0) * up), np.uint8)
    pts = np.int32(np.round((points - [x0, y0]) * up * 16))
    cv2.polylines(canvas, [pts], False, 255, max(1, round(thickness_px * up)), cv2.LINE_AA,
                  shift=4)
    patch = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return patch.astype(np.float32) / 255, int(x0), int(y0)


def _box_of(mask: np.ndarray, x0: int, y0: int, level: float = 0.3) -> np.ndarray | None:
    ys, xs = np.nonzero(mask > level)
    if not len(xs):
        return None
    return np.array([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], float)


def _union(boxes: list[np.ndarray | None]) -> np.ndarray:
    b = np.array([x for x in boxes if x is not None])
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])


class _Painter:
    """Draws cells into a :class:`_Canvas`; sizes in µm, drawn per cell."""

    def __init__(self, canvas: _Canvas, um_per_px: float, rng: np.random.Generator,
                 soft_px: float) -> None:
        self.c, self.s, self.rng, self.soft = canvas, 1.0 / um_per_px, rng, soft_px

    def px(self, lo_um: float, hi_um: float) -> float:
        return float(self.rng.uniform(lo_um, hi_um)) * self.s

    def blob(self, which: str, cx: float, cy: float, a: float, b: float, angle: float,
             rough: float, density: float | np.ndarray, texture: float = 0.0,
             tex_sigma: float = 1.0) -> tuple[np.ndarray, int, int]:
        """One rough ellipse of stain; returns its mask and top-left corner."""
        mask, half = _blob(a, b, angle, rough, self.rng, self.soft)
        x0, y0 = round(cx) - half, round(cy) - half
        dens = mask * density
        if texture:
            dens = dens * np.clip(1 + texture * _texture(mask.shape, self.rng, tex_sigma), 0, 3)
        self.c.add(which, x0, y0, dens)
        return mask, x0, y0

    # ---- the six cell types ------------------------------------------------------------
    def sertoli(self, cx: float, cy: float) -> np.ndarray:
        r = self.rng
        boxes = []
        if r.random() < 0.75:  # wispy, pale, irregular cytoplasm
            m, x0, y0 = self.blob("e", cx + r.normal(0, 2 * self.s), cy + r.normal(0, 2 * self.s),
                                  self.px(9, 15), self.px(7, 12), r.uniform(0, math.pi), 0.35,
                                  r.uniform(0.08, 0.2), texture=0.5, tex_sigma=2.0)
            boxes.append(_box_of(m, x0, y0, 0.5))
        a, b = self.px(5, 7.5), self.px(3.5, 5)
        ang = r.uniform(0, math.pi)
        m, x0, y0 = self.blob("h", cx, cy, a, b, ang, 0.25, r.uniform(0.22, 0.38),
                              texture=0.25, tex_sigma=0.8)
        boxes.append(_box_of(m, x0, y0))
        d = r.uniform(-0.3, 0.3, 2) * [a, b]  # a prominent nucleolus
        self.blob("h", cx + d[0], cy + d[1], self.px(0.8, 1.3), self.px(0.8, 1.3), 0, 0.05,
                  r.uniform(0.9, 1.4))
        self.blob("e", cx + d[0], cy + d[1], self.px(1.2, 1.8), self.px(1.2, 1.8), 0, 0.05, 0.2)
        return _union(boxes)

    def spermatocyte(self, cx: float, cy: float) -> np.ndarray:
        r = self.rng
        rc = self.px(6.5, 9)
        m, x0, y0 = self.blob("e", cx, cy, rc, rc * r.uniform(0.85, 1.0), r.uniform(0, math.pi),
                              0.06, r.uniform(0.15, 0.3), texture=0.2, tex_sigma=1.5)
        rn = rc * r.uniform(0.62, 0.75)
        mn, xn, yn = self.blob("h", cx + r.normal(0, 0.05 * rc), cy + r.normal(0, 0.05 * rc),
                               rn, rn * r.uniform(0.88, 1.0), r.uniform(0, math.pi), 0.04,
                               r.uniform(0.25, 0.4))
        th = _threads(mn.shape[0], r, int(r.integers(6, 12)), max(rn / 4, 1.0))
        self.c.add("h", xn, yn, mn * th * r.uniform(0.6, 1.0))
        return _union([_box_of(m, x0, y0), _box_of(mn, xn, yn)])

    def round_spermatid(self, cx: float, cy: float) -> np.ndarray:
        r = self.rng
        rc = self.px(3.5, 4.5)
        m, x0, y0 = self.blob("e", cx, cy, rc, rc * r.uniform(0.85, 1.0), r.uniform(0, math.pi),
                              0.08, r.uniform(0.15, 0.3))
        rn = self.px(2.2, 3.0)
        off = r.normal(0, 0.15, 2) * rc
        mn, xn, yn = self.blob("h", cx + off[0], cy + off[1], rn, rn * r.uniform(0.9, 1.0), 0,
                               0.04, r.uniform(0.7, 1.0), texture=0.15, tex_sigma=0.7)
        if r.random() < 0.6:  # acrosomal granule / cap: a pale spot on the nucleus
            ang = r.uniform(0, 2 * math.pi)
            gx, gy = cx + off[0] + 0.6 * rn * math.cos(ang), cy + off[1] + 0.6 * rn * math.sin(ang)
            g, half = _blob(0.45 * rn, 0.45 * rn, 0, 0.05, r, self.soft)
            self.c.add("h", round(gx) - half, round(gy) - half, -0.35 * g)
        return _union([_box_of(m, x0, y0), _box_of(mn, xn, yn)])

    def tail(self, hx: float, hy: float, direction: float, length_um: float,
             width_um: float, density: float, midpiece_um: float = 0.0) -> None:
        """A sperm tail from ``(hx, hy)`` heading ``direction`` (radians), gently waving."""
        r = self.rng
        step = 2.0
        n = max(2, int(length_um * self.s / step))
        turn = r.normal(0, 0.02)
        pts, p, a = [], np.array([hx, hy], float), direction
        for _ in range(n):
            pts.append(p.copy())
            a += turn + r.normal(0, 0.05)
            p = p + step * np.array([math.cos(a), math.sin(a)])
        pts_arr = np.array(pts)
        patch, x0, y0 = _curve_patch(pts_arr, max(width_um * self.s, 0.6))
        self.c.add("e", x0, y0, patch * density)
        self.c.add("h", x0, y0, patch * density * 0.3)
        if midpiece_um > 0:
            k = max(2, int(midpiece_um * self.s / step))
            mp, mx, my = _curve_patch(pts_arr[:k], max(2 * width_um * self.s, 0.8))
            self.c.add("e", mx, my, mp * density * 0.8)

    def sperm_head(self, cx: float, cy: float, angle: float) -> tuple[np.ndarray, int, int]:
        """A head (dense nucleus, paler acrosome at the front) pointing along ``angle``."""
        r = self.rng
        a, b = self.px(2.0, 2.6), self.px(1.25, 1.6)
        m, x0, y0 = self.blob("h", cx, cy, a, b, angle, 0.03, r.uniform(0.9, 1.3),
                              texture=0.1, tex_sigma=0.6)
        c, s = math.cos(angle), math.sin(angle)  # acrosome: front 40-60 % paler
        yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]].astype(np.float32)
        half = (m.shape[0] - 1) / 2
        along = ((xx - half) * c + (yy - half) * s) / a
        front = np.clip((along - r.uniform(-0.1, 0.2)) * 3, 0, 1)
        self.c.add("h", x0, y0, -m * front * r.uniform(0.3, 0.5))
        return m, x0, y0

    def sperm(self, cx: float, cy: float, droplet: bool) -> np.ndarray:
        r = self.rng
        angle = r.uniform(0, 2 * math.pi)
        m, x0, y0 = self.sperm_head(cx, cy, angle)
        hl = 2.3 * self.s
        nx, ny = cx - hl * math.cos(angle), cy - hl * math.sin(angle)
        boxes = [_box_of(m, x0, y0)]
        if droplet:
            rd = self.px(1.2, 2.0)
            dx, dy = nx - 0.6 * rd * math.cos(angle), ny - 0.6 * rd * math.sin(angle)
            md, xd, yd = self.blob("e", dx, dy, rd, rd * r.uniform(0.7, 1.0),
                                   r.uniform(0, math.pi), 0.1, r.uniform(0.35, 0.6))
            self.c.add("h", xd, yd, md * r.uniform(0.03, 0.1))
            boxes.append(_box_of(md, xd, yd))
        if r.random() < 0.92:
            self.tail(nx, ny, angle + math.pi + r.normal(0, 0.2), r.uniform(25, 50),
                      r.uniform(0.35, 0.6), r.uniform(0.35, 0.7), midpiece_um=5.0)
        return _union(boxes)

    def elongated_spermatid(self, cx: float, cy: float) -> np.ndarray:
        r = self.rng
        angle = r.uniform(0, 2 * math.pi)
        a, b = self.px(2.3, 3.5), self.px(0.75, 1.25)
        boxes = []
        if r.random() < 0.8:  # residual cytoplasm, behind the nucleus
            rc = self.px(2.5, 4.5)
            off = -a * r.uniform(0.3, 1.0)
            m, x0, y0 = self.blob("e", cx + off * math.cos(angle), cy + off * math.sin(angle),
                                  rc, rc * r.uniform(0.6, 1.0), r.uniform(0, math.pi), 0.2,
                                  r.uniform(0.15, 0.35))
            boxes.append(_box_of(m, x0, y0))
        m, x0, y0 = self.blob("h", cx, cy, a, b, angle, 0.06, r.uniform(1.1, 1.6))
        boxes.append(_box_of(m, x0, y0))
        if r.random() < 0.4:
            self.tail(cx - a * math.cos(angle), cy - a * math.sin(angle), angle + math.pi,
                      r.uniform(8, 25), 0.45, r.uniform(0.3, 0.5))
        return _union(boxes)

    # ---- unlabelled look-alikes ----------------------------------------------------
    def confuser(self, cx: float, cy: float) -> None:
        r = self.rng
        kind = r.choice(["rbc", "rbc", "lymphocyte", "speck", "speck", "fragment"])
        if kind == "rbc":  # eosin disc with central pallor
            rr = self.px(3.4, 4.0)
            m, x0, y0 = self.blob("e", cx, cy, rr, rr * r.uniform(0.9, 1.0), 0, 0.03,
                                  r.uniform(0.5, 0.8))
            inner, _ = _blob(0.55 * rr, 0.55 * rr, 0, 0.03, r, 2.0)
            half = (inner.shape[0] - 1) // 2
            self.c.add("e", round(cx) - half, round(cy) - half, -0.4 * inner)
        elif kind == "lymphocyte":
            rn = self.px(3.0, 3.6)
            self.blob("e", cx, cy, rn * 1.15, rn * 1.1, 0, 0.05, 0.2)
            self.blob("h", cx, cy, rn, rn * r.uniform(0.9, 1.0), 0, 0.08, r.uniform(1.0, 1.4),
                      texture=0.3, tex_sigma=0.8)
        elif kind == "speck":
            rs = self.px(0.3, 1.5)
            self.blob("h" if r.random() < 0.6 else "e", cx, cy, rs, rs * r.uniform(0.5, 1), 0,
                      0.3, r.uniform(0.4, 1.5))
        else:  # fragment of a broken nucleus
            self.blob("h", cx, cy, self.px(1.5, 4), self.px(1, 2.5), r.uniform(0, math.pi), 0.5,
                      r.uniform(0.3, 0.8))


def _positions(spec: SmearSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` cell centres: part uniform, part in a few clusters (patchy prints)."""
    w, h = spec.width_px, spec.height_px
    n_clumped = int(round(n * spec.clumping))
    pts = [rng.uniform([0, 0], [w, h], (n - n_clumped, 2))]
    if n_clumped:
        centres = rng.uniform([0, 0], [w, h], (max(1, n_clumped // 25), 2))
        spread = rng.uniform(0.04, 0.12) * min(w, h)
        pick = centres[rng.integers(0, len(centres), n_clumped)]
        pts.append(pick + rng.normal(0, spread, (n_clumped, 2)))
    return np.clip(np.concatenate(pts), [-10, -10], [w + 10, h + 10])


def render_smear(spec: SmearSpec, seed: int) -> SmearImage:
    """Render one stained still image and its boxes.

    Args:
        spec: Image size, scale, cell numbers and mix.
        seed: Random seed (same seed, same image).

    Returns:
        The image (BGR uint8) and one box per labelled cell at least half inside it.
    """
    rng = np.random.default_rng(seed)
    w, h = spec.width_px, spec.height_px
    margin = int(60 / spec.um_per_px)
    canvas = _Canvas(h, w, margin)
    soft = float(rng.uniform(0.5, 1.0))
    painter = _Painter(canvas, spec.um_per_px, rng, soft)
    mix = np.asarray(spec.mix, float)
    if spec.preset == "testicular":
        mix = mix * rng.uniform(0.3, 1.7, len(mix)) * (rng.random(len(mix)) > 0.05)
        if mix.sum() == 0:
            mix = np.asarray(spec.mix, float)
    else:
        mix = np.array([0, 0, 0, 0, rng.uniform(0.05, 0.3), 1.0])
    cls = rng.choice(len(mix), spec.n_cells, p=mix / mix.sum())
    pos = _positions(spec, spec.n_cells, rng)
    boxes, classes, placed = [], [], np.zeros((0, 3))
    min_gap = {0: 10.0, 1: 7.0, 2: 3.5, 3: 2.5, 4: 2.5, 5: 2.5}  # µm, centre to centre
    for k, (x, y) in zip(cls, pos, strict=True):
        gap = min_gap[int(k)] / spec.um_per_px
        if len(placed):
            d = np.hypot(placed[:, 0] - x, placed[:, 1] - y)
            if np.any(d < 0.6 * (gap + placed[:, 2])):
                continue  # too close to a cell already there: touching is fine, stacking not
        placed = np.vstack([placed, [x, y, gap]])
        if spec.preset == "slide":
            box = _slide_sperm(painter, x, y, droplet=bool(k == 4))
            boxes.extend(box)
            classes.extend([0, 1])
            continue
        draw = (painter.sertoli, painter.spermatocyte, painter.round_spermatid,
                painter.elongated_spermatid)
        if k < 4:
            box = draw[int(k)](x, y)
        else:
            box = painter.sperm(x, y, droplet=bool(k == 4))
        boxes.append(box)
        classes.append(int(k))
    for x, y in rng.uniform([0, 0], [w, h], (spec.n_confusers, 2)):
        painter.confuser(x, y)
    image = _expose(canvas, rng)
    b = np.asarray(boxes, float).reshape(-1, 4)
    c = np.asarray(classes, np.int64)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    clipped = np.clip(b, 0, [w, h, w, h])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) / area >= 0.5
    names = SLIDE_CLASSES if spec.preset == "slide" else SMEAR_CLASSES
    return SmearImage(image, clipped[inside], c[inside], names)


def _slide_sperm(painter: _Painter, x: float, y: float, droplet: bool) -> list[np.ndarray]:
    """A sperm on a semen slide: boxes of the whole cell (head to tail end) and the head."""
    r = painter.rng
    angle = r.uniform(0, 2 * math.pi)
    m, x0, y0 = painter.sperm_head(x, y, angle)
    head = _box_of(m, x0, y0)
    hl = 2.3 * painter.s
    nx, ny = x - hl * math.cos(angle), y - hl * math.sin(angle)
    if droplet:
        rd = painter.px(1.0, 1.6)
        painter.blob("e", nx - 0.5 * rd * math.cos(angle), ny - 0.5 * rd * math.sin(angle),
                     rd, rd * 0.8, angle, 0.1, r.uniform(0.3, 0.5))
    before_h, before_e = painter.c.h_map.copy(), painter.c.e_map.copy()
    painter.tail(nx, ny, angle + math.pi + r.normal(0, 0.3), r.uniform(35, 50),
                 r.uniform(0.4, 0.7), r.uniform(0.4, 0.8), midpiece_um=5.0)
    added = (painter.c.h_map - before_h) + (painter.c.e_map - before_e)
    ys, xs = np.nonzero(added > 0.05)
    m0 = painter.c.m
    whole = np.array([xs.min() - m0, ys.min() - m0, xs.max() + 1 - m0, ys.max() + 1 - m0], float) \
        if len(xs) else head
    assert head is not None
    return [_union([whole, head]), head]


def _expose(canvas: _Canvas, rng: np.random.Generator) -> np.ndarray:
    """Stain densities to a bright-field colour image with this image's optics."""
    m = canvas.m
    dens_h = canvas.h_map[m:-m, m:-m]
    dens_e = canvas.e_map[m:-m, m:-m]
    h, w = dens_h.shape
    od_h = np.clip(_OD_H + rng.normal(0, 0.06, 3), 0.05, 1.2)
    od_e = np.clip(_OD_E + rng.normal(0, 0.06, 3), 0.02, 1.2)
    k_h, k_e = rng.uniform(0.6, 1.5), rng.uniform(0.4, 1.4)
    haze = cv2.resize(rng.uniform(0, 1, (8, 8)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC) * rng.uniform(0, 0.12)
    od = (np.maximum(dens_h, 0)[..., None] * od_h * k_h
          + np.maximum(dens_e + haze, 0)[..., None] * od_e * k_e)
    bg = np.array([rng.uniform(225, 250), rng.uniform(220, 245), rng.uniform(225, 250)])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    light = (1 - rng.uniform(0, 0.25) * r2) * cv2.resize(
        rng.uniform(0.93, 1.0, (4, 4)).astype(np.float32), (w, h),
        interpolation=cv2.INTER_CUBIC)
    rgb = bg * light[..., None] * np.exp(-od)
    sigma = rng.uniform(0.2, 1.3)  # focus
    rgb = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), sigma)
    rgb = rgb + rng.normal(0, rng.uniform(1, 5), rgb.shape).astype(np.float32)
    bgr = np.clip(rgb[..., ::-1], 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # a JPEG on the way
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 95))])
        if ok:
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return bgr


def random_spec(rng: np.random.Generator, preset: str = "testicular") -> SmearSpec:
    """Widely varied conditions: density, scale (+-20 %), clumping, look-alikes."""
    if preset == "slide":
        return SmearSpec(um_per_px=float(rng.uniform(0.08, 0.12)),
                         n_cells=int(rng.integers(3, 25)), n_confusers=int(rng.integers(0, 40)),
                         clumping=float(rng.uniform(0, 0.3)), preset="slide")
    return SmearSpec(um_per_px=float(0.55 * rng.uniform(0.85, 1.2)),
                     n_cells=int(rng.integers(20, 260)),
                     n_confusers=int(rng.integers(5, 80)),
                     clumping=float(rng.uniform(0.1, 0.8)))


def build_still_dataset(out_dir: str | Path, n_train: int, n_val: int, n_test: int = 0,
                        seed: int = 0, preset: str = "testicular", gray: bool = True,
                        progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a YOLO + COCO dataset of synthetic stained images.

    Image ``i`` of split ``s`` uses seed ``seed * 1_000_003 + offset(s) + i``, so the splits
    never share an image.

    Args:
        out_dir: Dataset folder: ``images/<split>/*.png``, ``labels/<split>/*.txt``
            (YOLO), ``annotations/<split>.json`` (COCO, 1-based categories), ``data.yaml``,
            ``dataset.json`` (specs and seeds).
        n_train: Training images.
        n_val: Validation images.
        n_test: Held-out test images (split ``test``).
        seed: Base seed.
        preset: ``"testicular"`` (six cell types) or ``"slide"`` (whole sperm + heads).
        gray: Store 8-bit gray images (what the detectors see).
        progress: ``progress(done, total)`` after each image.

    Returns:
        Path of ``data.yaml``.
    """
    out = Path(out_dir)
    names = SLIDE_CLASSES if preset == "slide" else SMEAR_CLASSES
    splits = {"train": (n_train, 0), "val": (n_val, 500_000), "test": (n_test, 900_000)}
    total, done = n_train + n_val + n_test, 0
    record: dict[str, list[dict]] = {}
    for split, (n, offset) in splits.items():
        if not n:
            continue
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        (out / "annotations").mkdir(parents=True, exist_ok=True)
        coco: dict[str, list] = {"images": [], "annotations": [], "categories": [
            {"id": k + 1, "name": nm} for k, nm in enumerate(names)]}
        record[split] = []
        for i in range(n):
            s = seed * 1_000_003 + offset + i
            spec = random_spec(np.random.default_rng(s), preset)
            img = render_smear(spec, s)
            name = f"{split}_{i:05d}"
            pixels = cv2.cvtColor(img.image, cv2.COLOR_BGR2GRAY) if gray else img.image
            cv2.imwrite(str(out / "images" / split / f"{name}.png"), pixels)
            hh, ww = img.image.shape[:2]
            write_yolo_labels(out / "labels" / split / f"{name}.txt", img.boxes, img.classes,
                              ww, hh)
            add_coco_image(coco, f"{name}.png", ww, hh, img.boxes, img.classes)
            record[split].append({"seed": s, **asdict(spec)})
            done += 1
            if progress is not None:
                progress(done, total)
        (out / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    path = write_data_yaml(out, list(record), names)
    (out / "dataset.json").write_text(json.dumps({"preset": preset, "seed": seed,
                                                  "images": record}, indent=1))
    return path


__all__ = ["SLIDE_CLASSES", "SMEAR_CLASSES", "SmearImage", "SmearSpec", "build_still_dataset",
           "random_spec", "render_smear"]
