"""The published tables: honest beat values, ids 1..N, rounding, dialects, xlsx, Parquet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.batch.combine import combine
from detect_track.cli import main
from detect_track.io.export import DECIMALS, format_table, read_table, sniff_dialect
from detect_track.measure.motility import BEAT_COLUMNS
from detect_track.morphology.stage import screening_model
from detect_track.pipeline import track_detections
from detect_track.results import Summary, read_trajectories, write_results
from detect_track.tracking.trajectories import fill_gaps, first_appearance_ids

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def _scene(n_frames: int = 80) -> pd.DataFrame:
    """50 fps, 0.5 µm/px: a cell beating along a line at 50 µm/s from frame 0, an
    immotile head jittering by 0.3 px from frame 0, a second swimmer from frame 20 (a
    gap of 3 frames in it), and a blip of 3 frames (a track the filters drop) at 10."""
    rng = np.random.default_rng(0)
    rows = []
    for f in range(n_frames):
        rows.append((f, 20 + 2.0 * f, 40.0 + 1.5 * np.sin(f * 2.1), 0.9))
        rows.append((f, 150 + rng.normal(0, 0.3), 150 + rng.normal(0, 0.3), 0.8))
        if f >= 20 and f not in (40, 41, 42):
            rows.append((f, 30 + 1.7 * f, 220.0 + 0.5 * np.cos(f), 0.7 + 0.002 * f))
        if 10 <= f < 13:
            rows.append((f, 300.0, 30.0, 0.6))
    return pd.DataFrame(rows, columns=["frame", "x_px", "y_px", "confidence"])


@pytest.fixture(scope="module")
def results():
    return track_detections(_scene(), fps=50.0, um_per_px=0.5)


def test_immotile_tracks_have_no_beat_values_anywhere(results, tmp_path: Path):
    t = results.tracks
    still = t["motility"] == "immotile"
    assert still.sum() == 1 and (~still).sum() == 2
    assert t.loc[still, list(BEAT_COLUMNS)].isna().all().all()
    assert t.loc[~still, ["alh_um", "bcf_hz", "mad_deg"]].notna().all().all()
    assert t.loc[still, ["vcl_um_s", "vsl_um_s", "lin"]].notna().all().all()  # only the beat
    written = write_results(results, tmp_path)["tracks"]
    rows = list(csvrows(written))
    header = rows[0]
    row = next(r for r in rows[1:] if r[header.index("motility")] == "immotile")
    assert all(row[header.index(c)] == "" for c in BEAT_COLUMNS)  # empty cells, not 0


def csvrows(path: Path) -> list[list[str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter=";" if sniff_dialect(path) == "excel-eu" else ","))


def test_track_ids_are_1_to_n_in_order_of_first_appearance(results):
    t, traj = results.tracks, results.trajectories
    n = len(t)
    assert n == 3  # the blip is filtered out: the tracker's ids had a gap
    assert t["track_id"].tolist() == list(range(1, n + 1))
    assert sorted(traj["track_id"].unique()) == list(range(1, n + 1))
    first = traj.groupby("track_id")["frame"].min()
    assert first.is_monotonic_increasing and first.loc[3] == 20  # the late swimmer is last
    assert first_appearance_ids({7: 5, 2: 9, 4: 5}) == {4: 1, 7: 2, 2: 3}


def test_streamed_run_renumbers_the_file_too(tmp_path: Path):
    path = tmp_path / "trajectories.csv"
    res = track_detections(_scene(), fps=50.0, um_per_px=0.5, trajectories_csv=path)
    back = read_trajectories(path)
    assert sorted(back["track_id"].unique()) == res.tracks["track_id"].tolist() == [1, 2, 3]


def test_interpolated_rows_are_0_1_with_a_confidence(results, tmp_path: Path):
    traj = results.trajectories
    gap = traj[traj["interpolated"]]
    assert sorted(gap["frame"]) == [40, 41, 42] and gap["confidence"].notna().all()
    # linear between the detections on either side (0.778 at 39, 0.786 at 43)
    np.testing.assert_allclose(gap.sort_values("frame")["confidence"],
                               [0.780, 0.782, 0.784], atol=1e-9)
    rows = csvrows(write_results(results, tmp_path)["trajectories"])
    col = rows[0].index("interpolated")
    assert {r[col] for r in rows[1:]} == {"0", "1"}
    assert all(r[rows[0].index("confidence")] != "" for r in rows[1:])
    filled = fill_gaps(pd.DataFrame({"frame": [0, 2], "track_id": 1, "x_px": [0.0, 2.0],
                                     "y_px": 0.0, "confidence": [0.5, 0.7]}))
    assert filled["confidence"].tolist() == pytest.approx([0.5, 0.6, 0.7])


def test_csv_cells_are_rounded_per_column(results, tmp_path: Path):
    paths = write_results(results, tmp_path)
    for name in ("trajectories", "tracks"):
        rows = csvrows(paths[name])
        header = rows[0]
        for col, d in DECIMALS.items():
            if col not in header:
                continue
            cells = [r[header.index(col)] for r in rows[1:] if r[header.index(col)]]
            assert cells or col == "morphology_confidence", col  # no morphology here
            pattern = re.compile(rf"-?\d+\.\d{{{d}}}" if d else r"-?\d+")
            assert all(pattern.fullmatch(c) for c in cells), (name, col, cells[:3])
    # in memory every digit stays
    assert (results.tracks["vcl_um_s"] != results.tracks["vcl_um_s"].round(1)).any()


def test_excel_eu_round_trips_with_pandas(results, tmp_path: Path):
    std = write_results(results, tmp_path / "std")
    eu = write_results(results, tmp_path / "eu", csv_dialect="excel-eu")
    for name in ("trajectories", "tracks"):
        text = eu[name].read_text(encoding="utf-8")
        assert text.splitlines()[0].count(";") > 5 and "," in text
        a = pd.read_csv(std[name])
        b = pd.read_csv(eu[name], sep=";", decimal=",")
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(read_table(eu[name]), a)
    pd.testing.assert_frame_equal(read_trajectories(eu["trajectories"]),
                                  read_trajectories(std["trajectories"]))


def test_streamed_excel_eu_is_converted_in_place(tmp_path: Path):
    path = tmp_path / "trajectories.csv"
    res = track_detections(_scene(), fps=50.0, um_per_px=0.5, trajectories_csv=path)
    write_results(res, tmp_path, csv_dialect="excel-eu")
    assert sniff_dialect(path) == "excel-eu"
    back = pd.read_csv(path, sep=";", decimal=",")
    assert back["x_um"].dtype == np.float64 and back["track_id"].max() == 3
    assert len(res.trajectories) == len(back)  # read back in its dialect


def test_xlsx_has_a_summary_sheet_and_the_tables(results, tmp_path: Path):
    pytest.importorskip("openpyxl")
    path = write_results(results, tmp_path, exports=["xlsx"])["xlsx"]
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == ["summary", "tracks", "trajectories"]
    summary = dict(zip(sheets["summary"]["key"], sheets["summary"]["value"], strict=True))
    assert summary["n_tracks"] == 3 and summary["video"] == "detections"
    tracks = sheets["tracks"]
    assert tracks["track_id"].tolist() == [1, 2, 3]
    assert tracks["vcl_um_s"].tolist() == results.tracks["vcl_um_s"].round(1).tolist()
    assert set(sheets["trajectories"]["interpolated"]) == {0, 1}


def test_parquet_for_one_video(results, tmp_path: Path):
    pytest.importorskip("pyarrow")
    paths = write_results(results, tmp_path, exports=["parquet"])
    traj = pd.read_parquet(paths["trajectories_parquet"])
    tracks = pd.read_parquet(paths["tracks_parquet"])
    assert len(traj) == len(results.trajectories) and traj["interpolated"].dtype == bool
    assert tracks["track_id"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(tracks["vcl_um_s"], results.tracks["vcl_um_s"].round(1))


def test_cli_track_with_excel_eu_and_exports(tmp_path: Path):
    det = tmp_path / "det.csv"
    _scene().to_csv(det, index=False)
    out = tmp_path / "out"
    assert main(["track", str(det), "--fps", "50", "--um-per-px", "0.5", "--out", str(out),
                 "--csv-dialect", "excel-eu", "--export", "xlsx", "--export", "parquet",
                 "-q"]) == 0
    assert sniff_dialect(out / "tracks.csv") == "excel-eu"
    assert (out / "results.xlsx").is_file() and (out / "tracks.parquet").is_file()


def test_batch_tables_follow_the_dialect(results, tmp_path: Path):
    write_results(results, tmp_path / "a", csv_dialect="excel-eu")
    rec = {"file": "a.avi", "output": "a", "status": "ok", "error": "", "warnings": "",
           "elapsed_s": 1.0, "n_frames": 80, "n_tracks": 3, "finished_at": "", "key": "k"}
    paths = combine(tmp_path, [rec], report=False, csv_dialect="excel-eu")
    all_tracks = pd.read_csv(paths["all_tracks"], sep=";", decimal=",")
    assert len(all_tracks) == 3 and all_tracks["vcl_um_s"].dtype == np.float64


def test_morphology_screening_follows_the_weights_card(tmp_path: Path):
    assert screening_model(WEIGHTS / "head-shape-synth.onnx") is True
    assert screening_model(WEIGHTS / "head-shape-synth.pt") is True
    own = tmp_path / "mine.pt"
    own.write_bytes(b"")
    assert screening_model(own) is False  # no card: a lab's own model
    (tmp_path / "mine.md").write_text("| training data | 300 graded heads of our lab |\n")
    assert screening_model(own) is False


def test_summary_field_is_written_and_old_summaries_read(results, tmp_path: Path):
    written = json.loads(write_results(results, tmp_path)["summary"].read_text())
    assert list(written)[-1] == "morphology_screening" and written["morphology_screening"] is False
    del written["morphology_screening"]  # a summary.json from before the field
    assert Summary.from_dict(written).morphology_screening is None  # unknown


def test_resolution_threshold_is_a_checked_setting():
    from detect_track.config import load_config
    from detect_track.errors import ConfigError

    assert load_config().morphology.min_px_per_um == 2.5
    with pytest.raises(ConfigError, match="min_px_per_um"):
        load_config(None, {"morphology.min_px_per_um": -1})


def test_format_table_escapes_formulas_and_keeps_negative_numbers():
    df = pd.DataFrame({"video": ["=HYPERLINK()"], "x_px": [-1.234], "flag": [True]})
    out = format_table(df, "excel-eu")
    assert out.loc[0, "video"] == "'=HYPERLINK()" and out.loc[0, "x_px"] == "-1,23"
    assert out.loc[0, "flag"] == 1
