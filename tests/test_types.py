import numpy as np
import pytest

from detect_track.types import Detections


def test_empty_and_lengths():
    d = Detections.empty()
    assert len(d) == 0 and d.xyxy.shape == (0, 4) and d.xy.shape == (0, 2)


def test_checks_lengths():
    with pytest.raises(ValueError, match="confidence"):
        Detections(np.zeros((2, 4)), np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        Detections(np.full((1, 4), np.nan), np.ones(1), np.zeros(1))


def test_mask_and_centroids():
    d = Detections.from_centroids(np.array([[10.0, 20.0], [30.0, 40.0]]), wh_px=(4.0, 2.0),
                                  confidence=np.array([0.9, 0.2]))
    np.testing.assert_allclose(d.xy, [[10, 20], [30, 40]])
    np.testing.assert_allclose(d.wh, [[4, 2], [4, 2]])
    sub = d[d.confidence > 0.5]
    assert len(sub) == 1 and sub.confidence[0] == pytest.approx(0.9)


def test_supervision_round_trip():
    d = Detections.from_centroids(np.array([[5.0, 6.0]]), confidence=0.7)
    d.tracker_id = np.array([3])
    back = Detections.from_supervision(d.to_supervision())
    np.testing.assert_allclose(back.xyxy, d.xyxy)
    assert back.tracker_id.tolist() == [3]
    assert back.confidence[0] == pytest.approx(0.7)
