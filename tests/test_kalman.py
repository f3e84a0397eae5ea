"""The batched Kalman bank against the filterpy reference, and SORT on both."""

import numpy as np
import pytest

from detect_track.config import TrackerConfig
from detect_track.tracking.kalman import FilterpyBank, KalmanBank, motion_model
from detect_track.tracking.sort import SortTracker
from detect_track.types import Detections


@pytest.mark.parametrize("fps", [9.0, 50.0])
def test_bank_matches_filterpy_step_by_step(fps):
    rng = np.random.default_rng(1)
    model = motion_model(1 / fps, 100.0, 1.0, 100.0)
    fast, ref = KalmanBank(model), FilterpyBank(model)
    for step in range(40):
        if step % 7 == 0:  # new tracks appear
            z = rng.uniform(0, 300, (3, 2))
            fast.add(z)
            ref.add(z)
        fast.predict()
        ref.predict()
        n = len(fast)
        idx = np.flatnonzero(rng.random(n) < 0.7)  # some tracks are missed
        z = fast.position[idx] + rng.normal(0, 2, (len(idx), 2))
        fast.update(idx, z)
        ref.update(idx, z)
        if step % 11 == 10:  # some tracks end
            keep = rng.random(n) < 0.8
            fast.keep(keep)
            ref.keep(keep)
        np.testing.assert_allclose(fast.x, ref.x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fast.P, ref.P, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fast.innovation_cov(), ref.innovation_cov(), rtol=1e-9)


def test_constant_velocity_is_learned():
    model = motion_model(0.02, 100.0, 0.5, 100.0)
    bank = KalmanBank(model)
    bank.add(np.array([[0.0, 0.0]]))
    for i in range(1, 30):  # 80 µm/s along x
        bank.predict()
        bank.update(np.array([0]), np.array([[80.0 * 0.02 * i, 0.0]]))
    assert bank.x[0, 2] == pytest.approx(80.0, rel=0.02)
    assert abs(bank.x[0, 3]) < 1.0


def _crowd(seed: int, n_cells: int = 30, n_frames: int = 80) -> list[Detections]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(10, 190, (n_cells, 2))
    v = rng.normal(0, 1.5, (n_cells, 2))
    frames = []
    for _ in range(n_frames):
        v += rng.normal(0, 0.2, v.shape)
        xy = xy + v
        seen = rng.random(n_cells) > 0.1  # 10 % dropout
        conf = rng.uniform(0.2, 1.0, n_cells)
        frames.append(Detections.from_centroids(xy[seen], 6.0, conf[seen]))
    return frames


@pytest.mark.parametrize("association", ["distance", "mahalanobis"])
def test_sort_gives_the_same_tracks_with_the_reference_filters(association):
    frames = _crowd(3)
    out = {}
    for kalman in ("numpy", "filterpy"):
        t = SortTracker(TrackerConfig(kalman=kalman, association=association), 50.0, 0.7)
        out[kalman] = [t.update(d).tracker_id.tolist() for d in frames]
    assert out["numpy"] == out["filterpy"]
    assert max(max(ids, default=0) for ids in out["numpy"]) >= 30
