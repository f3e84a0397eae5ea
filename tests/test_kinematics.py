import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect_track.measure.kinematics import (
    KINEMATICS_COLUMNS,
    Kinematics,
    average_path,
    compute_kinematics,
    kinematics_table,
)
from detect_track.types import TRACK_COLUMNS

SPEEDS = ("vcl_um_s", "vsl_um_s", "vap_um_s")
RATIOS = ("lin", "str", "wob")
LENGTHS = ("alh_um", "alh_max_um")


def kin(x, y, um_per_px=1.0, fps=50.0, window_frames=5) -> Kinematics:
    return compute_kinematics(
        np.asarray(x, float), np.asarray(y, float),
        um_per_px=um_per_px, fps=fps, window_frames=window_frames,
    )


def sinusoid(v=30.0, amp=3.0, f=5.0, fps=100.0, seconds=2.0, phase=0.3):
    t = np.arange(int(round(seconds * fps)) + 1) / fps
    return v * t, amp * np.sin(2 * np.pi * f * t + phase)


def random_walk(seed, n, step):
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.normal(0.0, step, size=(n, 2)), axis=0)
    return xy[:, 0] + rng.uniform(-100, 100), xy[:, 1] + rng.uniform(-100, 100)


def assert_same(a: Kinematics, b: Kinematics, rel=1e-7, abs_=1e-9):
    for key, va in a.as_dict().items():
        vb = b.as_dict()[key]
        if math.isnan(va):
            assert math.isnan(vb), key
        else:
            assert vb == pytest.approx(va, rel=rel, abs=abs_), key


# --- analytic cases -----------------------------------------------------------------------


def test_straight_line_constant_speed():
    fps, v = 50.0, 40.0  # µm/s along a 30° line, 0.5 µm/px
    t = np.arange(101) / fps
    ang = np.radians(30)
    x_um, y_um = 12 + v * t * np.cos(ang), -7 + v * t * np.sin(ang)
    k = kin(x_um / 0.5, y_um / 0.5, um_per_px=0.5, fps=fps)
    assert k.n_frames == 101 and k.duration_s == pytest.approx(2.0)
    for name in SPEEDS:
        assert getattr(k, name) == pytest.approx(v, rel=1e-9)
    for name in RATIOS:
        assert getattr(k, name) == pytest.approx(1.0, rel=1e-9)
    assert k.alh_um == pytest.approx(0.0, abs=1e-9)
    assert k.alh_max_um == pytest.approx(0.0, abs=1e-9)
    assert k.bcf_hz == 0.0
    assert k.mad_deg == pytest.approx(0.0, abs=1e-6)


def test_circle():
    fps, radius, omega = 100.0, 10.0, 2 * np.pi  # one turn per second
    t = np.arange(101) / fps  # exactly one full turn
    k = kin(radius * np.cos(omega * t), radius * np.sin(omega * t), fps=fps)
    assert k.vcl_um_s == pytest.approx(radius * omega, rel=1e-3)
    assert k.vsl_um_s == pytest.approx(0.0, abs=1e-9)
    assert k.lin == pytest.approx(0.0, abs=1e-9)
    # the average path is a slightly smaller circle
    assert 0.98 * radius * omega < k.vap_um_s <= radius * omega
    # constant turning: 360° over 100 steps -> 3.6° per step
    assert k.mad_deg == pytest.approx(3.6, rel=1e-6)
    assert k.bcf_hz == 0.0  # the raw path stays on one side of the average path


@pytest.mark.parametrize("phase", [0.0, 0.3])
def test_sinusoid_on_straight_progression(phase):
    v, amp, f, fps = 30.0, 3.0, 5.0, 100.0
    x, y = sinusoid(v, amp, f, fps, seconds=2.0, phase=phase)
    k = kin(x, y, fps=fps, window_frames=int(fps / f))  # window spans one beat period
    assert k.vap_um_s == pytest.approx(v, rel=0.01)
    assert k.vsl_um_s == pytest.approx(v, rel=0.05)
    assert k.alh_max_um == pytest.approx(2 * amp, rel=0.03)
    assert k.alh_um == pytest.approx(2 * amp, rel=0.03)
    # 2 crossings per period; the compared span is 1.8 s, so the count is known to +-1
    assert k.bcf_hz == pytest.approx(2 * f, abs=1 / 1.8 + 1e-9)
    assert k.lin < 0.6 and k.wob < 0.6 and k.str > 0.95
    assert k.vcl_um_s > 2 * k.vsl_um_s


def test_sinusoid_odd_window_and_bcf_scales_with_frequency():
    fps = 200.0
    bcf = []
    for f in (4.0, 8.0):
        x, y = sinusoid(v=20, amp=2.0, f=f, fps=fps, seconds=3.0, phase=0.1)
        bcf.append(kin(x, y, fps=fps, window_frames=int(fps / f) + 1).bcf_hz)
    assert bcf[0] == pytest.approx(8.0, abs=0.5)
    assert bcf[1] == pytest.approx(16.0, abs=0.5)


def test_unit_scaling_doubles_lengths_keeps_ratios():
    x, y = sinusoid()
    a = kin(x, y, um_per_px=0.7, fps=100.0, window_frames=20)
    b = kin(x, y, um_per_px=1.4, fps=100.0, window_frames=20)
    for name in SPEEDS + LENGTHS:
        assert getattr(b, name) == pytest.approx(2 * getattr(a, name), rel=1e-9)
    for name in RATIOS + ("bcf_hz", "mad_deg"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-9)


def test_fps_scaling():
    x, y = random_walk(3, 80, 1.0)
    a = kin(x, y, fps=50.0)
    b = kin(x, y, fps=100.0)
    assert b.duration_s == pytest.approx(a.duration_s / 2)
    for name in SPEEDS + ("bcf_hz",):
        assert getattr(b, name) == pytest.approx(2 * getattr(a, name), rel=1e-9)
    for name in RATIOS + LENGTHS + ("mad_deg",):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-9)


def test_zigzag_mad_and_crossings():
    # alternating +-45° steps: every turn is 90°, the path crosses its average every frame
    x = np.arange(41, dtype=float)
    y = np.where(np.arange(41) % 2 == 0, 0.0, 1.0)
    k = kin(x, y, fps=10.0, window_frames=2)
    assert k.mad_deg == pytest.approx(90.0)
    assert k.alh_max_um == pytest.approx(1.0)  # |d| = 0.5 everywhere
    assert k.alh_um == pytest.approx(1.0)
    # 39 compared points (frames 1..39), each consecutive pair crosses: 38 crossings in 3.8 s
    assert k.bcf_hz == pytest.approx(10.0)


# --- edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1])
def test_too_short_is_nan(n):
    k = kin(np.zeros(n), np.zeros(n))
    assert k.n_frames == n and k.duration_s == 0.0
    for key, value in k.as_dict().items():
        if key not in ("n_frames", "duration_s"):
            assert math.isnan(value), key


def test_two_points():
    k = kin([0.0, 3.0], [0.0, 4.0], fps=10.0)
    assert k.duration_s == pytest.approx(0.1)
    assert k.vcl_um_s == pytest.approx(50.0)
    assert k.vsl_um_s == k.vcl_um_s
    assert k.vap_um_s == pytest.approx(50.0)  # average path is the raw path
    assert k.lin == k.str == k.wob == 1.0
    assert k.alh_um == 0.0 and k.bcf_hz == 0.0
    assert math.isnan(k.mad_deg)  # a single step has no turning angle


def test_short_track_shrinks_window():
    # N=4 <= w=5: window becomes 3, average path has 2 points
    k = kin([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.0, 1.0], fps=1.0, window_frames=5)
    ax, ay = average_path(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0, 1.0]), 5)
    np.testing.assert_allclose(ax, [1.0, 2.0])
    np.testing.assert_allclose(ay, [1 / 3, 2 / 3])
    assert k.vap_um_s == pytest.approx(math.hypot(1.0, 1 / 3))
    assert all(np.isfinite(list(k.as_dict().values())))


@pytest.mark.parametrize(
    ("n", "w", "n_avg"), [(3, 5, 3), (5, 5, 3), (5, 4, 3), (6, 4, 3), (6, 6, 2), (9, 5, 5)]
)
def test_short_track_window_leaves_two_compared_points(n, w, n_avg):
    x, y = random_walk(n, n, 1.0)
    ax, _ = average_path(x, y, w)
    assert len(ax) == n_avg
    k = kin(x, y, window_frames=w)
    assert all(np.isfinite(list(k.as_dict().values())))


def test_stationary_point():
    k = kin(np.full(20, 5.0), np.full(20, 7.0))
    assert k.vcl_um_s == 0.0 and k.vsl_um_s == 0.0 and k.vap_um_s == 0.0
    assert math.isnan(k.lin) and math.isnan(k.str) and math.isnan(k.wob)
    assert k.alh_um == 0.0 and k.alh_max_um == 0.0 and k.bcf_hz == 0.0
    assert math.isnan(k.mad_deg)


def test_zero_length_steps_ignored_in_mad():
    x = np.array([0, 1, 1, 2, 2, 2, 3], float)
    k = kin(x, np.zeros_like(x))
    assert k.mad_deg == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "x", None])
def test_bad_fps_and_scale_raise(bad):
    with pytest.raises(ValueError, match="fps"):
        compute_kinematics([0, 1, 2], [0, 0, 0], um_per_px=1.0, fps=bad)
    with pytest.raises(ValueError, match="um_per_px"):
        compute_kinematics([0, 1, 2], [0, 0, 0], um_per_px=bad, fps=10.0)
    df = pd.DataFrame({"track_id": [1, 1], "frame": [0, 1], "x_px": [0, 1], "y_px": [0, 0]})
    with pytest.raises(ValueError):
        kinematics_table(df, um_per_px=bad, fps=10.0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="equal length"):
        compute_kinematics([0, 1, 2], [0, 0], um_per_px=1.0, fps=10.0)
    with pytest.raises(ValueError, match="NaN"):
        compute_kinematics([0, np.nan, 2], [0, 0, 0], um_per_px=1.0, fps=10.0)
    with pytest.raises(ValueError, match="window_frames"):
        compute_kinematics([0, 1, 2], [0, 0, 0], um_per_px=1.0, fps=10.0, window_frames=0)


def test_input_not_mutated():
    x, y = random_walk(1, 30, 1.0)
    x0, y0 = x.copy(), y.copy()
    kin(x, y, um_per_px=0.5)
    average_path(x, y, 5)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_average_path_centred_moving_average():
    x = np.arange(10, dtype=float) ** 2
    y = np.arange(10, dtype=float)
    ax, ay = average_path(x, y, 3)
    assert len(ax) == 8
    np.testing.assert_allclose(ax, [(x[i] + x[i + 1] + x[i + 2]) / 3 for i in range(8)])
    np.testing.assert_allclose(ay, y[1:9])  # linear data: each average sits on its centre
    rx, ry = average_path(x[:2], y[:2], 5)
    np.testing.assert_array_equal(rx, x[:2])
    np.testing.assert_array_equal(ry, y[:2])


def test_as_dict_matches_track_columns():
    k = kin(*random_walk(0, 20, 1.0))
    assert list(k.as_dict()) == list(KINEMATICS_COLUMNS[1:])
    assert set(KINEMATICS_COLUMNS) <= set(TRACK_COLUMNS)


# --- hypothesis properties on random walks ------------------------------------------------

walks = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(2, 60),  # N
    st.floats(0.01, 20.0),  # step std, px
    st.integers(1, 9),  # window
)


@settings(max_examples=60, deadline=None)
@given(walks)
def test_random_walk_bounds(params):
    seed, n, step, w = params
    k = kin(*random_walk(seed, n, step), um_per_px=0.8, fps=30.0, window_frames=w)
    assert k.vsl_um_s <= k.vcl_um_s * (1 + 1e-9) + 1e-12
    for name in RATIOS:
        assert 0.0 <= getattr(k, name) <= 1.0
    assert k.alh_um >= 0 and k.alh_max_um >= 0 and k.bcf_hz >= 0
    assert k.alh_um <= k.alh_max_um * (1 + 1e-9)
    if n >= 3:
        assert 0.0 <= k.mad_deg <= 180.0


@settings(max_examples=60, deadline=None)
@given(walks, st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(0, 2 * np.pi))
def test_random_walk_translation_rotation_invariance(params, dx, dy, theta):
    seed, n, step, w = params
    x, y = random_walk(seed, n, step)
    c, s = np.cos(theta), np.sin(theta)
    a = kin(x, y, window_frames=w)
    b = kin(c * x - s * y + dx, s * x + c * y + dy, window_frames=w)
    assert_same(a, b, rel=1e-6, abs_=1e-6 * step)


@settings(max_examples=40, deadline=None)
@given(walks, st.floats(0.05, 20.0))
def test_random_walk_linear_in_um_per_px(params, scale):
    seed, n, step, w = params
    x, y = random_walk(seed, n, step)
    a = kin(x, y, um_per_px=1.0, window_frames=w)
    b = kin(x, y, um_per_px=scale, window_frames=w)
    for name in SPEEDS + LENGTHS:
        assert getattr(b, name) == pytest.approx(scale * getattr(a, name), rel=1e-7)
    for name in RATIOS + ("bcf_hz", "mad_deg"):
        va, vb = getattr(a, name), getattr(b, name)
        assert (math.isnan(va) and math.isnan(vb)) or vb == pytest.approx(va, rel=1e-7)


# --- kinematics_table ---------------------------------------------------------------------


def _long(tracks: dict) -> pd.DataFrame:
    rows = []
    for tid, (x, y) in tracks.items():
        for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
            rows.append({"video": "v", "track_id": tid, "frame": 10 + i, "x_px": xi, "y_px": yi})
    return pd.DataFrame(rows)


def test_table_matches_compute_kinematics():
    tracks = {7: random_walk(1, 40, 2.0), 3: sinusoid(seconds=1.0), 9: ([1.0], [2.0])}
    df = _long(tracks).sample(frac=1.0, random_state=0)  # shuffled rows
    df_copy = df.copy()
    out = kinematics_table(df, um_per_px=0.5, fps=100.0, window_frames=7)
    pd.testing.assert_frame_equal(df, df_copy)
    assert list(out.columns) == list(KINEMATICS_COLUMNS)
    assert out["track_id"].tolist() == [3, 7, 9]
    assert out["n_frames"].dtype == np.int64
    for _, row in out.iterrows():
        x, y = tracks[row["track_id"]]
        ref = kin(x, y, um_per_px=0.5, fps=100.0, window_frames=7)
        assert_same(ref, Kinematics(**{k: row[k] for k in KINEMATICS_COLUMNS[1:]}), rel=1e-12)


def test_table_string_ids():
    df = _long({"b": random_walk(2, 10, 1.0), "a": random_walk(4, 12, 1.0)})
    out = kinematics_table(df, um_per_px=1.0, fps=25.0)
    assert out["track_id"].tolist() == ["a", "b"]
    assert out["n_frames"].tolist() == [12, 10]


def test_table_empty():
    df = pd.DataFrame(columns=["track_id", "frame", "x_px", "y_px"])
    out = kinematics_table(df, um_per_px=1.0, fps=25.0)
    assert out.empty and list(out.columns) == list(KINEMATICS_COLUMNS)


def test_table_rejects_gaps_and_missing_columns():
    df = _long({1: random_walk(2, 10, 1.0)})
    with pytest.raises(ValueError, match="non-consecutive"):
        kinematics_table(df.drop(index=4), um_per_px=1.0, fps=25.0)
    with pytest.raises(ValueError, match="non-consecutive"):
        kinematics_table(pd.concat([df, df.iloc[[3]]]), um_per_px=1.0, fps=25.0)
    with pytest.raises(ValueError, match="y_px"):
        kinematics_table(df.drop(columns="y_px"), um_per_px=1.0, fps=25.0)


def test_table_many_tracks_fast():
    import time

    rng = np.random.default_rng(0)
    n_tracks, n = 3000, 50
    df = pd.DataFrame({
        "track_id": np.repeat(np.arange(n_tracks), n),
        "frame": np.tile(np.arange(n), n_tracks),
        "x_px": np.cumsum(rng.normal(size=n_tracks * n)),
        "y_px": np.cumsum(rng.normal(size=n_tracks * n)),
    })
    start = time.perf_counter()
    out = kinematics_table(df, um_per_px=0.7, fps=50.0)
    assert len(out) == n_tracks
    assert time.perf_counter() - start < 5.0
