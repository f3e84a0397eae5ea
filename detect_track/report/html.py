"""Self-contained HTML reports of one video's results and of a batch.

Each report is a single ``.html`` file: the CSS is inline and every figure is a PNG drawn
with matplotlib (a bare :class:`matplotlib.figure.Figure`, no pyplot, so it is safe in
threads and never opens a window) and embedded as a ``data:`` URI. There is no
JavaScript and no reference to any other file or URL, except the relative links from a
batch report to the per-video reports. All text that comes from data (video names,
paths, warnings, errors, configuration values) is HTML-escaped.

* :func:`video_report` / :func:`write_video_report`: sample summary, warnings, trajectory
  plot, histograms of VCL, VSL, VAP and LIN by motility class, the table of tracks and the
  parameters used.
* :func:`batch_report` / :func:`write_batch_report`: one row per video, totals, the batch
  log (failed inputs highlighted), pooled histograms, % motility classes per video.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from detect_track import __version__
from detect_track.io.export import ensure_output_dir, write_text
from detect_track.report import MOTILITY_COLOURS
from detect_track.types import MOTILITY_CLASSES

__all__ = [
    "MOTILITY_COLOURS",
    "batch_report",
    "video_report",
    "write_batch_report",
    "write_video_report",
]

#: Class used for tracks without a motility class (too short to classify).
UNCLASSIFIED = "unclassified"
#: Display names of the motility classes.
CLASS_LABELS: dict[str, str] = {
    "progressive": "Progressive",
    "non_progressive": "Non-progressive",
    "immotile": "Immotile",
    UNCLASSIFIED: "Unclassified",
}
#: WHO grades and what they mean (WHO laboratory manual, 6th edition).
GRADES: tuple[tuple[str, str], ...] = (
    ("a", "rapidly progressive"),
    ("b", "slowly progressive"),
    ("c", "non-progressive"),
    ("d", "immotile"),
)
#: Histograms drawn: column, title, unit label, decimals of the axis.
HIST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("vcl_um_s", "VCL (µm/s)"),
    ("vsl_um_s", "VSL (µm/s)"),
    ("vap_um_s", "VAP (µm/s)"),
    ("lin", "LIN (VSL/VCL)"),
)
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
#: Figure resolution: pixels per inch in the PNG, and CSS pixels per inch on the page
#: (the PNG holds 1.5x the displayed pixels, so it stays sharp on high-density screens).
_DPI = 144
_CSS_PX_PER_IN = 96
#: At most this many track ids are written next to their paths in the trajectory plot.
_MAX_TRACK_LABELS = 60
_NONE = "—"

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 12px; }
h1 { font-size: 1.65em; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.25em; margin: 30px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 18px 0 8px; }
p { margin: 6px 0; }
.sub { color: var(--muted); margin: 0 0 8px; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { flex: 1 1 150px; min-width: 140px; border: 1px solid var(--line);
  border-left: 6px solid #57606a; border-radius: 6px; padding: 8px 12px; background: #fff; }
.card .k { font-size: 0.86em; color: var(--muted); font-weight: 600; white-space: nowrap; }
.card .v { font-size: 1.45em; font-weight: 600; white-space: nowrap; }
.card .d { font-size: 0.85em; color: var(--muted); }
.warn { border: 2px solid #d29922; background: #fff8c5; border-radius: 6px;
  padding: 10px 16px; margin: 14px 0; }
.warn h2 { border: 0; margin: 0 0 4px; padding: 0; font-size: 1.1em; color: #7d4e00; }
.warn ul { margin: 4px 0; padding-left: 22px; }
.warn li { overflow-wrap: anywhere; }
.ok { color: #1a7f37; }
.scroll { overflow-x: auto; max-width: 100%; }
.scroll.tall { max-height: 640px; overflow-y: auto; border: 1px solid var(--line);
  width: fit-content; }
table { border-collapse: collapse; font-size: 0.88em; margin: 6px 0; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; white-space: nowrap; }
.tall th { position: sticky; top: 0; z-index: 1; }
tbody tr:nth-child(even) { background: #fbfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.path { overflow-wrap: anywhere; min-width: 12em; max-width: 32em; }
td.err { overflow-wrap: anywhere; min-width: 14em; max-width: 40em; }
tr.st-failed td { background: #ffebe9; }
tr.st-failed td.status { color: #a40e26; font-weight: 700; }
tr.st-skipped td.status { color: var(--muted); }
table.videos { font-size: 0.84em; }
table.videos th { vertical-align: bottom; }
table.videos td.path { min-width: 11em; max-width: 20em; }
table.videos td.err { min-width: 12em; max-width: 24em; }
table.tracks { font-size: 0.84em; }
table.tracks th, table.tracks td { padding: 3px 7px; white-space: nowrap; }
table.tracks th { vertical-align: bottom; }
.row { display: flex; flex-wrap: wrap; gap: 8px 48px; align-items: flex-start; }
.row > div { min-width: 0; max-width: 100%; }
.kv th { text-align: left; background: none; font-weight: 600; color: var(--muted); }
.kv td { overflow-wrap: anywhere; }
.kv .kv { margin: 0; font-size: 1em; }
.sw { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px;
  margin-right: 5px; vertical-align: -0.05em; }
figure { margin: 10px 0 16px; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.88em; margin-top: 4px; }
.empty { padding: 18px; border: 1px dashed var(--line); border-radius: 6px; color: var(--muted);
  background: var(--bg-alt); }
details { margin: 10px 0; }
details > summary { cursor: pointer; font-weight: 600; }
details[open] > summary { margin-bottom: 6px; }
a { color: #0969da; }
footer { max-width: 1180px; margin: 24px auto 0; padding: 10px 28px 28px; color: var(--muted);
  font-size: 0.85em; border-top: 1px solid var(--line); }
@media print { .scroll.tall { max-height: none; overflow: visible; } }
"""


# -- public API ------------------------------------------------------------------------------
def video_report(trajectories: pd.DataFrame, tracks: pd.DataFrame,
                 summary: Mapping[str, Any]) -> str:
    """Build the HTML report of one video.

    Args:
        trajectories: Trajectory table (``TRAJECTORY_COLUMNS``; ``track_id``, ``frame``,
            ``x_um``, ``y_um`` are used).
        tracks: Per-track table (``TRACK_COLUMNS``); an empty ``motility`` means the track
            was too short to classify.
        summary: The sample summary (``summary.json``), including ``config`` and
            ``versions``.

    Returns:
        The complete HTML document (self-contained: inline CSS, embedded PNG figures).
    """
    summary = dict(summary)
    name = str(summary.get("video") or Path(str(summary.get("path", "video"))).name)
    tracks = _with_classes(tracks)
    n_tracks = len(tracks)
    parts: list[str] = [
        f"<h1>{_esc(name)}</h1>",
        f'<p class="sub">{_path(summary.get("path", ""))}</p>',
        _warnings_box(_as_list(summary.get("warnings"))),
        "<h2>Sample summary</h2>",
        _summary_cards(summary, n_tracks),
        f'<div class="row"><div>{_grades_table(summary)}</div>'
        f"<div>{_recording_table(summary)}</div></div>",
        "<h2>Trajectories</h2>",
    ]
    if n_tracks == 0 and (trajectories is None or len(trajectories) == 0):
        parts.append(_empty("No tracks: no cell was followed long enough to be measured."))
    else:
        parts.append(_figure(_trajectory_figure(trajectories, tracks, summary),
                             "Paths of the tracks in the field of view (µm; image "
                             "coordinates, y downwards), coloured by motility class."))
    parts.append("<h2>Kinematics by motility class</h2>")
    if n_tracks == 0:
        parts.append(_empty("No tracks."))
    else:
        parts.append(_figure(_histogram_figure(tracks),
                             "Distributions of curvilinear (VCL), straight-line (VSL) and "
                             "average-path (VAP) velocity and of linearity (LIN), stacked "
                             "by motility class."))
    parts += [f"<h2>Tracks ({n_tracks})</h2>", _track_table(tracks)]
    parts += ["<h2>Parameters</h2>", _parameters(summary)]
    return _document(f"detect-track report — {name}", "\n".join(parts))


def write_video_report(trajectories: pd.DataFrame, tracks: pd.DataFrame,
                       summary: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write :func:`video_report` to ``path`` atomically (temporary file, then rename).

    Returns:
        The path written.

    Raises:
        OutputError: If the file cannot be written.
    """
    return _write_text(video_report(trajectories, tracks, summary), path)


def batch_report(summaries: pd.DataFrame, tracks: pd.DataFrame, log: pd.DataFrame) -> str:
    """Build the HTML report of a batch.

    Args:
        summaries: One row per input: the flattened summary keys of each video plus
            ``file``, ``output``, ``status``, ``error`` and, optionally, ``report`` (path of
            the per-video report relative to the batch report; rendered as a link).
        tracks: All tracks of all videos (``TRACK_COLUMNS`` plus ``video``/``file``).
        log: The batch log: ``file``, ``status`` (``ok``, ``failed``, ``skipped``),
            ``error``, ``elapsed_s`` (other columns are ignored).

    Returns:
        The complete HTML document (self-contained, apart from the relative links).
    """
    summaries = summaries if summaries is not None else pd.DataFrame()
    log = log if log is not None else pd.DataFrame()
    tracks = _with_classes(tracks if tracks is not None else pd.DataFrame())
    rows = [dict(r) for r in summaries.to_dict(orient="records")]
    labels = _video_labels(rows)
    statuses = [str(_text(r.get("status")) or "ok") for r in rows]
    if not rows and len(log):
        statuses = [str(_text(s) or "ok") for s in log.get("status", [])]
    n_failed = sum(s == "failed" for s in statuses)
    parts = [
        "<h1>Batch report</h1>",
        f'<p class="sub">{len(statuses)} input(s): '
        f'{sum(s == "ok" for s in statuses)} processed, '
        f'{sum(s == "skipped" for s in statuses)} skipped (done before), '
        f'{n_failed} failed.</p>',
    ]
    if n_failed:
        parts.append(_failed_box(rows if rows else log.to_dict(orient="records"), n_failed))
    parts.append(_batch_warnings(rows, labels))
    parts += ["<h2>Totals</h2>", _batch_totals(rows, tracks)]
    parts += ["<h2>Videos</h2>", _videos_table(rows, labels)]
    parts.append("<h2>Motility classes per video</h2>")
    bars = _class_bar_figure(rows, labels)
    parts.append(_empty("No tracks.") if bars is None else _figure(
        bars, "Percentage of progressive, non-progressive and immotile tracks per video "
              "(videos with at least one track)."))
    parts.append(f"<h2>Pooled kinematics ({len(tracks)} tracks)</h2>")
    parts.append(_empty("No tracks.") if len(tracks) == 0 else _figure(
        _histogram_figure(tracks), "VCL, VSL, VAP and LIN of the tracks of all videos, "
                                   "stacked by motility class."))
    parts += ["<h2>Batch log</h2>", _log_table(log)]
    return _document("detect-track batch report", "\n".join(parts))


def write_batch_report(summaries: pd.DataFrame, tracks: pd.DataFrame, log: pd.DataFrame,
                       path: str | os.PathLike[str]) -> Path:
    """Write :func:`batch_report` to ``path`` atomically (temporary file, then rename).

    Returns:
        The path written.

    Raises:
        OutputError: If the file cannot be written.
    """
    return _write_text(batch_report(summaries, tracks, log), path)


# -- formatting helpers ----------------------------------------------------------------------
def _write_text(text: str, path: str | os.PathLike[str]) -> Path:
    ensure_output_dir(Path(path).parent)
    return write_text(text, path)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> float | None:
    """A finite float, or None (None, NaN, text that is not a number)."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _text(value: Any) -> str:
    """Text of a cell; '' for None and NaN."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _fmt(value: Any, decimals: int | None = 1, unit: str = "") -> str:
    """Escaped number with ``decimals`` (None: integer), or an em dash when missing."""
    x = _num(value)
    if x is None:
        text = _text(value)
        return _esc(text) if text and decimals is None else _NONE
    out = f"{x:.0f}" if decimals is None else f"{x:.{decimals}f}"
    return out + unit


def _path(value: Any) -> str:
    """Escaped path with line-break opportunities after each separator."""
    return "/<wbr>".join(_esc(part) for part in _text(value).split("/"))


def _pct(value: Any) -> str:
    return _fmt(value, 1, "%")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [w.strip() for w in value.split("; ") if w.strip()]
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, Iterable):
        return [str(v) for v in value if _text(v)]
    return [str(value)]


def _swatch(cls: str) -> str:
    colour = MOTILITY_COLOURS.get(cls, MOTILITY_COLOURS[UNCLASSIFIED])
    return f'<span class="sw" style="background:{colour}"></span>'


def _empty(message: str) -> str:
    return f'<p class="empty">{_esc(message)}</p>'


def _kv_table(pairs: Iterable[tuple[str, str]]) -> str:
    """Two-column table; keys are escaped here, values must already be HTML."""
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _nested(value: Any) -> str:
    """HTML of a (nested) configuration value."""
    if isinstance(value, Mapping):
        if not value:
            return '<span class="muted">(empty)</span>'
        return _kv_table((str(k), _nested(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if not value:
            return '<span class="muted">[]</span>'
        return _esc(", ".join(str(v) for v in value))
    if value is None:
        return '<span class="muted">none</span>'
    if value == "":
        return '<span class="muted">""</span>'
    return _esc(value)


def _document(title: str, body: str) -> str:
    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="detect-track {_esc(__version__)}">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<main>\n{body}\n</main>\n"
        f"<footer>Generated by detect-track {_esc(__version__)} on {_esc(generated)}."
        "</footer>\n</body>\n</html>\n"
    )


# -- tables -----------------------------------------------------------------------------------
def _with_classes(tracks: pd.DataFrame | None) -> pd.DataFrame:
    """Copy of ``tracks`` with a ``_class`` column ('unclassified' where motility is empty)."""
    out = pd.DataFrame() if tracks is None else tracks.copy()
    if "motility" in out.columns:
        mot = out["motility"].map(_text).str.strip()
    else:
        mot = pd.Series([""] * len(out), index=out.index, dtype=object)
    known = set(MOTILITY_CLASSES)
    out["_class"] = [m if m in known else UNCLASSIFIED for m in mot]
    return out


def _warnings_box(warnings: Sequence[str]) -> str:
    if not warnings:
        return '<p class="ok">No warnings.</p>'
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    return (f'<div class="warn"><h2>Warnings ({len(warnings)})</h2>'
            f"<ul>{items}</ul></div>")


def _card(key: str, value: str, detail: str = "", colour: str | None = None) -> str:
    style = f' style="border-left-color:{colour}"' if colour else ""
    det = f'<div class="d">{detail}</div>' if detail else ""
    return (f'<div class="card"{style}><div class="k">{_esc(key)}</div>'
            f'<div class="v">{value}</div>{det}</div>')


def _concentration(summary: Mapping[str, Any]) -> tuple[str, str]:
    conc = _num(summary.get("concentration_million_per_ml"))
    if conc is None:
        return _NONE, "give --chamber-depth-um"
    depth = _num(summary.get("chamber_depth_um"))
    detail = f"million/mL, chamber {depth:g} µm deep" if depth else "million/mL"
    return f"{conc:.1f}", detail


def _summary_cards(summary: Mapping[str, Any], n_tracks: int) -> str:
    total = _num(summary.get("n_tracks"))
    cards = [_card("Tracks", _fmt(total if total is not None else n_tracks, None),
                   f"{_fmt(summary.get('n_frames'), None)} frames, "
                   f"{_fmt(summary.get('duration_s'), 1)} s")]
    for cls in MOTILITY_CLASSES:
        cards.append(_card(CLASS_LABELS[cls], _pct(summary.get(f"pct_{cls}")),
                           f"n = {_fmt(summary.get(f'n_{cls}'), None)}",
                           MOTILITY_COLOURS[cls]))
    cards.append(_card("Motile", _pct(summary.get("pct_motile")), "progressive + non-progr."))
    assessed = _fmt(summary.get("n_morphology_assessed"), None)
    cards.append(_card("Normal forms", _pct(summary.get("pct_normal_forms")),
                       f"n = {assessed} assessed"))
    value, detail = _concentration(summary)
    cards.append(_card("Concentration", value, _esc(detail)))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _grades_table(summary: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{g}</td><td>{_esc(meaning)}</td>"
        f'<td class="num">{_fmt(summary.get(f"n_grade_{g}"), None)}</td>'
        f'<td class="num">{_pct(summary.get(f"pct_grade_{g}"))}</td></tr>'
        for g, meaning in GRADES)
    return ("<h3>WHO motility grades</h3>"
            '<div class="scroll"><table><thead><tr><th>Grade</th><th>Meaning</th>'
            '<th class="num">n</th><th class="num">%</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _recording_table(summary: Mapping[str, Any]) -> str:
    size = f"{_fmt(summary.get('width_px'), None)} × {_fmt(summary.get('height_px'), None)} px"
    um = _num(summary.get("um_per_px"))
    w, h = _num(summary.get("width_px")), _num(summary.get("height_px"))
    if um and w and h:
        size += f" ({w * um:.0f} × {h * um:.0f} µm)"
    pairs = [
        ("Frames", f"{_fmt(summary.get('n_frames'), None)} "
                   f"({_fmt(summary.get('duration_s'), 2)} s)"),
        ("Frame size", size),
        ("Frame rate", f"{_fmt(summary.get('fps'), 2)} fps "
                       f"<span class=\"muted\">({_esc(summary.get('fps_source', '?'))})</span>"),
        ("Scale", f"{_fmt(summary.get('um_per_px'), 4)} µm/px "
                  f"<span class=\"muted\">({_esc(summary.get('um_per_px_source', '?'))})"
                  "</span>"),
        ("Detections", f"{_fmt(summary.get('n_detections'), None)} "
                       f"({_fmt(summary.get('n_interpolated'), None)} positions interpolated "
                       "across gaps)"),
    ]
    if "cells_per_frame" in summary:
        pairs.append(("Tracked cells per frame", _fmt(summary.get("cells_per_frame"), 1)))
    if summary.get("elapsed_s") is not None:
        pairs.append(("Processing time", f"{_fmt(summary.get('elapsed_s'), 1)} s"))
    return "<h3>Recording</h3>" + _kv_table(pairs)


def _track_table(tracks: pd.DataFrame) -> str:
    if len(tracks) == 0:
        return _empty("No tracks.")
    cols = [c for c in TRACK_TABLE if c[0] in tracks.columns]
    if "track_id" in tracks.columns:
        tracks = tracks.sort_values("track_id", kind="stable")
    head = "".join(
        f'<th class="{"num" if dec is not None or col in ("track_id", "n_frames") else ""}">'
        f"{'<br>'.join(_esc(line) for line in title.splitlines())}</th>"
        for col, title, dec in cols)
    body: list[str] = []
    records = tracks.to_dict(orient="records")
    for rec in records:
        cells = []
        for col, _title, dec in cols:
            value = rec.get(col)
            if col == "motility":
                cls = rec["_class"]
                cells.append(f"<td>{_swatch(cls)}{_esc(CLASS_LABELS.get(cls, cls))}</td>")
            elif dec is not None or col in ("track_id", "n_frames"):
                cells.append(f'<td class="num">{_fmt(value, dec)}</td>')
            else:
                cells.append(f"<td>{_esc(_text(value)) or _NONE}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = ('<p class="muted">Speeds in µm/s; LIN = VSL/VCL, STR = VSL/VAP, WOB = VAP/VCL; '
            "ALH: amplitude of lateral head displacement; BCF: beat-cross frequency; "
            "MAD: mean angular displacement.</p>")
    tall = " tall" if len(records) > 20 else ""
    return (f'{note}<div class="scroll{tall}"><table class="tracks"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _parameters(summary: Mapping[str, Any]) -> str:
    weights = summary.get("detector_weights")
    detector = _esc(summary.get("detector", "?"))
    if _text(weights):
        detector += f' <span class="muted">(weights: {_esc(weights)})</span>'
    pairs = [
        ("Frame rate", f"{_fmt(summary.get('fps'), 3)} fps, from: "
                       f"{_esc(summary.get('fps_source', '?'))}"),
        ("Scale", f"{_fmt(summary.get('um_per_px'), 4)} µm/px, from: "
                  f"{_esc(summary.get('um_per_px_source', '?'))}"),
        ("Detector", detector),
        ("Tracker", _esc(summary.get("tracker", "?"))),
    ]
    if "morphology_model" in summary:
        model = summary.get("morphology_model")
        task = summary.get("morphology_task")
        text = _esc(model) if _text(model) else '<span class="muted">not run</span>'
        if _text(task):
            text += f' <span class="muted">({_esc(task)})</span>'
        pairs.append(("Morphology model", text))
    if "chamber_depth_um" in summary:
        depth = _num(summary.get("chamber_depth_um"))
        pairs.append(("Chamber depth", f"{depth:g} µm" if depth else
                      '<span class="muted">not given (--chamber-depth-um)</span>'))
    shown = {"video", "path", "n_frames", "duration_s", "width_px", "height_px", "fps",
             "fps_source", "um_per_px", "um_per_px_source", "detector", "detector_weights",
             "tracker", "n_tracks", "pct_motile", "n_morphology_assessed", "pct_normal_forms",
             "morphology_model", "morphology_task", "n_detections", "n_interpolated",
             "warnings", "elapsed_s", "config", "versions", "chamber_depth_um",
             "concentration_million_per_ml", "cells_per_frame"}
    shown |= {f"{p}_{c}" for p in ("n", "pct") for c in MOTILITY_CLASSES}
    shown |= {f"{p}_grade_{g}" for p in ("n", "pct") for g, _ in GRADES}
    other = [(k, _nested(v)) for k, v in summary.items() if k not in shown]
    out = _kv_table(pairs)
    if other:
        out += "<h3>Other results</h3>" + _kv_table(other)
    config = summary.get("config")
    if isinstance(config, Mapping) and config:
        out += ("<details><summary>Configuration (all settings used)</summary>"
                f'<div class="scroll">{_nested(config)}</div></details>')
    versions = summary.get("versions")
    if isinstance(versions, Mapping) and versions:
        out += "<h3>Software versions</h3>" + _kv_table(
            (str(k), _esc(v)) for k, v in versions.items())
    return out


# -- batch tables -----------------------------------------------------------------------------
def _video_labels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Name of each input: its video name, or its output folder where names repeat."""
    names = [_text(r.get("video")) or Path(_text(r.get("file")) or "?").name for r in rows]
    counts = pd.Series(names).value_counts() if names else pd.Series(dtype=int)
    out = []
    for r, name in zip(rows, names, strict=True):
        alt = _text(r.get("output")) or _text(r.get("file"))
        out.append(alt if counts.get(name, 0) > 1 and alt else name)
    return out


def _href(rel: str) -> str:
    """A relative link, percent-encoded (so no scheme such as ``javascript:`` can appear)."""
    return _esc(quote(rel.replace("\\", "/").lstrip("/"), safe="/"))


def _failed_box(rows: Sequence[Mapping[str, Any]], n_failed: int, limit: int = 20) -> str:
    failed = [r for r in rows if _text(r.get("status")) == "failed"]
    items = "".join(f"<li><b>{_path(r.get('file'))}</b>: {_esc(_text(r.get('error')))}</li>"
                    for r in failed[:limit])
    more = (f"<p>… and {len(failed) - limit} more: see the batch log below.</p>"
            if len(failed) > limit else "")
    return (f'<div class="warn"><h2>{n_failed} input(s) failed</h2>'
            f"<ul>{items}</ul>{more}</div>")


def _batch_warnings(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> str:
    items = [f"<li><b>{_esc(label)}</b>: {_esc(w)}</li>"
             for r, label in zip(rows, labels, strict=True)
             for w in _as_list(r.get("warnings"))]
    if not items:
        return '<p class="ok">No warnings.</p>'
    return (f'<div class="warn"><h2>Warnings ({len(items)})</h2>'
            f"<ul>{''.join(items)}</ul></div>")


def _batch_totals(rows: Sequence[Mapping[str, Any]], tracks: pd.DataFrame) -> str:
    done = [r for r in rows if _text(r.get("status")) in ("ok", "skipped", "")]

    def total(key: str) -> float:
        return float(sum(_num(r.get(key)) or 0.0 for r in done))

    n_tracks = total("n_tracks")
    if n_tracks == 0 and len(tracks):
        n_tracks = float(len(tracks))
        counts = {c: float((tracks["_class"] == c).sum()) for c in MOTILITY_CLASSES}
    else:
        counts = {c: total(f"n_{c}") for c in MOTILITY_CLASSES}

    def share(n: float) -> str:
        return _pct(100.0 * n / n_tracks) if n_tracks else _NONE

    cards = [_card("Videos measured", f"{len(done)}", f"of {len(rows)} input(s)"),
             _card("Tracks", _fmt(n_tracks, None),
                   f"{_fmt(total('n_frames'), None)} frames, {_fmt(total('duration_s'), 1)} s")]
    for cls in MOTILITY_CLASSES:
        cards.append(_card(CLASS_LABELS[cls], share(counts[cls]),
                           f"n = {counts[cls]:.0f} (pooled)", MOTILITY_COLOURS[cls]))
    motile = counts["progressive"] + counts["non_progressive"]
    cards.append(_card("Motile", share(motile), "pooled over all tracks"))
    assessed = total("n_morphology_assessed")
    normal = sum((_num(r.get("pct_normal_forms")) or 0.0) / 100.0
                 * (_num(r.get("n_morphology_assessed")) or 0.0) for r in done)
    cards.append(_card("Normal forms", _pct(100.0 * normal / assessed) if assessed else _NONE,
                       f"n = {assessed:.0f} assessed"))
    out = '<div class="cards">' + "".join(cards) + "</div>"
    pcts = [_num(r.get("pct_progressive")) for r in done]
    pcts = [p for p in pcts if p is not None]
    if len(pcts) > 1:
        out += (f'<p class="muted">Progressive per video: mean {np.mean(pcts):.1f}%, '
                f"SD {np.std(pcts, ddof=1):.1f}%, range {min(pcts):.1f}–{max(pcts):.1f}% "
                f"({len(pcts)} videos).</p>")
    return out


def _videos_table(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> str:
    if not rows:
        return _empty("No inputs.")
    titles = ("Video", "Status", "Frames", "fps", "µm/px", "Tracks", "Progr.\n(%)",
              "Non-progr.\n(%)", "Immotile\n(%)", "Motile\n(%)", "Normal\nforms (%)",
              "Conc.\n(M/mL)", "Warnings / error")
    head = "<tr>" + "".join(
        f'<th class="{"" if k in (0, 1, len(titles) - 1) else "num"}">'
        f"{'<br>'.join(_esc(line) for line in t.splitlines())}</th>"
        for k, t in enumerate(titles)) + "</tr>"
    body = []
    for r, label in zip(rows, labels, strict=True):
        status = _text(r.get("status")) or "ok"
        link = _text(r.get("report"))
        name = (f'<a href="{_href(link)}">{_esc(label)}</a>' if link and status != "failed"
                else _esc(label))
        path = _text(r.get("file"))
        if path and path != label:
            name += f'<br><span class="muted">{_path(path)}</span>'
        notes = _text(r.get("error")) if status == "failed" else "; ".join(
            _as_list(r.get("warnings")))
        body.append(
            f'<tr class="st-{_esc(status)}"><td class="path">{name}</td>'
            f'<td class="status">{_esc(status)}</td>'
            f'<td class="num">{_fmt(r.get("n_frames"), None)}</td>'
            f'<td class="num">{_fmt(r.get("fps"), 1)}</td>'
            f'<td class="num">{_fmt(r.get("um_per_px"), 3)}</td>'
            f'<td class="num">{_fmt(r.get("n_tracks"), None)}</td>'
            f'<td class="num">{_fmt(r.get("pct_progressive"), 1)}</td>'
            f'<td class="num">{_fmt(r.get("pct_non_progressive"), 1)}</td>'
            f'<td class="num">{_fmt(r.get("pct_immotile"), 1)}</td>'
            f'<td class="num">{_fmt(r.get("pct_motile"), 1)}</td>'
            f'<td class="num">{_fmt(r.get("pct_normal_forms"), 1)}</td>'
            f'<td class="num">{_fmt(r.get("concentration_million_per_ml"), 1)}</td>'
            f'<td class="err">{_esc(notes)}</td></tr>')
    return _scroll_table(head, body, ' class="videos"')


def _log_table(log: pd.DataFrame) -> str:
    if log is None or len(log) == 0:
        return _empty("The batch log is empty.")
    body = []
    for r in log.to_dict(orient="records"):
        status = _text(r.get("status")) or "?"
        body.append(
            f'<tr class="st-{_esc(status)}"><td class="path">{_path(r.get("file"))}</td>'
            f'<td class="status">{_esc(status)}</td>'
            f'<td class="err">{_esc(_text(r.get("error")))}</td>'
            f'<td class="num">{_fmt(r.get("elapsed_s"), 1)}</td></tr>')
    head = ('<tr><th>File</th><th>Status</th><th>Error</th><th class="num">Time (s)</th>'
            "</tr>")
    return _scroll_table(head, body)


def _scroll_table(head: str, rows: Sequence[str], attrs: str = "") -> str:
    """A table in a scrolling box (taller past 25 rows), header row(s) ``head``."""
    tall = " tall" if len(rows) > 25 else ""
    return (f'<div class="scroll{tall}"><table{attrs}><thead>{head}</thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


# -- figures ----------------------------------------------------------------------------------
def _new_figure(width_in: float, height_in: float, layout: str | None = "constrained") -> Any:
    """A bare matplotlib figure with an Agg canvas (no pyplot: thread-safe, no window)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _figure(fig: Any, caption: str) -> str:
    """``<figure>`` with the PNG of ``fig`` embedded as a base64 data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    width = round(fig.get_figwidth() * _CSS_PX_PER_IN)
    return (f'<figure><img alt="{_esc(caption)}" width="{width}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _style_axes(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)


def _trajectory_figure(trajectories: pd.DataFrame, tracks: pd.DataFrame,
                       summary: Mapping[str, Any]) -> Any:
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    um = _num(summary.get("um_per_px")) or 1.0
    w_px, h_px = _num(summary.get("width_px")), _num(summary.get("height_px"))
    traj = trajectories if trajectories is not None else pd.DataFrame()
    has_um = {"x_um", "y_um"} <= set(traj.columns)
    xcol, ycol = ("x_um", "y_um") if has_um else ("x_px", "y_px")
    scale = 1.0 if has_um else um
    classes = (dict(zip(tracks["track_id"], tracks["_class"], strict=True))
               if "track_id" in tracks.columns else {})
    by_class: dict[str, list[np.ndarray]] = {}
    ends: dict[str, list[np.ndarray]] = {}
    starts: list[tuple[float, float, Any, str]] = []
    if len(traj) and {"track_id", xcol, ycol} <= set(traj.columns):
        order = ["track_id", "frame"] if "frame" in traj.columns else ["track_id"]
        traj = traj.sort_values(order, kind="stable")
        for tid, grp in traj.groupby("track_id", sort=True):
            xy = grp[[xcol, ycol]].to_numpy(dtype=np.float64) * scale
            xy = xy[np.isfinite(xy).all(axis=1)]
            if not len(xy):
                continue
            cls = classes.get(tid, UNCLASSIFIED)
            by_class.setdefault(cls, []).append(xy)
            ends.setdefault(cls, []).append(xy[-1])
            starts.append((float(xy[0, 0]), float(xy[0, 1]), tid, cls))
    if w_px and h_px:
        width_um, height_um = w_px * um, h_px * um
        x0 = y0 = 0.0
    else:  # frame size unknown: the extent of the data
        allxy = np.vstack([a for v in by_class.values() for a in v]) if by_class else \
            np.zeros((1, 2))
        x0, y0 = allxy.min(axis=0)
        width_um, height_um = np.ptp(allxy, axis=0) + 1.0
    # Fixed margins (inches) instead of a layout engine, so the axes box has exactly the
    # aspect of the field of view and the legend sits in its own column on the right.
    aspect = float(np.clip(height_um / width_um, 0.3, 2.0))
    left, right, bottom, top = 0.75, 1.9, 0.55, 0.2
    ax_w = 8.3
    ax_h = ax_w * aspect
    if ax_h > 9.0:
        ax_h, ax_w = 9.0, 9.0 / aspect
    fig_w, fig_h = left + ax_w + right, bottom + ax_h + top
    fig = _new_figure(fig_w, fig_h, layout=None)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, ax_w / fig_w, ax_h / fig_h))
    handles = []
    order = [*MOTILITY_CLASSES, UNCLASSIFIED]
    for cls in order:
        paths = by_class.get(cls)
        if not paths:
            continue
        colour = MOTILITY_COLOURS[cls]
        ax.add_collection(LineCollection(paths, colors=colour, linewidths=1.1, alpha=0.9))
        end = np.asarray(ends[cls])
        ax.scatter(end[:, 0], end[:, 1], s=7, color=colour, zorder=3, linewidths=0)
        handles.append(Line2D([], [], color=colour, lw=2,
                              label=f"{CLASS_LABELS[cls]} ({len(paths)})"))
    if len(starts) <= _MAX_TRACK_LABELS:
        for x, y, tid, cls in starts:
            label = ax.annotate(_text(tid), (x, y), xytext=(2, 2), textcoords="offset points",
                                fontsize=6, color=MOTILITY_COLOURS[cls], alpha=0.9,
                                clip_on=True)
            label.set_in_layout(False)
    ax.set_xlim(x0, x0 + width_um)
    ax.set_ylim(y0 + height_um, y0)  # image coordinates: y grows downwards
    ax.set_aspect("equal")
    ax.set_xlabel("x (µm)", fontsize=9)
    ax.set_ylabel("y (µm)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_facecolor("#fcfcfc")
    if not handles:
        ax.text(0.5, 0.5, "no tracks", transform=ax.transAxes, ha="center", va="center",
                color="#777777")
    else:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                  frameon=False, title="Motility (tracks)", title_fontsize=8,
                  alignment="left")
    return fig


def _histogram_figure(tracks: pd.DataFrame) -> Any:
    fig = _new_figure(11.0, 6.6)
    axes = fig.subplots(2, 2)
    present = [c for c in (*MOTILITY_CLASSES, UNCLASSIFIED)
               if (tracks["_class"] == c).any()]
    for ax, (col, title) in zip(axes.ravel(), HIST_COLUMNS, strict=True):
        _style_axes(ax)
        ax.set_xlabel(title, fontsize=9)
        ax.set_ylabel("tracks", fontsize=9)
        if col not in tracks.columns:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center",
                    color="#777777")
            continue
        values = pd.to_numeric(tracks[col], errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center",
                    color="#777777")
            continue
        if col == "lin":
            edges = np.linspace(0.0, 1.0, 21)
            values = np.clip(values, 0.0, 1.0)
        else:
            top = float(np.nanmax(values[finite]))
            edges = np.histogram_bin_edges(values[finite], bins=25,
                                           range=(0.0, top if top > 0 else 1.0))
        data = [values[finite & (tracks["_class"].to_numpy() == c)] for c in present]
        ax.hist(data, bins=edges, stacked=True, color=[MOTILITY_COLOURS[c] for c in present],
                label=[CLASS_LABELS[c] for c in present], edgecolor="white", linewidth=0.4)
        ax.yaxis.get_major_locator().set_params(integer=True)
    if present:
        from matplotlib.patches import Patch

        fig.legend(handles=[Patch(color=MOTILITY_COLOURS[c], label=CLASS_LABELS[c])
                            for c in present], loc="outside lower center", ncols=len(present),
                   fontsize=8, frameon=False)
    return fig


def _class_bar_figure(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> Any | None:
    names, pcts = [], []
    for r, label in zip(rows, labels, strict=True):
        if _text(r.get("status")) == "failed" or not (_num(r.get("n_tracks")) or 0) > 0:
            continue
        values = [_num(r.get(f"pct_{c}")) or 0.0 for c in MOTILITY_CLASSES]
        names.append(label if len(label) <= 40 else "…" + label[-39:])
        pcts.append(values)
    if not names:
        return None
    data = np.asarray(pcts)
    height = min(1.2 + 0.28 * len(names), 40.0)
    fig = _new_figure(11.0, height)
    ax = fig.add_subplot()
    _style_axes(ax)
    y = np.arange(len(names))
    left = np.zeros(len(names))
    for k, cls in enumerate(MOTILITY_CLASSES):
        ax.barh(y, data[:, k], left=left, color=MOTILITY_COLOURS[cls], label=CLASS_LABELS[cls],
                height=0.75, edgecolor="white", linewidth=0.4)
        left += data[:, k]
    ax.set_yticks(y, names, fontsize=8 if len(names) <= 60 else 6)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first video on top
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of tracks", fontsize=9)
    fig.legend(loc="outside upper center", ncols=3, fontsize=8, frameon=False)
    return fig
