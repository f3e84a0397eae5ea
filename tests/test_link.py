"""The public linking API: link_iter (frame by frame) and link (a table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detect_track.config import load_config
from detect_track.errors import ConfigError
from detect_track.pipeline import track_detections
from detect_track.tracking import LinkedFrame, link, link_iter
from detect_track.types import Detections

FPS, UM_PER_PX = 50.0, 0.5


def random_walkers(seed: int, n_cells: int = 12, n_frames: int = 120) -> pd.DataFrame:
    """Cells drifting at 20-80 µm/s with jitter, born and lost at random, some missed frames."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_cells):
        start = int(rng.integers(0, n_frames // 2))
        life = int(rng.integers(20, n_frames - start + 1))
        pos = rng.uniform(40, 560, 2)
        speed_px = rng.uniform(20, 80) / UM_PER_PX / FPS
        angle = rng.uniform(0, 2 * np.pi)
        step = speed_px * np.array([np.cos(angle), np.sin(angle)])
        for f in range(start, start + life):
            pos = pos + step + rng.normal(0, 0.3, 2)
            if rng.random() > 0.05:  # the detector misses 5 % of the heads
                rows.append((f, *pos, float(rng.uniform(0.6, 1.0))))
    table = pd.DataFrame(rows, columns=["frame", "x_px", "y_px", "confidence"])
    return table.sort_values("frame", kind="stable", ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_link_iter_gives_the_ids_and_positions_of_the_batch_result(seed):
    table = random_walkers(seed)
    batch = track_detections(table, fps=FPS, um_per_px=UM_PER_PX).trajectories
    assert batch["track_id"].nunique() >= 5  # the scene has tracks to compare

    n_frames = int(table["frame"].max()) + 1
    groups = dict(list(table.groupby("frame")))
    empty = table.iloc[:0]
    per_frame = [Detections.from_centroids(g[["x_px", "y_px"]].to_numpy(), 5.0 / UM_PER_PX,
                                           g["confidence"].to_numpy())
                 for g in (groups.get(f, empty) for f in range(n_frames))]
    linked = list(link_iter(per_frame, fps=FPS, um_per_px=UM_PER_PX))
    assert [lf.frame for lf in linked] == list(range(n_frames))
    assert all(isinstance(lf, LinkedFrame) for lf in linked)
    streamed = pd.DataFrame({
        "frame": np.concatenate([np.full(len(lf.detections), lf.frame) for lf in linked]),
        "track_id": np.concatenate([lf.detections.tracker_id for lf in linked
                                    if len(lf.detections)]),
        "x_px": np.concatenate([lf.detections.xy[:, 0] for lf in linked]),
        "y_px": np.concatenate([lf.detections.xy[:, 1] for lf in linked])})

    # every detected row the batch kept is a linked row, same id, same place
    kept = batch[~batch["interpolated"]][["frame", "track_id", "x_px", "y_px"]]
    both = kept.merge(streamed, on=["frame", "track_id"], how="left", suffixes=("", "_s"))
    assert len(both) == len(kept)
    np.testing.assert_allclose(both["x_px_s"], both["x_px"], atol=1e-9)
    np.testing.assert_allclose(both["y_px_s"], both["y_px"], atol=1e-9)
    # and the table form links the same rows as the frame-by-frame form
    table_form = link(table, fps=FPS, um_per_px=UM_PER_PX)
    pd.testing.assert_frame_equal(table_form[["frame", "track_id", "x_px", "y_px"]]
                                  .astype({"frame": np.int64}), streamed
                                  .astype({"frame": np.int64}), check_exact=False, atol=1e-9)


def test_link_iter_is_lazy_and_takes_bare_centres():
    pulled: list[int] = []

    def source():
        for f in range(30):
            pulled.append(f)
            yield np.array([[10.0 + 2 * f, 50.0], [200.0, 100.0 + f]])

    it = link_iter(source(), load_config(), fps=FPS, um_per_px=UM_PER_PX)
    first = next(it)
    assert pulled == [0] and first.frame == 0
    rest = list(it)
    assert len(rest) == 29 and pulled == list(range(30))
    ids = {tuple(lf.detections.tracker_id.tolist()) for lf in rest[1:]}
    assert ids == {(1, 2)}  # two cells, two ids kept all along


def test_link_iter_handles_empty_frames_and_checks_its_scale():
    frames = [np.zeros((0, 2)), np.array([[5.0, 5.0]]), Detections.empty()]
    out = list(link_iter(frames, fps=FPS, um_per_px=UM_PER_PX))
    assert [len(lf.detections) for lf in out] == [0, 1, 0]
    with pytest.raises(ConfigError, match="um_per_px"):
        next(link_iter(frames, fps=FPS, um_per_px=0.0))
    with pytest.raises(ConfigError, match="fps"):
        next(link_iter(frames, fps=-1.0, um_per_px=UM_PER_PX))
    assert link(pd.DataFrame({"frame": [], "x_px": [], "y_px": []}), fps=FPS,
                um_per_px=UM_PER_PX).empty
