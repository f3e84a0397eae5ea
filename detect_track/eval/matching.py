"""Matching predicted centres to true centres, and reading the tables the scores take.

Every score of :mod:`detect_track.eval` matches a predicted centre to a true centre when
their distance is at most ``match_radius_px`` (Hungarian per frame: :func:`match_points`);
the helpers here check and convert the long input tables (``frame, x, y`` and, for tracks,
``track_id``) for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

_EMPTY_INT = np.zeros(0, dtype=np.int64)


def check_radius(match_radius_px: float) -> float:
    """``match_radius_px`` as a float.

    Raises:
        ValueError: If it is not a finite number > 0.
    """
    r = float(match_radius_px)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"match_radius_px must be a finite number > 0, got {match_radius_px!r}")
    return r


def require_columns(df: pd.DataFrame, required: Sequence[str], name: str) -> None:
    """Check that the ``name`` table ``df`` has the ``required`` columns.

    Raises:
        ValueError: Naming the missing columns and those present.
    """
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} table lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, df.columns)) or 'none'})"
        )


def long_points(df: pd.DataFrame, name: str, with_ids: bool) -> dict[str, np.ndarray]:
    """Validated numeric arrays from a long table (no NaN allowed in coordinates).

    Args:
        df: Long table: ``frame, x, y`` and, with ``with_ids``, ``track_id``.
        name: What the table is, for the error messages.
        with_ids: Read ``track_id`` too (and refuse duplicate ``(frame, track_id)`` rows).

    Returns:
        ``frame`` ``(N,)`` int64, ``xy`` ``(N, 2)`` float64 and, with ids, ``track_id``
        ``(N,)`` int64.

    Raises:
        ValueError: On a missing column, a missing or non-numeric value, a non-integer
            frame or id, or a duplicate row.
    """
    cols = ["frame", "track_id", "x", "y"] if with_ids else ["frame", "x", "y"]
    require_columns(df, cols, name)
    out: dict[str, np.ndarray] = {}
    for c in cols:
        values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} column {c!r} has missing or non-numeric values")
        out[c] = values
    if np.any(out["frame"] != np.round(out["frame"])):
        raise ValueError(f"{name} column 'frame' has non-integer values")
    out["frame"] = out["frame"].astype(np.int64)
    if with_ids:
        if np.any(out["track_id"] != np.round(out["track_id"])):
            raise ValueError(f"{name} column 'track_id' has non-integer values")
        out["track_id"] = out["track_id"].astype(np.int64)
        key = pd.DataFrame({"f": out["frame"], "t": out["track_id"]})
        dup = key.duplicated()
        if dup.any():
            f, t = key[dup].iloc[0]
            raise ValueError(
                f"{name} has {int(dup.sum())} duplicate (frame, track_id) row(s), "
                f"e.g. frame {f}, track {t}"
            )
    out["xy"] = np.column_stack([out.pop("x"), out.pop("y")]).reshape(-1, 2)
    return out


def frame_groups(frames: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices per frame: ``{frame: indices (K,)}``, rows in their original order."""
    if len(frames) == 0:
        return {}
    order = np.argsort(frames, kind="stable")
    uniq, starts = np.unique(frames[order], return_index=True)
    return dict(zip(uniq.tolist(), np.split(order, starts[1:]), strict=True))


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` between point sets ``(A, 2)`` and ``(B, 2)``."""
    diff = a[:, None, :] - b[None, :, :]
    return np.hypot(diff[..., 0], diff[..., 1])


def match_points(
    gt_xy: np.ndarray, pred_xy: np.ndarray, match_radius_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of points within a radius that maximises the number of matches.

    Among matchings with the most pairs, the one with the smallest total distance is
    chosen (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).

    Args:
        gt_xy: True centres ``(G, 2)`` in pixels.
        pred_xy: Predicted centres ``(P, 2)`` in pixels.
        match_radius_px: A pair matches when its distance is ``<=`` this (pixels, > 0).

    Returns:
        ``(gt_index (M,), pred_index (M,), distance_px (M,))`` of the matched pairs.
    """
    r = check_radius(match_radius_px)
    gt_xy = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    if len(gt_xy) == 0 or len(pred_xy) == 0:
        return _EMPTY_INT, _EMPTY_INT, np.zeros(0)
    d = distances(gt_xy, pred_xy)
    valid = d <= r
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    if len(rows) == 0:
        return _EMPTY_INT, _EMPTY_INT, np.zeros(0)
    sub_d = d[np.ix_(rows, cols)]
    sub_valid = valid[np.ix_(rows, cols)]
    # A non-match costs more than any set of valid matches one pair smaller, so the
    # assignment first maximises the number of valid pairs, then minimises distance.
    big = (min(sub_d.shape) + 1) * r + 1.0
    cost = np.where(sub_valid, sub_d, big)
    ri, ci = linear_sum_assignment(cost)
    keep = sub_valid[ri, ci]
    gi, pi = rows[ri[keep]], cols[ci[keep]]
    return gi.astype(np.int64), pi.astype(np.int64), d[gi, pi]


def nan_div(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is not positive (a rate of nothing)."""
    return float(num) / float(den) if den > 0 else float("nan")
