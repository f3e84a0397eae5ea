"""The context of the report templates: plain values, figures as PNG data URIs.

:func:`video_context` and :func:`batch_context` turn result tables and summaries into what
``video.html.j2`` and ``batch.html.j2`` show: formatted numbers, table rows, cards and the
figures of :mod:`detect_track.report.figures`. Nothing here is HTML; the templates escape
every value (autoescape).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detect_track.measure.clinical import SCREENING_NOTE, morphology_validated, proportion
from detect_track.report import MOTILITY_COLOURS
from detect_track.report import figures as fig
from detect_track.report.clinical import clinical_context
from detect_track.report.formatting import (
    CLASS_LABELS,
    GRADES,
    NONE,
    UNCLASSIFIED,
    as_list,
    fmt,
    num,
    pct,
    text,
    with_classes,
)
from detect_track.types import MOTILITY_CLASSES

__all__ = [
    "TRACK_TABLE",
    "VIDEO_TABLE",
    "Card",
    "Cell",
    "Column",
    "Image",
    "Part",
    "TableCell",
    "batch_context",
    "sample_context",
    "video_context",
]

#: Columns of the track table: column, header, decimals (None = integer / text).
TRACK_TABLE: tuple[tuple[str, str, int | None], ...] = (
    ("track_id", "Track", None),
    ("n_frames", "Frames", None),
    ("duration_s", "Duration\n(s)", 2),
    ("vcl_um_s", "VCL\n(µm/s)", 1),
    ("vsl_um_s", "VSL\n(µm/s)", 1),
    ("vap_um_s", "VAP\n(µm/s)", 1),
    ("lin", "LIN", 2),
    ("str", "STR", 2),
    ("wob", "WOB", 2),
    ("alh_um", "ALH\n(µm)", 2),
    ("alh_max_um", "ALH max\n(µm)", 2),
    ("bcf_hz", "BCF\n(Hz)", 1),
    ("mad_deg", "MAD\n(°)", 1),
    ("motility", "Motility", None),
    ("who_grade", "WHO\ngrade", None),
    ("morphology", "Morphology", None),
    ("morphology_confidence", "Morph.\nconf.", 2),
)
#: Columns of the batch report's table of videos: summary key, header, decimals. The table starts
#: with "Video" and "Status" and ends with "Warnings / error".
VIDEO_TABLE: tuple[tuple[str, str, int | None], ...] = (
    ("n_frames", "Frames", None),
    ("fps", "fps", 1),
    ("um_per_px", "µm/px", 3),
    ("n_tracks", "Tracks", None),
    ("pct_progressive", "Progr.\n(%)", 1),
    ("pct_non_progressive", "Non-progr.\n(%)", 1),
    ("pct_immotile", "Immotile\n(%)", 1),
    ("pct_motile", "Motile\n(%)", 1),
    ("pct_normal_forms", "Normal\nforms (%)", 1),
    ("concentration_million_per_ml", "Conc.\n(M/mL)", 1),
)
#: Summary keys shown in their own place of the video report (the rest is "Other results").
_SHOWN = frozenset(
    {"video", "path", "n_frames", "duration_s", "width_px", "height_px", "fps",
     "fps_source", "um_per_px", "um_per_px_source", "detector", "detector_weights",
     "tracker", "n_tracks", "pct_motile", "n_morphology_assessed", "pct_normal_forms",
     "morphology_model", "morphology_task", "n_detections", "n_interpolated",
     "warnings", "elapsed_s", "config", "versions", "chamber_depth_um",
     "concentration_million_per_ml", "cells_per_frame", "n_gradable", "n_not_gradable",
     "sample_id", "operator", "analysis_date", "clinical", "sample_fields"}
    | {f"{p}_{c}" for p in ("n", "pct") for c in MOTILITY_CLASSES}
    | {f"{p}_grade_{g}" for p in ("n", "pct") for g, _ in GRADES})


# -- context types ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """A piece of text in a table cell; ``muted`` ones are grey."""

    text: str
    muted: bool = False


@dataclass(frozen=True)
class Cell:
    """A value of a key-value table: text parts joined by spaces, or a nested table."""

    parts: tuple[Part, ...] = ()
    rows: list[tuple[str, Cell]] | None = None


@dataclass(frozen=True)
class Card:
    """A summary card: title, big value, detail line, colour of the left border."""

    key: str
    value: str
    detail: str = ""
    colour: str | None = None


@dataclass(frozen=True)
class Image:
    """An embedded figure: PNG data URI, width on the page (CSS px) and caption."""

    src: str
    width: int
    caption: str


@dataclass(frozen=True)
class TableCell:
    """A cell of the track table, with an optional colour swatch before the text."""

    text: str
    css_class: str = ""
    swatch: str | None = None


@dataclass(frozen=True)
class Column:
    """A column header (a newline in the title breaks the line) and its CSS class."""

    title: str
    css_class: str = ""


def _image(figure: Any, caption: str) -> Image:
    return Image(fig.png_data_uri(figure), fig.display_width(figure), caption)


def _plain(value: Any) -> str:
    """``str(value)``, '' for None (NaN stays ``nan``, as in the summary)."""
    return "" if value is None else str(value)


def _cell(*parts: Part | str) -> Cell:
    return Cell(tuple(Part(p) if isinstance(p, str) else p for p in parts))


def _nested(value: Any) -> Cell:
    """A (nested) configuration value as a cell."""
    if isinstance(value, Mapping):
        if not value:
            return _cell(Part("(empty)", True))
        return Cell(rows=[(str(k), _nested(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        if not value:
            return _cell(Part("[]", True))
        return _cell(", ".join(str(v) for v in value))
    if value is None:
        return _cell(Part("none", True))
    if value == "":
        return _cell(Part('""', True))
    return _cell(str(value))

# -- video report ----------------------------------------------------------------------------
def video_context(trajectories: pd.DataFrame | None, tracks: pd.DataFrame | None,
                  summary: Mapping[str, Any]) -> dict[str, Any]:
    """The context of ``video.html.j2`` (plain values; the template escapes them).

    Args:
        trajectories: Trajectory table, or None.
        tracks: Per-track table, or None.
        summary: The sample summary.

    Returns:
        ``name``, ``path``, ``clinical`` (see
        :func:`~detect_track.report.clinical.clinical_context`), ``warnings``, ``cards``,
        ``morphology_note`` (why normal forms are not a headline, or ''), ``grades``,
        ``recording``, ``trajectory_plot`` and ``histograms`` (:class:`Image` or None),
        ``n_tracks``, ``track_columns``, ``track_rows``, ``parameters``,
        ``other_results``, ``config`` and ``versions``.
    """
    summary = dict(summary)
    name = str(summary.get("video") or Path(str(summary.get("path", "video"))).name)
    clinical = clinical_context(summary, tracks)
    tracks = with_classes(tracks)
    n_tracks = len(tracks)
    trajectory_plot = histograms = None
    if n_tracks or (trajectories is not None and len(trajectories)):
        trajectory_plot = _image(
            fig.trajectory_figure(trajectories, tracks, summary),
            "Paths of the tracks in the field of view (µm; image coordinates, y downwards), "
            "coloured by motility class.")
    if n_tracks:
        histograms = _image(
            fig.histogram_figure(tracks),
            "Distributions of curvilinear (VCL), straight-line (VSL) and average-path (VAP) "
            "velocity and of linearity (LIN), stacked by motility class.")
    columns, rows = _track_table(tracks)
    config = summary.get("config")
    versions = summary.get("versions")
    return {
        "name": name,
        "path": summary.get("path", ""),
        "clinical": clinical,
        "warnings": as_list(summary.get("warnings")),
        "cards": _summary_cards(summary, n_tracks),
        "morphology_note": _morphology_note(summary),
        "grades": [{"grade": g, "meaning": meaning, "n": fmt(summary.get(f"n_grade_{g}"), None),
                    "pct": pct(summary.get(f"pct_grade_{g}"))} for g, meaning in GRADES],
        "recording": _recording(summary),
        "trajectory_plot": trajectory_plot,
        "histograms": histograms,
        "n_tracks": n_tracks,
        "track_columns": columns,
        "track_rows": rows,
        "parameters": _parameters(summary),
        "other_results": [(k, _nested(v)) for k, v in summary.items() if k not in _SHOWN],
        "config": _nested(config) if isinstance(config, Mapping) and config else None,
        "versions": ([(str(k), _cell(_plain(v))) for k, v in versions.items()]
                     if isinstance(versions, Mapping) else []),
    }


def _summary_cards(summary: Mapping[str, Any], n_tracks: int) -> list[Card]:
    total = num(summary.get("n_tracks"))
    cards = [Card("Tracks", fmt(total if total is not None else n_tracks, None),
                  f"{fmt(summary.get('n_frames'), None)} frames, "
                  f"{fmt(summary.get('duration_s'), 1)} s")]
    n_graded = num(summary.get("n_gradable"))

    def ci(count: Any) -> str:
        """`` · 95 % CI lo–hi %`` (Wilson) when the counts are known."""
        k = num(count)
        if not n_graded or k is None:
            return ""
        p = proportion(int(k), int(n_graded))
        # no line break inside "95 % CI 42–74%" (no-break spaces, word joiners)
        return f" · 95\u00a0%\u00a0CI\u00a0{p.ci95_low:.0f}\u2060–\u2060{p.ci95_high:.0f}%"

    for cls in MOTILITY_CLASSES:
        cards.append(Card(CLASS_LABELS[cls], pct(summary.get(f"pct_{cls}")),
                          f"n = {fmt(summary.get(f'n_{cls}'), None)}"
                          + ci(summary.get(f"n_{cls}")), MOTILITY_COLOURS[cls]))
    n_motile = sum(num(summary.get(f"n_{c}")) or 0.0 for c in MOTILITY_CLASSES[:2])
    cards.append(Card("Motile", pct(summary.get("pct_motile")),
                      "PR + NP" + ci(n_motile)))
    if morphology_validated(summary):  # a screening call is no headline (see the note)
        assessed = fmt(summary.get("n_morphology_assessed"), None)
        cards.append(Card("Normal forms", pct(summary.get("pct_normal_forms")),
                          f"n = {assessed} assessed"))
    conc = num(summary.get("concentration_million_per_ml"))
    if conc is None:
        cards.append(Card("Concentration", NONE, "give --chamber-depth-um"))
    else:
        depth = num(summary.get("chamber_depth_um"))
        detail = f"million/mL, chamber {depth:g} µm deep" if depth else "million/mL"
        cards.append(Card("Concentration", f"{conc:.1f}", detail))
    return cards


def _validated_row(row: Mapping[str, Any]) -> bool:
    """:func:`morphology_validated` of a row of ``all_summaries.csv`` (cells read as text)."""
    flag = str(row.get("morphology_screening")).strip().lower()
    return morphology_validated({
        "morphology_model": text(row.get("morphology_model")),
        "morphology_screening": {"false": False, "0": False, "true": True, "1": True}.get(flag)})


def _morphology_note(summary: Mapping[str, Any]) -> str:
    """Why "normal forms" is not among the cards ('' when it is, or morphology was off)."""
    if morphology_validated(summary) or not text(summary.get("morphology_model")):
        return ""
    n = num(summary.get("pct_normal_forms"))
    seen = (f" It called {n:.0f}% of {fmt(summary.get('n_morphology_assessed'), None)} "
            "assessed heads normal (per track in the table below)." if n is not None else "")
    return f"Head morphology from video: {SCREENING_NOTE}.{seen}"


def _recording(summary: Mapping[str, Any]) -> list[tuple[str, Cell]]:
    size = f"{fmt(summary.get('width_px'), None)} × {fmt(summary.get('height_px'), None)} px"
    um = num(summary.get("um_per_px"))
    w, h = num(summary.get("width_px")), num(summary.get("height_px"))
    if um and w and h:
        size += f" ({w * um:.0f} × {h * um:.0f} µm)"
    rows = [
        ("Frames", _cell(f"{fmt(summary.get('n_frames'), None)} "
                         f"({fmt(summary.get('duration_s'), 2)} s)")),
        ("Frame size", _cell(size)),
        ("Frame rate", _cell(f"{fmt(summary.get('fps'), 2)} fps",
                             Part(f"({_plain(summary.get('fps_source', '?'))})", True))),
        ("Scale", _cell(f"{fmt(summary.get('um_per_px'), 4)} µm/px",
                        Part(f"({_plain(summary.get('um_per_px_source', '?'))})", True))),
        ("Detections", _cell(f"{fmt(summary.get('n_detections'), None)} "
                             f"({fmt(summary.get('n_interpolated'), None)} positions "
                             "interpolated across gaps)")),
    ]
    if "cells_per_frame" in summary:
        rows.append(("Tracked cells per frame", _cell(fmt(summary.get("cells_per_frame"), 1))))
    if summary.get("elapsed_s") is not None:
        rows.append(("Processing time", _cell(f"{fmt(summary.get('elapsed_s'), 1)} s")))
    return rows


def _track_table(tracks: pd.DataFrame) -> tuple[list[Column], list[list[TableCell]]]:
    """Header and rows of the track table (sorted by track id); no rows without tracks."""
    if len(tracks) == 0:
        return [], []
    cols = [c for c in TRACK_TABLE if c[0] in tracks.columns]
    if "track_id" in tracks.columns:
        tracks = tracks.sort_values("track_id", kind="stable")

    def numeric(col: str, dec: int | None) -> bool:
        return dec is not None or col in ("track_id", "n_frames")

    columns = [Column(title, "num" if numeric(col, dec) else "") for col, title, dec in cols]
    rows: list[list[TableCell]] = []
    for rec in tracks.to_dict(orient="records"):
        cells = []
        for col, _title, dec in cols:
            value = rec.get(col)
            if col == "motility":
                cls = rec["_class"]
                colour = MOTILITY_COLOURS.get(cls, MOTILITY_COLOURS[UNCLASSIFIED])
                cells.append(TableCell(CLASS_LABELS.get(cls, cls), swatch=colour))
            elif numeric(col, dec):
                cells.append(TableCell(fmt(value, dec), "num"))
            else:
                cells.append(TableCell(text(value) or NONE))
        rows.append(cells)
    return columns, rows


def _parameters(summary: Mapping[str, Any]) -> list[tuple[str, Cell]]:
    weights = summary.get("detector_weights")
    detector = [Part(_plain(summary.get("detector", "?")))]
    if text(weights):
        detector.append(Part(f"(weights: {_plain(weights)})", True))
    rows = [
        ("Frame rate", _cell(f"{fmt(summary.get('fps'), 3)} fps, from: "
                             f"{_plain(summary.get('fps_source', '?'))}")),
        ("Scale", _cell(f"{fmt(summary.get('um_per_px'), 4)} µm/px, from: "
                        f"{_plain(summary.get('um_per_px_source', '?'))}")),
        ("Detector", _cell(*detector)),
        ("Tracker", _cell(_plain(summary.get("tracker", "?")))),
    ]
    if "morphology_model" in summary:
        model = summary.get("morphology_model")
        task = summary.get("morphology_task")
        parts = [Part(_plain(model)) if text(model) else Part("not run", True)]
        if text(task):
            parts.append(Part(f"({_plain(task)})", True))
        rows.append(("Morphology model", _cell(*parts)))
    if "chamber_depth_um" in summary:
        depth = num(summary.get("chamber_depth_um"))
        rows.append(("Chamber depth", _cell(f"{depth:g} µm") if depth else
                     _cell(Part("not given (--chamber-depth-um)", True))))
    return rows


# -- sample report ---------------------------------------------------------------------------
#: Columns of the sample report's table of fields: ``sample_fields`` key, header, decimals.
FIELD_TABLE: tuple[tuple[str, str, int | None], ...] = (
    ("n_frames", "Frames", None),
    ("duration_s", "Duration\n(s)", 1),
    ("n_tracks", "Tracks", None),
    ("n_gradable", "Assessed", None),
    ("pct_progressive", "PR\n(%)", 1),
    ("pct_non_progressive", "NP\n(%)", 1),
    ("pct_immotile", "IM\n(%)", 1),
    ("pct_motile", "Motile\n(%)", 1),
    ("concentration_million_per_ml", "Conc.\n(10⁶/ml)", 1),
)


def sample_context(tracks: pd.DataFrame | None, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The context of ``sample.html.j2``: one sample pooled from several fields.

    Args:
        tracks: Every field's tracks (with ``field``), or None.
        summary: The pooled summary (``sample_fields`` lists the fields).

    Returns:
        ``name``, ``path``, ``clinical``, ``warnings``, ``cards``, ``morphology_note``,
        ``field_columns``, ``fields`` (``label``, ``href``, ``numbers``), ``spread`` (of %
        progressive over the fields), ``histograms`` (:class:`Image` or None),
        ``n_tracks``, ``parameters`` and ``versions``.
    """
    summary = dict(summary)
    clinical = clinical_context(summary, tracks)
    tracks = with_classes(tracks)
    entries = [dict(f) for f in summary.get("sample_fields") or []]
    fields = []
    for f in entries:
        out = text(f.get("output"))
        graded = bool(num(f.get("n_gradable")))  # no percentage of no cell
        fields.append({"label": f"{fmt(f.get('field'), None)}. {text(f.get('video'))}",
                       "href": f"{out}/report.html" if out else "",
                       "numbers": [fmt(f.get(k), dec) if graded or not k.startswith("pct_")
                                   else NONE for k, _t, dec in FIELD_TABLE]})
    pcts = [p for p in (num(f.get("pct_progressive")) for f in entries
                        if num(f.get("n_gradable"))) if p is not None]
    spread = ""
    if len(pcts) > 1:
        spread = (f"Progressive per field: mean {np.mean(pcts):.1f}%, SD "
                  f"{np.std(pcts, ddof=1):.1f}%, range {min(pcts):.1f}–{max(pcts):.1f}% "
                  f"({len(pcts)} fields). The pooled percentage is of all assessed cells.")
    versions = summary.get("versions")
    return {
        "name": text(summary.get("sample_id")) or text(summary.get("video")) or "sample",
        "path": summary.get("path", ""),
        "clinical": clinical,
        "warnings": as_list(summary.get("warnings")),
        "cards": _summary_cards(summary, len(tracks)),
        "morphology_note": _morphology_note(summary),
        "field_columns": [Column("Field"), *(Column(t, "num") for _k, t, _d in FIELD_TABLE)],
        "fields": fields,
        "spread": spread,
        "histograms": None if len(tracks) == 0 else _image(
            fig.histogram_figure(tracks),
            "VCL, VSL, VAP and LIN of the tracks of all fields, stacked by motility class."),
        "n_tracks": len(tracks),
        "parameters": _parameters(summary),
        "versions": ([(str(k), _cell(_plain(v))) for k, v in versions.items()]
                     if isinstance(versions, Mapping) else []),
    }


# -- batch report ----------------------------------------------------------------------------
def batch_context(summaries: pd.DataFrame | None, tracks: pd.DataFrame | None,
                  log: pd.DataFrame | None) -> dict[str, Any]:
    """The context of ``batch.html.j2`` (plain values; the template escapes them).

    Args:
        summaries: One row per input (see :func:`batch_report`), or None.
        tracks: All tracks of all videos, or None.
        log: The batch log, or None.

    Returns:
        ``counts`` (``inputs``, ``ok``, ``skipped``, ``failed``), ``failed`` and
        ``failed_more``, ``warnings``, ``cards``, ``progressive_spread``,
        ``video_columns``, ``videos``, ``class_bars`` and ``histograms`` (:class:`Image` or
        None), ``n_tracks`` and ``log``.
    """
    summaries = summaries if summaries is not None else pd.DataFrame()
    log = log if log is not None else pd.DataFrame()
    tracks = with_classes(tracks if tracks is not None else pd.DataFrame())
    rows = [dict(r) for r in summaries.to_dict(orient="records")]
    labels = _video_labels(rows)
    statuses = [str(text(r.get("status")) or "ok") for r in rows]
    if not rows and len(log):
        statuses = [str(text(s) or "ok") for s in log.get("status", [])]
    counts = {"inputs": len(statuses), "ok": statuses.count("ok"),
              "skipped": statuses.count("skipped"), "failed": statuses.count("failed")}
    limit = 20
    failed = [{"file": r.get("file"), "error": text(r.get("error"))}
              for r in (rows if rows else log.to_dict(orient="records"))
              if text(r.get("status")) == "failed"]
    bars = fig.class_bar_figure(rows, labels)
    cards, spread = _batch_totals(rows, tracks)
    titles = ("Video", "Status", *(t for _, t, _ in VIDEO_TABLE), "Warnings / error")
    return {
        "counts": counts,
        "failed": failed[:limit],
        "failed_more": max(len(failed) - limit, 0),
        "warnings": [(label, w) for r, label in zip(rows, labels, strict=True)
                     for w in as_list(r.get("warnings"))],
        "cards": cards,
        "progressive_spread": spread,
        "video_columns": [(t, "" if k in (0, 1, len(titles) - 1) else "num")
                          for k, t in enumerate(titles)],
        "videos": [_video_row(r, label) for r, label in zip(rows, labels, strict=True)],
        "class_bars": None if bars is None else _image(
            bars, "Percentage of progressive, non-progressive and immotile tracks per video "
                  "(videos with at least one track)."),
        "histograms": None if len(tracks) == 0 else _image(
            fig.histogram_figure(tracks),
            "VCL, VSL, VAP and LIN of the tracks of all videos, stacked by motility class."),
        "n_tracks": len(tracks),
        "log": [{"file": r.get("file"), "status": text(r.get("status")) or "?",
                 "error": text(r.get("error")), "elapsed": fmt(r.get("elapsed_s"), 1)}
                for r in log.to_dict(orient="records")],
    }


def _video_labels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Name of each input: its video name, or its output folder where names repeat."""
    names = [text(r.get("video")) or Path(text(r.get("file")) or "?").name for r in rows]
    counts = pd.Series(names).value_counts() if names else pd.Series(dtype=int)
    out = []
    for r, name in zip(rows, names, strict=True):
        alt = text(r.get("output")) or text(r.get("file"))
        out.append(alt if counts.get(name, 0) > 1 and alt else name)
    return out


def _batch_totals(rows: Sequence[Mapping[str, Any]],
                  tracks: pd.DataFrame) -> tuple[list[Card], str]:
    """Cards of the pooled totals, and the spread of % progressive over videos ('' if <2)."""
    done = [r for r in rows if text(r.get("status")) in ("ok", "skipped", "")]

    def total(key: str) -> float:
        return float(sum(num(r.get(key)) or 0.0 for r in done))

    n_tracks = total("n_tracks")
    if n_tracks == 0 and len(tracks):
        n_tracks = float(len(tracks))
        counts = {c: float((tracks["_class"] == c).sum()) for c in MOTILITY_CLASSES}
    else:
        counts = {c: total(f"n_{c}") for c in MOTILITY_CLASSES}

    def share(n: float) -> str:
        return pct(100.0 * n / n_tracks) if n_tracks else NONE

    cards = [Card("Videos measured", f"{len(done)}", f"of {len(rows)} input(s)"),
             Card("Tracks", fmt(n_tracks, None),
                  f"{fmt(total('n_frames'), None)} frames, {fmt(total('duration_s'), 1)} s")]
    for cls in MOTILITY_CLASSES:
        cards.append(Card(CLASS_LABELS[cls], share(counts[cls]),
                          f"n = {counts[cls]:.0f} (pooled)", MOTILITY_COLOURS[cls]))
    motile = counts["progressive"] + counts["non_progressive"]
    cards.append(Card("Motile", share(motile), "pooled over all tracks"))
    assessed = total("n_morphology_assessed")
    normal = sum((num(r.get("pct_normal_forms")) or 0.0) / 100.0
                 * (num(r.get("n_morphology_assessed")) or 0.0) for r in done)
    validated = all(_validated_row(r) for r in done if num(r.get("n_morphology_assessed")))
    if assessed and not validated:  # a screening model's calls are no headline
        cards.append(Card("Normal forms", NONE, f"{SCREENING_NOTE} (n = {assessed:.0f})"))
    else:
        cards.append(Card("Normal forms", pct(100.0 * normal / assessed) if assessed else NONE,
                          f"n = {assessed:.0f} assessed"))
    pcts = [p for p in (num(r.get("pct_progressive")) for r in done) if p is not None]
    spread = ""
    if len(pcts) > 1:
        spread = (f"Progressive per video: mean {np.mean(pcts):.1f}%, "
                  f"SD {np.std(pcts, ddof=1):.1f}%, range {min(pcts):.1f}–{max(pcts):.1f}% "
                  f"({len(pcts)} videos).")
    return cards, spread


def _video_row(r: Mapping[str, Any], label: str) -> dict[str, Any]:
    """One row of the table of videos."""
    status = text(r.get("status")) or "ok"
    link = text(r.get("report"))
    path = text(r.get("file"))
    notes = text(r.get("error")) if status == "failed" else "; ".join(as_list(r.get("warnings")))
    return {
        "status": status,
        "label": label,
        "href": link if link and status != "failed" else "",
        "file": path if path and path != label else "",
        "numbers": [fmt(r.get(key), dec) for key, _title, dec in VIDEO_TABLE],
        "notes": notes,
    }

