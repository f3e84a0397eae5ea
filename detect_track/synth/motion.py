"""Motion of simulated sperm: head paths, beat phases and appearance parameters.

Every cell "life" is a :class:`Cell`: its head centre in µm at each frame from its first
frame until it leaves the simulated domain (the field of view plus a margin) or the video
ends. A swimmer that leaves the domain is replaced by a new life of the same class entering
at the domain boundary, so the population stays constant and cells enter and leave the
field.

Models (positions in µm, time in s, sampled at the frame times):

* **progressive**: an average path, straight or gently curved (radius >= 150 µm), speed
  VAP, with a lateral sinusoidal head oscillation (ALH peak-to-peak, beat frequency <=
  fps / 4) with phase and amplitude jitter, a small surge at twice the beat frequency.
* **non-progressive**: ``circling`` (radius 4-15 µm, 10-40 µm/s), ``wandering`` (6-18 µm/s,
  random heading) or ``twitching`` (beating in place).
* **immotile**: Brownian jitter; ``agglutinated`` heads stuck together in small clusters.

All cells, debris included, share a slow common drift of the sample.

The label of every life is checked against the WHO rule on its *true* kinematics
(:func:`detect_track.measure.kinematics.compute_kinematics` on each stretch inside the field, the
gates of :func:`detect_track.measure.motility.classify_motility`): parameters whose kinematics land
near a gate are redrawn, so labels and rule agree for nearly all tracks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detect_track.config import MotilityConfig
from detect_track.measure.kinematics import compute_kinematics

from .config import SynthConfig

#: Relative margins around the WHO gates that accepted parameters must clear.
GATE_MARGIN_VAP = 0.12
GATE_MARGIN_STR = 0.06
#: Stretches shorter than this many frames are not checked against the rule.
MIN_CHECK_FRAMES = 6
MAX_DRAWS = 40
#: A track continues while its head box widened by this fraction of its ALH overlaps the field.
SWING = 0.6


@dataclass
class HeadLook:
    """Appearance of one cell (sizes in µm, contrasts relative to the look's head contrast)."""

    length_um: float  # head length (long axis)
    width_um: float  # head width (short axis, seen flat)
    pear: float  # >0: wider at the front, narrower towards the neck
    roll_min: float  # apparent width / width when the head is seen edge-on
    roll_hz: float  # rotation rate of the head about its long axis
    roll_phase: float  # initial roll angle (rad)
    contrast: float  # multiplies the look's head contrast
    defocus_um: float  # distance from the focal plane
    z_sign: float  # +1: above the focal plane, -1: below
    gradient: float  # brightness gradient along the head (acrosome vs post-acrosome)
    vacuole: float  # depth of a small vacuole spot (0 = none)
    tail_len_um: float  # midpiece + principal piece + end piece
    midpiece_um: float  # length of the brighter, thicker midpiece
    wavelength_um: float  # flagellar wavelength
    angle_amp_base: float  # tangent-angle amplitude at the neck (rad) = head yaw amplitude
    angle_amp_end: float  # tangent-angle amplitude at the tail end (rad)
    tail_fade_um: float  # e-folding length of flagellum contrast (leaves the focal plane)
    tail_contrast: float  # multiplies the flagellum contrast
    static_curv: float  # mean curvature of the flagellum (1/µm)
    static_wiggle: tuple[float, float, float] = (0.0, 0.0, 0.0)  # still bends (rad, 1/µm, rad)
    droplet: float = 0.0  # cytoplasmic droplet on the midpiece (relative size, 0 = none)


@dataclass
class Cell:
    """One life of one sperm cell inside the simulated domain.

    Attributes:
        agent_id: Index of this life (0-based, unique within a video).
        motility: Generating class: progressive | non_progressive | immotile.
        behaviour: straight, curved, crossing, circling, wandering, twitching, brownian,
            agglutinated.
        f0: First frame of the life (0-based).
        z: Height above (+) or below (-) the focal plane per frame (µm), for cells that
            swim up or down out of focus; None = constant ``look.defocus_um``.
        xy: Head centre, ``(n, 2)`` µm, for frames ``f0 .. f0 + n - 1``.
        heading: Direction of the body axis / average path (rad), ``(n,)``.
        phase: Beat phase (rad), ``(n,)``; the flagellar wave and head yaw follow it.
        look: Appearance parameters.
        params: Generating parameters written to the truth (target VAP, ALH, beat, ...).
        cluster_id: Agglutinate index, or -1.
    """

    agent_id: int
    motility: str
    behaviour: str
    f0: int
    xy: np.ndarray
    heading: np.ndarray
    phase: np.ndarray
    look: HeadLook
    params: dict[str, Any] = field(default_factory=dict)
    cluster_id: int = -1
    tail_curv: float = 0.0  # mean curvature of the flagellum imposed by the path (1/µm)
    z: np.ndarray | None = None  # distance from the focal plane per frame (µm); None = fixed

    def height(self, k: int | slice = slice(None)) -> Any:
        """Height above (+) or below (-) the focal plane (µm) at life frame(s) ``k``."""
        if self.z is None:
            z0 = self.look.z_sign * self.look.defocus_um
            return z0 if isinstance(k, (int, np.integer)) else np.full(len(self.xy[k]), z0)
        return self.z[k]

    def defocus(self, k: int | slice = slice(None)) -> Any:
        """Distance from the focal plane (µm) at life frame(s) ``k``."""
        return np.abs(self.height(k))

    @property
    def n(self) -> int:
        """Number of frames of this life."""
        return len(self.xy)

    def yaw(self) -> np.ndarray:
        """Direction of the head's long axis (rad), following the beat, ``(n,)``."""
        return self.heading + self.look.angle_amp_base * np.cos(self.phase)


def _clear_of_gates(label: str, vcl: float, vap: float, straightness: float, alh: float) -> bool:
    """True if the kinematics give ``label`` with a margin around every gate."""
    c = MotilityConfig()
    mv, ms = GATE_MARGIN_VAP, GATE_MARGIN_STR
    if not (math.isfinite(vap) and math.isfinite(vcl)):
        return label == "immotile"
    s = straightness if math.isfinite(straightness) else 0.0
    a = alh if math.isfinite(alh) else 0.0
    if label == "progressive":
        return vap >= c.progressive_vap_um_s * (1 + mv) and s >= c.progressive_str + ms
    not_prog = vap <= c.progressive_vap_um_s * (1 - mv) or s <= c.progressive_str - ms
    beating = vcl >= c.immotile_vcl_um_s * (1 + mv) and a >= c.immotile_alh_um * (1 + 2 * mv)
    not_beating = vcl <= c.immotile_vcl_um_s * (1 - mv) or a <= c.immotile_alh_um * (1 - 2 * mv)
    if label == "immotile":
        return vap <= c.immotile_vap_um_s * (1 - 2 * mv) and not_beating and not_prog
    return not_prog and (vap >= c.immotile_vap_um_s * (1 + 2 * mv) or beating)


class _Domain:
    """Field of view and simulated domain in µm (pixel centres at integer px)."""

    def __init__(self, cfg: SynthConfig) -> None:
        u = cfg.um_per_px
        self.fx0, self.fy0 = -0.5 * u, -0.5 * u
        self.fx1, self.fy1 = (cfg.width_px - 0.5) * u, (cfg.height_px - 0.5) * u
        m = cfg.margin_um
        self.x0, self.y0, self.x1, self.y1 = self.fx0 - m, self.fy0 - m, self.fx1 + m, self.fy1 + m

    def in_domain(self, xy: np.ndarray) -> np.ndarray:
        x, y = xy[..., 0], xy[..., 1]
        return (x >= self.x0) & (x <= self.x1) & (y >= self.y0) & (y <= self.y1)

    def uniform(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.uniform(self.x0, self.x1), rng.uniform(self.y0, self.y1)])

    def in_field_point(self, rng: np.random.Generator, frac: float) -> np.ndarray:
        cx, cy = (self.fx0 + self.fx1) / 2, (self.fy0 + self.fy1) / 2
        hw, hh = (self.fx1 - self.fx0) / 2 * frac, (self.fy1 - self.fy0) / 2 * frac
        return np.array([rng.uniform(cx - hw, cx + hw), rng.uniform(cy - hh, cy + hh)])

    def boundary(self, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """A point on the domain boundary and the inward normal direction (rad)."""
        w, h = self.x1 - self.x0, self.y1 - self.y0
        s = rng.uniform(0, 2 * (w + h))
        if s < w:
            return np.array([self.x0 + s, self.y0 + 0.5]), math.pi / 2
        if s < 2 * w:
            return np.array([self.x0 + s - w, self.y1 - 0.5]), -math.pi / 2
        s -= 2 * w
        if s < h:
            return np.array([self.x0 + 0.5, self.y0 + s]), 0.0
        return np.array([self.x1 - 0.5, self.y0 + s - h]), math.pi

    def wrap(self, xy: np.ndarray) -> np.ndarray:
        w, h = self.x1 - self.x0, self.y1 - self.y0
        x = (xy[0] - self.x0) % w + self.x0
        y = (xy[1] - self.y0) % h + self.y0
        return np.array([x, y])


def _smooth_noise(rng: np.random.Generator, n: int, dt: float, tau: float) -> np.ndarray:
    """Stationary AR(1) noise with unit std and correlation time ``tau`` (s)."""
    a = math.exp(-dt / max(tau, 1e-6))
    e = rng.standard_normal(n) * math.sqrt(1 - a * a)
    out = np.empty(n)
    v = rng.standard_normal()
    for i in range(n):
        v = a * v + e[i]
        out[i] = v
    return out


def _beat_phase(rng: np.random.Generator, n: int, fps: float, beat_hz: float,
                jitter: float) -> np.ndarray:
    dt = 1.0 / fps
    t = np.arange(n) * dt
    walk = np.cumsum(rng.standard_normal(n)) * jitter * math.sqrt(dt)
    return 2 * math.pi * beat_hz * t + rng.uniform(0, 2 * math.pi) + walk


def _max_beat(fps: float) -> float:
    return min(15.0, fps / 4.0)


def _draw_beat(rng: np.random.Generator, fps: float, lo: float = 4.0) -> float:
    hi = _max_beat(fps)
    lo = min(lo, hi * 0.8)
    return float(rng.uniform(lo, hi))


def draw_look(rng: np.random.Generator, cfg: SynthConfig, motility: str,
              behaviour: str) -> HeadLook:
    """Draw the appearance of one cell."""
    j = cfg.head_size_jitter
    length = 4.6 * (1 + j * rng.standard_normal())
    width = 3.0 * (1 + j * rng.standard_normal())
    pear = float(rng.uniform(0.0, 0.22))
    vacuole = 0.0
    if rng.random() < cfg.abnormal_frac:  # abnormal head: tapered, round, large, small, vacuolar
        kind = int(rng.integers(0, 5))
        if kind == 0:
            width *= rng.uniform(0.55, 0.75)
            pear = float(rng.uniform(0.2, 0.4))
        elif kind == 1:
            width = length * rng.uniform(0.85, 1.0)
        elif kind == 2:
            length *= rng.uniform(1.2, 1.45)
            width *= rng.uniform(1.1, 1.35)
        elif kind == 3:
            length *= rng.uniform(0.65, 0.8)
            width *= rng.uniform(0.7, 0.85)
        else:
            vacuole = float(rng.uniform(0.3, 0.7))
    length = float(np.clip(length, 2.5, 7.5))
    width = float(np.clip(min(width, length), 1.5, 5.5))
    if cfg.head_scale != 1.0 or cfg.head_aspect != 1.0:
        length, width = length * cfg.head_scale, width * cfg.head_scale * cfg.head_aspect
    if rng.random() < cfg.defocus_frac:
        defocus = float(rng.uniform(0.45, 1.0) * cfg.defocus_um_max)
    else:
        defocus = float(abs(rng.normal(0, 0.7)))
    motile = motility != "immotile" or behaviour == "agglutinated"
    base_amp = float(rng.uniform(0.12, 0.35)) if motile else 0.0
    end_amp = float(rng.uniform(0.6, 1.1)) if motile else 0.0
    if behaviour == "twitching":
        end_amp *= 0.7
    wiggle = (0.0, 0.0, 0.0)
    static_curv = float(rng.normal(0, 0.006))
    if motility == "immotile" and behaviour != "agglutinated":
        # dead or resting cells: still, sometimes bent or coiled tails
        wiggle = (float(rng.uniform(0, 0.3)), float(rng.uniform(0.08, 0.3)),
                  float(rng.uniform(0, 2 * math.pi)))
        if rng.random() < 0.15:
            static_curv = float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.15))
    return HeadLook(
        length_um=length,
        width_um=width,
        pear=pear,
        roll_min=float(rng.uniform(0.55, 0.9)),
        roll_hz=float(rng.uniform(1.0, 8.0)) if motility != "immotile" else 0.0,
        roll_phase=float(rng.uniform(0, 2 * math.pi)),
        contrast=float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.5)),
        defocus_um=defocus,
        z_sign=float(rng.choice([-1.0, 1.0])),
        gradient=float(rng.uniform(-0.35, 0.35)),
        vacuole=vacuole,
        tail_len_um=float(rng.uniform(42.0, 55.0)) if rng.random() > 0.03 else 0.0,
        midpiece_um=float(rng.uniform(3.5, 6.0)),
        wavelength_um=float(rng.uniform(22.0, 40.0)),
        angle_amp_base=base_amp,
        angle_amp_end=end_amp,
        tail_fade_um=float(rng.choice([1e9, rng.uniform(15.0, 80.0)])),
        tail_contrast=float(rng.uniform(0.6, 1.3)),
        static_curv=static_curv,
        static_wiggle=wiggle,
        droplet=float(rng.uniform(0.5, 1.0)) if rng.random() < 0.08 else 0.0,
    )


# --------------------------------------------------------------------------- motion models


def _progressive(rng: np.random.Generator, n: int, fps: float, start: np.ndarray, heading0: float,
                 straight: bool, speed_scale: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    dt = 1.0 / fps
    t = np.arange(n) * dt
    vap = speed_scale * float(np.clip(rng.lognormal(math.log(55.0), 0.38), 30.0, 120.0))
    alh = float(rng.uniform(1.5, 7.0))
    beat = _draw_beat(rng, fps)
    if straight:
        curv = float(rng.normal(0, 1 / 1500.0))
    else:
        curv = float(rng.choice([-1, 1]) * rng.uniform(1 / 1500.0, 1 / 150.0))
    rot_d = float(rng.uniform(0.001, 0.012))
    speed = vap * (1 + 0.06 * _smooth_noise(rng, n, dt, 0.4))
    s = np.concatenate([[0.0], np.cumsum(speed[:-1] * dt)])
    heading = heading0 + curv * s + np.cumsum(rng.standard_normal(n)) * math.sqrt(2 * rot_d * dt)
    step = speed[:, None] * dt * np.stack([np.cos(heading), np.sin(heading)], 1)
    avg = start + np.concatenate([[[0.0, 0.0]], np.cumsum(step[:-1], 0)])
    phase = _beat_phase(rng, n, fps, beat, float(rng.uniform(0.2, 1.0)))
    amp = alh / 2 * (1 + 0.1 * _smooth_noise(rng, n, dt, 0.3))
    surge = alh * float(rng.uniform(0.0, 0.12)) * np.sin(2 * phase + rng.uniform(0, 6.3))
    nrm = np.stack([-np.sin(heading), np.cos(heading)], 1)
    tan = np.stack([np.cos(heading), np.sin(heading)], 1)
    xy = avg + (amp * np.sin(phase))[:, None] * nrm + surge[:, None] * tan
    xy += rng.normal(0, 0.03, xy.shape)
    params = {"target_vap_um_s": vap, "target_alh_um": alh, "beat_hz": beat,
              "radius_um": abs(1 / curv) if curv else math.inf, "tail_curv": -curv}
    del t
    return xy, heading, phase, params


def _circling(rng: np.random.Generator, n: int, fps: float, start: np.ndarray, heading0: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    dt = 1.0 / fps
    t = np.arange(n) * dt
    r = float(rng.uniform(4.0, 15.0))
    v = float(rng.uniform(10.0, 40.0))
    sense = float(rng.choice([-1, 1]))
    omega = v / r
    ang0 = heading0 - sense * math.pi / 2
    ang = ang0 + sense * omega * t + np.cumsum(rng.standard_normal(n)) * 0.05 * math.sqrt(dt)
    centre = start - r * np.array([math.cos(ang0), math.sin(ang0)])
    cv = float(rng.uniform(0.0, 2.5))
    cdir = rng.uniform(0, 2 * math.pi)
    centre_path = centre + np.outer(t, [cv * math.cos(cdir), cv * math.sin(cdir)])
    rad = np.stack([np.cos(ang), np.sin(ang)], 1)
    alh = float(rng.uniform(1.0, 3.0))
    beat = _draw_beat(rng, fps)
    phase = _beat_phase(rng, n, fps, beat, float(rng.uniform(0.2, 1.0)))
    xy = centre_path + (r + alh / 2 * np.sin(phase))[:, None] * rad
    heading = ang + sense * math.pi / 2
    params = {"target_vap_um_s": v, "target_alh_um": alh, "beat_hz": beat, "radius_um": r,
              "tail_curv": -sense / r * float(rng.uniform(0.3, 0.7))}
    return xy, heading, phase, params


def _wandering(rng: np.random.Generator, n: int, fps: float, start: np.ndarray, heading0: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    dt = 1.0 / fps
    v = float(rng.uniform(6.0, 18.0))
    rot_d = float(rng.uniform(0.4, 3.0))
    heading = heading0 + np.cumsum(rng.standard_normal(n)) * math.sqrt(2 * rot_d * dt)
    speed = v * np.clip(1 + 0.25 * _smooth_noise(rng, n, dt, 0.5), 0.2, 2.0)
    step = speed[:, None] * dt * np.stack([np.cos(heading), np.sin(heading)], 1)
    avg = start + np.concatenate([[[0.0, 0.0]], np.cumsum(step[:-1], 0)])
    alh = float(rng.uniform(1.8, 4.5))
    beat = _draw_beat(rng, fps, lo=5.0)
    phase = _beat_phase(rng, n, fps, beat, float(rng.uniform(0.2, 1.0)))
    nrm = np.stack([-np.sin(heading), np.cos(heading)], 1)
    xy = avg + (alh / 2 * np.sin(phase))[:, None] * nrm
    params = {"target_vap_um_s": v, "target_alh_um": alh, "beat_hz": beat, "radius_um": math.inf}
    return xy, heading, phase, params


def _twitching(rng: np.random.Generator, n: int, fps: float, start: np.ndarray, heading0: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    dt = 1.0 / fps
    heading = heading0 + np.cumsum(rng.standard_normal(n)) * math.sqrt(2 * 0.05 * dt)
    alh = float(rng.uniform(1.8, 4.0))
    beat = _draw_beat(rng, fps, lo=5.0)
    phase = _beat_phase(rng, n, fps, beat, float(rng.uniform(0.2, 1.0)))
    nrm = np.stack([-np.sin(heading), np.cos(heading)], 1)
    tan = np.stack([np.cos(heading), np.sin(heading)], 1)
    surge = alh * float(rng.uniform(0.05, 0.25)) * np.sin(2 * phase)
    xy = start + (alh / 2 * np.sin(phase))[:, None] * nrm + surge[:, None] * tan
    xy = xy + np.cumsum(rng.normal(0, math.sqrt(2 * 0.1 * dt), (n, 2)), 0)
    params = {"target_vap_um_s": 0.0, "target_alh_um": alh, "beat_hz": beat, "radius_um": 0.0}
    return xy, heading, phase, params


def _brownian(rng: np.random.Generator, n: int, fps: float, start: np.ndarray, heading0: float,
              diffusion: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    dt = 1.0 / fps
    steps = rng.normal(0, math.sqrt(2 * diffusion * dt), (n, 2))
    steps[0] = 0
    xy = start + np.cumsum(steps, 0)
    heading = heading0 + np.cumsum(rng.standard_normal(n)) * math.sqrt(2 * 0.005 * dt)
    params = {"target_vap_um_s": 0.0, "target_alh_um": 0.0, "beat_hz": 0.0, "radius_um": 0.0,
              "diffusion_um2_s": diffusion}
    return xy, heading, np.zeros(n), params


# --------------------------------------------------------------------------- population


@dataclass
class _Spec:
    motility: str
    behaviour: str
    f0: int
    start: np.ndarray | None  # None: uniform in the domain
    heading: float | None  # None: random
    wrap_from: np.ndarray | None = None  # exit point of the previous life (slow cells)
    crossing: tuple[np.ndarray, int] | None = None  # crossing point (µm) and frame
    pair_id: int = -1


def field_segments(x: np.ndarray, y: np.ndarray, half_w: np.ndarray | float,
                   half_h: np.ndarray | float, bounds: tuple[float, float, float, float],
                   swing: float | None) -> list[tuple[int, int]]:
    """Stretches (start, stop) of a head path that form one true track each.

    A stretch starts when the head centre enters the field ``bounds = (x0, y0, x1, y1)``.
    With ``swing=None`` it ends when the centre leaves the field. Otherwise it ends only when
    the head box (half sizes ``half_w, half_h``) widened by ``swing`` (the beat's lateral
    excursion) no longer overlaps the field, and trailing frames in which the head box
    itself is outside the field are dropped: a head swimming along an edge or jittering
    across it keeps its id, and a track never ends on a frame where its head is invisible.
    """
    x0, y0, x1, y1 = bounds
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    if not inside.any():
        return []
    if swing is None:
        d = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
        return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))

    def overlaps(extra: float) -> np.ndarray:
        hw, hh = half_w + extra, half_h + extra
        return (x + hw > x0) & (x - hw < x1) & (y + hh > y0) & (y - hh < y1)

    near, seen = overlaps(swing), overlaps(0.0)
    out: list[tuple[int, int]] = []
    start = -1
    for i in range(len(x) + 1):
        if start < 0:
            if i < len(x) and inside[i]:
                start = i
        elif i == len(x) or not near[i]:
            stop = i
            while stop > start + 1 and not seen[stop - 1]:
                stop -= 1
            out.append((start, stop))
            start = -1
    return out


def _life_end(dom: _Domain, xy: np.ndarray) -> int:
    """Number of frames before the head leaves the domain (after having been inside)."""
    inside = dom.in_domain(xy)
    if not inside.any():
        return len(xy)
    first = int(np.argmax(inside))
    out = np.flatnonzero(~inside[first:])
    return len(xy) if len(out) == 0 else first + int(out[0])


def _check(dom: _Domain, motility: str, xy: np.ndarray, fps: float, alh: float,
           keep_partial: bool) -> bool:
    """True if every stretch inside the field gives ``motility`` with a margin."""
    bounds = (dom.fx0, dom.fy0, dom.fx1, dom.fy1)
    swing = SWING * alh if keep_partial else None
    for a, b in field_segments(xy[:, 0], xy[:, 1], 2.0, 2.0, bounds, swing):
        if b - a < MIN_CHECK_FRAMES:
            continue
        k = compute_kinematics(xy[a:b, 0], xy[a:b, 1], um_per_px=1.0, fps=fps)
        if not _clear_of_gates(motility, k.vcl_um_s, k.vap_um_s, k.str, k.alh_um):
            return False
    return True


def simulate_cells(cfg: SynthConfig, rng: np.random.Generator, drift: np.ndarray) -> list[Cell]:
    """Generate every cell life of a video.

    Args:
        cfg: Simulator settings.
        rng: Random generator (consumed).
        drift: Common drift displacement ``(n_frames, 2)`` µm (added to every head).

    Returns:
        Cell lives ordered by ``agent_id``.
    """
    dom = _Domain(cfg)
    nf = cfg.n_frames
    n_p = int(round(cfg.n_cells * cfg.frac_progressive))
    n_np = min(cfg.n_cells - n_p, int(round(cfg.n_cells * cfg.frac_non_progressive)))
    n_im = cfg.n_cells - n_p - n_np
    specs: list[_Spec] = []
    n_pairs = min(cfg.crossing_pairs, n_p // 2)
    for k in range(n_pairs):
        point = dom.in_field_point(rng, 0.7)
        frame = int(rng.uniform(0.25, 0.6) * nf)
        h1 = rng.uniform(0, 2 * math.pi)
        if rng.random() < 0.25:  # head-on
            h2 = h1 + math.pi + rng.normal(0, 0.2)
        else:
            h2 = h1 + rng.choice([-1, 1]) * rng.uniform(math.radians(25), math.radians(150))
        for h in (h1, h2):
            specs.append(_Spec("progressive", "crossing", 0, None, float(h),
                               crossing=(point, frame), pair_id=k))
    for _ in range(n_p - 2 * n_pairs):
        specs.append(_Spec("progressive", "straight" if rng.random() < 0.6 else "curved", 0,
                           None, None))
    for _ in range(n_np):
        beh = str(rng.choice(["circling", "wandering", "twitching"], p=[0.4, 0.3, 0.3]))
        specs.append(_Spec("non_progressive", beh, 0, None, None))
    for _ in range(n_im):
        specs.append(_Spec("immotile", "brownian", 0, None, None))

    cells: list[Cell] = []
    queue = list(specs)
    max_lives = 40 * max(cfg.n_cells, 1) + 100
    i = 0
    while i < len(queue) and len(cells) < max_lives:
        spec = queue[i]
        i += 1
        cell, exit_xy = _make_cell(cfg, dom, rng, spec, len(cells), drift)
        cells.append(cell)
        end = cell.f0 + cell.n
        if end < nf and exit_xy is not None:
            slow = spec.behaviour in ("brownian", "twitching")
            queue.append(_Spec(spec.motility, _respawn_behaviour(rng, spec), end, None, None,
                               wrap_from=exit_xy if slow else None))
    cells.extend(_clusters(cfg, dom, rng, len(cells), drift))
    return cells


def _respawn_behaviour(rng: np.random.Generator, spec: _Spec) -> str:
    if spec.motility == "progressive":
        return "straight" if rng.random() < 0.6 else "curved"
    return spec.behaviour


def _make_cell(cfg: SynthConfig, dom: _Domain, rng: np.random.Generator, spec: _Spec,
               agent_id: int, drift: np.ndarray) -> tuple[Cell, np.ndarray | None]:
    nf, fps = cfg.n_frames, cfg.fps
    n = nf - spec.f0
    best: tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]] | None = None
    checked = False
    for _ in range(MAX_DRAWS):
        if spec.wrap_from is not None:
            start, heading0 = dom.wrap(spec.wrap_from), float(rng.uniform(0, 2 * math.pi))
        elif spec.f0 > 0:
            start, inward = dom.boundary(rng)
            heading0 = inward + float(rng.uniform(-1.0, 1.0))
        else:
            start, heading0 = dom.uniform(rng), float(rng.uniform(0, 2 * math.pi))
        if spec.heading is not None:
            heading0 = spec.heading
        xy, heading, phase, params = _motion(cfg, rng, spec, n, start, heading0)
        if spec.crossing is not None:
            point, frame = spec.crossing
            xy = xy - xy[frame] + point  # both cells of the pair reach the point together
        xy = xy + drift[spec.f0:] - drift[spec.f0]
        best = (xy, heading, phase, params)
        if _check(dom, spec.motility, xy[: _life_end(dom, xy)], fps,
                  float(params.get("target_alh_um", 0.0)), cfg.keep_partial_heads):
            checked = True
            break
    assert best is not None
    xy, heading, phase, params = best
    end = _life_end(dom, xy)
    exit_xy = xy[end] if end < len(xy) else None
    tail_curv = float(params.pop("tail_curv", 0.0))
    params = dict(params, rule_checked=checked, pair_id=spec.pair_id)
    look = draw_look(rng, cfg, spec.motility, spec.behaviour)
    cell = Cell(agent_id, spec.motility, spec.behaviour, spec.f0, xy[:end], heading[:end],
                phase[:end], look, params, tail_curv=tail_curv)
    if spec.motility != "immotile" and rng.random() < cfg.z_swim_frac:
        cell.z = _z_path(rng, end, fps, look.z_sign * look.defocus_um, cfg.defocus_um_max)
    return cell, exit_xy


def _z_path(rng: np.random.Generator, n: int, fps: float, z0: float, z_max: float) -> np.ndarray:
    """Height above the focal plane of a cell swimming slowly up or down (reflected)."""
    t = np.arange(n) / fps
    vz = float(rng.choice([-1, 1]) * rng.uniform(0.3, 1.5))
    z = z0 + vz * t + np.cumsum(rng.normal(0, 0.05, n))
    lim = max(z_max * 0.8, 2.0)
    z = np.abs((z + lim) % (4 * lim) - 2 * lim) - lim  # reflect into [-lim, lim]
    return z


def _motion(cfg: SynthConfig, rng: np.random.Generator, spec: _Spec, n: int, start: np.ndarray,
            heading0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    fps = cfg.fps
    b = spec.behaviour
    if spec.motility == "progressive":
        return _progressive(rng, n, fps, start, heading0, b in ("straight", "crossing"),
                            cfg.speed_scale)
    if b == "circling":
        return _circling(rng, n, fps, start, heading0)
    if b == "wandering":
        return _wandering(rng, n, fps, start, heading0)
    if b == "twitching":
        return _twitching(rng, n, fps, start, heading0)
    d = float(np.clip(cfg.brownian_um2_s * rng.lognormal(0, 0.5), 0.03, 0.4))
    return _brownian(rng, n, fps, start, heading0, d)


def _clusters(cfg: SynthConfig, dom: _Domain, rng: np.random.Generator, first_id: int,
              drift: np.ndarray) -> list[Cell]:
    """Agglutinates: 2-3 heads stuck tip to tip, tails outward, jiggling and turning slowly."""
    nf, fps = cfg.n_frames, cfg.fps
    dt = 1.0 / fps
    t = np.arange(nf) * dt
    out: list[Cell] = []
    for c in range(cfg.n_clusters):
        k = int(rng.integers(2, 4))
        centre = dom.in_field_point(rng, 0.9)
        omega = float(rng.normal(0, 0.12))
        rot = rng.uniform(0, 2 * math.pi) + omega * t
        jig = np.cumsum(rng.normal(0, math.sqrt(2 * 0.03 * dt), (nf, 2)), 0)
        path = centre + jig + drift - drift[0]
        angles = rng.uniform(0, 2 * math.pi) + np.arange(k) * 2 * math.pi / k
        angles += rng.normal(0, 0.3, k)
        beating = rng.random() < 0.5
        for j in range(k):
            look = draw_look(rng, cfg, "immotile", "agglutinated" if beating else "brownian")
            r = look.length_um / 2 * rng.uniform(0.85, 1.05)
            direc = angles[j] + rot
            xy = path + r * np.stack([np.cos(direc), np.sin(direc)], 1)
            beat = _draw_beat(rng, fps) if beating else 0.0
            phase = _beat_phase(rng, nf, fps, beat, 0.5) if beating else np.zeros(nf)
            params = {"target_vap_um_s": 0.0, "target_alh_um": 0.0, "beat_hz": beat,
                      "radius_um": 0.0, "rule_checked": True, "pair_id": -1}
            out.append(Cell(first_id + len(out), "immotile", "agglutinated", 0, xy,
                            direc + math.pi, phase, look, params, cluster_id=c))
    return out
