"""Plain-text rendering of an :func:`detect_track.eval.evaluate` result."""

from __future__ import annotations

import math
from typing import Any

from detect_track.types import MOTILITY_CLASSES


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _pct(value: Any, digits: int = 1) -> str:
    """A fraction 0..1 as a percentage (``n/a`` when missing)."""
    v = _num(value)
    return f"{100 * v:.{digits}f}%" if math.isfinite(v) else "n/a"


def _score(value: Any) -> str:
    """A score 0..1 on the 0..100 scale with one decimal."""
    v = _num(value)
    return f"{100 * v:.1f}" if math.isfinite(v) else "n/a"


def _fixed(value: Any, digits: int, unit: str = "") -> str:
    v = _num(value)
    return f"{v:.{digits}f}{unit}" if math.isfinite(v) else "n/a"


def _int(value: Any) -> str:
    v = _num(value)
    return str(int(v)) if math.isfinite(v) else "n/a"


def format_report(result: dict) -> str:
    """Render an evaluation result as readable multi-line text for a terminal.

    Scores (HOTA, MOTA, IDF1, ...) are shown on a 0-100 scale with one decimal,
    precision/recall/AP and relative errors as percentages, ratio errors (LIN, STR)
    in ratio units and sample errors in percentage points. Missing or NaN values
    show as ``n/a``.

    Args:
        result: The dict returned by :func:`detect_track.eval.evaluate`.

    Returns:
        The report as one string of lines (no trailing newline).
    """
    det = result.get("detection", {}) or {}
    trk = result.get("tracking", {}) or {}
    kin = result.get("kinematics", {}) or {}
    smp = result.get("sample", {}) or {}
    radius = _fixed(result.get("match_radius_um"), 2, " µm")
    radius_px = _fixed(result.get("match_radius_px"), 2, " px")
    lines = [
        f"Evaluation: match radius {radius} ({radius_px}), "
        f"{result.get('matching', 'centroid distance')}",
        "",
        "Detection",
        f"  precision {_pct(det.get('precision'))}   recall {_pct(det.get('recall'))}   "
        f"F1 {_pct(det.get('f1'))}   AP50 {_pct(det.get('ap50'))}",
        f"  TP {_int(det.get('tp'))}   FP {_int(det.get('fp'))}   FN {_int(det.get('fn'))}"
        f"   mean centre error {_fixed(det.get('mean_match_dist_px'), 2, ' px')}",
        "",
        "Tracking (0-100)",
        f"  HOTA {_score(trk.get('HOTA'))}   DetA {_score(trk.get('DetA'))}   "
        f"AssA {_score(trk.get('AssA'))}   LocA {_score(trk.get('LocA'))}",
        f"  MOTA {_score(trk.get('MOTA'))}   IDF1 {_score(trk.get('IDF1'))}   "
        f"ID switches {_int(trk.get('IDSW'))}   fragmentations {_int(trk.get('Frag'))}",
        f"  true tracks {_int(trk.get('n_gt_tracks'))} (mostly tracked {_int(trk.get('MT'))}, "
        f"mostly lost {_int(trk.get('ML'))})   predicted tracks "
        f"{_int(trk.get('n_pred_tracks'))}",
        "",
        f"Kinematics ({_int(kin.get('n_pairs'))} matched track pairs; medians)",
        f"  relative error   VCL {_pct(kin.get('vcl_rel_err'))}   "
        f"VSL {_pct(kin.get('vsl_rel_err'))}   VAP {_pct(kin.get('vap_rel_err'))}   "
        f"BCF {_pct(kin.get('bcf_rel_err'))}",
        f"  absolute error   LIN {_fixed(kin.get('lin_abs_err'), 3)}   "
        f"STR {_fixed(kin.get('str_abs_err'), 3)}   WOB {_fixed(kin.get('wob_abs_err'), 3)}   "
        f"ALH {_fixed(kin.get('alh_abs_err_um'), 2, ' µm')}",
        f"  motility accuracy {_pct(kin.get('motility_accuracy'))}",
    ]
    confusion = kin.get("motility_confusion") or {}
    if confusion:
        labels = list(confusion)
        width = max(len(s) for s in labels + ["true \\ predicted"]) + 2
        lines.append("  " + "true \\ predicted".ljust(width)
                     + "".join(s.rjust(width) for s in labels))
        for a in labels:
            row = confusion.get(a, {})
            lines.append("  " + a.ljust(width)
                         + "".join(_int(row.get(b, 0)).rjust(width) for b in labels))
    lines += ["", f"Sample motility (true tracks >= {_fixed(smp.get('min_track_s'), 2, ' s')}: "
              f"{_int(smp.get('n_true_tracks'))})"]
    true_pct = smp.get("true", {}) or {}
    pred_pct = smp.get("pred", {}) or {}
    err = smp.get("abs_err_pp", {}) or {}
    for c in MOTILITY_CLASSES:
        lines.append(f"  {c:<16} true {_fixed(true_pct.get(c), 1, '%'):>6}   predicted "
                     f"{_fixed(pred_pct.get(c), 1, '%'):>6}   error "
                     f"{_fixed(err.get(c), 1, ' pp')}")
    lines.append(f"  largest error {_fixed(smp.get('max_abs_err_pp'), 1, ' pp')}")
    warnings = result.get("warnings") or []
    if warnings:
        lines += ["", "Warnings"] + [f"  {w}" for w in warnings]
    return "\n".join(lines)
