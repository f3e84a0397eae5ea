"""Tests of detect_track.eval on small hand-built tables with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.errors import InputError
from detect_track.eval import (
    detection_metrics,
    evaluate,
    format_report,
    kinematics_errors,
    match_points,
    match_tracks,
    sample_errors,
    tracking_metrics,
)

R = 5.0  # match radius, px


def make_tracks(n_tracks: int = 3, n_frames: int = 20, first_id: int = 1) -> pd.DataFrame:
    """Straight tracks 40 px apart (far beyond 2 * R), moving 1 px/frame to the right."""
    rows = []
    for k in range(n_tracks):
        for f in range(n_frames):
            rows.append({"frame": f, "track_id": first_id + k, "x": 10.0 + f,
                         "y": 20.0 + 40.0 * k})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- matching


def test_match_points_maximises_matches_then_minimises_distance() -> None:
    gt = np.array([[0.0, 0.0], [4.0, 0.0]])
    pred = np.array([[3.0, 0.0]])  # nearer gt 1 but within radius of both
    gi, pi, d = match_points(gt, pred, R)
    assert gi.tolist() == [1] and pi.tolist() == [0] and d.tolist() == [1.0]
    # Greedy nearest would pair pred 0 with gt 1 and leave gt 0 unmatched.
    gt = np.array([[0.0, 0.0], [6.0, 0.0]])
    pred = np.array([[4.0, 0.0], [10.0, 0.0]])
    gi, pi, _ = match_points(gt, pred, R)
    assert sorted(zip(gi.tolist(), pi.tolist(), strict=True)) == [(0, 0), (1, 1)]
    assert len(match_points(gt, np.zeros((0, 2)), R)[0]) == 0
    with pytest.raises(ValueError):
        match_points(gt, pred, 0.0)


# --------------------------------------------------------------------------- detection


def test_detection_identical_is_perfect() -> None:
    gt = make_tracks()
    res = detection_metrics(gt, gt.assign(confidence=0.9), R)
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["f1"] == 1.0
    assert (res["tp"], res["fp"], res["fn"]) == (60, 0, 0)
    assert res["ap50"] == pytest.approx(1.0)
    assert res["mean_match_dist_px"] == 0.0


def test_detection_false_positives_reduce_precision() -> None:
    gt = make_tracks()
    extra = pd.DataFrame({"frame": range(10), "x": 200.0, "y": 200.0})
    res = detection_metrics(gt, pd.concat([gt, extra], ignore_index=True), R)
    assert res["recall"] == 1.0
    assert res["fp"] == 10 and res["precision"] == pytest.approx(60 / 70)
    assert math.isnan(res["ap50"])  # no confidence column


def test_detection_outside_radius_is_miss_and_false_positive() -> None:
    gt = pd.DataFrame({"frame": [0], "x": [0.0], "y": [0.0]})
    pred = pd.DataFrame({"frame": [0, 1], "x": [R + 0.01, 0.0], "y": [0.0, 0.0]})
    res = detection_metrics(gt, pred, R)
    assert (res["tp"], res["fp"], res["fn"]) == (0, 2, 1)
    at_radius = detection_metrics(gt, pred.assign(x=[R, 50.0]), R)
    assert at_radius["tp"] == 1


def test_ap50_ranking() -> None:
    gt = pd.DataFrame({"frame": [0, 1], "x": [10.0, 10.0], "y": [10.0, 10.0]})
    pred = pd.DataFrame({"frame": [0, 1, 1], "x": [10.0, 10.0, 90.0],
                         "y": [10.0, 10.0, 90.0], "confidence": [0.9, 0.8, 0.1]})
    assert detection_metrics(gt, pred, R)["ap50"] == pytest.approx(1.0)
    worst_fp = pred.assign(confidence=[0.8, 0.7, 0.95])
    ap = detection_metrics(gt, worst_fp, R)["ap50"]
    assert ap < 1.0
    assert ap == pytest.approx(2 / 3)  # envelope precision 2/3 at every recall
    # Two predictions on one object: the higher score takes it, the other is a FP.
    dup = pd.DataFrame({"frame": [0, 0, 1], "x": [11.0, 10.0, 10.0], "y": [10.0] * 3,
                        "confidence": [0.3, 0.9, 0.8]})
    res = detection_metrics(gt, dup, R)
    assert res["tp"] == 2 and res["fp"] == 1 and res["ap50"] == pytest.approx(1.0)


def test_detection_empty_inputs() -> None:
    gt = make_tracks()
    empty = pd.DataFrame({"frame": [], "x": [], "y": [], "confidence": []})
    res = detection_metrics(gt, empty, R)
    assert res["recall"] == 0.0 and res["fn"] == 60 and math.isnan(res["precision"])
    assert res["ap50"] == 0.0
    res = detection_metrics(empty, gt, R)
    assert res["precision"] == 0.0 and math.isnan(res["recall"]) and math.isnan(res["ap50"])
    with pytest.raises(ValueError, match="lacks column"):
        detection_metrics(gt.drop(columns="x"), gt, R)


# --------------------------------------------------------------------------- tracking


def test_tracking_identical_is_perfect() -> None:
    gt = make_tracks()
    pred = gt.assign(track_id=gt["track_id"] * 7 + 100)  # other, non-contiguous ids
    res = tracking_metrics(gt, pred, R)
    for key in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "IDF1"):
        assert res[key] == pytest.approx(1.0), key
    assert res["IDSW"] == 0 and res["MT"] == 3 and res["ML"] == 0
    assert res["n_gt_tracks"] == 3 and res["n_pred_tracks"] == 3
    assert isinstance(res["IDSW"], int) and isinstance(res["HOTA"], float)


def test_tracking_shift_half_radius_still_matched() -> None:
    gt = make_tracks()
    pred = gt.assign(x=gt["x"] + 0.5 * R)
    res = tracking_metrics(gt, pred, R)
    assert res["MOTA"] == pytest.approx(1.0) and res["IDF1"] == pytest.approx(1.0)
    assert res["IDSW"] == 0
    # Similarity 0.75 passes alphas 0.05..0.75 (15 of 19): per alpha, HOTA is 1 or 0.
    assert res["HOTA"] == pytest.approx(15 / 19)
    assert res["DetA"] == pytest.approx(15 / 19) and res["AssA"] == pytest.approx(15 / 19)
    # trackeval sets LocA to 1 at alphas with no match, then averages over alphas.
    assert res["LocA"] == pytest.approx((15 * 0.75 + 4 * 1.0) / 19)
    det = detection_metrics(gt, pred, R)
    assert det["precision"] == 1.0 and det["recall"] == 1.0


def test_tracking_id_switch() -> None:
    gt = make_tracks(n_tracks=1, n_frames=20)
    pred = gt.copy()
    pred.loc[pred["frame"] >= 10, "track_id"] = 2
    res = tracking_metrics(gt, pred, R)
    assert res["IDSW"] == 1
    assert res["IDF1"] < 1.0 and res["IDF1"] == pytest.approx(0.5)
    assert res["MOTA"] == pytest.approx(19 / 20)
    assert res["HOTA"] < 1.0
    assert res["n_pred_tracks"] == 2


def test_tracking_empty_and_disjoint_frames() -> None:
    gt = make_tracks()
    empty = gt.iloc[:0]
    res = tracking_metrics(gt, empty, R)
    assert res["MOTA"] <= 0.0 and res["HOTA"] == 0.0 and res["IDF1"] == 0.0
    assert res["ML"] == 3 and math.isnan(res["LocA"])
    res = tracking_metrics(empty, gt, R)
    assert res["HOTA"] == 0.0 and res["n_gt_tracks"] == 0 and res["n_pred_tracks"] == 3
    res = tracking_metrics(empty, empty, R)
    assert res["n_gt_tracks"] == 0 and res["IDSW"] == 0
    # Predictions only in the second half, plus a frame present in pred only.
    pred = pd.concat([gt[gt["frame"] >= 10],
                      pd.DataFrame({"frame": [30], "track_id": [9], "x": [1.0], "y": [1.0]})])
    res = tracking_metrics(gt, pred, R)
    assert 0.0 < res["HOTA"] < 1.0
    assert res["MOTA"] == pytest.approx((30 - 1) / 60)
    with pytest.raises(ValueError, match="duplicate"):
        tracking_metrics(gt, pd.concat([gt, gt.iloc[:1]]), R)


# --------------------------------------------------------------------------- track pairs


def test_match_tracks_pairs() -> None:
    gt = make_tracks(n_tracks=3, n_frames=20)
    pred = gt.assign(track_id=gt["track_id"].map({1: 11, 2: 12, 3: 13}))
    # Track 13 follows gt 3 for 8 frames only, then a new id 14 takes over (12 frames).
    pred.loc[(pred["track_id"] == 13) & (pred["frame"] >= 8), "track_id"] = 14
    # A spurious short track far from everything.
    pred = pd.concat([pred, pd.DataFrame({"frame": [0, 1], "track_id": [99, 99],
                                          "x": [300.0, 301.0], "y": [5.0, 5.0]})])
    pairs = match_tracks(gt, pred, R)
    got = {(a, b): n for a, b, n in pairs[["gt_track_id", "pred_track_id",
                                           "n_matched_frames"]].itertuples(index=False)}
    assert got == {(1, 11): 20, (2, 12): 20, (3, 14): 12}
    assert list(pairs.columns)[:3] == ["gt_track_id", "pred_track_id", "n_matched_frames"]


def test_match_tracks_one_to_one_and_coverage() -> None:
    # One long prediction covers two consecutive short gt tracks: only the larger wins.
    gt = pd.DataFrame({"frame": list(range(10)), "track_id": [1] * 6 + [2] * 4,
                       "x": np.arange(10.0), "y": 0.0})
    pred = gt.assign(track_id=5)
    pairs = match_tracks(gt, pred, R)
    assert pairs[["gt_track_id", "pred_track_id"]].values.tolist() == [[1, 5]]
    # Matched in 2 of 6 frames of the shorter track: below 50 %, no pair.
    gt = make_tracks(n_tracks=1, n_frames=6)
    pred = gt.assign(x=gt["x"] + np.where(gt["frame"] < 2, 0.0, 50.0))
    assert len(match_tracks(gt, pred, R)) == 0
    assert len(match_tracks(gt, gt.iloc[:0], R)) == 0


# --------------------------------------------------------------------------- kinematics


def truth_table() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": [1, 2, 3],
        "motility": ["progressive", "non_progressive", "immotile"],
        "n_frames": [20, 20, 20],
        "duration_s": [0.95, 0.95, 0.2],
        "vcl_um_s": [60.0, 30.0, 0.0],
        "vsl_um_s": [50.0, 5.0, 0.0],
        "vap_um_s": [55.0, 20.0, 0.0],
        "lin": [0.83, 0.17, 0.0],
        "str": [0.9, 0.25, 0.0],
        "wob": [0.92, 0.67, 0.0],
        "alh_um": [2.0, 3.0, 0.0],
        "alh_max_um": [3.0, 4.0, 0.0],
        "bcf_hz": [10.0, 8.0, 0.0],
        "mad_deg": [20.0, 60.0, 0.0],
        "extra_column": ["a", "b", "c"],
    })


def test_kinematics_errors_identical_and_perturbed() -> None:
    truth = truth_table()
    pairs = pd.DataFrame({"gt_track_id": [1, 2, 3], "pred_track_id": [11, 12, 13]})
    pred = truth.assign(track_id=[11, 12, 13])
    res = kinematics_errors(truth, pred, pairs)
    assert res["n_pairs"] == 3 and res["motility_accuracy"] == 1.0
    for key in ("vcl_rel_err", "vsl_rel_err", "vap_rel_err", "lin_abs_err", "str_abs_err",
                "alh_abs_err_um"):
        assert res[key] == 0.0, key
    conf = res["motility_confusion"]
    assert conf["progressive"]["progressive"] == 1 and conf["immotile"]["progressive"] == 0
    assert set(conf) == {"progressive", "non_progressive", "immotile"}

    pred = pred.assign(vcl_um_s=[66.0, 33.0, 5.0], lin=[0.73, 0.17, 0.0],
                       motility=["progressive", "progressive", "immotile"])
    res = kinematics_errors(truth, pred, pairs)
    assert res["vcl_rel_err"] == pytest.approx(0.1)  # true 0 skipped
    assert res["lin_abs_err"] == pytest.approx(0.0)  # median of 0.1, 0, 0
    assert res["motility_accuracy"] == pytest.approx(2 / 3)
    assert res["motility_confusion"]["non_progressive"]["progressive"] == 1
    none = kinematics_errors(truth, pred, pairs.iloc[:0])
    assert none["n_pairs"] == 0 and math.isnan(none["vcl_rel_err"])
    assert math.isnan(none["motility_accuracy"])


def test_sample_errors() -> None:
    summary = {"pct_progressive": 40.0, "pct_non_progressive": 60.0, "pct_immotile": 0.0}
    res = sample_errors(truth_table(), summary, min_track_s=0.5)  # track 3 too short
    assert res["n_true_tracks"] == 2
    assert res["true"]["progressive"] == pytest.approx(50.0)
    assert res["abs_err_pp"]["progressive"] == pytest.approx(10.0)
    assert res["abs_err_pp"]["immotile"] == pytest.approx(0.0)
    assert res["max_abs_err_pp"] == pytest.approx(10.0)
    res = sample_errors(truth_table(), summary, min_track_s=0.0)
    assert res["true"]["immotile"] == pytest.approx(100 / 3)


# --------------------------------------------------------------------------- evaluate


def write_truth(root: Path, gt: pd.DataFrame, fps: float = 20.0, um_per_px: float = 0.5) -> None:
    (root / "gt").mkdir(parents=True)
    lines = [f"{f + 1},{t},{x - 3:.3f},{y - 2:.3f},6,4,1,1,1.0"
             for f, t, x, y in gt[["frame", "track_id", "x", "y"]].itertuples(index=False)]
    (root / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    truth_table().to_csv(root / "truth_tracks.csv", index=False)
    (root / "truth.json").write_text(json.dumps(
        {"fps": fps, "um_per_px": um_per_px, "width_px": 320, "height_px": 160,
         "n_frames": int(gt["frame"].max()) + 1, "seed": 1}))


def write_pred(root: Path, gt: pd.DataFrame, fps: float = 20.0, um_per_px: float = 0.5) -> None:
    root.mkdir(parents=True)
    traj = pd.DataFrame({
        "video": "sim.avi", "frame": gt["frame"], "time_s": gt["frame"] / fps,
        "track_id": gt["track_id"] + 10, "x_px": gt["x"] + 1.0, "y_px": gt["y"],
        "x_um": (gt["x"] + 1.0) * um_per_px, "y_um": gt["y"] * um_per_px, "w_px": 6.0,
        "h_px": 4.0, "class_name": "sperm", "confidence": 0.9, "interpolated": False,
    })
    # An interpolated row far from any cell: not a detection, must be ignored.
    bogus = traj.iloc[:1].assign(frame=5, x_px=250.0, y_px=150.0, track_id=99,
                                 interpolated=True)
    pd.concat([traj, bogus], ignore_index=True).to_csv(root / "trajectories.csv", index=False)
    tracks = truth_table().drop(columns="extra_column").assign(track_id=[11, 12, 13])
    tracks["who_grade"] = ["a", "c", "d"]
    tracks.to_csv(root / "tracks.csv", index=False)
    (root / "summary.json").write_text(json.dumps({
        "fps": fps, "um_per_px": um_per_px, "pct_progressive": 50.0,
        "pct_non_progressive": 50.0, "pct_immotile": 0.0, "n_tracks": 2,
        "config": {"tracker": {"min_track_s": 0.5}},
    }))


def test_evaluate_end_to_end(tmp_path: Path) -> None:
    gt = make_tracks()
    write_truth(tmp_path / "truth", gt)
    write_pred(tmp_path / "pred", gt)
    res = evaluate(tmp_path / "pred", tmp_path / "truth", match_radius_um=4.0)
    assert res["match_radius_px"] == pytest.approx(8.0)
    assert res["matching"] == "centroid distance (Hungarian per frame)"
    assert set(res) >= {"detection", "tracking", "kinematics", "sample", "match_radius_um"}
    det = res["detection"]
    assert det["precision"] == 1.0 and det["recall"] == 1.0 and det["fp"] == 0
    assert det["mean_match_dist_px"] == pytest.approx(1.0)
    assert det["ap50"] == pytest.approx(1.0)
    trk = res["tracking"]
    assert trk["IDSW"] == 0 and trk["IDF1"] == pytest.approx(1.0)
    assert 0.9 < trk["HOTA"] < 1.0  # 1 px off at radius 8 px: similarity 15/16
    kin = res["kinematics"]
    assert kin["n_pairs"] == 3 and kin["motility_accuracy"] == 1.0 and kin["vcl_rel_err"] == 0
    assert res["sample"]["max_abs_err_pp"] == pytest.approx(0.0)
    assert res["warnings"] == []
    text = format_report(res)
    assert "HOTA" in text and "IDF1" in text and "100.0%" in text


def test_evaluate_ignored_truth_and_scale_warning(tmp_path: Path) -> None:
    gt = make_tracks()
    write_truth(tmp_path / "truth", gt)
    write_pred(tmp_path / "pred", gt, um_per_px=0.6)
    gt_txt = tmp_path / "truth" / "gt" / "gt.txt"
    lines = gt_txt.read_text().splitlines()
    # Mark true track 3 as "ignore" (MOT conf 0): its predictions are not false positives.
    lines = [ln.replace(",1,1,1.0", ",0,1,1.0") if ln.split(",")[1] == "3" else ln
             for ln in lines]
    gt_txt.write_text("\n".join(lines) + "\n")
    res = evaluate(tmp_path / "pred", tmp_path / "truth")
    assert res["detection"]["tp"] == 40 and res["detection"]["fp"] == 0
    assert res["tracking"]["n_gt_tracks"] == 2
    assert any("um_per_px" in w for w in res["warnings"])


def test_evaluate_input_errors(tmp_path: Path) -> None:
    gt = make_tracks()
    write_truth(tmp_path / "truth", gt)
    write_pred(tmp_path / "pred", gt)
    (tmp_path / "pred" / "tracks.csv").unlink()
    with pytest.raises(InputError, match="tracks.csv"):
        evaluate(tmp_path / "pred", tmp_path / "truth")
    with pytest.raises(InputError, match="not found"):
        evaluate(tmp_path / "nowhere", tmp_path / "truth")
    write_pred(tmp_path / "pred2", gt)
    (tmp_path / "truth" / "gt" / "gt.txt").write_text("1,1,abc,2,6,4,1,1,1\n")
    with pytest.raises(InputError, match="bb_left"):
        evaluate(tmp_path / "pred2", tmp_path / "truth")
    (tmp_path / "truth" / "truth.json").write_text("{not json")
    with pytest.raises(InputError, match="truth.json"):
        evaluate(tmp_path / "pred2", tmp_path / "truth")


def test_format_report_handles_missing_values() -> None:
    text = format_report({"detection": {"precision": float("nan")}, "tracking": {},
                          "kinematics": {}, "sample": {}, "warnings": ["scale differs"]})
    assert "n/a" in text and "scale differs" in text
