"""The context of the clinical block at the top of the video and sample reports.

:func:`clinical_context` turns a summary's clinical block
(:class:`detect_track.measure.clinical.Clinical`; built on the fly from the summary's
counts and the track table when an older ``summary.json`` has none) into plain text rows:
the sample facts (ID, date, operator), the results with their 95 % confidence intervals,
the WHO lower reference limits and a flag, the WHO grades, the mean ± SD of the
kinematics per motility class, and the notes a reader needs (CI method, source of the
limits, how grades and classes relate). Nothing here is HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from detect_track.measure.clinical import (
    KINEMATIC_GROUPS,
    KINEMATIC_PARAMETERS,
    Clinical,
    Proportion,
    Quantity,
    clinical_from_summary,
)
from detect_track.measure.motility import WHO_GRADES
from detect_track.report import MOTILITY_COLOURS
from detect_track.report.formatting import NONE, text

__all__ = ["GRADE_NOTE", "ClinicalRow", "clinical_context"]

#: How the WHO grades relate to the motility classes (shown under the grades).
GRADE_NOTE = (
    "The motility classes progressive (PR), non-progressive (NP) and immotile (IM) are the "
    "WHO 6th-edition categories and the ones the reference limits apply to. The grades a-d "
    "are the older four-way split, kept for comparison: a = rapidly progressive, "
    "b = slowly progressive, c = non-progressive, d = immotile. Normally PR = a + b, "
    "NP = c and IM = d. The one exception comes from the classic CASA gates "
    "(motility.rule = casa): a cell that swims straight (STR >= 0.8) at VSL >= 5 µm/s but "
    "too slowly to pass the progressive gate is graded b (slowly progressive) while its "
    "class stays non-progressive; each such cell makes a + b larger than PR and NP larger "
    "than c by one.")
#: Labels of the kinematics groups.
GROUP_LABELS = {"progressive": "Progressive", "non_progressive": "Non-progressive",
                "immotile": "Immotile", "motile": "All motile (PR + NP)"}
_PROPORTION_LABELS = {"total_motility": "Total motility (PR + NP)",
                      "progressive": "Progressive motility (PR)",
                      "non_progressive": "Non-progressive motility (NP)",
                      "immotile": "Immotile (IM)"}
_QUANTITY_LABELS = {"volume_ml": "Semen volume",
                    "concentration_million_per_ml": "Sperm concentration",
                    "total_count_million": "Total sperm number (per ejaculate)",
                    "total_motile_million": "Total motile (PR + NP)",
                    "progressive_motile_million": "Progressive motile (PR)",
                    "normal_forms": "Normal forms"}
_QUANTITY_UNITS = {"volume_ml": "ml", "concentration_million_per_ml": "×10⁶/ml",
                   "total_count_million": "×10⁶", "total_motile_million": "×10⁶",
                   "progressive_motile_million": "×10⁶", "normal_forms": "%"}


@dataclass(frozen=True)
class ClinicalRow:
    """One result of the clinical table.

    Attributes:
        label: What it is.
        value: The value with its unit, or an em dash.
        ci: The 95 % confidence interval, or ''.
        limit: The WHO lower reference limit (``≥ 42 %``), or ''.
        flag: ``below`` (under the limit), ``ok`` (at or above it) or '' (no limit/value).
        note: Count behind a percentage, or why a value is missing.
        colour: Colour swatch of a motility class, or None.
    """

    label: str
    value: str
    ci: str = ""
    limit: str = ""
    flag: str = ""
    note: str = ""
    colour: str | None = None


def _flag(below: bool | None) -> str:
    return "" if below is None else ("below" if below else "ok")


def _num(x: float | None, dec: int) -> str:
    return NONE if x is None else f"{x:.{dec}f}"


def _proportion_row(label: str, p: Proportion, colour: str | None = None) -> ClinicalRow:
    if p.pct is None:
        return ClinicalRow(label, NONE, note="no cell assessed", colour=colour)
    limit = "" if p.lower_reference_limit is None else f"≥ {p.lower_reference_limit:g} %"
    return ClinicalRow(label, f"{p.pct:.1f} %", f"{_num(p.ci95_low, 1)}–{_num(p.ci95_high, 1)} %",
                       limit, _flag(p.below_limit), f"{p.n} of {p.of} cells", colour)


def _quantity_row(key: str, q: Quantity) -> ClinicalRow:
    unit = _QUANTITY_UNITS.get(key, q.unit)
    dec = 1 if key in ("normal_forms",) else 2 if key == "volume_ml" else 1
    limit = "" if q.lower_reference_limit is None else f"≥ {q.lower_reference_limit:g} {unit}"
    value = NONE if q.value is None else f"{q.value:.{dec}f} {unit}"
    return ClinicalRow(_QUANTITY_LABELS.get(key, key), value, "", limit, _flag(q.below_limit),
                       q.note)


def _stat(s: Any, dec: int) -> str:
    if s.mean is None:
        return NONE
    return f"{s.mean:.{dec}f}" + ("" if s.sd is None else f" ± {s.sd:.{dec}f}")


def clinical_context(summary: Mapping[str, Any], tracks: pd.DataFrame | None
                     ) -> dict[str, Any]:
    """What the clinical block of a report shows.

    Args:
        summary: The summary (its ``clinical`` block, or the counts to build one from).
        tracks: The track table(s) (used only when the summary has no clinical block).

    Returns:
        ``facts`` (label, value pairs: sample ID, date, operator, cells assessed),
        ``rows`` (:class:`ClinicalRow`: motility with CIs, then concentration and counts,
        then normal forms), ``grades`` (:class:`ClinicalRow`), ``grade_note``,
        ``slow_straight`` (cells graded b but non-progressive), ``kinematics_groups``
        (column titles with n), ``kinematics`` (rows: parameter with unit, one
        ``mean ± SD`` per group), ``few_cells`` (the warning below 200 cells, or ''),
        ``ci_method`` and ``reference_source``.
    """
    raw = summary.get("clinical")
    if isinstance(raw, Clinical):
        block = raw
    elif isinstance(raw, Mapping):
        block = Clinical.from_dict(raw)
    else:
        block = clinical_from_summary(summary, tracks)
    p = block.proportions
    rows = [_proportion_row(_PROPORTION_LABELS["total_motility"], p["total_motility"])]
    for cls in ("progressive", "non_progressive", "immotile"):
        rows.append(_proportion_row(_PROPORTION_LABELS[cls], p[cls], MOTILITY_COLOURS[cls]))
    for key in ("concentration_million_per_ml", "total_count_million", "total_motile_million",
                "progressive_motile_million", "volume_ml", "normal_forms"):
        rows.append(_quantity_row(key, block.quantities[key]))
    grades = [_proportion_row(f"Grade {g}", p[f"grade_{g}"]) for g in WHO_GRADES]
    n_ab = p["grade_a"].n + p["grade_b"].n
    slow_straight = max(n_ab - p["progressive"].n, 0)
    groups = []
    for g in KINEMATIC_GROUPS:
        n = max((s.n for s in block.kinematics[g].values()), default=0)
        groups.append(f"{GROUP_LABELS[g]} (n = {n})")
    kin_rows = []
    for col, label, unit in KINEMATIC_PARAMETERS:
        dec = 1 if unit in ("µm/s", "Hz") else 2
        kin_rows.append((f"{label} ({unit})" if unit else label,
                         [_stat(block.kinematics[g][col], dec) for g in KINEMATIC_GROUPS]))
    n_fields = len(summary.get("sample_fields") or [])
    unseen = int(summary.get("n_not_gradable") or 0)
    facts = [
        ("Sample ID", text(summary.get("sample_id")) or NONE),
        ("Analysis date", text(summary.get("analysis_date")) or NONE),
        ("Operator", text(summary.get("operator")) or NONE),
        ("Input", f"{n_fields} fields pooled" if n_fields else
         text(summary.get("video")) or NONE),
        ("Cells assessed", f"{block.n_assessed} (WHO: at least {block.min_assessed})"
         + (f"; {unseen} more seen too briefly to grade" if unseen else "")),
    ]
    if block.dilution != 1.0:
        facts.append(("Dilution", f"{block.dilution:g}×"))
    if block.chamber_depth_um:
        facts.append(("Chamber depth", f"{block.chamber_depth_um:g} µm"))
    few = "" if block.enough_cells else (
        f"Only {block.n_assessed} cells were assessed; WHO asks for at least "
        f"{block.min_assessed}. Add fields (detect-track sample): the percentages below are "
        "uncertain, see their confidence intervals.")
    return {
        "facts": facts,
        "rows": rows,
        "grades": grades,
        "grade_note": GRADE_NOTE,
        "slow_straight": slow_straight,
        "kinematics_groups": groups,
        "kinematics": kin_rows,
        "few_cells": few,
        "ci_method": block.ci_method,
        "reference_source": block.reference_source,
    }
