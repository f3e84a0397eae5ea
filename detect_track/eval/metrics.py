"""Scores of predictions against ground truth, all by centroid distance.

Small, fast-moving cells rarely overlap from one frame to the next and their boxes are
a few pixels wide, so box IoU is a poor criterion; every metric here matches a predicted
centre to a true centre when their distance is at most ``match_radius_px``.

Input tables are long format, one row per object per frame, units pixels and frames:

* detection: ``frame, x, y`` (predictions may add ``confidence``);
* tracking and track matching: ``frame, track_id, x, y``.

Functions never modify their inputs and never print.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from detect_track.types import MOTILITY_CLASSES

#: Kinematic columns scored by relative error ``|pred - true| / |true|``.
RELATIVE_ERROR_COLUMNS: dict[str, str] = {
    "vcl_rel_err": "vcl_um_s",
    "vsl_rel_err": "vsl_um_s",
    "vap_rel_err": "vap_um_s",
    "bcf_rel_err": "bcf_hz",
}
#: Kinematic columns scored by absolute error ``|pred - true|`` (ratios 0..1, µm).
ABSOLUTE_ERROR_COLUMNS: dict[str, str] = {
    "lin_abs_err": "lin",
    "str_abs_err": "str",
    "wob_abs_err": "wob",
    "alh_abs_err_um": "alh_um",
}

_EMPTY_INT = np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------- helpers


def _check_radius(match_radius_px: float) -> float:
    r = float(match_radius_px)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"match_radius_px must be a finite number > 0, got {match_radius_px!r}")
    return r


def _columns(df: pd.DataFrame, required: Sequence[str], name: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} table lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, df.columns)) or 'none'})"
        )


def _points(df: pd.DataFrame, name: str, with_ids: bool) -> dict[str, np.ndarray]:
    """Validated numeric arrays from a long table (no NaN allowed in coordinates)."""
    cols = ["frame", "track_id", "x", "y"] if with_ids else ["frame", "x", "y"]
    _columns(df, cols, name)
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


def _frame_groups(frames: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices per frame: ``{frame: indices (K,)}``, rows in their original order."""
    if len(frames) == 0:
        return {}
    order = np.argsort(frames, kind="stable")
    uniq, starts = np.unique(frames[order], return_index=True)
    return dict(zip(uniq.tolist(), np.split(order, starts[1:]), strict=True))


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
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
    r = _check_radius(match_radius_px)
    gt_xy = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    if len(gt_xy) == 0 or len(pred_xy) == 0:
        return _EMPTY_INT, _EMPTY_INT, np.zeros(0)
    d = _distances(gt_xy, pred_xy)
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


def _nan_div(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


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
    gt_groups = _frame_groups(gt_frames)
    pred_groups = _frame_groups(pred_frames)
    tp_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    for frame in sorted(pred_groups):
        p_idx = pred_groups[frame]
        p_idx = p_idx[np.argsort(-scores[p_idx], kind="mergesort")]
        is_tp = np.zeros(len(p_idx), dtype=bool)
        g_idx = gt_groups.get(frame)
        if g_idx is not None:
            d = _distances(pred_xy[p_idx], gt_xy[g_idx])
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
    r = _check_radius(match_radius_px)
    g = _points(gt, "ground-truth", with_ids=False)
    p = _points(pred, "prediction", with_ids=False)
    gt_groups = _frame_groups(g["frame"])
    pred_groups = _frame_groups(p["frame"])
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
        "precision": _nan_div(tp, tp + fp),
        "recall": _nan_div(tp, tp + fn),
        "f1": _nan_div(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "n_gt": int(n_gt),
        "n_pred": int(n_pred),
        "mean_match_dist_px": _nan_div(dist_sum, tp),
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
    gt_groups = _frame_groups(g["frame"])
    tr_groups = _frame_groups(p["frame"])
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
        d = _distances(g["xy"][gi], p["xy"][ti])
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

    r = _check_radius(match_radius_px)
    g = _points(gt, "ground-truth", with_ids=True)
    p = _points(pred, "prediction", with_ids=True)
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
    r = _check_radius(match_radius_px)
    g = _points(gt, "ground-truth", with_ids=True)
    p = _points(pred, "prediction", with_ids=True)
    columns = ["gt_track_id", "pred_track_id", "n_matched_frames", "n_gt_frames",
               "n_pred_frames"]
    gt_groups = _frame_groups(g["frame"])
    pred_groups = _frame_groups(p["frame"])
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


# --------------------------------------------------------------------------- kinematics


def _motility_label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return str(value).strip().lower().replace("-", "_").replace(" ", "_")


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def kinematics_errors(
    truth_tracks: pd.DataFrame, pred_tracks: pd.DataFrame, pairs: pd.DataFrame
) -> dict:
    """Errors of per-track kinematics and motility classes over matched track pairs.

    Args:
        truth_tracks: One row per true track: ``track_id``, ``motility`` and any of
            ``vcl_um_s, vsl_um_s, vap_um_s, bcf_hz, lin, str, wob, alh_um``.
        pred_tracks: The same columns for predicted tracks (``tracks.csv``).
        pairs: Output of :func:`match_tracks` (``gt_track_id, pred_track_id``).

    Returns:
        ``n_pairs``; medians over pairs of the relative errors ``vcl_rel_err,
        vsl_rel_err, vap_rel_err, bcf_rel_err`` (fractions, 0.05 = 5 %; pairs whose true
        value is 0 or missing are skipped) and of the absolute errors ``lin_abs_err,
        str_abs_err, wob_abs_err`` (ratio units) and ``alh_abs_err_um`` (µm); NaN when
        no pair or the column is absent; ``motility_accuracy`` (fraction of pairs
        with the same class, NaN without pairs) and ``motility_confusion``
        ``{true_class: {pred_class: count}}`` over ``MOTILITY_CLASSES`` (plus any
        other label that occurs).

    Raises:
        ValueError: A required column is missing.
    """
    _columns(truth_tracks, ["track_id"], "truth tracks")
    _columns(pred_tracks, ["track_id"], "predicted tracks")
    _columns(pairs, ["gt_track_id", "pred_track_id"], "pairs")
    t = truth_tracks.drop_duplicates("track_id").add_prefix("t_")
    p = pred_tracks.drop_duplicates("track_id").add_prefix("p_")
    m = (pairs[["gt_track_id", "pred_track_id"]]
         .merge(t, left_on="gt_track_id", right_on="t_track_id", how="inner")
         .merge(p, left_on="pred_track_id", right_on="p_track_id", how="inner"))
    out: dict[str, Any] = {"n_pairs": int(len(m))}

    def column(prefix: str, name: str) -> np.ndarray | None:
        key = prefix + name
        if key not in m.columns:
            return None
        return pd.to_numeric(m[key], errors="coerce").to_numpy(dtype=np.float64)

    for key, col in RELATIVE_ERROR_COLUMNS.items():
        tv, pv = column("t_", col), column("p_", col)
        if tv is None or pv is None:
            out[key] = float("nan")
            continue
        ok = np.isfinite(tv) & np.isfinite(pv) & (tv != 0)
        out[key] = _median(np.abs(pv[ok] - tv[ok]) / np.abs(tv[ok]))
    for key, col in ABSOLUTE_ERROR_COLUMNS.items():
        tv, pv = column("t_", col), column("p_", col)
        out[key] = float("nan") if tv is None or pv is None else _median(np.abs(pv - tv))

    labels = list(MOTILITY_CLASSES)
    if "t_motility" in m.columns and "p_motility" in m.columns and len(m):
        true_lab = [_motility_label(v) for v in m["t_motility"]]
        pred_lab = [_motility_label(v) for v in m["p_motility"]]
        labels += sorted(set(true_lab + pred_lab) - set(labels))
        confusion = {a: dict.fromkeys(labels, 0) for a in labels}
        for a, b in zip(true_lab, pred_lab, strict=True):
            confusion[a][b] += 1
        out["motility_accuracy"] = float(np.mean([a == b for a, b in
                                                  zip(true_lab, pred_lab, strict=True)]))
    else:
        confusion = {a: dict.fromkeys(labels, 0) for a in labels}
        out["motility_accuracy"] = float("nan")
    out["motility_confusion"] = confusion
    return out


def sample_errors(truth_tracks: pd.DataFrame, pred_summary: dict, min_track_s: float) -> dict:
    """Errors of the sample's motility percentages (what a lab report states).

    The true percentages count only true tracks at least ``min_track_s`` long, the
    same rule the pipeline applies to its own tracks.

    Args:
        truth_tracks: One row per true track with ``motility`` and ``duration_s`` (and
            optionally ``ignore``: tracks marked true are left out).
        pred_summary: The predicted ``summary.json`` (``pct_progressive``,
            ``pct_non_progressive``, ``pct_immotile`` in 0..100).
        min_track_s: Shortest track counted, in seconds.

    Returns:
        ``{"true": {class: pct}, "pred": {class: pct}, "abs_err_pp": {class: pp},
        "max_abs_err_pp": float, "n_true_tracks": int, "min_track_s": float}`` with
        percentages in 0..100 and errors in percentage points (NaN where undefined,
        e.g. no true track long enough or a missing ``pct_*`` key).

    Raises:
        ValueError: ``motility`` or ``duration_s`` is missing from ``truth_tracks``.
    """
    _columns(truth_tracks, ["motility", "duration_s"], "truth tracks")
    duration = pd.to_numeric(truth_tracks["duration_s"], errors="coerce").to_numpy(float)
    keep = duration >= float(min_track_s) - 1e-9
    if "ignore" in truth_tracks.columns:  # e.g. agglutinated heads: not free spermatozoa
        keep &= ~truth_tracks["ignore"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    labels = [_motility_label(v) for v in truth_tracks["motility"].to_numpy()[keep]]
    n = len(labels)
    true_pct: dict[str, float] = {}
    pred_pct: dict[str, float] = {}
    err: dict[str, float] = {}
    for c in MOTILITY_CLASSES:
        true_pct[c] = 100.0 * labels.count(c) / n if n else float("nan")
        try:
            pred_pct[c] = float(pred_summary.get(f"pct_{c}", float("nan")))
        except (TypeError, ValueError):
            pred_pct[c] = float("nan")
        err[c] = abs(pred_pct[c] - true_pct[c])
    finite = [v for v in err.values() if math.isfinite(v)]
    return {
        "true": true_pct,
        "pred": pred_pct,
        "abs_err_pp": err,
        "max_abs_err_pp": max(finite) if len(finite) == len(err) else float("nan"),
        "n_true_tracks": int(n),
        "min_track_s": float(min_track_s),
    }
