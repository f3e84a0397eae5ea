import math

import numpy as np
import pandas as pd
import pytest

from detect_track.config import MotilityConfig
from detect_track.measure.kinematics import kinematics_table
from detect_track.measure.motility import NOT_GRADABLE as NG
from detect_track.measure.motility import WHO_GRADES, classify_motility
from detect_track.measure.sample import sample_summary
from detect_track.types import MOTILITY_CLASSES

NAN = math.nan
CASA = MotilityConfig(rule="casa")


def table(*rows) -> pd.DataFrame:
    """Rows of (track_id, vcl, vsl, vap, str, alh)."""
    return pd.DataFrame(
        rows, columns=["track_id", "vcl_um_s", "vsl_um_s", "vap_um_s", "str", "alh_um"]
    )


CASES = [
    # id, vcl, vsl, vap, str, alh -> class, grade
    ((1, 80.0, 40.0, 45.0, 0.89, 3.0), "progressive", "a"),
    ((2, 40.0, 22.0, 26.0, 0.85, 2.0), "progressive", "b"),  # VSL below grade-a gate
    ((3, 60.0, 25.0, 25.0, 0.80, 2.0), "progressive", "a"),  # exactly on every gate
    ((4, 80.0, 10.0, 40.0, 0.25, 4.0), "non_progressive", "c"),  # fast but circling
    ((5, 20.0, 5.0, 10.0, 0.5, 0.5), "non_progressive", "c"),  # slow, between gates
    ((6, 30.0, 0.5, 2.0, 0.25, 2.5), "non_progressive", "c"),  # beats in place
    ((7, 30.0, 0.5, 2.0, 0.25, 0.5), "immotile", "d"),  # fast jitter without a beat
    ((8, 5.0, 0.5, 2.0, 0.25, 2.5), "immotile", "d"),  # slow, some lateral noise
    ((9, 0.0, 0.0, 0.0, NAN, 0.0), "immotile", "d"),  # stationary
    ((10, NAN, NAN, NAN, NAN, NAN), NG, NG),  # one point: not gradable
    ((11, 60.0, 30.0, 30.0, NAN, NAN), "non_progressive", "c"),  # NaN STR fails the gate
    ((12, 20.0, 12.0, 14.0, 0.86, 1.0), "non_progressive", "b"),  # straight but slow: WHO b
    ((13, 20.0, 4.0, 4.5, 0.9, 0.5), "immotile", "d"),  # straight drift below 5 µm/s
]


def test_each_class_and_grade_casa():
    tracks = table(*(row for row, _, _ in CASES))
    before = tracks.copy()
    out = classify_motility(tracks, CASA)
    pd.testing.assert_frame_equal(tracks, before)  # input untouched
    assert "motility" not in tracks.columns
    assert out["motility"].tolist() == [c for _, c, _ in CASES]
    assert out["who_grade"].tolist() == [g for _, _, g in CASES]
    assert set(out["motility"]) == {*MOTILITY_CLASSES, NG}
    assert set(out["who_grade"]) == {*WHO_GRADES, NG}
    assert out["track_id"].tolist() == tracks["track_id"].tolist()


def prog_table(*rows) -> pd.DataFrame:
    """Rows of (track_id, duration_s, vcl, vsl, alh, progression, motion); VAP = VCL, STR 1."""
    df = pd.DataFrame(rows, columns=["track_id", "duration_s", "vcl_um_s", "vsl_um_s", "alh_um",
                                     "progression_um_s", "motion_um_s"])
    return df.assign(vap_um_s=df["vcl_um_s"], str=1.0)


PROGRESSION_CASES = [
    # id, duration, vcl, vsl, alh, progression, motion -> class, grade
    ((1, 10.0, 80.0, 40.0, 3.0, 40.0, 40.0), "progressive", "a"),
    ((2, 10.0, 40.0, 5.0, 2.0, 22.0, 22.0), "progressive", "b"),  # large circle: VSL low
    ((3, 10.0, 30.0, 20.0, 2.0, 20.0, 20.0), "progressive", "b"),  # on the gate
    ((4, 10.0, 60.0, 1.0, 1.0, 19.9, 25.0), "non_progressive", "c"),  # just below it
    ((5, 10.0, 40.0, 0.5, 0.5, 0.5, 30.0), "non_progressive", "c"),  # closed tight circle
    ((6, 10.0, 30.0, 0.5, 2.5, 0.5, 1.0), "non_progressive", "c"),  # beats in place
    ((7, 10.0, 90.0, 0.5, 0.8, 0.5, 1.0), "immotile", "d"),  # jitter (high VCL), no beat
    ((8, 10.0, 3.0, 3.0, 0.0, 3.9, 3.9), "immotile", "d"),  # slow drift
    ((9, 0.5, 60.0, 60.0, 2.0, 60.0, 60.0), "progressive", "a"),  # brief, 30 µm straight
    ((10, 0.5, 20.0, 15.0, 1.0, 15.0, 15.0), NG, NG),  # brief and slow: not gradable
    ((11, 0.5, 1.0, 0.1, 0.0, 0.1, 0.1), NG, NG),  # brief and still: not gradable either
    ((12, 0.0, NAN, NAN, NAN, NAN, NAN), NG, NG),  # one point
]


def test_each_class_and_grade_progression():
    tracks = prog_table(*(row for row, _, _ in PROGRESSION_CASES))
    out = classify_motility(tracks)  # the default rule
    assert out["motility"].tolist() == [c for _, c, _ in PROGRESSION_CASES]
    assert out["who_grade"].tolist() == [g for _, _, g in PROGRESSION_CASES]
    longer = classify_motility(tracks, MotilityConfig(min_gradable_s=0.4))
    assert longer["motility"].tolist()[9:11] == ["non_progressive", "immotile"]


def test_unknown_rule_raises():
    with pytest.raises(ValueError, match="rule"):
        classify_motility(table((1, 80.0, 40.0, 45.0, 0.89, 3.0)), MotilityConfig(rule="x"))


def test_custom_gates_change_outcome():
    tracks = table(
        (1, 40.0, 22.0, 26.0, 0.85, 2.0),
        (2, 30.0, 0.5, 2.0, 0.25, 2.5),
        (3, 12.0, 3.0, 6.0, 0.5, 0.2),
    )
    default = classify_motility(tracks, CASA)
    assert default["motility"].tolist() == ["progressive", "non_progressive", "non_progressive"]
    assert default["who_grade"].tolist() == ["b", "c", "c"]

    strict = MotilityConfig(
        rule="casa", progressive_str=0.9, immotile_alh_um=3.0, immotile_vap_um_s=8.0,
        grade_a_vsl_um_s=20.0
    )
    out = classify_motility(tracks, strict)
    assert out["motility"].tolist() == ["non_progressive", "immotile", "immotile"]

    lenient = MotilityConfig(rule="casa", progressive_vap_um_s=20.0, grade_a_vsl_um_s=20.0)
    out = classify_motility(tracks, cfg=lenient)
    assert out["who_grade"].tolist() == ["a", "c", "c"]

    # the progression rule reads progression_um_s (VSL stands in without it)
    out = classify_motility(tracks)
    assert out["motility"].tolist() == ["progressive", "non_progressive", "immotile"]
    out = classify_motility(tracks, MotilityConfig(progressive_um_s=25.0, immotile_um_s=2.0))
    assert out["motility"].tolist() == ["non_progressive", "non_progressive", "non_progressive"]


def test_replaces_existing_columns_and_keeps_others():
    tracks = table((1, 80.0, 40.0, 45.0, 0.89, 3.0)).assign(motility="x", who_grade="z", n=3)
    out = classify_motility(tracks)
    assert out.loc[0, "motility"] == "progressive" and out.loc[0, "who_grade"] == "a"
    assert out.loc[0, "n"] == 3


def test_missing_column_raises():
    with pytest.raises(ValueError, match="alh_um"):
        classify_motility(table((1, 80.0, 40.0, 45.0, 0.89, 3.0)).drop(columns="alh_um"))


def test_summary_counts_and_percentages():
    out = classify_motility(table(*(row for row, _, _ in CASES)), CASA)
    s = sample_summary(out)
    assert s["n_tracks"] == len(CASES) == 13
    assert (s["n_gradable"], s["n_not_gradable"]) == (12, 1)
    assert (s["n_progressive"], s["n_non_progressive"], s["n_immotile"]) == (3, 5, 4)
    assert (s["n_grade_a"], s["n_grade_b"], s["n_grade_c"], s["n_grade_d"]) == (2, 2, 4, 4)
    assert s["pct_progressive"] == pytest.approx(100 * 3 / 12)  # of the gradable cells
    total = sum(s[f"pct_{c}"] for c in MOTILITY_CLASSES)
    assert total == pytest.approx(100.0)
    assert sum(s[f"pct_grade_{g}"] for g in WHO_GRADES) == pytest.approx(100.0)
    assert s["pct_motile"] == pytest.approx(100.0 - s["pct_immotile"])
    assert all(isinstance(v, (int, float)) and not isinstance(v, np.generic) for v in s.values())


def test_summary_empty():
    out = classify_motility(table())
    assert list(out.columns)[-2:] == ["motility", "who_grade"] and out.empty
    s = sample_summary(out)
    assert s["n_tracks"] == 0
    for key, value in s.items():
        assert value == 0, key
    assert {f"pct_{c}" for c in MOTILITY_CLASSES} <= set(s)
    assert {f"n_grade_{g}" for g in WHO_GRADES} | {"pct_motile"} <= set(s)


def test_summary_requires_classes():
    with pytest.raises(ValueError, match="classify_motility"):
        sample_summary(table((1, 80.0, 40.0, 45.0, 0.89, 3.0)))


def test_end_to_end_from_trajectories():
    fps, n = 50.0, 51
    t = np.arange(n) / fps
    tracks = {
        1: (60 * t, 2.0 * np.sin(2 * np.pi * 10 * t + 0.2)),  # 60 µm/s, straight: grade a
        2: (np.full(n, 5.0), np.full(n, 9.0)),  # dead
        3: (20 * np.cos(2 * np.pi * t), 20 * np.sin(2 * np.pi * t)),  # fast circle, r=20 µm
    }
    df = pd.concat(
        pd.DataFrame({"track_id": k, "frame": np.arange(n), "x_px": x, "y_px": y})
        for k, (x, y) in tracks.items()
    )
    kin = kinematics_table(df, um_per_px=1.0, fps=fps)
    out = classify_motility(kin, CASA)
    assert out.set_index("track_id")["who_grade"].to_dict() == {1: "a", 2: "d", 3: "c"}
    # the default rule: the circle closes within the 2 s window (no progression) but moves
    out = classify_motility(kin)
    assert out.set_index("track_id")["who_grade"].to_dict() == {1: "a", 2: "d", 3: "c"}


def test_progression_ignores_jitter_and_frame_rate():
    """Net displacement over seconds: jitter that inflates VCL barely moves progression."""
    rng = np.random.default_rng(0)
    rows = []
    for fps in (9.0, 49.0):
        t = np.arange(int(6 * fps)) / fps
        for k, (vx, sigma) in enumerate([(30.0, 0.0), (30.0, 0.3), (0.0, 0.3)]):
            x = vx * t + rng.normal(0, sigma, len(t))
            y = rng.normal(0, sigma, len(t))
            rows.append(pd.DataFrame({"track_id": len(rows), "frame": np.arange(len(t)),
                                      "x_px": x, "y_px": y, "fps": fps, "case": k}))
    for fps in (9.0, 49.0):
        df = pd.concat([r for r in rows if r["fps"].iloc[0] == fps])
        kin = kinematics_table(df, um_per_px=1.0, fps=fps).set_index("track_id")
        case = df.groupby("track_id")["case"].first()
        clean, noisy, still = (kin[case == c].iloc[0] for c in range(3))
        assert clean["progression_um_s"] == pytest.approx(30.0, rel=1e-6)
        assert noisy["progression_um_s"] == pytest.approx(30.0, abs=1.0)
        assert still["progression_um_s"] < 1.0 and still["motion_um_s"] < 2.0
        if fps == 49.0:
            assert still["vcl_um_s"] > 20.0  # what a frame-by-frame gate sees
        out = classify_motility(kin)["motility"]
        assert out.tolist() == ["progressive", "progressive", "immotile"]
