"""Per-sample statistics: motility counts and percentages, concentration, plausibility.

A sample of several fields (``detect-track sample``) is pooled by :func:`pool_counts` and
:func:`pool_concentration`; its clinical block is built by
:mod:`detect_track.measure.clinical`.

Everything here reads the track table (one row per cell, see
:func:`detect_track.measure.motility.analyse`) and returns JSON-ready values for the
summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from detect_track.measure.motility import NOT_GRADABLE, WHO_GRADES
from detect_track.types import MOTILITY_CLASSES, VideoMeta

#: Median VCL of motile cells (µm/s) above which the fps or µm/px is probably wrong.
IMPLAUSIBLE_VCL_UM_S = 300.0


def sample_summary(tracks: pd.DataFrame) -> dict[str, int | float]:
    """Count cells per motility class and WHO grade; percentages over the gradable cells.

    Args:
        tracks: Output of :func:`~detect_track.measure.motility.classify_motility`
            (columns ``motility`` and ``who_grade``); one row per cell.

    Returns:
        A JSON-ready dict with ``n_tracks`` (every cell), ``n_gradable`` and
        ``n_not_gradable`` (class :data:`NOT_GRADABLE`: seen too briefly); ``n_<class>``
        and ``pct_<class>`` for each class in ``MOTILITY_CLASSES`` (``progressive``,
        ``non_progressive``, ``immotile``); ``n_grade_<g>`` and ``pct_grade_<g>`` for
        grades a-d; and ``pct_motile`` (progressive + non-progressive). Percentages are
        of the gradable cells, in 0..100, and 0.0 when no cell is gradable.

    Raises:
        ValueError: ``motility`` or ``who_grade`` is missing (run
            :func:`~detect_track.measure.motility.classify_motility` first).

    """
    missing = [c for c in ("motility", "who_grade") if c not in tracks.columns]
    if missing:
        raise ValueError(
            f"tracks table lacks column(s) {', '.join(missing)}; run classify_motility first"
        )
    classes = tracks["motility"].fillna(NOT_GRADABLE).astype(str).value_counts()
    grades = tracks["who_grade"].fillna(NOT_GRADABLE).astype(str).value_counts()
    n_gradable = int(sum(int(classes.get(c, 0)) for c in MOTILITY_CLASSES))

    def pct(count: int) -> float:
        return 100.0 * count / n_gradable if n_gradable else 0.0

    out: dict[str, int | float] = {"n_tracks": int(len(tracks)), "n_gradable": n_gradable,
                                   "n_not_gradable": int(len(tracks)) - n_gradable}
    for name in MOTILITY_CLASSES:
        out[f"n_{name}"] = int(classes.get(name, 0))
    for name in MOTILITY_CLASSES:
        out[f"pct_{name}"] = pct(out[f"n_{name}"])  # type: ignore[arg-type]
    for g in WHO_GRADES:
        out[f"n_grade_{g}"] = int(grades.get(g, 0))
    for g in WHO_GRADES:
        out[f"pct_grade_{g}"] = pct(out[f"n_grade_{g}"])  # type: ignore[arg-type]
    n_motile = int(out[f"n_{MOTILITY_CLASSES[0]}"]) + int(out[f"n_{MOTILITY_CLASSES[1]}"])
    out["pct_motile"] = pct(n_motile)
    return out


def speed_warnings(tracks: pd.DataFrame, meta: VideoMeta) -> list[str]:
    """A warning when motile cells swim implausibly fast (a wrong fps or µm/px).

    Human sperm swim at roughly 20-250 µm/s (VCL); a median far above that usually means
    the container's frame rate or the scale is wrong, and so is every speed.

    Args:
        tracks: Track table with ``vcl_um_s`` and ``motility``.
        meta: The fps and µm/px used, and their sources.

    Returns:
        Zero or one warning.
    """
    if not len(tracks) or "vcl_um_s" not in tracks or "motility" not in tracks:
        return []
    motile = tracks.loc[tracks["motility"] != "immotile", "vcl_um_s"].dropna()
    if len(motile) < 3:
        return []
    median = float(motile.median())
    if median <= IMPLAUSIBLE_VCL_UM_S:
        return []
    return [f"motile cells swim at a median VCL of {median:.0f} µm/s, far above human sperm "
            f"(about 20-250 µm/s): check the frame rate ({meta.fps:g} fps, from "
            f"{meta.fps_source}) and the scale ({meta.um_per_px:g} µm/px, from "
            f"{meta.um_per_px_source})"]


def concentration(trajectories: pd.DataFrame | int, meta: VideoMeta,
                  chamber_depth_um: float | None) -> dict[str, float | None]:
    """Sperm concentration from the cells counted per frame and the imaged volume.

    Concentration = mean tracked cells per frame / (field width x height x chamber
    depth), the field size being ``width_px x height_px x um_per_px**2``. Only cells
    kept as tracks count (short tracks and debris filtered out), including
    interpolated positions across gaps.

    Args:
        trajectories: Trajectory table (one row per cell per frame), or its row count.
        meta: Video size in px (``width_px``, ``height_px``), ``n_frames``, µm/px.
        chamber_depth_um: Depth of the counting chamber in µm; None = not computed.

    Returns:
        ``cells_per_frame``, ``chamber_depth_um`` and ``concentration_million_per_ml``
        (10^6 cells per mL; None without a depth or a frame size).
    """
    n_frames = max(int(meta.n_frames), 1)
    n_rows = trajectories if isinstance(trajectories, int) else len(trajectories)
    per_frame = float(n_rows) / n_frames
    out: dict[str, float | None] = {"cells_per_frame": round(per_frame, 3),
                                    "chamber_depth_um": chamber_depth_um,
                                    "concentration_million_per_ml": None}
    area_um2 = meta.width_px * meta.height_px * meta.um_per_px ** 2
    if chamber_depth_um and area_um2 > 0:
        volume_ml = area_um2 * chamber_depth_um * 1e-12  # 1 mL = 1e12 µm³
        out["concentration_million_per_ml"] = round(per_frame / volume_ml / 1e6, 3)
    return out


def pool_counts(fields: Sequence[Mapping[str, Any]]) -> dict[str, int | float]:
    """Pool the counts of several fields of one sample: counts add, percentages are of the pool.

    Args:
        fields: Per-field summaries (the keys :func:`sample_summary` writes).

    Returns:
        The keys of :func:`sample_summary` for the pooled cells (a percentage is of the
        pooled gradable cells, not a mean of the fields' percentages).
    """
    keys = ["n_tracks", "n_gradable", "n_not_gradable",
            *(f"n_{c}" for c in MOTILITY_CLASSES), *(f"n_grade_{g}" for g in WHO_GRADES)]
    total = {k: int(sum(int(f.get(k) or 0) for f in fields)) for k in keys}
    n = total["n_gradable"]

    def pct(count: int) -> float:
        return 100.0 * count / n if n else 0.0

    out: dict[str, int | float] = {k: total[k] for k in ("n_tracks", "n_gradable",
                                                          "n_not_gradable")}
    for name in MOTILITY_CLASSES:
        out[f"n_{name}"] = total[f"n_{name}"]
    for name in MOTILITY_CLASSES:
        out[f"pct_{name}"] = pct(total[f"n_{name}"])
    for g in WHO_GRADES:
        out[f"n_grade_{g}"] = total[f"n_grade_{g}"]
    for g in WHO_GRADES:
        out[f"pct_grade_{g}"] = pct(total[f"n_grade_{g}"])
    out["pct_motile"] = pct(total[f"n_{MOTILITY_CLASSES[0]}"] + total[f"n_{MOTILITY_CLASSES[1]}"])
    return out


def pool_concentration(fields: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Concentration of a sample from several fields: all cells counted over all volume imaged.

    Each field contributes its mean tracked cells per frame and its imaged volume
    (``width_px x height_px x um_per_px**2 x chamber_depth_um``); the pooled concentration is
    their sums' ratio (the fields' concentrations weighted by their volumes).

    Args:
        fields: Per-field summaries (``cells_per_frame``, ``width_px``, ``height_px``,
            ``um_per_px``, ``chamber_depth_um``).

    Returns:
        ``cells_per_frame`` (mean over the fields), ``chamber_depth_um`` (of the first
        field; None if none) and ``concentration_million_per_ml`` (None unless every field
        has a depth and a frame size).
    """
    per_frame = [float(f.get("cells_per_frame") or 0.0) for f in fields]
    depth = next((f.get("chamber_depth_um") for f in fields if f.get("chamber_depth_um")), None)
    out: dict[str, float | None] = {
        "cells_per_frame": round(sum(per_frame) / len(per_frame), 3) if per_frame else 0.0,
        "chamber_depth_um": depth, "concentration_million_per_ml": None}
    volumes = []
    for f in fields:
        area = float(f.get("width_px") or 0) * float(f.get("height_px") or 0) \
            * float(f.get("um_per_px") or 0) ** 2
        volumes.append(area * float(f.get("chamber_depth_um") or 0) * 1e-12)  # ml
    if fields and all(v > 0 for v in volumes):
        out["concentration_million_per_ml"] = round(sum(per_frame) / sum(volumes) / 1e6, 3)
    return out
