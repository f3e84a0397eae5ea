"""What a run produced: the typed summary, its file, and the trajectory table read back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from detect_track.errors import InputError
from detect_track.pipeline import track_detections
from detect_track.results import Summary, read_summary, read_trajectories, write_results


def _cells(n_frames: int = 40) -> pd.DataFrame:
    rows = [(f, 20 + 2.0 * f, 40.0 + k * 60) for f in range(n_frames) for k in range(3)]
    return pd.DataFrame(rows, columns=["frame", "x_px", "y_px"])


def test_summary_round_trips_through_its_file_with_the_same_keys(tmp_path: Path):
    res = track_detections(_cells(), fps=50.0, um_per_px=0.5)
    assert isinstance(res.summary, Summary)
    paths = write_results(res, tmp_path)
    written = json.loads(paths["summary"].read_text(encoding="utf-8"))
    assert list(written) == list(res.summary.to_dict()) == list(res.summary)
    # no detector ran: its backend and runtime are not recorded; no morphology model either
    assert "detector_backend" not in written and "morphology_task" not in written
    assert written["detector"] == "external" and written["n_tracks"] == 3
    back = read_summary(paths["summary"])
    assert back.to_dict() == written
    assert back.duration_s == pytest.approx(40 / 50.0) and back.um_per_px == 0.5
    table = read_trajectories(paths["trajectories"])
    pd.testing.assert_frame_equal(table, res.trajectories, check_dtype=False)


def test_summary_reads_like_a_dict():
    res = track_detections(_cells(), fps=50.0, um_per_px=0.5)
    s = res.summary
    assert s["fps"] == 50.0 and s.get("pct_normal_forms") is None
    assert dict(s) == s.to_dict() and len(s) == len(s.to_dict())
    with pytest.raises(KeyError):
        s["detector_backend"]  # noqa: B018 (absent for detections read from a table)
    with pytest.raises(KeyError):
        s["no_such_key"]  # noqa: B018
    video_like = dataclasses.replace(s, detector="yolo", detector_backend="onnx",
                                     detector_runtime="onnxruntime")
    keys = list(video_like)
    assert keys.index("detector_weights") + 1 == keys.index("detector_backend")
    assert keys.index("detector_runtime") + 1 == keys.index("tracker")


def test_a_foreign_file_is_not_a_summary(tmp_path: Path):
    bad = tmp_path / "summary.json"
    bad.write_text(json.dumps({"video": "x", "colour": "blue"}), encoding="utf-8")
    with pytest.raises(InputError, match="colour"):
        read_summary(bad)
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError):
        read_summary(bad)
