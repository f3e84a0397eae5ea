"""Load a results folder and a ground-truth folder and score one against the other.

Results folder (written by the pipeline): ``trajectories.csv`` (frame 0-based, centres
``x_px, y_px``, optional ``confidence`` and ``interpolated``), ``tracks.csv`` (one row
per track, kinematics and ``motility``) and ``summary.json`` (``pct_*``, ``fps``,
``um_per_px``, ``config.tracker.min_track_s``).

Truth folder (written by the simulator): ``gt/gt.txt`` (MOTChallenge: ``frame``
1-based, ``id, bb_left, bb_top, w, h, conf, class, visibility``; the box centre is
the true head centre), ``truth_tracks.csv`` and ``truth.json`` (``fps``,
``um_per_px``, ...).

Rows marked ``interpolated`` were filled in across gaps by the tracker: they are not
detections and are left out of every score here (they only feed the pipeline's own
kinematics). Truth rows with ``conf == 0`` are "ignore" regions as in MOTChallenge:
predictions matched to them are dropped, then they are dropped.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detect_track.errors import InputError
from detect_track.eval.matching import frame_groups, match_points
from detect_track.eval.measurements import kinematics_errors, sample_errors
from detect_track.eval.metrics import (
    detection_metrics,
    match_tracks,
    tracking_metrics,
)

MATCHING_DESCRIPTION = "centroid distance (Hungarian per frame)"

_PathLike = str | os.PathLike[str]


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"missing file: {path}")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_require(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _read_csv(path: Path, required: list[str], **kwargs: Any) -> pd.DataFrame:
    from detect_track.io.export import read_table  # either CSV dialect (--csv-dialect)

    try:
        df = read_table(_require(path), **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path} is empty (not even a header line)") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}")
    return df


def _numeric(df: pd.DataFrame, cols: list[str], path: Path, integer: bool = False) -> None:
    """Convert ``cols`` in place to numbers, raising InputError on any bad value."""
    for c in cols:
        values = pd.to_numeric(df[c], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if integer:
            bad |= values.to_numpy(dtype=np.float64) % 1 != 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{path}: column {c!r} has a bad value {df[c].iloc[row]!r} "
                             f"(row {row + 1})")
        df[c] = values.astype(np.int64) if integer else values.astype(np.float64)


def _positive(info: dict[str, Any], key: str, path: Path) -> float:
    try:
        value = float(info[key])
    except KeyError as exc:
        raise InputError(f"{path} lacks {key!r}") from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {key!r} is not a number: {info[key]!r}") from exc
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{path}: {key!r} must be > 0, got {value}")
    return value


def _as_bool(series: pd.Series) -> np.ndarray:
    if series.dtype == bool:
        return series.to_numpy()
    text = series.astype(str).str.strip().str.lower()
    return text.isin(["true", "1", "1.0", "yes", "t", "y"]).to_numpy()


def load_truth(truth_dir: _PathLike) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read a simulator truth folder.

    Args:
        truth_dir: Folder with ``gt/gt.txt``, ``truth_tracks.csv`` and ``truth.json``.

    Returns:
        ``(gt, truth_tracks, info)``: ``gt`` has columns ``frame`` (0-based),
        ``track_id, x, y`` (head centre, px) and ``ignore`` (bool, MOT ``conf == 0``);
        ``truth_tracks`` as read (``track_id`` int); ``info`` the parsed ``truth.json``.

    Raises:
        InputError: A file is missing, unreadable or malformed.
    """
    root = Path(truth_dir)
    if not root.is_dir():
        raise InputError(f"truth folder not found: {root}")
    info_path = root / "truth.json"
    info = _read_json(info_path)
    _positive(info, "um_per_px", info_path)
    gt_path = _require(root / "gt" / "gt.txt")
    try:
        raw = pd.read_csv(gt_path, header=None, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raw = pd.DataFrame(np.zeros((0, 6)))
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"cannot read {gt_path}: {exc}") from exc
    if raw.shape[1] < 6:
        raise InputError(f"{gt_path}: expected MOTChallenge rows 'frame, id, bb_left, bb_top, "
                         f"w, h, conf, class, visibility', found {raw.shape[1]} column(s)")
    names = ["frame", "id", "bb_left", "bb_top", "w", "h", "conf"][: min(7, raw.shape[1])]
    raw = raw.iloc[:, : len(names)].set_axis(names, axis=1)
    _numeric(raw, ["frame", "id"], gt_path, integer=True)
    _numeric(raw, [c for c in names if c not in ("frame", "id")], gt_path)
    if len(raw) and raw["frame"].min() < 1:
        raise InputError(f"{gt_path}: MOTChallenge frames are 1-based, found frame "
                         f"{int(raw['frame'].min())}")
    gt = pd.DataFrame({
        "frame": raw["frame"].to_numpy(np.int64) - 1,
        "track_id": raw["id"].to_numpy(np.int64),
        "x": raw["bb_left"].to_numpy(np.float64) + raw["w"].to_numpy(np.float64) / 2.0,
        "y": raw["bb_top"].to_numpy(np.float64) + raw["h"].to_numpy(np.float64) / 2.0,
        "ignore": (raw["conf"].to_numpy(np.float64) == 0) if "conf" in raw
        else np.zeros(len(raw), dtype=bool),
    })
    if gt.duplicated(["frame", "track_id"]).any():
        raise InputError(f"{gt_path}: an id occurs twice in one frame")
    tracks_path = root / "truth_tracks.csv"
    tracks = _read_csv(tracks_path, ["track_id", "motility", "duration_s"])
    _numeric(tracks, ["track_id"], tracks_path, integer=True)
    return gt, tracks, info


def load_prediction(
    pred_dir: _PathLike,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read a pipeline results folder.

    Args:
        pred_dir: Folder with ``trajectories.csv``, ``tracks.csv`` and ``summary.json``.

    Returns:
        ``(points, tracks, summary)``: ``points`` has columns ``frame`` (0-based),
        ``track_id, x, y`` (px) and ``confidence`` (NaN if the file has none), with
        interpolated rows removed; ``tracks`` and ``summary`` as read.

    Raises:
        InputError: A file is missing, unreadable or malformed.
    """
    root = Path(pred_dir)
    if not root.is_dir():
        raise InputError(f"results folder not found: {root}")
    summary = _read_json(root / "summary.json")
    traj_path = root / "trajectories.csv"
    traj = _read_csv(traj_path, ["frame", "track_id", "x_px", "y_px"])
    if "video" in traj.columns and traj["video"].nunique() > 1:
        raise InputError(f"{traj_path} holds {traj['video'].nunique()} videos; evaluate the "
                         "results folder of one video")
    if "interpolated" in traj.columns:
        traj = traj[~_as_bool(traj["interpolated"])]
    traj = traj.reset_index(drop=True)
    _numeric(traj, ["frame", "track_id"], traj_path, integer=True)
    _numeric(traj, ["x_px", "y_px"], traj_path)
    if "confidence" in traj.columns:
        conf = pd.to_numeric(traj["confidence"], errors="coerce").to_numpy(np.float64)
    else:
        conf = np.full(len(traj), np.nan)
    points = pd.DataFrame({
        "frame": traj["frame"].to_numpy(np.int64),
        "track_id": traj["track_id"].to_numpy(np.int64),
        "x": traj["x_px"].to_numpy(np.float64),
        "y": traj["y_px"].to_numpy(np.float64),
        "confidence": conf,
    })
    if points.duplicated(["frame", "track_id"]).any():
        raise InputError(f"{traj_path}: a track_id occurs twice in one frame")
    tracks_path = root / "tracks.csv"
    tracks = _read_csv(tracks_path, ["track_id", "motility"])
    _numeric(tracks, ["track_id"], tracks_path, integer=True)
    return points, tracks, summary


def _drop_ignored(gt: pd.DataFrame, pred: pd.DataFrame, r: float) -> tuple[pd.DataFrame,
                                                                          pd.DataFrame]:
    """Remove predictions matched to ignored truth, then the ignored truth itself."""
    ignore = gt["ignore"].to_numpy(bool)
    if not ignore.any():
        return gt.drop(columns="ignore"), pred
    drop = np.zeros(len(pred), dtype=bool)
    g_groups = frame_groups(gt["frame"].to_numpy())
    p_groups = frame_groups(pred["frame"].to_numpy())
    gxy = gt[["x", "y"]].to_numpy(np.float64)
    pxy = pred[["x", "y"]].to_numpy(np.float64)
    for frame in np.unique(gt["frame"].to_numpy()[ignore]).tolist():
        g_idx, p_idx = g_groups[frame], p_groups.get(frame)
        if p_idx is None:
            continue
        gi, pi, _ = match_points(gxy[g_idx], pxy[p_idx], r)
        hit = ignore[g_idx[gi]]
        drop[p_idx[pi[hit]]] = True
    return (gt[~ignore].drop(columns="ignore").reset_index(drop=True),
            pred[~drop].reset_index(drop=True))


def evaluate(pred_dir: _PathLike, truth_dir: _PathLike, match_radius_um: float = 4.0) -> dict:
    """Score a results folder against a simulator truth folder.

    A prediction matches a true head when their centres are at most
    ``match_radius_um`` apart (converted to pixels with ``truth.json``'s ``um_per_px``);
    each frame is matched with the Hungarian algorithm.

    Args:
        pred_dir: Results folder (``trajectories.csv``, ``tracks.csv``, ``summary.json``).
        truth_dir: Truth folder (``gt/gt.txt``, ``truth_tracks.csv``, ``truth.json``).
        match_radius_um: Match radius in micrometres (> 0).

    Returns:
        ``{"detection": ..., "tracking": ..., "kinematics": ..., "sample": ...}`` (see
        :func:`detection_metrics`, :func:`tracking_metrics`, :func:`kinematics_errors`,
        :func:`sample_errors`) plus ``match_radius_um``, ``match_radius_px``,
        ``matching`` (a description), ``um_per_px``, ``fps``, ``n_frames`` (from the
        truth) and ``warnings`` (list of str, e.g. a scale that differs between the two).

    Raises:
        InputError: A file is missing, unreadable or malformed.
        ValueError: ``match_radius_um`` is not > 0.
    """
    r_um = float(match_radius_um)
    if not (math.isfinite(r_um) and r_um > 0):
        raise ValueError(f"match_radius_um must be > 0, got {match_radius_um!r}")
    gt_all, truth_tracks, info = load_truth(truth_dir)
    points, pred_tracks, summary = load_prediction(pred_dir)
    um_per_px = float(info["um_per_px"])
    r_px = r_um / um_per_px
    warnings: list[str] = []
    for key in ("um_per_px", "fps"):
        t, p = info.get(key), summary.get(key)
        try:
            differ = t is not None and p is not None and not math.isclose(
                float(t), float(p), rel_tol=1e-3)
        except (TypeError, ValueError):
            differ = True
        if differ:
            warnings.append(f"{key} differs: results {p}, truth {t}")
    try:
        min_track_s = float(summary["config"]["tracker"]["min_track_s"])
    except (KeyError, TypeError, ValueError):
        min_track_s = 0.0
        warnings.append("summary.json has no config.tracker.min_track_s; "
                        "true percentages count every track")

    gt, pred = _drop_ignored(gt_all, points, r_px)
    det_pred = pred if pred["confidence"].notna().any() or len(pred) == 0 \
        else pred.drop(columns="confidence")
    detection = detection_metrics(gt, det_pred, r_px)
    tracking = tracking_metrics(gt, pred, r_px)
    pairs = match_tracks(gt, pred, r_px)
    kinematics = kinematics_errors(truth_tracks, pred_tracks, pairs)
    sample = sample_errors(truth_tracks, summary, min_track_s)
    n_frames = info.get("n_frames")
    return {
        "detection": detection,
        "tracking": tracking,
        "kinematics": kinematics,
        "sample": sample,
        "match_radius_um": r_um,
        "match_radius_px": r_px,
        "matching": MATCHING_DESCRIPTION,
        "um_per_px": um_per_px,
        "fps": float(info["fps"]) if isinstance(info.get("fps"), (int, float)) else None,
        "n_frames": int(n_frames) if isinstance(n_frames, (int, float)) else None,
        "warnings": warnings,
    }
