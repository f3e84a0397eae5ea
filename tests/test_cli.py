"""The command line as a user meets it: real runs, and one clear line for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.cli.commands import COMMANDS
from detect_track.cli.run import motility_line
from detect_track.cli.shared import DETECTOR_NAMES, EXPORT_FORMATS, TRACKER_NAMES, preset_names
from detect_track.types import TRACK_COLUMNS, TRAJECTORY_COLUMNS
from tests.helpers import render_blobs, write_video


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "detect_track.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_help_reads_well():
    r = run_cli("--help")
    assert r.returncode == 0
    for word in ("--um-per-px", "--fps", "trajectories.csv", "tracks.csv", "summary.json",
                 "synth", "eval", "progressive"):
        assert word in r.stdout


def test_run_writes_three_files(moving_blob_video: Path, tmp_path: Path):
    out = tmp_path / "res"
    assert main([str(moving_blob_video), "--um-per-px", "0.7", "--out", str(out), "-q",
                 "--detector", "classical", "detector.classical.polarity=bright",
                 "tracker.min_track_s=0.2"]) == 0
    traj = pd.read_csv(out / "trajectories.csv")
    tracks = pd.read_csv(out / "tracks.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert list(traj.columns) == list(TRAJECTORY_COLUMNS)
    assert list(tracks.columns) == list(TRACK_COLUMNS)
    assert len(tracks) == 2  # one mover, one still cell
    mover = tracks.loc[tracks["vcl_um_s"].idxmax()]
    # 1 px/frame at 25 fps and 0.7 µm/px = 17.5 µm/s
    assert mover["vsl_um_s"] == pytest.approx(17.5, rel=0.1)
    assert summary["fps"] == pytest.approx(25.0) and summary["fps_source"] == "container"
    assert summary["um_per_px"] == 0.7 and summary["um_per_px_source"] == "cli"
    assert summary["n_tracks"] == 2
    assert traj["frame"].min() == 0
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_fps_override_and_default_scale_flagged(moving_blob_video: Path, tmp_path: Path):
    out = tmp_path / "res"
    assert main([str(moving_blob_video), "--fps", "50", "--out", str(out), "-q",
                 "--detector", "classical", "tracker.min_track_s=0.2"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["fps"] == 50.0 and s["fps_source"] == "cli"
    assert s["um_per_px_source"] == "default" and s["warnings"]


def _one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 2, r.stderr
    assert needle in r.stderr.lower(), r.stderr


@pytest.fixture
def bad_inputs(tmp_path: Path, moving_blob_video: Path) -> dict[str, Path]:
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "corrupt.avi").write_bytes(os.urandom(4096))
    half = moving_blob_video.read_bytes()
    (tmp_path / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + half[100:2000])
    one = write_video(tmp_path / "one.avi", [render_blobs(np.array([[20.0, 20.0]]))])
    return {"empty": tmp_path / "empty.avi", "corrupt": tmp_path / "corrupt.avi",
            "garbage": tmp_path / "garbage.mp4", "one": one, "good": moving_blob_video}


@pytest.mark.parametrize("case,extra,needle", [
    ("missing", [], "no such file"),
    ("empty", [], "empty"),
    ("corrupt", [], "cannot"),
    ("garbage", [], "cannot"),
    ("one", [], "single frame"),
    ("good", ["--fps", "0"], "--fps"),
    ("good", ["--fps", "-5"], "--fps"),
    ("good", ["--fps", "1e9"], "--fps"),
    ("good", ["--fps", "abc"], "--fps"),
    ("good", ["--um-per-px", "0"], "--um-per-px"),
    ("good", ["--um-per-px", "-1"], "--um-per-px"),
    ("good", ["tracker.max_gap=0.3"], "did you mean 'tracker.max_gap_s'"),
    ("good", ["--config", "sperms"], "did you mean 'sperm'"),
    ("good", ["--detector", "yolo9"], "unknown detector"),
    ("good", ["detector.yolo.weights=no-such-model"], "not found"),
    ("good", ["--detector", "effdet", "detector.effdet.weights=/nowhere/x.pt"], "not found"),
])
def test_bad_input_one_clear_line(bad_inputs, tmp_path: Path, case, extra, needle):
    video = bad_inputs.get(case, tmp_path / "missing.avi")
    r = run_cli(str(video), "--out", str(tmp_path / "o"), "-q", *extra)
    _one_line_error(r, needle.lower())


def test_unwritable_output(moving_blob_video: Path, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli(str(moving_blob_video), "--out", str(blocker / "sub"), "-q")
    _one_line_error(r, "output")
    if os.geteuid() != 0:  # root can write anywhere; the case above covers it
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        _one_line_error(run_cli(str(moving_blob_video), "--out", str(ro), "-q"), "cannot write")


def test_interrupted_write_leaves_previous_file(tmp_path: Path):
    from detect_track.io.export import atomic_write

    target = tmp_path / "a.csv"
    target.write_text("old\n")

    def boom(p: Path) -> None:
        p.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


@pytest.mark.parametrize("args,needle", [(["synth"], "no out_dir given"), (["eval"], "required"),
                                         (["train"], "required: what"),
                                         (["morphology", "predict", "m.pt"], "input"),
                                         (["train", "dataset", "d", "--epochs", "3"],
                                          "unrecognized arguments: --epochs")])
def test_missing_arguments(args, needle):
    _one_line_error(run_cli(*args), needle)


def test_no_arguments_print_a_short_usage():
    r = run_cli()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert 3 <= len(lines) <= 6, r.stderr
    for form in ("detect-track VIDEO", "detect-track FOLDER --out DIR",
                 "detect-track IMAGE --config sperm-slide", "detect-track --help"):
        assert form in r.stderr


def test_help_lists_every_command_on_one_line():
    text = run_cli("--help").stdout
    listed = [ln.split()[0] for ln in text.split("other commands")[1].split("\n\n")[0]
              .splitlines()[1:]]
    assert listed == list(COMMANDS)
    for name in COMMANDS:
        r = run_cli(name, "--help")
        assert r.returncode == 0 and f"usage: detect-track {name}" in r.stdout


def test_help_loads_no_heavy_library():
    heavy = ("numpy", "pandas", "cv2", "scipy", "torch", "ultralytics", "tqdm")
    code = ("import sys\nfrom detect_track.cli import main\n"
            "for argv in (['--help'], [], ['track', '--help'], ['train', 'yolo', '--help'],"
            " ['morphology', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            f"print([m for m in {heavy!r} if m in sys.modules], file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stderr.strip().splitlines()[-1] == "[]", r.stderr


def test_help_names_match_the_registries():
    from detect_track.config import list_presets
    from detect_track.detectors import available_detectors
    from detect_track.io import export
    from detect_track.tracking import available_trackers

    assert list(DETECTOR_NAMES) == available_detectors()
    assert list(TRACKER_NAMES) == available_trackers()
    assert tuple(EXPORT_FORMATS) == tuple(export.EXPORT_FORMATS)
    assert preset_names() == list_presets()


@pytest.mark.parametrize("n_tracks, n_gradable, needle", [
    (12, 3, "100.0% progressive, 0.0% non-progressive, 0.0% immotile (percentages of 3 "
            "gradable tracks; 9 seen too briefly to grade)"),
    (1, 1, "1 track: 100.0% progressive, 0.0% non-progressive, 0.0% immotile (percentages "
           "of 1 gradable track)"),
    (4, 0, "4 tracks: none seen long enough to grade motility"),
])
def test_motility_line_says_what_the_percentages_rest_on(n_tracks, n_gradable, needle):
    pct = 100.0 if n_gradable else 0.0
    summary = {"n_tracks": n_tracks, "n_gradable": n_gradable, "pct_progressive": pct,
               "pct_non_progressive": 0.0, "pct_immotile": 0.0}
    assert needle in motility_line(summary)


def test_video_summary_line_counts_gradable_tracks(moving_blob_video: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    assert main([str(moving_blob_video), "--um-per-px", "0.7", "--out", str(tmp_path / "r"),
                 "--detector", "classical", "detector.classical.polarity=bright",
                 "tracker.min_track_s=0.2", "--no-report"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    out = capsys.readouterr().out
    assert f"-> {summary['n_tracks']} tracks: " in out
    assert f"of {summary['n_gradable']} gradable track" in out


def test_run_writes_report_and_overlay(moving_blob_video: Path, tmp_path: Path):
    import cv2

    out = tmp_path / "res"
    assert main([str(moving_blob_video), "--um-per-px", "0.7", "--out", str(out), "-q",
                 "--detector", "classical", "detector.classical.polarity=bright",
                 "tracker.min_track_s=0.2", "--overlay", "--chamber-depth-um", "20"]) == 0
    html = (out / "report.html").read_text()
    assert "two_cells.avi" in html and "data:image/png;base64," in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chamber_depth_um"] == 20.0 and summary["concentration_million_per_ml"] > 0
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    cap.release()
    assert main([str(moving_blob_video), "--out", str(tmp_path / "r2"), "-q", "--no-report",
                 "--detector", "classical"]) == 0
    assert not (tmp_path / "r2" / "report.html").exists()


@pytest.mark.parametrize("extra, needle", [
    (["--workers", "2"], "--workers is for batches"),
    (["--chamber-depth-um", "-3"], "chamber_depth_um"),
])
def test_batch_options_on_one_video_are_refused(moving_blob_video: Path, tmp_path: Path,
                                                extra: list[str], needle: str):
    r = run_cli(str(moving_blob_video), "--out", str(tmp_path / "o"), *extra)
    _one_line_error(r, needle)
