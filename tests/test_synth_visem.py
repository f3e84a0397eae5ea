"""The ``visem`` simulator preset: renders, is deterministic, lands near its fitted targets.

The targets are the statistics of the real VISEM-Tracking frames (video 11, tune frames
0-54) measured by ``tools/bench_sim_realism.py`` (``benchmarks/sim_realism.md``, "real"
column; also stored under ``targets`` in ``detect_track/configs/synth-visem.yaml``). The
tolerances leave room for the seed: the test renders 3 frames of one clip, the fit used 8.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detect_track.errors import ConfigError
from detect_track.synth import SynthConfig, simulate
from detect_track.synth.config import PRESETS, preset_config
from detect_track.synth.dataset import DatasetSpec
from detect_track.synth.realism import frame_stats, read_simulation

#: (statistic, real value from benchmarks/sim_realism.md, tolerance)
TARGETS: tuple[tuple[str, float, float], ...] = (
    ("background", 90.0, 5.0),  # grey level of the background (median)
    ("head_peak", 2.73, 0.4),  # head centre / background
    ("profile_r4", 1.52, 0.15),  # ring 4 px from the head centre / background
    ("profile_r9", 1.25, 0.15),  # the bright glow around heads
    ("head_size_px", 6.38, 1.2),  # diameter of the head core above half its peak
    ("head_elongation", 1.37, 0.3),  # its elongation (classic look: 1.86)
    ("tail_contrast", -0.273, 0.12),  # dark tails (the classic look: +0.14, bright)
    ("tail_width_px", 2.75, 0.75),  # their width at half depth
    ("bg_iqr", 0.078, 0.035),  # spread of the background grey levels
    ("dark_per_kpx2", 2.47, 1.0),  # dark debris specks per 1000 px² (classic: 0.02)
    ("dark_size", 3.39, 1.0),  # their diameter (px)
    ("blockiness", 1.44, 0.2),  # JPEG 8x8 blockiness (classic: 0.96)
)


def _render(tmp_path, name: str, seed: int = 5, n: int = 3):
    cfg = preset_config("visem", seed=seed, duration_s=n / 49.0, video_format="avi")
    res = simulate(tmp_path / name, cfg)
    frames, heads = read_simulation(res.video_path, res.gt_path)
    return cfg, frames, heads


def test_visem_preset_renders_deterministic_and_near_targets(tmp_path):
    cfg, frames, heads = _render(tmp_path, "a")
    _, again, _ = _render(tmp_path, "b")
    assert cfg.um_per_px == 0.5 and cfg.fps == 49.0 and cfg.tail_sign == -1.0
    assert len(frames) == 3 and frames[0].shape == (480, 640)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    _, other, _ = _render(tmp_path, "c", seed=6, n=1)
    assert not np.array_equal(frames[0], other[0])
    stats = frame_stats(frames, heads)
    misses = {k: (round(stats[k], 3), v) for k, v, tol in TARGETS if abs(stats[k] - v) > tol}
    assert not misses, f"simulated vs real target: {misses}"
    assert 20 <= stats["heads_per_frame"] <= 70  # real: 41.9 per frame


def test_preset_names_and_overrides():
    assert "visem" in PRESETS
    cfg = preset_config("visem", seed=3, n_cells=7)
    assert cfg.seed == 3 and cfg.n_cells == 7 and cfg.n_specks > 0 and cfg.glow > 0
    with pytest.raises(ConfigError, match="did you mean 'visem'"):
        preset_config("visme")
    with pytest.raises(ConfigError):
        preset_config("visem", no_such_setting=1)
    with pytest.raises(ConfigError):
        DatasetSpec(preset="nope")
    assert DatasetSpec(preset="visem").preset_fraction == 1.0


def test_default_config_keeps_the_classic_look():
    """The real-look settings are neutral by default (the classic output is unchanged)."""
    d = SynthConfig()
    assert (d.head_scale, d.glow, d.tail_sign, d.n_specks, d.grain) == (1.0, 0.0, 1.0, 0, 0.0)
    assert d.debris_contrast < 0 and d.debris_dark_frac == 0.4
    names = {f.name for f in dataclasses.fields(SynthConfig)}
    assert {"glow", "n_specks", "grain", "tail_sign"} <= names


def test_cli_synth_preset(tmp_path):
    from detect_track.cli import main

    out = tmp_path / "sim"
    assert main(["synth", str(out), "--preset", "visem", "--duration-s", "0.05",
                 "--n-cells", "5", "-q"]) == 0
    meta = (out / "truth.json").read_text()
    assert '"n_specks"' in meta and '"um_per_px": 0.5' in meta
    assert main(["synth", str(out), "--preset", "visem", "--random"]) != 0
