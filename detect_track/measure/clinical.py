"""The clinical block of a semen analysis: what a lab reads, signs and compares with WHO.

Percentages with confidence intervals, per-class kinematics, sample counts and the WHO
lower reference limits.

Everything a lab signs off is built here from the per-sample counts
(:func:`detect_track.measure.sample.sample_summary`) and the track table, and stored in
``summary.json`` under ``clinical`` (:class:`Clinical`, JSON via :meth:`Clinical.to_dict`).

* Percentages: of the *assessed* (gradable) cells, each with a 95 % **Wilson score
  interval** (:func:`wilson_interval`): it stays inside 0-100 % and keeps its coverage for
  small counts and for proportions near 0 or 100 %, where the normal (Wald) interval fails.
* Reference limits: one table, :data:`REFERENCE_LIMITS`, from :data:`REFERENCE_SOURCE`.
  A value below its limit is flagged (``below_limit``); a limit is a 5th centile of
  fertile men, not a diagnosis.
* WHO asks for at least :data:`MIN_ASSESSED_CELLS` assessed cells per sample
  (:func:`too_few_cells_warning`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detect_track.measure.motility import WHO_GRADES
from detect_track.types import MOTILITY_CLASSES

#: Where the lower reference limits come from.
REFERENCE_SOURCE = ("WHO laboratory manual for the examination and processing of human semen, "
                    "6th edition (2021): lower reference limits = 5th centiles (one-sided) of "
                    "men whose partners conceived within 12 months")
#: The confidence interval of every percentage.
CI_METHOD = "95 % Wilson score interval (binomial)"
#: Two-sided 95 % normal quantile.
Z_95 = 1.959963984540054
#: Cells WHO asks to assess per sample (at least two fields, about 200 cells each replicate).
MIN_ASSESSED_CELLS = 200


@dataclass(frozen=True)
class ReferenceLimit:
    """A WHO lower reference limit.

    Attributes:
        key: Name in :data:`REFERENCE_LIMITS` and in the clinical block.
        label: What it is, for people.
        limit: The lower reference limit (a value below it is flagged).
        unit: Unit of ``limit``.
    """

    key: str
    label: str
    limit: float
    unit: str


#: The WHO 6th-edition (2021) lower reference limits: the one table used everywhere
#: (:data:`REFERENCE_SOURCE`). ``vitality`` is listed for completeness (not measured here).
REFERENCE_LIMITS: dict[str, ReferenceLimit] = {r.key: r for r in (
    ReferenceLimit("volume_ml", "Semen volume", 1.4, "ml"),
    ReferenceLimit("concentration_million_per_ml", "Sperm concentration", 16.0, "10^6/ml"),
    ReferenceLimit("total_count_million", "Total sperm number", 39.0, "10^6 per ejaculate"),
    ReferenceLimit("total_motility", "Total motility (PR + NP)", 42.0, "%"),
    ReferenceLimit("progressive", "Progressive motility (PR)", 30.0, "%"),
    ReferenceLimit("vitality", "Vitality (live spermatozoa)", 54.0, "%"),
    ReferenceLimit("normal_forms", "Normal forms", 4.0, "%"),
)}

#: Kinematic parameters summarised per motility class: track-table column, label, unit.
KINEMATIC_PARAMETERS: tuple[tuple[str, str, str], ...] = (
    ("vcl_um_s", "VCL", "µm/s"),
    ("vsl_um_s", "VSL", "µm/s"),
    ("vap_um_s", "VAP", "µm/s"),
    ("lin", "LIN", ""),
    ("str", "STR", ""),
    ("wob", "WOB", ""),
    ("alh_um", "ALH", "µm"),
    ("bcf_hz", "BCF", "Hz"),
)
#: Groups of cells of the kinematics table: the motility classes, then all motile cells.
KINEMATIC_GROUPS: tuple[str, ...] = (*MOTILITY_CLASSES, "motile")
#: Proportions of the clinical block, in order: key -> what is counted.
PROPORTIONS: tuple[str, ...] = ("total_motility", *MOTILITY_CLASSES,
                                *(f"grade_{g}" for g in WHO_GRADES))
#: Why a video's head-morphology call is not reported as "normal forms".
SCREENING_NOTE = "screening, trained on simulated heads: not a normal-forms result"


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Args:
        k: Successes (0 <= k <= n).
        n: Trials.
        z: Normal quantile (1.96 for 95 %).

    Returns:
        ``(low, high)`` as fractions in 0..1; ``(nan, nan)`` when ``n`` is 0.

    Raises:
        ValueError: ``k`` outside 0..n.
    """
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: k={k} outside 0..{n}")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """A percentage of the assessed cells with its 95 % CI and reference limit.

    Attributes:
        n: Cells counted.
        of: Cells assessed (the denominator).
        pct: ``100 * n / of``, or None when none was assessed.
        ci95_low: Lower end of the 95 % Wilson interval, %, or None.
        ci95_high: Upper end, %, or None.
        lower_reference_limit: WHO lower reference limit, %, or None (none exists).
        below_limit: True when ``pct`` is below the limit; None without limit or value.
    """

    n: int
    of: int
    pct: float | None
    ci95_low: float | None
    ci95_high: float | None
    lower_reference_limit: float | None = None
    below_limit: bool | None = None


def proportion(k: int, n: int, limit: float | None = None) -> Proportion:
    """``k`` of ``n`` as a :class:`Proportion` (percent, Wilson 95 % CI, flag)."""
    if n <= 0:
        return Proportion(int(k), int(n), None, None, None, limit, None)
    low, high = wilson_interval(int(k), int(n))
    pct = 100.0 * k / n
    return Proportion(int(k), int(n), round(pct, 4), round(100 * low, 4), round(100 * high, 4),
                      limit, None if limit is None else bool(pct < limit))


@dataclass(frozen=True)
class Quantity:
    """A sample value (concentration, counts, volume, normal forms) and its limit.

    Attributes:
        value: The value, or None (not measured; ``note`` says why).
        unit: Its unit.
        lower_reference_limit: WHO lower reference limit, or None.
        below_limit: True when ``value`` is below the limit; None without either.
        note: Why the value is missing, or how it was obtained.
    """

    value: float | None
    unit: str
    lower_reference_limit: float | None = None
    below_limit: bool | None = None
    note: str = ""


def _quantity(key: str, value: float | None, unit: str, note: str = "",
              decimals: int = 2) -> Quantity:
    ref = REFERENCE_LIMITS.get(key)
    limit = ref.limit if ref is not None else None
    if value is None or not math.isfinite(value):
        return Quantity(None, unit, limit, None, note)
    return Quantity(round(float(value), decimals), unit, limit,
                    None if limit is None else bool(value < limit), note)


@dataclass(frozen=True)
class Stat:
    """Mean ± SD of one parameter over a group of cells.

    Attributes:
        n: Cells with a value.
        mean: Their mean, or None (no value).
        sd: Sample standard deviation (n - 1), or None (fewer than 2 values).
    """

    n: int
    mean: float | None
    sd: float | None


def kinematics_by_class(tracks: pd.DataFrame | None) -> dict[str, dict[str, Stat]]:
    """Mean ± SD of :data:`KINEMATIC_PARAMETERS` per motility class and for all motile cells.

    Args:
        tracks: Track table with ``motility`` and the parameter columns (missing columns
            and empty values are left out: e.g. BCF and ALH of immotile cells).

    Returns:
        ``{group: {column: Stat}}`` for each group of :data:`KINEMATIC_GROUPS`.
    """
    out: dict[str, dict[str, Stat]] = {}
    classes = (tracks["motility"].astype(str) if tracks is not None and "motility" in tracks
               else pd.Series(dtype=str))
    for group in KINEMATIC_GROUPS:
        wanted = set(MOTILITY_CLASSES[:2]) if group == "motile" else {group}
        rows = tracks[classes.isin(wanted)] if tracks is not None and len(classes) else None
        stats: dict[str, Stat] = {}
        for col, _label, _unit in KINEMATIC_PARAMETERS:
            if rows is None or col not in rows:
                stats[col] = Stat(0, None, None)
                continue
            values = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            n = int(len(values))
            dec = 1 if col.endswith(("_um_s", "_hz")) else (2 if col == "alh_um" else 3)
            mean = round(float(values.mean()), dec) if n else None
            sd = round(float(values.std(ddof=1)), dec) if n > 1 else None
            stats[col] = Stat(n, mean, sd)
        out[group] = stats
    return out


@dataclass(frozen=True)
class Clinical:
    """The clinical block of ``summary.json`` (see the module docstring).

    Attributes:
        n_assessed: Cells whose motility was graded (the denominator of every %).
        min_assessed: Cells WHO asks for (:data:`MIN_ASSESSED_CELLS`).
        enough_cells: ``n_assessed >= min_assessed``.
        ci_method: How the confidence intervals were computed (:data:`CI_METHOD`).
        proportions: :data:`PROPORTIONS` -> :class:`Proportion` (motility classes, total
            motility and WHO grades a-d).
        quantities: ``volume_ml``, ``concentration_million_per_ml``,
            ``total_count_million``, ``total_motile_million``,
            ``progressive_motile_million`` and ``normal_forms`` -> :class:`Quantity`.
        kinematics: :data:`KINEMATIC_GROUPS` -> parameter column -> :class:`Stat`.
        volume_ml: Semen volume given, ml, or None.
        dilution: Dilution factor of the imaged specimen (1 = neat).
        chamber_depth_um: Counting-chamber depth, µm, or None.
        reference_source: :data:`REFERENCE_SOURCE`.
    """

    n_assessed: int
    min_assessed: int
    enough_cells: bool
    ci_method: str
    proportions: dict[str, Proportion]
    quantities: dict[str, Quantity]
    kinematics: dict[str, dict[str, Stat]]
    volume_ml: float | None = None
    dilution: float = 1.0
    chamber_depth_um: float | None = None
    reference_source: str = REFERENCE_SOURCE
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (nested plain dicts)."""
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """The headline numbers as flat columns (a table row per video: ``all_summaries``).

        ``n_assessed``, ``enough_cells``; per proportion ``<key>_pct``, ``<key>_ci95_low``,
        ``<key>_ci95_high``, ``<key>_below_limit``; per quantity ``<key>`` and
        ``<key>_below_limit``. The kinematics are left out (they are in the track tables).
        """
        out: dict[str, Any] = {"n_assessed": self.n_assessed, "enough_cells": self.enough_cells}
        for key, p in self.proportions.items():
            out.update({f"{key}_pct": p.pct, f"{key}_ci95_low": p.ci95_low,
                        f"{key}_ci95_high": p.ci95_high, f"{key}_below_limit": p.below_limit})
        for key, q in self.quantities.items():
            out.update({key: q.value, f"{key}_below_limit": q.below_limit})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Clinical:
        """A clinical block from its dict (as :meth:`to_dict` writes it).

        Raises:
            ValueError: Keys missing or unknown.
        """
        try:
            return cls(**{
                **data,
                "proportions": {k: Proportion(**v) for k, v in data["proportions"].items()},
                "quantities": {k: Quantity(**v) for k, v in data["quantities"].items()},
                "kinematics": {g: {c: Stat(**s) for c, s in group.items()}
                               for g, group in data["kinematics"].items()},
                "notes": list(data.get("notes", [])),
            })
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"clinical block: {exc}") from exc


def too_few_cells_warning(n_assessed: int) -> str | None:
    """The warning below :data:`MIN_ASSESSED_CELLS` assessed cells, or None."""
    if n_assessed >= MIN_ASSESSED_CELLS:
        return None
    return (f"only {n_assessed} cells were assessed: WHO asks for at least "
            f"{MIN_ASSESSED_CELLS} per sample (more fields); the percentages are uncertain "
            "(see their 95 % confidence intervals)")


def morphology_validated(summary: Mapping[str, Any]) -> bool:
    """Whether the summary's morphology call comes from a validated model.

    True only when a morphology model ran (``morphology_model``) and the summary says it is
    not a screening model (``morphology_screening`` False: its card does not say it was
    trained on simulated heads). Today's shipped head-shape model is a screening model.
    """
    return bool(summary.get("morphology_model")) and summary.get("morphology_screening") is False


def clinical_block(counts: Mapping[str, Any], tracks: pd.DataFrame | None, *,
                   measured_concentration: float | None = None,
                   chamber_depth_um: float | None = None, volume_ml: float | None = None,
                   dilution: float | None = None, pct_normal_forms: float | None = None,
                   normal_forms_validated: bool = False) -> Clinical:
    """Build the clinical block of one sample (a video, or pooled fields).

    Args:
        counts: ``n_gradable``, ``n_<class>`` and ``n_grade_<g>`` as
            :func:`~detect_track.measure.sample.sample_summary` returns them (pooled
            counts for a sample of several fields).
        tracks: The track table(s) of the sample (``motility`` and the kinematic columns),
            or None.
        measured_concentration: Concentration in the imaged chamber, 10^6/ml (the
            summary's ``concentration_million_per_ml``), or None.
        chamber_depth_um: Counting-chamber depth, µm (recorded), or None.
        volume_ml: Semen volume, ml: gives the total count and the motile counts.
        dilution: Dilution factor of the imaged specimen (concentration x dilution is the
            semen's); None = 1 (neat).
        pct_normal_forms: % normal heads of the morphology call, or None.
        normal_forms_validated: The morphology call is validated; else it is a screening
            call and "normal forms" is not reported (:data:`SCREENING_NOTE`).

    Returns:
        The :class:`Clinical` block.
    """
    def count(key: str) -> int:
        value = counts.get(key, 0)
        return int(value) if value is not None and value == value else 0  # NaN: 0

    n = count("n_gradable") if "n_gradable" in counts else \
        sum(count(f"n_{c}") for c in MOTILITY_CLASSES)  # summaries before n_gradable

    limits = {"total_motility": REFERENCE_LIMITS["total_motility"].limit,
              "progressive": REFERENCE_LIMITS["progressive"].limit}
    motile = count("n_progressive") + count("n_non_progressive")
    props = {"total_motility": proportion(motile, n, limits["total_motility"])}
    for cls in MOTILITY_CLASSES:
        props[cls] = proportion(count(f"n_{cls}"), n, limits.get(cls))
    for g in WHO_GRADES:
        props[f"grade_{g}"] = proportion(count(f"n_grade_{g}"), n)

    factor = float(dilution) if dilution else 1.0
    conc = measured_concentration * factor if measured_concentration is not None else None
    conc_note = "" if conc is not None else "give --chamber-depth-um"
    if conc is not None and factor != 1.0:
        conc_note = f"measured {measured_concentration:g} x dilution {factor:g}"
    total = conc * volume_ml if conc is not None and volume_ml else None
    need = ("give --volume-ml" if conc is not None else "give --chamber-depth-um and "
            "--volume-ml")
    pct_motile, pct_prog = props["total_motility"].pct, props["progressive"].pct
    quantities = {
        "volume_ml": _quantity("volume_ml", volume_ml, "ml",
                               "" if volume_ml else "give --volume-ml"),
        "concentration_million_per_ml": _quantity("concentration_million_per_ml", conc,
                                                  "10^6/ml", conc_note),
        "total_count_million": _quantity("total_count_million", total, "10^6",
                                         "" if total is not None else need),
        "total_motile_million": _quantity(
            "total_motile_million",
            total * pct_motile / 100 if total is not None and pct_motile is not None else None,
            "10^6", "" if total is not None else need),
        "progressive_motile_million": _quantity(
            "progressive_motile_million",
            total * pct_prog / 100 if total is not None and pct_prog is not None else None,
            "10^6", "" if total is not None else need),
        "normal_forms": (_quantity("normal_forms", pct_normal_forms, "%", "", 1)
                         if normal_forms_validated else
                         _quantity("normal_forms", None, "%", SCREENING_NOTE)),
    }
    notes = [w for w in (too_few_cells_warning(n),) if w]
    return Clinical(n_assessed=n, min_assessed=MIN_ASSESSED_CELLS,
                    enough_cells=n >= MIN_ASSESSED_CELLS, ci_method=CI_METHOD,
                    proportions=props, quantities=quantities,
                    kinematics=kinematics_by_class(tracks), volume_ml=volume_ml,
                    dilution=factor, chamber_depth_um=chamber_depth_um, notes=notes)


def clinical_from_summary(summary: Mapping[str, Any], tracks: pd.DataFrame | None, *,
                          volume_ml: float | None = None,
                          dilution: float | None = None) -> Clinical:
    """:func:`clinical_block` from a summary's counts, concentration and morphology.

    Args:
        summary: A ``summary.json`` (or a dict of its keys).
        tracks: The track table, or None.
        volume_ml: Semen volume, ml, or None.
        dilution: Dilution factor, or None (neat).

    Returns:
        The :class:`Clinical` block.
    """
    return clinical_block(
        summary, tracks, measured_concentration=summary.get("concentration_million_per_ml"),
        chamber_depth_um=summary.get("chamber_depth_um"), volume_ml=volume_ml,
        dilution=dilution, pct_normal_forms=summary.get("pct_normal_forms"),
        normal_forms_validated=morphology_validated(summary))
