"""`detect-track track DETECTIONS.csv`: external detections in, the usual outputs out."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.errors import InputError
from detect_track.eval.metrics import tracking_metrics
from detect_track.io.detections import read_detections
from detect_track.io.export import mot_table
from detect_track.pipeline import track_detections
from detect_track.types import TRACK_COLUMNS, TRAJECTORY_COLUMNS

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "samples" / "sim_phase_contrast"


def straight_cells(n_frames: int = 60, drop: tuple[int, ...] = ()) -> pd.DataFrame:
    """Two cells at 50 µm/s (50 fps, 0.5 µm/px: 2 px per frame), one immotile."""
    rows = []
    for f in range(n_frames):
        rows.append((f, 20 + 2.0 * f, 40.0))
        rows.append((f, 20 + 2.0 * f, 120.0))
        if f not in drop:
            rows.append((f, 150.0, 150.0))
    return pd.DataFrame(rows, columns=["frame", "x_px", "y_px"])


def test_links_points_into_tracks_with_kinematics():
    res = track_detections(straight_cells(), fps=50.0, um_per_px=0.5)
    assert list(res.trajectories.columns) == list(TRAJECTORY_COLUMNS)
    assert list(res.tracks.columns) == list(TRACK_COLUMNS)
    assert len(res.tracks) == 3
    moving = res.tracks.sort_values("vsl_um_s").iloc[-2:]
    np.testing.assert_allclose(moving["vsl_um_s"], 50.0, rtol=0.02)
    np.testing.assert_allclose(moving["lin"], 1.0, atol=0.01)
    assert res.summary["detector"] == "external" and res.summary["n_frames"] == 60


def test_bridged_gap_rows_are_flagged_interpolated():
    res = track_detections(straight_cells(drop=(20, 21, 22)), fps=50.0, um_per_px=0.5)
    t = res.trajectories
    still = t[t["x_px"].round(3) == 150.0]
    assert still["track_id"].nunique() == 1 and len(still) == 60
    assert sorted(still.loc[still["interpolated"], "frame"]) == [20, 21, 22]
    assert not t.loc[~t["x_px"].round(3).eq(150.0), "interpolated"].any()
    assert res.summary["n_interpolated"] == 3


def test_recovers_the_sample_tracks_from_true_points():
    truth = pd.read_csv(SAMPLE / "truth_points.csv")
    res = track_detections(truth[["frame", "x_px", "y_px"]].sample(frac=1, random_state=1),
                           fps=50.0, um_per_px=0.7)
    t = res.trajectories[~res.trajectories["interpolated"]]
    m = tracking_metrics(truth.rename(columns={"x_px": "x", "y_px": "y"}),
                         t.rename(columns={"x_px": "x", "y_px": "y"}), 3.0)
    assert m["HOTA"] >= 0.85 and m["IDSW"] <= 3


@pytest.mark.parametrize("tracker", ["sort", "trackpy", "bytetrack", "botsort"])
def test_every_tracker_runs_on_a_table(tracker):
    cfg = load_config(None, {"tracker.name": tracker})
    res = track_detections(straight_cells(), cfg, fps=50.0, um_per_px=0.5)
    assert res.summary["tracker"] == tracker and len(res.tracks) >= 2


def test_classes_not_tracked_are_counted():
    df = straight_cells()
    df["class_name"] = "sperm"
    extra = pd.DataFrame({"frame": range(60), "x_px": 90.0, "y_px": 90.0,
                          "class_name": "cluster"})
    res = track_detections(pd.concat([df, extra]), fps=50.0, um_per_px=0.5)
    assert res.summary["untracked_detections_per_frame"] == {"cluster": 1.0}
    assert len(res.tracks) == 3


def test_mot_table_layout():
    res = track_detections(straight_cells(drop=(5,)), fps=50.0, um_per_px=0.5)
    mot = mot_table(res.trajectories)
    assert list(mot.columns)[:7] == ["frame", "id", "bb_left", "bb_top", "bb_width",
                                     "bb_height", "conf"]
    assert mot["frame"].min() == 1 and mot["frame"].max() == 60
    assert (mot["conf"] == -1).sum() == 1  # the interpolated row


def test_cli_track_writes_outputs_and_mot(tmp_path: Path):
    csv = tmp_path / "dets.csv"
    straight_cells().to_csv(csv, index=False)
    out = tmp_path / "out"
    rc = main(["track", str(csv), "--fps", "50", "--um-per-px", "0.5", "--out", str(out),
               "--export", "mot", "-q"])
    assert rc == 0
    for name in ("trajectories.csv", "tracks.csv", "summary.json", "mot.txt"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_tracks"] == 3 and summary["fps_source"] == "cli"
    mot = np.loadtxt(out / "mot.txt", delimiter=",")
    assert mot.shape[1] == 10 and mot[:, 0].min() == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [("x,y,frame\n1,2,0\n", "rename 'x' -> 'x_px'"),
     ("frame,x_px,y_px\n0,1,2\n0.5,1,2\n", "integer"),
     ("frame,x_px,y_px\n0,1,abc\n", "non-numeric"),
     ("frame,x_px,y_px,confidence\n0,1,2,7\n", "0..1"),
     ("", "empty")],
)
def test_bad_tables_get_one_clear_message(tmp_path: Path, capsys, content, needle):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    with pytest.raises(InputError, match=needle.replace(".", r"\.")):
        read_detections(csv)
    rc = main(["track", str(csv), "--fps", "50", "--um-per-px", "0.5", "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "error" in err[0]


def test_cli_track_needs_fps_and_scale(tmp_path: Path, capsys):
    csv = tmp_path / "d.csv"
    straight_cells().to_csv(csv, index=False)
    with pytest.raises(SystemExit) as e:
        main(["track", str(csv), "--fps", "50"])
    assert e.value.code == 2 and "--um-per-px" in capsys.readouterr().err
