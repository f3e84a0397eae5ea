import numpy as np
import pytest

from detect_track.config import Config, TrackerConfig
from detect_track.errors import ConfigError
from detect_track.tracking import available_trackers, create_tracker
from detect_track.tracking.sort import SortTracker
from detect_track.types import Detections, VideoMeta


def tracker(fps=50.0, um_per_px=1.0, **kw) -> SortTracker:
    return SortTracker(TrackerConfig(**kw), fps=fps, um_per_px=um_per_px)


def dets(*xy) -> Detections:
    return Detections.from_centroids(np.array(xy, dtype=float).reshape(-1, 2))


def test_registry():
    meta = VideoMeta("x", 50.0, 10, 100, 100, 0.5)
    assert "sort" in available_trackers()
    assert create_tracker("sort", Config(), meta).name == "sort"
    with pytest.raises(ConfigError, match="unknown tracker"):
        create_tracker("nope", Config(), meta)


def test_empty_frames():
    t = tracker()
    for _ in range(3):
        out = t.update(Detections.empty())
        assert len(out) == 0 and out.tracker_id is not None


def test_one_detection_keeps_id():
    t = tracker()
    ids = [t.update(dets((10 + 2 * i, 20))).tracker_id[0] for i in range(20)]
    assert set(ids) == {1}


def test_crossing_cells_keep_identity():
    # two cells at 100 µm/s on crossing straight courses, 50 fps, 1 µm/px
    t = tracker()
    out = []
    for i in range(60):
        a = (10 + 2.0 * i, 10 + 2.0 * i)
        b = (10 + 2.0 * i, 130 - 2.0 * i)
        out.append(t.update(dets(a, b)).tracker_id.tolist())
    first, last = out[0], out[-1]
    assert first == last  # each cell keeps its own id through the crossing


def test_gap_bridged_within_max_gap():
    t = tracker(max_gap_s=0.2)  # 10 frames at 50 fps
    ids = []
    for i in range(40):
        d = Detections.empty() if 15 <= i < 22 else dets((10 + 1.5 * i, 50))
        out = t.update(d)
        ids.extend(out.tracker_id.tolist())
    assert set(ids) == {1}


def test_gap_longer_than_max_gap_splits():
    t = tracker(max_gap_s=0.1)  # 5 frames
    ids = []
    for i in range(40):
        d = Detections.empty() if 15 <= i < 25 else dets((10 + 1.5 * i, 50))
        ids.extend(t.update(d).tracker_id.tolist())
    assert set(ids) == {1, 2}


def test_gate_in_um_per_s_holds_at_any_fps():
    # a jump of 8 µm in one frame is 400 µm/s at 50 fps (beyond the 350 µm/s gate)
    # but only 72 µm/s at 9 fps
    for fps, expect in ((50.0, {1, 2}), (9.0, {1})):
        t = tracker(fps=fps)
        t.update(dets((50, 50)))
        ids = set(t.update(dets((58, 50))).tracker_id.tolist()) | {1}
        assert ids == expect


def test_reset_restarts_ids_and_instances_are_independent():
    a, b = tracker(), tracker()
    a.update(dets((1, 1), (50, 50)))
    assert b.update(dets((5, 5))).tracker_id.tolist() == [1]
    a.reset()
    assert a.update(dets((9, 9))).tracker_id.tolist() == [1]


def test_min_confidence_filters():
    t = tracker(min_confidence=0.5)
    d = Detections.from_centroids(np.array([[1.0, 1.0], [40.0, 40.0]]),
                                  confidence=np.array([0.9, 0.1]))
    assert len(t.update(d)) == 1


def test_weak_detections_extend_but_never_start_tracks():
    t = tracker(high_confidence=0.5, min_confidence=0.1)
    weak = Detections.from_centroids(np.array([[80.0, 80.0]]), confidence=0.2)
    assert len(t.update(weak)) == 0  # a weak detection alone starts nothing
    ids = t.update(dets((10, 10))).tracker_id.tolist()
    for i in range(1, 5):  # the same cell, now faint, keeps its id
        d = Detections.from_centroids(np.array([[10.0 + i, 10.0]]), confidence=0.2)
        assert t.update(d).tracker_id.tolist() == ids


def test_tracks_do_not_jump_beyond_max_speed():
    # one cell still, a second appears 20 µm away: never linked at 50 fps
    t = tracker()
    a = t.update(dets((50, 50))).tracker_id.tolist()
    b = t.update(dets((70, 50))).tracker_id.tolist()
    assert a != b


def test_lost_still_cell_does_not_grab_a_distant_newcomer():
    # an immotile cell seen for 0.4 s vanishes; 3 frames later a cell appears 15 µm away:
    # within the speed gate (350 µm/s x 0.08 s = 28 µm) but far outside the Kalman gate
    # (8 sigma is about 11 µm with a 1 µm measurement noise)
    def run(gate_sigma: float) -> set[int]:
        t = tracker(gate_sigma=gate_sigma, measurement_noise_um=1.0)
        for _ in range(20):
            t.update(dets((50, 50)))
        for _ in range(3):
            t.update(Detections.empty())
        return set(t.update(dets((65, 50))).tracker_id.tolist())

    assert run(8.0) == {2}
    assert run(0.0) == {1}  # speed gate alone links it


def _coasting_scene(passer_offset_um: float, coast_penalty_um_s: float) -> tuple[int, int]:
    """An immotile cell A (missed for 2 frames) and a cell B swimming up to it, 9 fps.

    In the frame after the gap only A's detection is there, B's predicted position lies
    ``passer_offset_um`` beside it. Returns (A's id, the id given to that detection).
    """
    t = tracker(fps=9.0, coast_penalty_um_s=coast_penalty_um_s)
    a = (100.0, 100.0)
    for k in range(9):
        b = (100.0 + passer_offset_um, 100.0 - 10.0 * (8 - k))  # 90 µm/s towards y = 100
        frame = [a, b] if k < 6 else [b]  # A is missed in frames 6 and 7
        out = t.update(dets(*frame) if k < 8 else dets(a))
        if k == 0:
            a_id = int(out.tracker_id[0])
    return a_id, int(out.tracker_id[0])


def test_coasting_track_keeps_the_detection_on_its_prediction():
    # B is seen in every frame; a strict "fresh tracks first" cascade would hand A's
    # detection to B whenever it lies inside B's gate
    a_id, got = _coasting_scene(passer_offset_um=15.0, coast_penalty_um_s=20.0)
    assert got == a_id
    a_id, got = _coasting_scene(passer_offset_um=15.0, coast_penalty_um_s=1e6)  # ~cascade
    assert got != a_id


def test_fresh_track_wins_a_near_tie():
    # with B's prediction as close as A's penalty for coasting, B takes the detection
    a_id, got = _coasting_scene(passer_offset_um=1.0, coast_penalty_um_s=100.0)
    assert got != a_id


def test_a_faint_cell_beside_a_bright_one_keeps_its_identity():
    # A (y=0) and B (y=6 µm) side by side; then A turns faint, right on its prediction,
    # while B's confident detection lands a little nearer A (y=2.8). A confident-first
    # stage would hand it to A and swap the two; one assignment with a penalty for the
    # faint detection keeps both
    t = tracker()
    for _ in range(5):
        out = t.update(dets((10, 0), (10, 6)))
    a_id, b_id = out.tracker_id.tolist()
    d = Detections.from_centroids(np.array([[10.0, 0.0], [10.0, 2.8]]),
                                  confidence=np.array([0.2, 0.9]))
    assert t.update(d).tracker_id.tolist() == [a_id, b_id]
