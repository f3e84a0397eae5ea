"""Self-contained HTML reports of one video's results and of a batch.

Each report is a single ``.html`` file rendered from the Jinja templates in
``detect_track/report/templates/`` (``video.html.j2``, ``batch.html.j2``, on
``base.html.j2`` with the stylesheet ``report.css`` inlined). Every figure is a PNG drawn by
:mod:`detect_track.report.figures` and embedded as a ``data:`` URI. There is no JavaScript
and no reference to any other file or URL, except relative links: from a batch report to
the per-video reports, from a video report to its ``overlay.mp4`` (a ``<video>`` element)
and from a still-image report to its annotated images. The templates autoescape: all text
that comes from data (video names, paths, warnings, errors, configuration values) is
HTML-escaped.

This module sets up Jinja and renders; :mod:`detect_track.report.context` builds what the
templates show and :mod:`detect_track.report.figures` draws the figures. A lab can brand
its reports by passing ``template_dirs``: folders searched before the packaged templates,
so a ``report.css`` (or any template) there replaces the packaged one.

* :func:`video_report` / :func:`write_video_report`: the clinical block (one printable A4
  page: results with 95 % CIs, WHO reference limits and flags, kinematics per class),
  sample summary, warnings, trajectory
  plot, histograms of VCL, VSL, VAP and LIN by motility class, the table of tracks and the
  parameters used.
* :func:`sample_report` / :func:`write_sample_report`: one sample pooled from several
  fields (``detect-track sample``): the clinical block, the fields, pooled histograms.
* :func:`batch_report` / :func:`write_batch_report`: one row per video, totals, the batch
  log (failed inputs highlighted), pooled histograms, % motility classes per video.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd
from markupsafe import Markup

from detect_track import __version__
from detect_track.io.export import ensure_output_dir, write_text
from detect_track.report import MOTILITY_COLOURS
from detect_track.report.context import batch_context, sample_context, video_context
from detect_track.report.formatting import text

__all__ = [
    "MOTILITY_COLOURS",
    "batch_context",
    "batch_report",
    "environment",
    "sample_context",
    "sample_report",
    "video_context",
    "video_report",
    "write_batch_report",
    "write_sample_report",
    "write_video_report",
]

TemplateDirs = Sequence[str | os.PathLike[str]]


# -- public API ------------------------------------------------------------------------------
def video_report(trajectories: pd.DataFrame, tracks: pd.DataFrame,
                 summary: Mapping[str, Any], *, template_dirs: TemplateDirs = (),
                 overlay: Mapping[str, Any] | None = None) -> str:
    """Build the HTML report of one video.

    Args:
        trajectories: Trajectory table (``TRAJECTORY_COLUMNS``; ``track_id``, ``frame``,
            ``x_um``, ``y_um`` are used).
        tracks: Per-track table (``TRACK_COLUMNS``); an empty ``motility`` means the track
            was too short to classify.
        summary: The sample summary (``summary.json``), including ``config`` and
            ``versions``.
        template_dirs: Folders searched before the packaged templates (own ``report.css``
            or templates).
        overlay: The overlay video next to the report, as
            :meth:`~detect_track.report.overlay.OverlayVideo.as_dict` gives it (``file``
            relative to the report, ``mime``, ``codec``, ``browser_playable``); shown in a
            ``<video controls>`` element when browsers play it, else as a link with a note.

    Returns:
        The complete HTML document (self-contained: inline CSS, embedded PNG figures; the
        overlay video, when given, is linked, not embedded).
    """
    context = dict(video_context(trajectories, tracks, summary))
    context["overlay_video"] = dict(overlay) if overlay else None
    return _render("video.html.j2", context, template_dirs)


def write_video_report(trajectories: pd.DataFrame, tracks: pd.DataFrame,
                       summary: Mapping[str, Any], path: str | os.PathLike[str], *,
                       template_dirs: TemplateDirs = (),
                       overlay: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`video_report` to ``path`` atomically (temporary file, then rename).

    Returns:
        The path written.

    Raises:
        OutputError: If the file cannot be written.
    """
    doc = video_report(trajectories, tracks, summary, template_dirs=template_dirs,
                       overlay=overlay)
    return _write_text(doc, path)


def sample_report(tracks: pd.DataFrame, summary: Mapping[str, Any], *,
                  template_dirs: TemplateDirs = ()) -> str:
    """Build the HTML report of one sample pooled from several fields.

    Args:
        tracks: Every field's tracks (``TRACK_COLUMNS`` plus ``field``).
        summary: The pooled summary (``detect-track sample``), with ``sample_fields``.
        template_dirs: Folders searched before the packaged templates.

    Returns:
        The complete HTML document (self-contained, apart from the relative links to the
        fields' reports).
    """
    return _render("sample.html.j2", sample_context(tracks, summary), template_dirs)


def write_sample_report(tracks: pd.DataFrame, summary: Mapping[str, Any],
                        path: str | os.PathLike[str], *,
                        template_dirs: TemplateDirs = ()) -> Path:
    """Write :func:`sample_report` to ``path`` atomically (temporary file, then rename).

    Returns:
        The path written.

    Raises:
        OutputError: If the file cannot be written.
    """
    return _write_text(sample_report(tracks, summary, template_dirs=template_dirs), path)


def batch_report(summaries: pd.DataFrame, tracks: pd.DataFrame, log: pd.DataFrame, *,
                 template_dirs: TemplateDirs = ()) -> str:
    """Build the HTML report of a batch.

    Args:
        summaries: One row per input: the flattened summary keys of each video plus
            ``file``, ``output``, ``status``, ``error`` and, optionally, ``report`` (path of
            the per-video report relative to the batch report; rendered as a link).
        tracks: All tracks of all videos (``TRACK_COLUMNS`` plus ``video``/``file``).
        log: The batch log: ``file``, ``status`` (``ok``, ``failed``, ``skipped``),
            ``error``, ``elapsed_s`` (other columns are ignored).
        template_dirs: Folders searched before the packaged templates.

    Returns:
        The complete HTML document (self-contained, apart from the relative links).
    """
    return _render("batch.html.j2", batch_context(summaries, tracks, log), template_dirs)


def write_batch_report(summaries: pd.DataFrame, tracks: pd.DataFrame, log: pd.DataFrame,
                       path: str | os.PathLike[str], *,
                       template_dirs: TemplateDirs = ()) -> Path:
    """Write :func:`batch_report` to ``path`` atomically (temporary file, then rename).

    Returns:
        The path written.

    Raises:
        OutputError: If the file cannot be written.
    """
    doc = batch_report(summaries, tracks, log, template_dirs=template_dirs)
    return _write_text(doc, path)


def environment(template_dirs: TemplateDirs = ()) -> jinja2.Environment:
    """The Jinja environment of the reports (autoescape on; cached per ``template_dirs``).

    Args:
        template_dirs: Folders searched, in order, before the packaged templates (one
            folder may be given as is).

    Returns:
        An environment with the filters ``wbr`` (escaped path with line-break chances
        after each ``/``) and ``href`` (percent-encoded relative link).
    """
    if isinstance(template_dirs, (str, os.PathLike)):  # one folder, not its characters
        template_dirs = [template_dirs]
    return _environment(tuple(str(Path(d)) for d in template_dirs))


# -- rendering -------------------------------------------------------------------------------
def _esc(value: Any) -> Markup:
    """``value`` HTML-escaped as before the templates (``html.escape``); None is ''."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def _wbr(value: Any) -> Markup:
    """Escaped path with line-break opportunities after each separator."""
    return Markup("/<wbr>").join(_esc(part) for part in text(value).split("/"))


def _href(rel: Any) -> Markup:
    """A relative link, percent-encoded (so no scheme such as ``javascript:`` can appear)."""
    return _esc(quote(text(rel).replace("\\", "/").lstrip("/"), safe="/"))


@lru_cache(maxsize=8)
def _environment(template_dirs: tuple[str, ...]) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(list(template_dirs))] \
        if template_dirs else []
    loaders.append(jinja2.PackageLoader("detect_track.report", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders), autoescape=True, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
        finalize=_esc)  # escapes like html.escape (&quot;); autoescape leaves Markup alone
    env.filters["wbr"] = _wbr
    env.filters["href"] = _href
    return env


def _render(template: str, context: Mapping[str, Any], template_dirs: TemplateDirs) -> str:
    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return environment(template_dirs).get_template(template).render(
        **context, version=__version__, generated=generated)


def _write_text(doc: str, path: str | os.PathLike[str]) -> Path:
    ensure_output_dir(Path(path).parent)
    return write_text(doc, path)
