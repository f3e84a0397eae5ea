"""Settings of the video simulator and a generator of widely varied random settings.

:class:`SynthConfig` holds every condition of one simulated video (frozen, every field has a
default). :func:`random_config` draws all conditions from a seed, so a benchmark can cover
looks, magnifications, frame rates, densities, class mixes, noise, blur and illumination.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detect_track.errors import ConfigError

#: Rendering styles: negative phase contrast (bright heads, dark halo), positive phase
#: contrast (dark heads, bright halo) and bright field (grey heads, faint tails).
LOOKS: tuple[str, ...] = ("phase_bright", "phase_dark", "brightfield")
VIDEO_FORMATS: tuple[str, ...] = ("avi", "mp4", "png")
#: Named presets fitted to real footage (``detect_track/configs/synth-<name>.yaml``).
PRESETS: tuple[str, ...] = ("visem",)
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class SynthConfig:
    """All conditions of one simulated video. Lengths in µm unless the name says px.

    Contrasts are relative to the local background brightness (0.3 = 30 % brighter or
    darker); grey levels are 8-bit (0-255).
    """

    # geometry and timing
    width_px: int = 640  # frame width in pixels
    height_px: int = 480  # frame height in pixels
    fps: float = 50.0  # frames per second
    duration_s: float = 5.0  # video length in seconds (n_frames = round(duration_s * fps))
    um_per_px: float = 0.7  # micrometres per pixel
    margin_um: float = 60.0  # simulated domain extends this far beyond the field on every side
    keep_partial_heads: bool = True  # True: a track ends when its head has left the frame
    # population
    n_cells: int = 40  # sperm cells in the simulated domain (field + margin), kept constant
    frac_progressive: float = 0.5  # fraction of cells that swim progressively
    frac_non_progressive: float = 0.2  # fraction that are motile but not progressive
    crossing_pairs: int = 2  # pairs of progressive swimmers placed on crossing courses
    speed_scale: float = 1.0  # multiplies progressive swimmers' speed (VAP 30-120 µm/s at 1)
    n_clusters: int = 1  # agglutinates of 2-3 heads stuck together (immotile, + n_cells)
    n_debris: int = 15  # debris particles (1-15 µm, not in the ground truth)
    n_round_cells: int = 1  # round cells / leukocytes (8-12 µm, not in the ground truth)
    drift_um_s: float = 0.8  # speed of the slow common drift of the whole sample (µm/s)
    brownian_um2_s: float = 0.15  # mean diffusion coefficient of immotile heads (µm²/s)
    # look and optics
    look: str = "random"  # "phase_bright" | "phase_dark" | "brightfield" | "random" (from seed)
    background_level: float = -1.0  # mean background grey level; < 0 = typical for the look
    head_contrast: float = -1.0  # contrast of a sharp head (relative); < 0 = by look
    halo_strength: float = -1.0  # weight of the opposite-sign halo (x head contrast); < 0 = by look
    halo_width_um: float = 1.0  # Gaussian width of the halo around heads and debris (µm)
    flagellum_contrast: float = 0.3  # midpiece/flagellum contrast as a fraction of the head's
    blur_um: float = 0.35  # optical blur of the in-focus plane (Gaussian sigma, µm)
    defocus_frac: float = 0.12  # fraction of cells strongly out of focus
    defocus_um_max: float = 6.0  # largest defocus distance of a cell (µm)
    z_swim_frac: float = 0.25  # fraction of motile cells drifting up/down through the focus
    exposure_frac: float = 0.15  # shutter time / frame interval (motion blur of fast heads)
    head_size_jitter: float = 0.08  # relative spread of head length and width between cells
    abnormal_frac: float = 0.15  # fraction of heads with abnormal size or shape
    # illumination and sensor
    illumination: float = 0.15  # relative amplitude of the smooth illumination gradient
    vignetting: float = 0.2  # relative brightness loss at the frame corners
    texture: float = 0.015  # amplitude of the static background texture (relative)
    flicker: float = 0.006  # relative std of the slow global brightness flicker
    noise_std: float = 3.0  # Gaussian sensor (read) noise std, grey levels
    shot_noise: float = 0.02  # shot-like noise: variance added per grey level of signal
    jpeg_quality: int = 90  # MJPG quality of AVI output (1-100)
    # real-look extras (neutral defaults keep the classic output; the "visem" preset sets them)
    head_scale: float = 1.0  # multiplies every head's length and width
    head_aspect: float = 1.0  # multiplies every head's width (rounder heads > 1)
    head_extra_blur_um: float = 0.0  # blur of heads beyond blur_um (in quadrature, µm)
    glow: float = 0.0  # same-sign wide glow around heads (x head contrast), e.g. VISEM
    glow_width_um: float = 3.0  # Gaussian width of the glow (µm)
    tail_sign: float = 1.0  # flagellum polarity relative to the head's (-1: dark tails)
    tail_width_um: float = 0.35  # apparent flagellum thickness before the optical blur (µm)
    n_specks: int = 0  # small static debris specks stuck on the glass (phase optics)
    speck_size_um: float = 1.5  # median speck diameter (µm; log-normal spread 0.35)
    speck_contrast: float = 0.3  # median speck contrast (relative; log-normal spread 0.4)
    speck_dark_frac: float = 0.8  # fraction of specks darker than the background
    speck_halo: float = 0.6  # opposite-sign halo weight of the specks
    grain: float = 0.0  # static fine background grain (relative std, ~1 px), e.g. VISEM
    debris_contrast: float = -1.0  # median debris contrast (relative); < 0 = the head's
    debris_dark_frac: float = 0.4  # fraction of debris of the opposite polarity to heads
    video_format: str = "avi"  # "avi" (MJPG) | "mp4" (mp4v) | "png" (folder, lossless)
    seed: int = 0  # random seed: same seed and settings, same video and truth

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.width_px >= 16 and self.height_px >= 16, "width_px and height_px must be >= 16"),
            (math.isfinite(self.fps) and 1.0 <= self.fps <= 1000.0, "fps must be in [1, 1000]"),
            (math.isfinite(self.duration_s) and self.duration_s > 0, "duration_s must be > 0"),
            (0.05 <= self.um_per_px <= 20.0, "um_per_px must be in [0.05, 20]"),
            (self.margin_um >= 0, "margin_um must be >= 0"),
            (self.n_cells >= 0, "n_cells must be >= 0"),
            (0 <= self.frac_progressive <= 1 and 0 <= self.frac_non_progressive <= 1
             and self.frac_progressive + self.frac_non_progressive <= 1 + 1e-9,
             "frac_progressive and frac_non_progressive must be in [0, 1] with sum <= 1"),
            (math.isfinite(self.speed_scale) and 0.1 <= self.speed_scale <= 5.0,
             "speed_scale must be in [0.1, 5]"),
            (self.crossing_pairs >= 0 and self.n_clusters >= 0 and self.n_debris >= 0
             and self.n_round_cells >= 0, "counts must be >= 0"),
            (self.look in (*LOOKS, "random"), f"look must be one of {(*LOOKS, 'random')}"),
            (self.video_format in VIDEO_FORMATS, f"video_format must be one of {VIDEO_FORMATS}"),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in [1, 100]"),
            (0 <= self.defocus_frac <= 1 and 0 <= self.abnormal_frac <= 1
             and 0 <= self.z_swim_frac <= 1 and 0 <= self.exposure_frac <= 1,
             "defocus_frac, abnormal_frac, z_swim_frac, exposure_frac must be in [0, 1]"),
            (self.noise_std >= 0 and self.shot_noise >= 0, "noise must be >= 0"),
            (self.blur_um >= 0 and self.halo_width_um > 0 and self.defocus_um_max >= 0,
             "blur_um and defocus_um_max must be >= 0, halo_width_um > 0"),
            (self.background_level < 256, "background_level must be < 256"),
            (self.drift_um_s >= 0 and self.brownian_um2_s >= 0, "drift and diffusion >= 0"),
            (0 <= self.illumination < 1 and 0 <= self.vignetting < 1,
             "illumination and vignetting must be in [0, 1)"),
            (self.flicker >= 0 and self.texture >= 0 and self.flagellum_contrast >= 0
             and self.head_size_jitter >= 0, "flicker, texture, contrasts must be >= 0"),
            (0.2 <= self.head_scale <= 5.0, "head_scale must be in [0.2, 5]"),
            (0.3 <= self.head_aspect <= 3.0 and self.head_extra_blur_um >= 0,
             "head_aspect must be in [0.3, 3], head_extra_blur_um >= 0"),
            (0 <= self.debris_dark_frac <= 1, "debris_dark_frac must be in [0, 1]"),
            (self.grain >= 0, "grain must be >= 0"),
            (0.05 <= self.tail_width_um <= 5.0, "tail_width_um must be in [0.05, 5]"),
            (self.glow >= 0 and self.glow_width_um > 0, "glow >= 0, glow_width_um > 0"),
            (self.tail_sign in (-1.0, 1.0), "tail_sign must be 1 or -1"),
            (self.n_specks >= 0 and self.speck_size_um > 0 and self.speck_contrast >= 0
             and 0 <= self.speck_dark_frac <= 1 and self.speck_halo >= 0,
             "n_specks >= 0, speck_size_um > 0, speck_contrast >= 0, speck_dark_frac in "
             "[0, 1], speck_halo >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"SynthConfig: {msg}")

    @property
    def head_blur_um(self) -> float:
        """Optical blur of in-focus heads (Gaussian sigma, µm)."""
        return math.hypot(self.blur_um, self.head_extra_blur_um)

    @property
    def n_frames(self) -> int:
        """Number of frames of the video."""
        return max(1, int(round(self.duration_s * self.fps)))


def replace_config(cfg: SynthConfig, **changes: Any) -> SynthConfig:
    """``dataclasses.replace`` that names the closest valid setting on a typo.

    Raises:
        ConfigError: On an unknown setting or an invalid value.
    """
    names = [f.name for f in dataclasses.fields(SynthConfig)]
    for key in changes:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown simulator setting '{key}'{hint}")
    return dataclasses.replace(cfg, **changes)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_config(seed: int, **overrides: Any) -> SynthConfig:
    """Draw a widely varied, realistic set of conditions from ``seed``.

    Varies the look, magnification (0.5-1.0 µm/px), frame rate (25-60 fps), cell density,
    class mix, drift, noise, blur, defocus, swimming through the focus, motion blur,
    illumination, vignetting, flicker, texture,
    debris, round cells, crossings, clusters, head and flagellum contrast and halo.
    Frame size and duration keep their defaults unless overridden.

    Args:
        seed: Seed of the draw; also the seed of the simulation.
        **overrides: Settings that replace the drawn values (e.g. ``duration_s=1.0``).

    Returns:
        The configuration.

    Raises:
        ConfigError: On an unknown override name or invalid value.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
    look = str(rng.choice(LOOKS, p=[0.35, 0.4, 0.25]))
    if overrides.get("look", "random") != "random":
        look = str(overrides["look"])  # look-dependent draws follow an overridden look
    if rng.random() < 0.7:
        fps = float(rng.choice([25.0, 30.0, 50.0, 60.0]))
    else:
        fps = float(round(rng.uniform(25.0, 60.0)))  # integer: AVI stores integer rates
    um_per_px = float(round(rng.uniform(0.5, 1.0), 3))
    width = int(overrides.get("width_px", SynthConfig.width_px))
    height = int(overrides.get("height_px", SynthConfig.height_px))
    um = float(overrides.get("um_per_px", um_per_px))
    margin = 60.0
    domain_mm2 = (width * um + 2 * margin) * (height * um + 2 * margin) * 1e-6
    density = _loguniform(rng, 80.0, 450.0)  # cells per mm² of the chamber
    n_cells = int(np.clip(round(density * domain_mm2), 3, 160))
    frac_p = float(rng.uniform(0.1, 0.8))
    frac_np = float(rng.uniform(0.05, min(0.45, 0.95 - frac_p)))
    base = {"phase_bright": 0.45, "phase_dark": 0.32, "brightfield": 0.18}[look]
    head_contrast = float(base * rng.uniform(0.7, 1.4))
    if look == "phase_bright":
        bg = float(rng.uniform(50, 120))
    elif look == "phase_dark":
        bg = float(rng.uniform(100, 175))
    else:
        bg = float(rng.uniform(140, 210))
    # noise from a peak signal-to-noise ratio of heads (hard but visible: 5-25)
    snr = _loguniform(rng, 5.0, 25.0)
    noise = float(np.clip(head_contrast * bg / snr, 0.8, 12.0))
    values: dict[str, Any] = {
        "fps": fps,
        "um_per_px": um_per_px,
        "n_cells": n_cells,
        "frac_progressive": frac_p,
        "frac_non_progressive": frac_np,
        "crossing_pairs": int(rng.integers(0, 5)),
        "n_clusters": int(rng.integers(0, 4)),
        "n_debris": int(np.clip(round(_loguniform(rng, 20.0, 300.0) * domain_mm2), 0, 120)),
        "n_round_cells": int(rng.integers(0, 5)),
        "drift_um_s": float(rng.choice([0.0, rng.uniform(0.0, 2.0)])),
        "brownian_um2_s": float(rng.uniform(0.05, 0.3)),
        "look": look,
        "background_level": bg,
        "head_contrast": head_contrast,
        "halo_strength": float(rng.uniform(0.4, 2.0)),
        "halo_width_um": float(rng.uniform(0.6, 1.6)),
        "flagellum_contrast": float(rng.uniform(0.15, 0.75)),
        "blur_um": float(rng.uniform(0.2, 0.8)),
        "defocus_frac": float(rng.uniform(0.0, 0.2)),
        "defocus_um_max": float(rng.uniform(3.0, 10.0)),
        "z_swim_frac": float(rng.uniform(0.0, 0.35)),
        "exposure_frac": float(rng.choice([0.05, rng.uniform(0.0, 0.8)])),
        "head_size_jitter": float(rng.uniform(0.04, 0.12)),
        "abnormal_frac": float(rng.uniform(0.0, 0.35)),
        "illumination": float(rng.uniform(0.0, 0.35)),
        "vignetting": float(rng.uniform(0.0, 0.45)),
        "texture": float(rng.uniform(0.0, 0.04)),
        "flicker": float(rng.choice([0.0, rng.uniform(0.0, 0.03)])),
        "noise_std": noise,
        "shot_noise": float(rng.uniform(0.0, 0.08)),
        "jpeg_quality": int(rng.integers(75, 96)),
        "seed": int(seed),
    }
    cfg = replace_config(SynthConfig(), **values)
    return replace_config(cfg, **overrides) if overrides else cfg


@lru_cache(maxsize=8)
def _preset_values(name: str) -> tuple[tuple[str, Any], ...]:
    path = PRESET_DIR / f"synth-{name}.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read simulator preset {path}: {exc}") from exc
    values = doc.get("synth") if isinstance(doc, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f"simulator preset {path} has no 'synth' mapping")
    return tuple(values.items())


def preset_config(name: str, seed: int = 0, **overrides: Any) -> SynthConfig:
    """The simulator settings of a named preset fitted to real footage.

    ``visem``: the look and motion of VISEM-Tracking (human semen, unstained, phase
    contrast, 640x480 MJPG, ~49 fps, 0.5 µm/px): bright heads with a bright glow, dark thin
    tails, hundreds of static dark debris specks, fitted by ``tools/bench_sim_realism.py
    --fit`` to real frames (see ``benchmarks/sim_realism.md``).

    Args:
        name: One of :data:`PRESETS`.
        seed: Random seed of the video.
        **overrides: Settings that replace the preset's values.

    Returns:
        The configuration.

    Raises:
        ConfigError: On an unknown preset, an unknown override name or an invalid value.
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown simulator preset '{name}'{hint} (known: {PRESETS})")
    cfg = replace_config(SynthConfig(), **dict(_preset_values(name)), seed=int(seed))
    return replace_config(cfg, **overrides) if overrides else cfg
