"""Detection and tracking scores of predictions against ground truth, by centroid distance.

Small, fast-moving cells rarely overlap from one frame to the next and their boxes are
a few pixels wide, so box IoU is a poor criterion; every metric here matches a predicted
centre to a true centre when their distance is at most ``match_radius_px``.

Input tables are long format, one row per object per frame, units pixels and frames:

* detection: ``frame, x, y`` (predictions may add ``confidence``);
* tracking and track matching: ``frame, track_id, x, y``.

Functions never modify their inputs and never print. The matching itself is in
:mod:`detect_track.eval.matching`; the errors of the kinematics and of the sample's
motility percentages in :mod:`detect_track.eval.measurements`.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pandas as pd

from detect_track.eval.matching import (
    check_radius,
    distances,
    frame_groups,
    long_points,
    match_points,
    nan_div,
)

# --------------------------------------------------------------------------- detection


def _average_precision(
    gt_frames: np.ndarray,
    gt_xy: np.ndarray,
    pred_frames: np.ndarray,
    pred_xy: np.ndarray,
    scores: np.ndarray,
    r: float,
) -> float:
    """COCO-style 101-point interpolated AP at one matching radius (NaN without truth)."""
    n_gt = len(gt_frames)
    if n_gt == 0:
        return float("nan")
    if len(pred_frames) == 0:
        return 0.0
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    gt_groups = frame_groups(gt_frames)
    pred_groups = frame_groups(pred_frames)
    tp_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    for frame in sorted(pred_groups):
        p_idx = pred_groups[frame]
        p_idx = p_idx[np.argsort(-scores[p_idx], kind="mergesort")]
        is_tp = np.zeros(len(p_idx), dtype=bool)
        g_idx = gt_groups.get(frame)
        if g_idx is not None:
            d = distances(pred_xy[p_idx], gt_xy[g_idx])
            taken = np.zeros(len(g_idx), dtype=bool)
            for k in range(len(p_idx)):  # greedy by score, as COCO: best free truth
                cand = np.where(taken | (d[k] > r), np.inf, d[k])
                j = int(np.argmin(cand))
                if np.isfinite(cand[j]):
                    taken[j] = True
                    is_tp[k] = True
        tp_parts.append(is_tp)
        score_parts.append(scores[p_idx])
    tp = np.concatenate(tp_parts)
    order = np.argsort(-np.concatenate(score_parts), kind="mergesort")
    tp = tp[order]
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    recall = tp_cum / n_gt
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # precision envelope
    thresholds = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, thresholds, side="left")
    q = np.zeros(len(thresholds))
    ok = idx < len(precision)
    q[ok] = precision[idx[ok]]
    return float(q.mean())


def detection_metrics(gt: pd.DataFrame, pred: pd.DataFrame, match_radius_px: float) -> dict:
    """Detection precision, recall, F1 and AP by centroid distance.

    Each frame is matched on its own (Hungarian, at most one prediction per true
    object). AP follows COCO: all predictions are ranked by ``confidence``, each
    frame is matched greedily in score order (a prediction takes the nearest free
    true object within the radius), and precision is interpolated at 101 recall
    points. There is no cap on detections per frame.

    Args:
        gt: True objects, columns ``frame, x, y`` (pixels), one row per object per frame.
        pred: Predictions, columns ``frame, x, y`` and optionally ``confidence``.
        match_radius_px: Largest centre distance of a match, in pixels (> 0).

    Returns:
        ``precision, recall, f1`` (fractions; NaN when undefined: no predictions,
        no truth, neither), ``tp, fp, fn, n_gt, n_pred`` (ints),
        ``mean_match_dist_px`` (mean centre error of the matches, NaN if none) and
        ``ap50`` (AP at the match radius; NaN without a ``confidence`` column or
        without truth; NaN confidences rank last).

    Raises:
        ValueError: Missing columns, non-numeric values or a radius <= 0.
    """
    r = check_radius(match_radius_px)
    g = long_points(gt, "ground-truth", with_ids=False)
    p = long_points(pred, "prediction", with_ids=False)
    gt_groups = frame_groups(g["frame"])
    pred_groups = frame_groups(p["frame"])
    tp = 0
    dist_sum = 0.0
    for frame, g_idx in gt_groups.items():
        p_idx = pred_groups.get(frame)
        if p_idx is None:
            continue
        gi, _, d = match_points(g["xy"][g_idx], p["xy"][p_idx], r)
        tp += len(gi)
        dist_sum += float(d.sum())
    n_gt, n_pred = len(g["frame"]), len(p["frame"])
    fp, fn = n_pred - tp, n_gt - tp
    if "confidence" in pred.columns:
        scores = pd.to_numeric(pred["confidence"], errors="coerce").to_numpy(dtype=np.float64)
        ap = _average_precision(g["frame"], g["xy"], p["frame"], p["xy"], scores, r)
    else:
        ap = float("nan")
    return {
        "precision": nan_div(tp, tp + fp),
        "recall": nan_div(tp, tp + fn),
        "f1": nan_div(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "n_gt": int(n_gt),
        "n_pred": int(n_pred),
        "mean_match_dist_px": nan_div(dist_sum, tp),
        "ap50": ap,
    }


# --------------------------------------------------------------------------- tracking


def _trackeval_data(
    g: dict[str, np.ndarray], p: dict[str, np.ndarray], r: float
) -> dict[str, Any]:
    """The per-sequence ``data`` dict that trackeval's metrics read in ``eval_sequence``."""
    gt_uids, gt_ids = np.unique(g["track_id"], return_inverse=True)
    tr_uids, tr_ids = np.unique(p["track_id"], return_inverse=True)
    frames = np.concatenate([g["frame"], p["frame"]])
    if len(frames):
        first, last = int(frames.min()), int(frames.max())
        timesteps = list(range(first, last + 1))
    else:
        timesteps = []
    gt_groups = frame_groups(g["frame"])
    tr_groups = frame_groups(p["frame"])
    data: dict[str, Any] = {
        "num_timesteps": len(timesteps),
        "num_gt_ids": len(gt_uids),
        "num_tracker_ids": len(tr_uids),
        "num_gt_dets": len(g["frame"]),
        "num_tracker_dets": len(p["frame"]),
        "gt_ids": [],
        "tracker_ids": [],
        "similarity_scores": [],
    }
    empty = np.zeros(0, dtype=np.int64)
    for t in timesteps:
        gi = gt_groups.get(t, empty)
        ti = tr_groups.get(t, empty)
        d = distances(g["xy"][gi], p["xy"][ti])
        data["gt_ids"].append(gt_ids[gi].astype(np.int64))
        data["tracker_ids"].append(tr_ids[ti].astype(np.int64))
        data["similarity_scores"].append(np.maximum(0.0, 1.0 - d / (2.0 * r)))
    return data


def tracking_metrics(gt: pd.DataFrame, pred: pd.DataFrame, match_radius_px: float) -> dict:
    """HOTA, CLEAR (MOTA) and identity (IDF1) metrics from trackeval, on centre points.

    The similarity of a true and a predicted point at distance ``d`` is
    ``max(0, 1 - d / (2 * match_radius_px))``: 1 at the same place, 0.5 at the match
    radius (the threshold of CLEAR and Identity), 0 beyond twice the radius. HOTA
    averages over its thresholds alpha = 0.05..0.95, so HOTA/DetA/LocA reward centres
    closer than the radius. Timesteps run over every frame from the first to the last
    frame present in either table; ids need not be contiguous.

    Args:
        gt: True tracks, columns ``frame, track_id, x, y`` (pixels).
        pred: Predicted tracks, columns ``frame, track_id, x, y`` (pixels).
        match_radius_px: Centre distance at which similarity is 0.5, in pixels (> 0).

    Returns:
        Floats in 0..1: ``HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr`` (means over
        alphas; ``LocA`` NaN when nothing matches), ``MOTA`` (<= 1, may be negative),
        ``IDF1, IDP, IDR``; ints: ``IDSW, Frag, MT, PT, ML, n_gt_tracks,
        n_pred_tracks, n_gt_dets, n_pred_dets``.

    Raises:
        ValueError: Missing columns, non-numeric values, duplicate ``(frame, track_id)``
            rows or a radius <= 0.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    r = check_radius(match_radius_px)
    g = long_points(gt, "ground-truth", with_ids=True)
    p = long_points(pred, "prediction", with_ids=True)
    data = _trackeval_data(g, p, r)
    cfg = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    with contextlib.redirect_stdout(io.StringIO()):
        hota = HOTA().eval_sequence(data)
        clear = CLEAR(dict(cfg)).eval_sequence(data)
        ident = Identity(dict(cfg)).eval_sequence(data)
    out: dict[str, Any] = {}
    for key in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr"):
        out[key] = float(np.mean(hota[key]))
    if float(np.sum(hota["HOTA_TP"])) == 0:
        out["LocA"] = float("nan")  # trackeval reports 1.0 when there is nothing to localise
    out["MOTA"] = float(clear["MOTA"])
    out["IDF1"] = float(ident["IDF1"])
    out["IDP"] = float(ident["IDP"])
    out["IDR"] = float(ident["IDR"])
    for key in ("IDSW", "Frag", "MT", "PT", "ML"):
        out[key] = int(clear[key])
    out["n_gt_tracks"] = int(data["num_gt_ids"])
    out["n_pred_tracks"] = int(data["num_tracker_ids"])
    out["n_gt_dets"] = int(data["num_gt_dets"])
    out["n_pred_dets"] = int(data["num_tracker_dets"])
    return out


def match_tracks(gt: pd.DataFrame, pred: pd.DataFrame, match_radius_px: float) -> pd.DataFrame:
    """Pair each true track with the predicted track that follows it.

    Points are matched frame by frame (Hungarian on centre distance, radius as in
    :func:`detection_metrics`) and matches are counted per (true, predicted) track
    pair. A pair qualifies when it is matched in at least half the frames of the
    shorter of its two tracks. Pairs are then accepted greedily, largest overlap
    first, so each true and each predicted track appears at most once and a conflict
    goes to the larger overlap (ties: smaller ids first).

    Args:
        gt: True tracks, columns ``frame, track_id, x, y`` (pixels).
        pred: Predicted tracks, columns ``frame, track_id, x, y`` (pixels).
        match_radius_px: Largest centre distance of a match, in pixels (> 0).

    Returns:
        DataFrame ``(K, 5)`` with int columns ``gt_track_id, pred_track_id,
        n_matched_frames, n_gt_frames, n_pred_frames``, sorted by ``gt_track_id``.

    Raises:
        ValueError: Missing columns, non-numeric values, duplicate ``(frame, track_id)``
            rows or a radius <= 0.
    """
    r = check_radius(match_radius_px)
    g = long_points(gt, "ground-truth", with_ids=True)
    p = long_points(pred, "prediction", with_ids=True)
    columns = ["gt_track_id", "pred_track_id", "n_matched_frames", "n_gt_frames",
               "n_pred_frames"]
    gt_groups = frame_groups(g["frame"])
    pred_groups = frame_groups(p["frame"])
    counts: dict[tuple[int, int], int] = {}
    for frame, g_idx in gt_groups.items():
        p_idx = pred_groups.get(frame)
        if p_idx is None:
            continue
        gi, pi, _ = match_points(g["xy"][g_idx], p["xy"][p_idx], r)
        for a, b in zip(g["track_id"][g_idx[gi]].tolist(), p["track_id"][p_idx[pi]].tolist(),
                        strict=True):
            counts[(a, b)] = counts.get((a, b), 0) + 1
    gt_len = pd.Series(g["track_id"]).value_counts().to_dict()
    pred_len = pd.Series(p["track_id"]).value_counts().to_dict()
    candidates = sorted(
        ((n, a, b) for (a, b), n in counts.items()
         if n >= 0.5 * min(gt_len[a], pred_len[b])),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_gt: set[int] = set()
    used_pred: set[int] = set()
    rows = []
    for n, a, b in candidates:
        if a in used_gt or b in used_pred:
            continue
        used_gt.add(a)
        used_pred.add(b)
        rows.append((a, b, n, int(gt_len[a]), int(pred_len[b])))
    out = pd.DataFrame(rows, columns=columns).astype(np.int64)
    return out.sort_values("gt_track_id", ignore_index=True)
