"""fps and µm/px: one range check for every way a user gives them."""

from __future__ import annotations

import math

import pytest

from detect_track.config import load_config
from detect_track.errors import ConfigError
from detect_track.io.meta import MAX_UM_PER_PX, MIN_UM_PER_PX, check_fps, check_um_per_px


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, 2001.0])
def test_fps_out_of_range_is_refused(bad):
    with pytest.raises(ConfigError, match=r"--fps must be a number in \(0, 2000\]"):
        check_fps(bad, "--fps", 2000.0)


def test_fps_without_a_ceiling_needs_only_to_be_positive():
    assert check_fps(5000, "fps") == 5000.0
    with pytest.raises(ConfigError, match="fps must be a number > 0"):
        check_fps(0.0, "fps")


@pytest.mark.parametrize("bad", [0.0, MIN_UM_PER_PX / 2, MAX_UM_PER_PX * 2, math.nan])
def test_scale_out_of_range_is_refused(bad):
    with pytest.raises(ConfigError, match="um_per_px must be a number in"):
        check_um_per_px(bad, "um_per_px")
    assert check_um_per_px(0.7) == 0.7


def test_the_config_checks_with_the_same_function():
    with pytest.raises(ConfigError, match=r"video.fps must be a number in \(0, 2000\]"):
        load_config(None, {"video.fps": 3000.0})
    with pytest.raises(ConfigError, match=r"video.um_per_px must be a number in"):
        load_config(None, {"video.um_per_px": 500.0})
