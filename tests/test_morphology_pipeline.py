"""The morphology stage inside the video pipeline and the command line."""

import json
from pathlib import Path

import pandas as pd

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.morphology.classifier import HEAD_SHAPES
from detect_track.pipeline import run_video

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "samples" / "sim_phase_contrast"
VIDEO = SAMPLE / "video.mp4"
FAST = {"detector.name": "classical"}


def test_tracks_get_a_head_shape_and_the_summary_normal_forms():
    res = run_video(VIDEO, load_config(None, FAST), um_per_px=0.7)
    t = res.tracks
    m = t["morphology"]
    assert len(m) > 10 and set(m) <= set(HEAD_SHAPES)
    cropped = t["morphology_confidence"].notna()
    assert cropped.sum() >= len(t) // 2  # most cells of the sample are isolated at times
    assert (m[~cropped] == "not_assessable").all()
    assert t.loc[cropped, "morphology_confidence"].between(1 / len(HEAD_SHAPES), 1).all()
    s = res.summary
    assert s["morphology_model"] == "head-shape-synth.onnx"  # the default ONNX path
    assert s["n_morphology_assessed"] == int((m != "not_assessable").sum())
    assert s["pct_normal_forms"] is None or 0 <= s["pct_normal_forms"] <= 100
    assert sorted(k for k, v in res.crops.items() if v) == sorted(t.loc[cropped, "track_id"])
    side = round(10.7 / 0.7)
    assert all(c.shape == (side, side) for v in res.crops.values() for c in v)


def test_morphology_can_be_turned_off():
    res = run_video(VIDEO, load_config(None, {**FAST, "morphology.enabled": False}),
                    um_per_px=0.7)
    assert (res.tracks["morphology"] == "").all()
    assert res.tracks["morphology_confidence"].isna().all()
    assert res.summary["morphology_model"] is None and res.summary["pct_normal_forms"] is None


def test_cli_save_crops_and_no_morphology(tmp_path: Path):
    out = tmp_path / "a"
    assert main([str(VIDEO), "--um-per-px", "0.7", "--detector", "classical", "--out",
                 str(out), "--save-crops", "-q"]) == 0
    crops = sorted((out / "crops").glob("video_track*_0.png"))
    tracks = pd.read_csv(out / "tracks.csv")
    assert len(crops) == tracks["morphology_confidence"].notna().sum() > 0
    out2 = tmp_path / "b"
    assert main([str(VIDEO), "--um-per-px", "0.7", "--detector", "classical", "--out",
                 str(out2), "--no-morphology", "-q"]) == 0
    summary = json.loads((out2 / "summary.json").read_text())
    assert summary["config"]["morphology"]["enabled"] is False
    assert pd.read_csv(out2 / "tracks.csv")["morphology"].isna().all()  # empty cells
