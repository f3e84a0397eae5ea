"""Errors of the measurements: CASA kinematics per matched track, motility per sample.

Tracks are paired first (:func:`detect_track.eval.metrics.match_tracks`); the kinematics of
each pair are compared column by column, and the sample-level motility percentages of a
run's summary against those of the true tracks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from detect_track.eval.matching import require_columns
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
    require_columns(truth_tracks, ["track_id"], "truth tracks")
    require_columns(pred_tracks, ["track_id"], "predicted tracks")
    require_columns(pairs, ["gt_track_id", "pred_track_id"], "pairs")
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
    require_columns(truth_tracks, ["motility", "duration_s"], "truth tracks")
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
