"""End to end on a small simulated video with ground truth: real outcomes, no mocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.eval import evaluate
from detect_track.io.export import round_table
from detect_track.pipeline import run_video
from detect_track.results import write_results
from detect_track.synth import SynthConfig, simulate
from detect_track.types import TRACK_COLUMNS, TRAJECTORY_COLUMNS


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    cfg = SynthConfig(width_px=320, height_px=240, fps=30.0, duration_s=3.0, um_per_px=0.7,
                      n_cells=14, frac_progressive=0.5, frac_non_progressive=0.2, n_debris=4,
                      look="phase_dark", noise_std=2.0, seed=11, video_format="avi")
    simulate(out, cfg)
    return out


def test_pipeline_recovers_cells_and_kinematics(sim: Path, tmp_path: Path):
    res = run_video(sim / "video.avi", load_config(None, {"detector.name": "classical"}),
                    um_per_px=0.7)
    assert list(res.trajectories.columns) == list(TRAJECTORY_COLUMNS)
    assert list(res.tracks.columns) == list(TRACK_COLUMNS)
    write_results(res, tmp_path)
    ev = evaluate(tmp_path, sim)
    assert ev["detection"]["recall"] >= 0.75
    assert ev["detection"]["precision"] >= 0.65
    assert ev["tracking"]["HOTA"] >= 0.6
    assert ev["kinematics"]["n_pairs"] >= 5
    assert ev["kinematics"]["vcl_rel_err"] <= 0.1
    assert ev["kinematics"]["motility_accuracy"] >= 0.6
    # not_gradable = seen too briefly to grade (left out of the percentages)
    assert set(res.tracks["motility"]) <= {"progressive", "non_progressive", "immotile",
                                           "not_gradable"}
    s = res.summary
    assert s["n_gradable"] == (res.tracks["motility"] != "not_gradable").sum() >= 5
    assert s["n_gradable"] + s["n_not_gradable"] == s["n_tracks"] == len(res.tracks)
    total = s["pct_progressive"] + s["pct_non_progressive"] + s["pct_immotile"]
    assert total == pytest.approx(100.0)


def test_simulation_preset_pipeline_on_simulated_video(sim: Path, tmp_path: Path):
    res = run_video(sim / "video.avi", load_config("sperm-sim"), um_per_px=0.7)
    write_results(res, tmp_path)
    ev = evaluate(tmp_path, sim)
    # measured with the first shipped weights: recall 0.69, precision 0.73, HOTA 0.46, VCL 4.6 %
    assert ev["detection"]["recall"] >= 0.6
    assert ev["detection"]["precision"] >= 0.6
    assert ev["tracking"]["HOTA"] >= 0.4
    assert ev["kinematics"]["vcl_rel_err"] <= 0.1
    s = res.summary
    assert s["detector"] == "yolo" and s["detector_weights"] == "yolo-sperm-sim.onnx"
    assert s["detector_backend"] == "onnx"
    assert set(s["untracked_detections_per_frame"]) == {"cluster"}
    assert "onnxruntime" in s["versions"]


def test_track_classes_select_what_is_linked():
    from detect_track.errors import ConfigError
    from detect_track.pipeline import track_class_ids

    names = ("sperm", "cluster", "small_or_pinhead")
    assert track_class_ids(names, "sperm,small_or_pinhead").tolist() == [0, 2]
    assert track_class_ids(names, " cluster ").tolist() == [1]
    assert track_class_ids(("sperm",), "whatever").tolist() == [0]
    with pytest.raises(ConfigError, match="names none"):
        track_class_ids(names, "pinheads")


def test_interpolated_rows_fill_gaps_only(sim: Path):
    res = run_video(sim / "video.avi", um_per_px=0.7)
    traj = res.trajectories
    for _, g in traj.groupby("track_id"):
        frames = g["frame"].to_numpy()
        assert np.all(np.diff(frames) == 1)  # contiguous after filling
        assert not g["interpolated"].iloc[0] and not g["interpolated"].iloc[-1]
    assert traj.loc[traj["interpolated"], "confidence"].isna().all()


def test_image_folder_needs_fps(sim: Path, tmp_path: Path):
    import cv2

    from detect_track.io.video import FrameSource

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in FrameSource(sim / "video.avi"):
        cv2.imwrite(str(folder / f"f{i:04d}.png"), frame)
    assert main([str(folder), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert main([str(folder), "--fps", "30", "--um-per-px", "0.7", "--out",
                 str(tmp_path / "o"), "-q", "--config", "sperm-sim"]) == 0
    assert len(pd.read_csv(tmp_path / "o" / "tracks.csv")) >= 5


def test_synth_and_eval_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    truth = tmp_path / "t"
    assert main(["synth", str(truth), "--seed", "3", "--duration-s", "1", "--width", "160",
                 "--height", "120", "--n-cells", "5", "-q", "video_format=png"]) == 0
    assert (truth / "gt" / "gt.txt").exists() and (truth / "truth_tracks.csv").exists()
    assert main(["synth", str(truth), "n_debri=3"]) == 2
    assert "did you mean 'n_debris'" in capsys.readouterr().err
    pred = tmp_path / "p"
    frames = truth / "frames"
    assert main([str(frames), "--fps", "50", "--um-per-px", "0.7", "--out", str(pred),
                 "-q", "tracker.min_track_s=0.2"]) == 0
    assert main(["eval", str(pred), str(truth), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "HOTA" in out and "recall" in out
    assert (tmp_path / "e.json").exists()
    assert main(["eval", str(pred), str(tmp_path / "nothing")]) == 2


def _rows(tracks: dict[int, tuple[np.ndarray, np.ndarray, float]]) -> pd.DataFrame:
    parts = [pd.DataFrame({"frame": np.arange(len(x)), "track_id": t, "x_px": x, "y_px": y,
                           "confidence": c}) for t, (x, y, c) in tracks.items()]
    return pd.concat(parts, ignore_index=True)


def test_satellite_track_dropped_crossing_cells_kept():
    from detect_track.tracking.trajectories import drop_satellites

    n = 50
    head_x = np.linspace(10, 110, n)
    rows = _rows({
        1: (head_x, np.full(n, 50.0), 0.99),          # a swimmer
        2: (head_x - 6, np.full(n, 50.5), 0.7),       # its midpiece, 6 µm behind: satellite
        3: (np.linspace(110, 10, n), np.full(n, 52.0), 0.95),  # crosses the swimmer once
        4: (np.full(n, 200.0), np.full(n, 200.0), 0.9),        # an immotile cell far away
        5: (np.full(n, 300.0), np.full(n, 300.0), 0.9),        # two heads stuck side by side,
        6: (np.full(n, 305.0), np.full(n, 300.0), 0.9),        # equally sure: both cells
    })
    kept = drop_satellites(rows, um_per_px=1.0, radius_um=10.0, min_fraction=0.9)
    assert sorted(kept["track_id"].unique()) == [1, 3, 4, 5, 6]
    kept = drop_satellites(rows, 1.0, 10.0, 0.9, confidence_margin=0.3)  # 0.99 vs 0.7: kept
    assert sorted(kept["track_id"].unique()) == [1, 2, 3, 4, 5, 6]
    assert len(drop_satellites(rows.iloc[:0], 1.0, 10.0, 0.9)) == 0


def test_default_fps_only_for_inputs_without_one(sim: Path, tmp_path: Path):
    import cv2

    from detect_track.io.meta import resolve_meta
    from detect_track.io.video import FrameSource

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in FrameSource(sim / "video.avi"):
        if i < 3:
            cv2.imwrite(str(folder / f"f{i:04d}.png"), frame)
    cfg = load_config(None, {"video.default_fps": 12.5})
    meta, warnings = resolve_meta(FrameSource(folder), cfg)
    assert (meta.fps, meta.fps_source) == (12.5, "default")
    assert "assumed 12.5 fps" in warnings[0]
    meta, _ = resolve_meta(FrameSource(sim / "video.avi"), cfg)  # the container wins
    assert (meta.fps, meta.fps_source) == (30.0, "container")


def test_concentration_from_cells_per_frame_and_chamber_volume():
    from detect_track.measure.sample import concentration
    from detect_track.types import VideoMeta

    meta = VideoMeta("v.avi", 50.0, 10, 640, 480, 0.7)
    traj = pd.DataFrame({"frame": np.repeat(np.arange(10), 30)})  # 30 cells in every frame
    out = concentration(traj, meta, 20.0)
    volume_ml = (640 * 0.7) * (480 * 0.7) * 20.0 / 1e12
    assert out["cells_per_frame"] == 30.0
    assert out["concentration_million_per_ml"] == pytest.approx(30 / volume_ml / 1e6, rel=1e-3)
    assert concentration(traj, meta, None)["concentration_million_per_ml"] is None
    assert concentration(len(traj), meta, 20.0) == out  # the row count is enough
    external = VideoMeta("detections.csv", 50.0, 10, 0, 0, 0.7)  # frame size unknown
    assert concentration(traj, external, 20.0)["concentration_million_per_ml"] is None
    with pytest.raises(Exception, match="chamber_depth_um"):
        load_config(None, {"video.chamber_depth_um": -5})


def test_implausible_speeds_warn_about_fps_and_scale():
    from detect_track.measure.sample import speed_warnings
    from detect_track.types import VideoMeta

    meta = VideoMeta("v.avi", 500.0, 100, 640, 480, 0.7, "container", "cli")
    fast = pd.DataFrame({"vcl_um_s": [400.0, 650.0, 900.0, 2.0],
                         "motility": ["progressive"] * 3 + ["immotile"]})
    (message,) = speed_warnings(fast, meta)
    assert "650 µm/s" in message and "500 fps, from container" in message
    normal = fast.assign(vcl_um_s=[40.0, 65.0, 90.0, 900.0])  # a fast immotile is ignored
    assert speed_warnings(normal, meta) == []
    assert speed_warnings(fast.iloc[:2], meta) == []  # too few motile cells to judge


def test_streamed_trajectories_equal_the_in_memory_table(sim: Path, tmp_path: Path):
    cfg = load_config(None, {"detector.name": "classical"})
    kept = run_video(sim / "video.avi", cfg, um_per_px=0.7)
    path = tmp_path / "trajectories.csv"
    res = run_video(sim / "video.avi", cfg, um_per_px=0.7, trajectories_csv=path)
    assert res.streamed and res.trajectories_path == path and path.is_file()
    pd.testing.assert_frame_equal(res.tracks, kept.tracks)
    # the streamed file holds the table as published: rounded (io.export.DECIMALS)
    pd.testing.assert_frame_equal(res.trajectories,
                                  round_table(kept.trajectories, bools_as_int=False),
                                  check_exact=False, rtol=0, atol=1e-9)
    in_memory = write_results(kept, tmp_path / "memory")["trajectories"]
    assert in_memory.read_bytes() == path.read_bytes()  # streamed or not: the same file
    assert res.summary["n_interpolated"] == int(kept.trajectories["interpolated"].sum())
    written = write_results(res, tmp_path, exports=["mot"])  # the file is not written twice
    assert written["trajectories"] == path and (tmp_path / "mot.txt").is_file()
    elsewhere = write_results(res, tmp_path / "copy")
    assert elsewhere["trajectories"].read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_interrupted_run_leaves_no_partial_trajectories(sim: Path, tmp_path: Path):
    def stop(done: int, _total: int) -> None:
        if done == 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_video(sim / "video.avi", load_config(None, {"detector.name": "classical"}),
                  um_per_px=0.7, progress=stop, trajectories_csv=tmp_path / "trajectories.csv")
    assert list(tmp_path.iterdir()) == []


def test_streaming_into_a_missing_folder_is_one_clear_error(sim: Path, tmp_path: Path):
    from detect_track.errors import OutputError

    with pytest.raises(OutputError, match="cannot write"):
        run_video(sim / "video.avi", load_config(None, {"detector.name": "classical"}),
                  um_per_px=0.7, trajectories_csv=tmp_path / "missing" / "trajectories.csv")
