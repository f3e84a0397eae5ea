"""Test-time views (detectors/views.py): exact box mapping, fusion of the views' answers."""

from __future__ import annotations

import numpy as np
import pytest

from detect_track.config import load_config
from detect_track.detectors import create_detector
from detect_track.detectors.views import VIEWS, fuse_views, unview_boxes, view_image
from detect_track.errors import ConfigError
from detect_track.types import VideoMeta

META = VideoMeta(path="x", fps=50.0, n_frames=1, width_px=64, height_px=48, um_per_px=0.7)


def _bbox(mask: np.ndarray) -> np.ndarray:
    """Box of the true pixels, pixel edges at integers: x1, y1, x2, y2."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


@pytest.mark.parametrize("view", VIEWS, ids=[str(v) for v in VIEWS])
def test_boxes_found_in_a_view_map_back_exactly(view: tuple[bool, bool, bool]):
    image = np.zeros((48, 64), np.uint8)
    image[5:9, 40:51] = 255  # an off-centre 11 x 4 px rectangle
    seen = view_image(image, view)
    assert seen.flags["C_CONTIGUOUS"]
    assert seen.shape == ((64, 48) if view[2] else (48, 64))
    back = unview_boxes(_bbox(seen > 0)[None], view, image.shape)
    np.testing.assert_array_equal(back[0], [40, 5, 51, 9])


def test_one_cell_seen_in_every_view_is_one_box_with_the_mean_score():
    box = np.array([10.0, 10.0, 16.0, 14.0])
    xyxy = np.stack([box + d for d in (0.0, 0.5, -0.5, 0.25)])
    score = np.array([0.8, 0.6, 0.4, 0.2])
    b, s, c = fuse_views(xyxy, score, np.zeros(4, np.int64), np.arange(4), 4)
    assert len(b) == 1 and c[0] == 0
    assert s[0] == pytest.approx(0.5)
    np.testing.assert_allclose(b[0], score @ xyxy / score.sum())


def test_a_cell_seen_in_one_view_ranks_below_one_seen_in_all():
    a = np.array([[10.0, 10.0, 16.0, 14.0]] * 4)
    lone = np.array([[40.0, 30.0, 46.0, 34.0]])
    xyxy = np.vstack([a, lone])
    score = np.array([0.5, 0.5, 0.5, 0.5, 0.9])
    b, s, _ = fuse_views(xyxy, score, np.zeros(5, np.int64), np.array([0, 1, 2, 3, 0]), 4)
    assert len(b) == 2
    np.testing.assert_allclose(s, [0.5, 0.225])  # strongest first
    np.testing.assert_allclose(b[1], lone[0])


def test_two_answers_of_one_view_count_once_and_classes_never_mix():
    xyxy = np.array([[10.0, 10.0, 16.0, 14.0]] * 3)
    score = np.array([0.8, 0.7, 0.6])
    cls = np.array([0, 0, 1])
    b, s, c = fuse_views(xyxy, score, cls, np.array([0, 0, 1]), 2)
    assert sorted(c.tolist()) == [0, 1]
    np.testing.assert_allclose(s, [0.4, 0.3])  # view 0's best (0.8) / 2; class 1: 0.6 / 2


def test_no_answers_fuse_to_nothing():
    b, s, c = fuse_views(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64),
                         np.zeros(0, np.int64), 8)
    assert b.shape == (0, 4) and len(s) == 0 and len(c) == 0


@pytest.mark.parametrize("views", [0, 2, 3, 16])
def test_unsupported_view_counts_are_config_errors(views: int):
    cfg = load_config(None, {"detector.yolo.tta_views": views})
    with pytest.raises(ConfigError, match="tta_views must be one of 1, 4, 8"):
        create_detector("yolo", cfg, META)


def test_views_fuse_raw_scores_and_calibrate_once():
    """The operating point applies to the fused score: a view-fused detector built with
    operating_confidence X reports the same boxes as one built with 0.5, rescaled."""
    from detect_track.detectors.learned import calibrate

    rng = np.random.default_rng(3)
    frame = np.clip(rng.normal(120, 3, (96, 128)), 0, 255).astype(np.uint8)
    frame[40:44, 60:66] = 30  # a dark head-sized blob
    raw = create_detector("yolo", load_config(None, {
        "detector.yolo.tta_views": 4, "detector.yolo.operating_confidence": 0.5,
        "detector.yolo.confidence": 0.01, "detector.yolo.verifier": ""}), META).detect(frame)
    cal = create_detector("yolo", load_config(None, {
        "detector.yolo.tta_views": 4, "detector.yolo.operating_confidence": 0.2,
        "detector.yolo.confidence": 0.01, "detector.yolo.verifier": ""}), META).detect(frame)
    assert len(raw) >= 1 and len(raw) == len(cal)
    np.testing.assert_allclose(cal.confidence, calibrate(raw.confidence, 0.2), atol=1e-6)
