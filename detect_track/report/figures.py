"""The matplotlib figures of the HTML reports.

Every figure is a bare :class:`matplotlib.figure.Figure` with an Agg canvas (no pyplot, so
it is safe in threads and never opens a window); :func:`png_data_uri` turns it into a PNG
``data:`` URI that the report embeds, so the page refers to no other file.

* :func:`trajectory_figure`: paths of the tracks in the field of view, by motility class.
* :func:`histogram_figure`: VCL, VSL, VAP and LIN, stacked by motility class.
* :func:`class_bar_figure`: % of each motility class per video (batch report).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from detect_track.report import MOTILITY_COLOURS
from detect_track.report.formatting import CLASS_LABELS, UNCLASSIFIED, num, text
from detect_track.types import MOTILITY_CLASSES

__all__ = [
    "HIST_COLUMNS",
    "class_bar_figure",
    "display_width",
    "histogram_figure",
    "new_figure",
    "png_data_uri",
    "trajectory_figure",
]

#: Histograms drawn: column, axis label.
HIST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("vcl_um_s", "VCL (µm/s)"),
    ("vsl_um_s", "VSL (µm/s)"),
    ("vap_um_s", "VAP (µm/s)"),
    ("lin", "LIN (VSL/VCL)"),
)
#: Figure resolution: pixels per inch in the PNG, and CSS pixels per inch on the page
#: (the PNG holds 1.5x the displayed pixels, so it stays sharp on high-density screens).
DPI = 144
CSS_PX_PER_IN = 96
#: At most this many track ids are written next to their paths in the trajectory plot.
MAX_TRACK_LABELS = 60


def new_figure(width_in: float, height_in: float, layout: str | None = "constrained") -> Any:
    """A bare matplotlib figure with an Agg canvas (no pyplot: thread-safe, no window).

    Args:
        width_in: Width in inches.
        height_in: Height in inches.
        layout: Matplotlib layout engine (None: fixed positions).

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig: Any) -> str:
    """The PNG of ``fig`` (white background) as a base64 ``data:image/png`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def display_width(fig: Any) -> int:
    """Width of ``fig`` on the page, in CSS pixels."""
    return round(fig.get_figwidth() * CSS_PX_PER_IN)


def _style_axes(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)


def trajectory_figure(trajectories: pd.DataFrame | None, tracks: pd.DataFrame,
                      summary: Mapping[str, Any]) -> Any:
    """Paths of the tracks in the field of view (µm, y downwards), coloured by class.

    Args:
        trajectories: Trajectory table (``track_id``, ``x_um``/``y_um`` or
            ``x_px``/``y_px``, optionally ``frame``); may be None or empty.
        tracks: Per-track table with the ``_class`` column of
            :func:`~detect_track.report.formatting.with_classes`.
        summary: The sample summary (``um_per_px``, ``width_px``, ``height_px``).

    Returns:
        The figure; the axes have the aspect of the field of view and the legend sits in
        its own column on the right.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    um = num(summary.get("um_per_px")) or 1.0
    w_px, h_px = num(summary.get("width_px")), num(summary.get("height_px"))
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
    fig = new_figure(fig_w, fig_h, layout=None)
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
    if len(starts) <= MAX_TRACK_LABELS:
        for x, y, tid, cls in starts:
            label = ax.annotate(text(tid), (x, y), xytext=(2, 2), textcoords="offset points",
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


def histogram_figure(tracks: pd.DataFrame) -> Any:
    """Histograms of VCL, VSL, VAP and LIN (:data:`HIST_COLUMNS`), stacked by class.

    Args:
        tracks: Per-track table with the ``_class`` column of
            :func:`~detect_track.report.formatting.with_classes`.

    Returns:
        The 2 x 2 figure, with one legend of the classes present below.
    """
    fig = new_figure(11.0, 6.6)
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


def class_bar_figure(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> Any | None:
    """Stacked bars of % progressive, non-progressive and immotile, one bar per video.

    Args:
        rows: One summary row per input (``status``, ``n_tracks``, ``pct_<class>``).
        labels: Display name of each row.

    Returns:
        The figure, or None when no input that did not fail has a track.
    """
    names, pcts = [], []
    for r, label in zip(rows, labels, strict=True):
        if text(r.get("status")) == "failed" or not (num(r.get("n_tracks")) or 0) > 0:
            continue
        values = [num(r.get(f"pct_{c}")) or 0.0 for c in MOTILITY_CLASSES]
        names.append(label if len(label) <= 40 else "…" + label[-39:])
        pcts.append(values)
    if not names:
        return None
    data = np.asarray(pcts)
    height = min(1.2 + 0.28 * len(names), 40.0)
    fig = new_figure(11.0, height)
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
