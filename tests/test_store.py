"""Streaming track filters (TrackStore) against the whole-table reference (build_trajectories)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from detect_track.config import load_config
from detect_track.tracking.store import TrackRows, TrackStore
from detect_track.tracking.trajectories import build_trajectories
from detect_track.types import VideoMeta

FPS = 25.0
UM_PER_PX = 0.7


def _meta(n_frames: int) -> VideoMeta:
    return VideoMeta("synthetic", FPS, n_frames, 640, 480, UM_PER_PX, "cli", "cli")


def _scene(seed: int, n_frames: int = 300, bridge: int = 5) -> pd.DataFrame:
    """Tracked rows of a made-up video: swimmers with gaps, short and weak tracks,
    satellites (a midpiece shadowing its head) and two ids taking turns on one cell."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, float, float, float]] = []
    next_id = 1

    def path(start: int, length: int, speed: float) -> tuple[np.ndarray, np.ndarray]:
        frames = np.arange(start, min(start + length, n_frames))
        p0 = rng.uniform(20, 600, 2)
        step = rng.normal(0, speed, (len(frames), 2))
        return frames, p0 + np.cumsum(step, axis=0)

    def with_gaps(frames: np.ndarray) -> np.ndarray:
        """Up to one gap of at most ``bridge`` frames in each third of the track."""
        keep = np.ones(len(frames), bool)
        third = len(frames) // 3
        for k in range(3):
            if third > bridge + 2 and rng.random() < 0.6:
                a = k * third + 1 + int(rng.integers(0, third - bridge - 1))
                keep[a:a + int(rng.integers(1, bridge + 1))] = False
        return keep

    for _ in range(25):  # swimmers, some short, some weak
        frames, xy = path(int(rng.integers(0, n_frames - 5)), int(rng.integers(2, 200)), 3.0)
        if len(frames) < 2:
            continue
        keep = with_gaps(frames)
        weak = rng.random() < 0.2
        conf = rng.uniform(0.05, 0.3, len(frames)) if weak else rng.uniform(0.3, 1.0, len(frames))
        tid, next_id = next_id, next_id + 1
        rows += [(int(f), tid, *p, c)
                 for f, p, c, k in zip(frames, xy, conf, keep, strict=True) if k]
        if rng.random() < 0.3:  # a satellite: weaker, 1-2 px away most of the time
            sid, next_id = next_id, next_id + 1
            off = rng.normal(0, 1.0, (len(frames), 2)) + 1.5
            sconf = conf * 0.5
            rows += [(int(f), sid, *(p + o), c)
                     for f, p, o, c, k in zip(frames, xy, off, sconf, keep, strict=True) if k]
    for _ in range(2):  # two ids taking turns on one cell's detections
        frames, xy = path(int(rng.integers(0, n_frames // 2)), 120, 1.0)
        a, next_id = next_id, next_id + 1
        b, next_id = next_id, next_id + 1
        for i, (f, p) in enumerate(zip(frames, xy, strict=True)):
            rows.append((int(f), a if (i // 4) % 2 == 0 else b, *p, float(rng.uniform(0.5, 1))))
    table = pd.DataFrame(rows, columns=["frame", "track_id", "x_px", "y_px", "confidence"])
    table["w_px"] = 6.0
    table["h_px"] = 4.0
    table["class_name"] = "sperm"
    return table.sort_values(["frame", "track_id"], ignore_index=True)


def _stream(table: pd.DataFrame, store: TrackStore, n_frames: int) -> dict[int, np.ndarray]:
    kept: dict[int, TrackRows] = {}
    frames = table["frame"].to_numpy()
    starts = np.searchsorted(frames, np.arange(n_frames + 1))
    for f in range(n_frames):
        g = table.iloc[starts[f]:starts[f + 1]]
        store.add(f, g["track_id"].to_numpy(), g[["x_px", "y_px"]].to_numpy(),
                  g[["w_px", "h_px"]].to_numpy(), g["confidence"].to_numpy(),
                  np.zeros(len(g), np.int64))
        kept.update((r.track_id, r) for r in store.pop_kept())
    store.finish()
    kept.update((r.track_id, r) for r in store.pop_kept())
    return kept


@pytest.mark.parametrize("seed", range(8))
def test_streaming_filters_keep_the_same_tracks_and_rows_as_the_whole_table(seed):
    cfg = load_config()
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, max_gap_s=0.2))
    n_frames = 300
    table = _scene(seed, n_frames, bridge=int(0.2 * FPS))
    ref = build_trajectories(table, _meta(n_frames), cfg, "synthetic")
    store = TrackStore(cfg.tracker, FPS, UM_PER_PX)
    kept = _stream(table, store, n_frames)
    assert sorted(kept) == sorted(ref["track_id"].unique())
    assert store.n_satellites > 0 and store.n_dropped > 0  # the scene exercises both filters
    real = ref[~ref["interpolated"]]
    for tid, rows in kept.items():
        assert rows.track_id == tid and rows.frame.dtype == np.int64
        assert {len(a) for a in (rows.frame, rows.x_px, rows.y_px, rows.w_px, rows.h_px,
                                 rows.confidence, rows.class_id)} == {len(rows)}
        want = real[real["track_id"] == tid]
        np.testing.assert_array_equal(rows.frame, want["frame"].to_numpy())
        np.testing.assert_allclose(rows.x_px, want["x_px"].to_numpy())
        np.testing.assert_allclose(rows.y_px, want["y_px"].to_numpy())
        np.testing.assert_allclose(rows.confidence, want["confidence"].to_numpy())


def test_empty_video_and_single_detection():
    cfg = load_config()
    store = TrackStore(cfg.tracker, FPS, UM_PER_PX)
    for f in range(10):
        store.add(f, np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0),
                  np.zeros(0, np.int64))
    store.finish()
    assert store.pop_kept() == [] and store.n_open == 0
    store.reset()
    store.add(0, np.array([7]), np.array([[5.0, 5.0]]), np.array([[4.0, 4.0]]),
              np.array([0.9]), np.array([0]))
    store.finish()
    assert store.pop_kept() == [] and store.pop_dropped() == [7]  # one detection: no track


def test_tracks_are_released_once_they_end_and_memory_stays_bounded():
    cfg = load_config()
    store = TrackStore(cfg.tracker, FPS, UM_PER_PX)
    bridge = store.bridge_frames
    rng = np.random.default_rng(0)
    released: list[int] = []
    most_open = 0
    for f in range(5000):  # 10 cells in view at any time, each living 50 frames
        ids = np.array([f // 50 * 10 + k for k in range(10)])
        xy = rng.uniform(0, 600, (10, 2))
        store.add(f, ids, xy, np.full((10, 2), 5.0), np.full(10, 0.9), np.zeros(10, np.int64))
        for rows in store.pop_kept():
            assert rows.frame[-1] < f - bridge  # only ended tracks come out
            released.append(rows.track_id)
        most_open = max(most_open, store.n_open)
    assert most_open <= 20  # the cells in view (and those just ended), not the whole video
    assert store.remembered_frames <= bridge + 1
    assert len(released) == 990  # all but the last 10, which end with the video
    store.finish()
    assert len(store.pop_kept()) == 10


def test_rows_of_an_already_settled_track_are_counted_not_kept():
    cfg = load_config()
    store = TrackStore(cfg.tracker, FPS, UM_PER_PX)
    one = (np.array([[1.0, 1.0]]), np.array([[4.0, 4.0]]), np.array([0.9]), np.array([0]))
    for f in range(20):
        store.add(f, np.array([1]), *one)
    end = 20 + store.bridge_frames + 2  # the track has settled by then
    for f in range(20, end):
        store.add(f, np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0),
                  np.zeros(0, np.int64))
    assert [r.track_id for r in store.pop_kept()] == [1]
    store.add(end, np.array([1]), *one)  # a tracker re-using an ended id
    assert store.n_late_rows == 1
