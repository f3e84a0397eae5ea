"""Head crops: cutting, focus, alignment and the per-track collector."""

import math

import cv2
import numpy as np

from detect_track.morphology.crops import CropCollector, align_head, cut, window_focus
from detect_track.types import Detections


def sperm_image(angle_deg: float, size: int = 41) -> np.ndarray:
    """Dark oval head at the centre, long axis at ``angle_deg``, tail behind it."""
    img = np.full((size, size), 150, np.uint8)
    c = size // 2
    cv2.ellipse(img, (c, c), (8, 5), angle_deg, 0, 360, 60, -1)
    a = math.radians(angle_deg)
    tail_end = (int(c - 19 * math.cos(a)), int(c - 19 * math.sin(a)))
    cv2.line(img, (int(c - 8 * math.cos(a)), int(c - 8 * math.sin(a))), tail_end, 100, 2)
    return img


def test_cut_centres_and_replicates_borders():
    frame = np.arange(100, dtype=np.uint8).reshape(10, 10)
    crop = cut(frame, 5.0, 5.0, 4)
    assert crop.shape == (4, 4) and crop[2, 2] == frame[5, 5]
    edge = cut(frame, 0.0, 0.0, 6)
    assert edge.shape == (6, 6) and edge[0, 0] == frame[0, 0]
    colour = cut(np.dstack([frame] * 3), 5.0, 5.0, 4)
    assert colour.shape == (4, 4)


def test_window_focus_prefers_sharp():
    img = sperm_image(0)
    centre = np.array([[20.0, 20.0]])
    assert window_focus(img, centre, 41)[0] > window_focus(
        cv2.GaussianBlur(img, (0, 0), 2.0), centre, 41)[0]


def test_window_focus_is_the_variance_of_opencvs_laplacian():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (60, 80), dtype=np.uint8)
    lap = cv2.Laplacian(frame.astype(np.float32), cv2.CV_32F, ksize=1)
    xy = np.array([[30.0, 20.0], [50.2, 39.7]])
    got = window_focus(frame, xy, 20)  # central half: 10 px windows
    for (x, y), g in zip(np.rint(xy).astype(int), got, strict=False):
        want = lap[y - 5:y + 5, x - 5:x + 5].var()
        assert math.isclose(g, float(want), rel_tol=1e-5)
    # at the border the frame's edge pixels are repeated, never an index error
    edge = window_focus(frame, np.array([[0.0, 0.0], [79.0, 59.0]]), 20)
    assert edge.shape == (2,) and np.isfinite(edge).all()


def test_alignment_puts_long_axis_horizontal_and_tail_left():
    for angle in (0, 35, 90, 160, 250):
        out = align_head(sperm_image(angle))
        dark = out < 90
        ys, xs = np.nonzero(dark)
        cov = np.cov(np.vstack([xs - xs.mean(), ys - ys.mean()]))
        assert cov[0, 0] > 1.5 * cov[1, 1], angle  # head long axis along x
        c = out.shape[1] // 2
        left = (150 - out[c - 2:c + 3, :c - 9].astype(int)).clip(0).sum()
        right = (150 - out[c - 2:c + 3, c + 10:].astype(int)).clip(0).sum()
        assert left > right, angle  # the tail is on the left


def test_collector_keeps_the_sharpest_isolated_crops():
    col = CropCollector(crop_px=21, isolation_px=15, keep=2)
    sharp = sperm_image(0, size=101)
    blurred = [cv2.GaussianBlur(sharp, (0, 0), s) for s in (3.0, 2.0, 1.0)]
    for f, img in enumerate([*blurred, sharp]):
        d = Detections.from_centroids(np.array([[50.0, 50.0], [90.0, 90.0]]), 6.0, 0.9)
        d.tracker_id = np.array([1, 2])
        col.update(f, img, d)
    assert col.track_ids() == [1, 2]
    frames = [f for f, _ in col.crops(1, aligned=False)]
    assert frames == [3, 2]  # sharpest first, only two kept
    col.forget([1])
    assert col.track_ids() == [2] and col.crops(1) == []
    # a head with a neighbour closer than isolation_px is not cropped
    col.reset()
    d = Detections.from_centroids(np.array([[50.0, 50.0], [55.0, 50.0]]), 6.0, 0.9)
    d.tracker_id = np.array([1, 2])
    col.update(0, sharp, d)
    assert col.track_ids() == []
