import dataclasses
from pathlib import Path

import pytest

from detect_track.config import Config, list_presets, load_config, parse_overrides
from detect_track.errors import ConfigError


def test_defaults_and_preset_agree():
    assert "sperm" in list_presets()
    assert load_config("sperm") == Config()


def test_override_types():
    cfg = load_config(None, parse_overrides(["tracker.max_gap_s=0.3",
                                             "kinematics.smoothing_window_frames=7"]))
    assert cfg.tracker.max_gap_s == 0.3
    assert cfg.kinematics.smoothing_window_frames == 7


def test_frozen():
    with pytest.raises(AttributeError):
        Config().tracker.max_gap_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("key,suggestion", [
    ("tracker.max_gap", "tracker.max_gap_s"),
    ("max_speed_um_s", "tracker.max_speed_um_s"),
    ("detector.classical.polarty", "detector.classical.polarity"),
])
def test_unknown_key_suggests(key, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'"):
        load_config(None, {key: "1"})


@pytest.mark.parametrize("key,value,msg", [
    ("tracker.max_gap_s", "abc", "expects a number"),
    ("kinematics.smoothing_window_frames", "2.5", "integer"),
    ("kinematics.smoothing_window_frames", "0", ">= 1"),
    ("video.fps", "-3", "video.fps"),
    ("detector.classical.polarity", "sideways", "polarity"),
    ("tracker.coast_penalty_um_s", "-1", "coast_penalty_um_s must be >= 0"),
])
def test_bad_values(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(None, {key: value})


def test_yaml_file_and_unknown_section(tmp_path: Path):
    good = tmp_path / "c.yaml"
    good.write_text("tracker:\n  max_gap_s: 0.4\n")
    assert load_config(str(good)).tracker.max_gap_s == 0.4
    bad = tmp_path / "b.yaml"
    bad.write_text("trackr:\n  max_gap_s: 0.4\n")
    with pytest.raises(ConfigError, match="did you mean 'tracker.max_gap_s'"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="did you mean 'sperm'"):
        load_config("sperms")


def test_override_malformed():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["tracker.max_gap_s"])


@pytest.mark.parametrize("preset", ["sperm-slide", "sperm-slide-parsing", "testicular"])
def test_still_image_presets_load_and_name_shipped_weights(preset: str):
    from detect_track.weights import resolve_weights

    cfg = load_config(preset)
    assert cfg.still.enabled
    for name in ("yolo", "effdet") if preset == "testicular" else ("yolo",):
        assert resolve_weights(getattr(cfg.detector, name).weights, "yolo-sperm", ".pt").is_file()


def test_accurate_preset_enlarges_frames_and_keeps_the_rest():
    cfg, default = load_config("sperm-accurate"), load_config()
    assert cfg.detector.yolo.max_um_per_px == 0.4
    assert default.detector.yolo.max_um_per_px == 1.2
    assert cfg.tracker == default.tracker and cfg.detector.name == default.detector.name
    # it is the simulation preset with enlarged frames
    sim = load_config("sperm-sim").detector.yolo
    assert dataclasses.replace(cfg.detector.yolo, max_um_per_px=1.2) == sim


@pytest.mark.parametrize("key", ["video.max_fps", "tracker.max_speed_um_s", "morphology.enabled"])
def test_null_for_a_setting_that_needs_a_value_is_one_clear_error(key):
    with pytest.raises(ConfigError, match="cannot be null"):
        load_config(None, {key: "null"})
