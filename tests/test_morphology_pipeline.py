"""The morphology stage inside the video pipeline and the command line."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.errors import ConfigError
from detect_track.morphology.classifier import MorphologyClassifier
from detect_track.morphology.cnn import HEAD_SHAPES
from detect_track.pipeline import run_video
from detect_track.synth.heads import head_dataset

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "samples" / "sim_phase_contrast"
VIDEO = SAMPLE / "video.mp4"
#: The sample's heads (0.7 µm per px) are below the default resolution of a head-shape call;
#: these tests of the classification path lift the threshold.
FAST = {"detector.name": "classical", "morphology.min_px_per_um": 0.0}


def test_heads_too_small_to_resolve_get_no_call_and_a_warning():
    res = run_video(VIDEO, load_config(None, {"detector.name": "classical"}), um_per_px=0.7)
    t = res.tracks
    assert len(t) > 10 and (t["morphology"] == "").all()
    assert t["morphology_confidence"].isna().all()
    s = res.summary
    assert s["n_morphology_assessed"] == 0 and s["pct_normal_forms"] is None
    assert s["morphology_screening"] is True  # the shipped model's card: simulated heads
    assert any(f"not assessed for {len(t)} tracks" in w and "2.5 px per µm" in w
               for w in s["warnings"])
    assert res.crops  # still cut, for --save-crops


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


@pytest.mark.slow
def test_cli_save_crops_and_no_morphology(tmp_path: Path):
    out = tmp_path / "a"
    assert main([str(VIDEO), "--um-per-px", "0.7", "--detector", "classical", "--out",
                 str(out), "--save-crops", "-q"]) == 0
    crops = sorted((out / "crops").glob("video_track*_0.png"))
    tracks = pd.read_csv(out / "tracks.csv")
    assert len(crops) > 0 and tracks["morphology_confidence"].isna().all()  # 0.7 µm/px
    out2 = tmp_path / "b"
    assert main([str(VIDEO), "--um-per-px", "0.7", "--detector", "classical", "--out",
                 str(out2), "--no-morphology", "-q"]) == 0
    summary = json.loads((out2 / "summary.json").read_text())
    assert summary["config"]["morphology"]["enabled"] is False
    assert pd.read_csv(out2 / "tracks.csv")["morphology"].isna().all()  # empty cells


@pytest.mark.slow
def test_track_calls_are_the_mean_of_their_crops_probabilities():
    """The stage classifies a batch of tracks in one model call; each call must still be
    the mean of that track's own crops (``tta_views`` rotations each)."""
    res = run_video(VIDEO, load_config(None, {**FAST, "morphology.tta_views": 4}),
                    um_per_px=0.7)
    model = MorphologyClassifier(Path(__file__).resolve().parents[1] / "weights"
                                 / "head-shape-synth.onnx")
    checked = 0
    for tid, crops in list(res.crops.items())[:6]:
        if not crops:
            continue
        p = model.predict_proba(crops, views=4).mean(axis=0)
        row = res.tracks.loc[res.tracks["track_id"] == tid].iloc[0]
        assert row["morphology"] == model.class_names[int(p.argmax())]
        assert row["morphology_confidence"] == pytest.approx(float(p.max()), abs=1e-6)
        checked += 1
    assert checked >= 3


def test_tta_views_are_checked_and_fewer_views_stay_close():
    model = MorphologyClassifier(Path(__file__).resolve().parents[1] / "weights"
                                 / "head-shape-synth.onnx")
    images, _ = head_dataset(4, seed=5)
    p8, p2 = model.predict_proba(images), model.predict_proba(images, views=2)
    assert p8.shape == p2.shape and np.allclose(p2.sum(axis=1), 1)
    with pytest.raises(ValueError, match="views"):
        model.predict_proba(images, views=3)
    with pytest.raises(ConfigError, match="tta_views"):
        load_config(None, {"morphology.tta_views": 3})
