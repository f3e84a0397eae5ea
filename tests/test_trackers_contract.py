"""Contract every registered tracker fulfils (same protocol, same small scenes)."""

import numpy as np
import pytest

from detect_track.config import load_config
from detect_track.tracking import Tracker, available_trackers, create_tracker
from detect_track.types import Detections, VideoMeta

TRACKERS = available_trackers()
META = VideoMeta("contract", 50.0, 100, 200, 200, 0.7)


def make(name: str) -> Tracker:
    return create_tracker(name, load_config(None, {"tracker.name": name}), META)


def dets(*xy: tuple[float, float], conf: float = 0.9) -> Detections:
    return Detections.from_centroids(np.array(xy, dtype=float).reshape(-1, 2), 7.0, conf)


def test_all_expected_trackers_are_registered():
    assert {"sort", "bytetrack", "botsort", "trackpy"} <= set(TRACKERS)


@pytest.mark.parametrize("name", TRACKERS)
def test_protocol(name):
    t = make(name)
    assert isinstance(t, Tracker) and t.name == name


@pytest.mark.parametrize("name", TRACKERS)
def test_no_detections(name):
    t = make(name)
    for _ in range(5):
        out = t.update(Detections.empty())
        assert len(out) == 0 and out.tracker_id is not None and out.tracker_id.dtype == np.int64


@pytest.mark.parametrize("name", TRACKERS)
def test_one_detection_keeps_one_id_and_its_box(name):
    t = make(name)
    ids = []
    for i in range(30):
        d = dets((50 + 0.5 * i, 60))
        out = t.update(d)
        np.testing.assert_allclose(out.xyxy, d.xyxy[: len(out)])  # input boxes, not filtered
        ids += out.tracker_id.tolist()
    assert len(ids) >= 28 and set(ids) == {1}


@pytest.mark.parametrize("name", TRACKERS)
def test_two_crossing_cells_keep_identity(name):
    t = make(name)
    first = last = None
    for i in range(60):  # 70 µm/s each, passing 4 px (2.8 µm) apart at frame 30
        out = t.update(dets((20 + 2.0 * i, 20 + 2.0 * i), (24 + 2.0 * i, 140 - 2.0 * i)))
        if len(out) == 2:
            pairs = sorted(zip(out.xy[:, 1] < 80 if i < 30 else out.xy[:, 1] > 80,
                               out.tracker_id.tolist(), strict=True))
            first = first or pairs
            last = pairs
    assert first == last and len({i for _, i in first}) == 2


@pytest.mark.parametrize("name", TRACKERS)
def test_cell_missing_for_k_frames_keeps_its_id(name):
    t = make(name)
    ids = []
    for i in range(40):
        missing = 15 <= i < 18  # 3 frames = 0.06 s, within max_gap_s
        out = t.update(Detections.empty() if missing else dets((40 + 1.0 * i, 80)))
        ids += out.tracker_id.tolist()
    assert set(ids) == {1}


@pytest.mark.parametrize("name", TRACKERS)
def test_reset_restarts_ids(name):
    t = make(name)
    for i in range(5):
        t.update(dets((10 + i, 10), (100 + i, 100)))
    t.reset()
    out = None
    for i in range(3):
        out = t.update(dets((150, 150 + i)))
    assert out is not None and out.tracker_id.tolist() == [1]


@pytest.mark.parametrize("name", TRACKERS)
def test_ids_are_positive_and_unique_per_frame(name):
    rng = np.random.default_rng(0)
    t = make(name)
    xy = rng.uniform(10, 190, (25, 2))
    for _ in range(30):
        xy = xy + rng.normal(0, 1.0, xy.shape)
        out = t.update(Detections.from_centroids(xy, 7.0, 0.9))
        assert np.all(out.tracker_id > 0)
        assert len(np.unique(out.tracker_id)) == len(out)
