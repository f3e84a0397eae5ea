"""The unfamiliar-footage warning, from hand-built confidence profiles."""

from __future__ import annotations

import numpy as np

from detect_track.detectors.familiarity import ConfidenceProfile


def profile(per_frame: list[float], n_frames: int = 20) -> ConfidenceProfile:
    p = ConfidenceProfile()
    for _ in range(n_frames):
        p.update(np.array(per_frame))
    return p


def test_familiar_footage_gives_no_warning():
    p = profile([0.9, 0.85, 0.8, 0.75, 0.7, 0.2])  # decisive answers, one hesitant
    s = p.stats()
    assert s["confident_per_frame"] == 5
    assert abs(s["confident_share"] - 5 / 6) < 1e-9
    assert 0.75 <= s["median_confident"] <= 0.85
    assert p.warning() is None


def test_hesitant_answers_are_named():
    w = profile([0.55, 0.52, 0.3, 0.3, 0.2, 0.2, 0.15, 0.12]).warning()
    assert w is not None and "unlike what the detector was trained on" in w
    assert "25 % of the detections" in w
    assert "detect-track annotate" in w


def test_nothing_found_is_named_and_short_videos_are_not_judged():
    assert "only 0.0 confident detections per frame" in profile([0.2, 0.1]).warning()
    assert profile([0.2, 0.1], n_frames=5).warning() is None


def test_reset_forgets_and_confidences_are_clipped():
    p = profile([1.0, 1.2, -0.1])
    assert p.counts[-1] == 40 and p.counts[0] == 20
    p.reset()
    assert p.counts.sum() == 0 and p.n_frames == 0
    assert np.isnan(p.stats()["median_confident"])
