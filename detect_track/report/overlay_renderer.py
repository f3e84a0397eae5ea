"""Drawing results onto frames: the renderer of the overlay video.

:class:`OverlayRenderer` is built once per video from the trajectory and track tables and
then draws, per frame,

* a box around every tracked cell present in that frame (solid for detected positions,
  dashed for ``interpolated`` rows), with its track id (label below the box at the top edge),
* a trail of the last ``trail_s`` seconds of each visible track, fading with age,
* a legend of the motility classes (colour swatch, name, number of cells in the frame),
* a scale bar of a round length in µm (:func:`choose_scale_bar_um`) and a time stamp.

By default (``legend="strip"``) the time stamp, legend and scale bar are drawn in a dark
strip *above* the frame (outside it, so they hide no cell, and away from the bottom edge
that a video player's controls cover): the output frame is taller than the source
(:attr:`OverlayRenderer.output_size`; both sides even, as H.264 in 4:2:0 needs).
``legend="inside"`` draws them on translucent panels in the frame corners instead, keeping
the source size.

Colours are :data:`MOTILITY_COLOURS` (shared with the HTML report); boxes and labels use
``supervision`` annotators, the rest OpenCV. Reading the source video and writing the
overlay file is :mod:`detect_track.report.overlay`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import supervision as sv

from detect_track.errors import ConfigError, InputError
from detect_track.report import MOTILITY_COLOURS
from detect_track.types import MOTILITY_CLASSES

__all__ = ["OverlayRenderer", "choose_scale_bar_um", "micro_label_mask"]

#: Class order used for colour indices; the last one is for tracks without a class.
_CLASSES: tuple[str, ...] = (*MOTILITY_CLASSES, "unclassified")
_UNCLASSIFIED = len(_CLASSES) - 1
_PALETTE = sv.ColorPalette([sv.Color.from_hex(MOTILITY_COLOURS[c]) for c in _CLASSES])
_BGR: list[tuple[int, int, int]] = [c.as_bgr() for c in _PALETTE.colors]
_BGR_LUT = np.array(_BGR, dtype=np.uint8)  # (n_classes, 3)
#: Label text colour per class: white on the dark hues, black on the light gray.
_TEXT_PALETTE = sv.ColorPalette([sv.Color.WHITE] * _UNCLASSIFIED + [sv.Color.BLACK])

_REQUIRED = ("frame", "track_id", "x_px", "y_px")
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SHIFT = 2  # sub-pixel bits for trail coordinates (cv2 ``shift``)
_TRAIL_LEVELS = 8  # trail alpha is quantised into this many levels (one draw call each)
# Consecutive steps are at most 2x apart from 10 µm up, so one always falls in 10-20 %.
_SCALE_BAR_STEPS_UM = (1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000)


def choose_scale_bar_um(width_px: int, um_per_px: float) -> float:
    """Pick a round scale-bar length close to 15 % of the frame width.

    Args:
        width_px: Frame width in pixels.
        um_per_px: Micrometres per pixel.

    Returns:
        A length in µm from 1, 2, 2.5, 5, 10, 20, 25, 50, 100, ... whose bar is nearest to
        15 % of the width, preferring lengths whose bar lies within 10-20 % of the width.
    """
    target = 0.15 * width_px
    steps = np.asarray(_SCALE_BAR_STEPS_UM, dtype=np.float64)
    bar_px = steps / um_per_px
    inside = (bar_px >= 0.10 * width_px) & (bar_px <= 0.20 * width_px)
    candidates = steps[inside] if inside.any() else steps
    cand_px = candidates / um_per_px
    return float(candidates[int(np.argmin(np.abs(np.log(cand_px / target))))])


def micro_label_mask(prefix: str, scale: float, thickness: int) -> np.ndarray:
    """Render ``prefix + "µm"`` in OpenCV's Hershey font as a coverage mask.

    Hershey fonts have no "µ", so "um" is drawn and the left stem of the "u" is extended
    below the baseline, which gives a legible µ in the same font as the other text.

    Returns:
        Coverage mask ``(h, w)`` float32 in ``[0, 1]``.
    """
    text = prefix + "um"
    (tw, th_px), base = cv2.getTextSize(text, _FONT, scale, thickness)
    desc = max(base, int(round(th_px * 0.4)))
    img = np.zeros((th_px + desc + 2 * thickness + 2, tw + 2 * thickness + 2), np.uint8)
    org = (thickness + 1, thickness + 1 + th_px)
    cv2.putText(img, text, org, _FONT, scale, 255, thickness, cv2.LINE_AA)
    xu = org[0] + cv2.getTextSize(prefix, _FONT, scale, thickness)[0][0]
    wu = cv2.getTextSize("u", _FONT, scale, thickness)[0][0]
    ink = (img[org[1] - th_px:org[1], xu:xu + wu] > 127).sum(axis=0)
    if ink.size and ink.max() > 0:
        tall = ink > 0.5 * ink.max()
        r0 = int(np.argmax(tall))
        r1 = r0 + (int(np.argmin(tall[r0:])) if not tall[r0:].all() else int(tall[r0:].size))
        x = xu + (r0 + r1 - 1) // 2
        cv2.line(img, (x, org[1] - 1), (x, org[1] + desc - thickness), 255, thickness,
                 cv2.LINE_AA)
    return img.astype(np.float32) / 255.0


def _dashed_rect(img: np.ndarray, x1: int, y1: int, x2: int, y2: int,
                 color: tuple[int, int, int], dash: int = 2) -> None:
    """Draw a 1-px dashed rectangle (dash and gap ``dash`` pixels long)."""
    step = 2 * dash
    for x in range(x1, x2 + 1, step):
        xe = min(x + dash - 1, x2)
        cv2.line(img, (x, y1), (xe, y1), color, 1)
        cv2.line(img, (x, y2), (xe, y2), color, 1)
    for y in range(y1, y2 + 1, step):
        ye = min(y + dash - 1, y2)
        cv2.line(img, (x1, y), (x1, ye), color, 1)
        cv2.line(img, (x2, y), (x2, ye), color, 1)


def _darken(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, keep: float = 0.35) -> None:
    """Darken ``img[y1:y2, x1:x2]`` in place (a translucent black panel behind text)."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 > x1 and y2 > y1:
        roi = img[y1:y2, x1:x2]
        cv2.convertScaleAbs(roi, dst=roi, alpha=keep)


class OverlayRenderer:
    """Draw results onto frames; built once per video, then called per frame.

    The trajectory table is grouped by frame once (a sort plus ``searchsorted``), and the
    trail segments are pre-computed and sorted by end frame, so each frame only slices
    arrays.

    Args:
        trajectories: Long table (``TRAJECTORY_COLUMNS``; needs ``frame``, ``track_id``,
            ``x_px``, ``y_px``; uses ``w_px``, ``h_px``, ``interpolated`` when present).
        tracks: Per-track table with ``track_id`` and ``motility`` (may be empty).
        size: Frame size ``(width_px, height_px)``.
        fps: Frames per second (> 0), for the time stamp and trail length.
        um_per_px: Micrometres per pixel (> 0), for the scale bar.
        trail_s: Trail length in seconds (0 disables trails).
        legend: ``"strip"`` (default): time stamp, legend and scale bar in a strip below the
            frame (above it), where they hide no cell; ``"inside"``: on panels in the frame
            corners.

    Raises:
        ConfigError: If ``fps``, ``um_per_px`` or ``trail_s`` is out of range, or
            ``legend`` is unknown.
        InputError: If ``trajectories`` lacks a required column.
    """

    def __init__(self, trajectories: pd.DataFrame, tracks: pd.DataFrame,
                 size: tuple[int, int], *, fps: float, um_per_px: float,
                 trail_s: float = 1.0, legend: str = "strip") -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"overlay: fps must be > 0, got {fps}")
        if not (math.isfinite(um_per_px) and um_per_px > 0):
            raise ConfigError(f"overlay: um_per_px must be > 0, got {um_per_px}")
        if not (math.isfinite(trail_s) and trail_s >= 0):
            raise ConfigError(f"overlay: trail_s must be >= 0, got {trail_s}")
        if legend not in ("strip", "inside"):
            raise ConfigError(f"overlay: legend must be 'strip' or 'inside', got {legend!r}")
        self.legend = legend
        missing = [c for c in _REQUIRED if c not in trajectories.columns]
        if missing:
            raise InputError(f"overlay: trajectory table lacks column(s) {', '.join(missing)}")
        self.width, self.height = int(size[0]), int(size[1])
        self.fps = float(fps)
        self.um_per_px = float(um_per_px)
        self.trail_frames = int(round(trail_s * fps))
        self._prepare_rows(trajectories, tracks)
        self._prepare_trails()
        self._prepare_layout()
        self._box = sv.BoxAnnotator(color=_PALETTE, thickness=1)
        label_scale = 0.33 * self._ui_scale / 0.45
        self._label = sv.LabelAnnotator(
            color=_PALETTE, text_color=_TEXT_PALETTE, text_scale=label_scale,
            text_thickness=1, text_padding=2, text_position=sv.Position.TOP_LEFT)
        # Boxes touching the top edge get their label below the box instead of above.
        self._label_below = sv.LabelAnnotator(
            color=_PALETTE, text_color=_TEXT_PALETTE, text_scale=label_scale,
            text_thickness=1, text_padding=2, text_position=sv.Position.BOTTOM_LEFT,
            text_offset=(0, 0))
        self._label_h = cv2.getTextSize("0", _FONT, label_scale, 1)[0][1] + 4
        self._trail_cls = np.zeros((self.height, self.width), np.uint8)
        self._trail_alpha = np.zeros((self.height, self.width), np.uint8)

    # -- preparation ---------------------------------------------------------------------------
    def _prepare_rows(self, trajectories: pd.DataFrame, tracks: pd.DataFrame) -> None:
        df = trajectories
        ok = np.isfinite(df["frame"].to_numpy(np.float64)) & np.isfinite(
            df["x_px"].to_numpy(np.float64)) & np.isfinite(df["y_px"].to_numpy(np.float64)) & \
            df["track_id"].notna().to_numpy()
        n = int(ok.sum())
        frame = df["frame"].to_numpy(np.float64)[ok].astype(np.int64)
        tid = df["track_id"].to_numpy()[ok].astype(np.int64)
        x = df["x_px"].to_numpy(np.float64)[ok]
        y = df["y_px"].to_numpy(np.float64)[ok]

        def col(name: str, default: float) -> np.ndarray:
            if name not in df.columns:
                return np.full(n, default)
            v = pd.to_numeric(df[name], errors="coerce").to_numpy(np.float64)[ok]
            return np.where(np.isfinite(v), v, default)

        w, h = col("w_px", 6.0), col("h_px", 6.0)
        if "interpolated" in df.columns:
            raw = df["interpolated"][ok]
            interp = (raw.astype(str).str.lower().isin(("true", "1", "1.0")).to_numpy()
                      if raw.dtype == object else raw.fillna(False).to_numpy().astype(bool))
        else:
            interp = np.zeros(n, bool)

        # Motility class per track id (missing / NaN / unknown -> unclassified).
        cls_of: dict[int, int] = {}
        if len(tracks) and {"track_id", "motility"} <= set(tracks.columns):
            lookup = {c: i for i, c in enumerate(MOTILITY_CLASSES)}
            for t, m in zip(tracks["track_id"].to_numpy(), tracks["motility"].to_numpy(),
                            strict=True):
                if pd.notna(t):
                    cls_of[int(t)] = lookup.get(m if isinstance(m, str) else "", _UNCLASSIFIED)
        uniq, inv = np.unique(tid, return_inverse=True)
        uniq_cls = np.array([cls_of.get(int(t), _UNCLASSIFIED) for t in uniq], dtype=np.int64)
        self._track_ids = uniq
        self._track_cls = uniq_cls
        self.classes_present = sorted(set(uniq_cls.tolist()))

        # Sort by (frame, track) for the per-frame slices.
        order = np.lexsort((tid, frame))
        self._frame = frame[order]
        self._tidx = inv[order]
        self._cls = uniq_cls[inv[order]]
        self._interp = interp[order]
        half_w = np.maximum(w[order] / 2.0 + 2.0, 5.0)
        half_h = np.maximum(h[order] / 2.0 + 2.0, 5.0)
        xs, ys = x[order], y[order]
        self._xyxy = np.stack([xs - half_w, ys - half_h, xs + half_w, ys + half_h], axis=1)
        self._labels = np.array([str(int(t)) for t in tid[order]], dtype=object)
        self._x, self._y = xs, ys
        self._track_of_row = tid[order]

    def _prepare_trails(self) -> None:
        # Rows sorted by (track, frame): each track's positions are one contiguous run, found
        # for all visible tracks at once with one ``searchsorted`` on ``track * span + frame``.
        order = np.lexsort((self._frame, self._tidx))
        t, f = self._tidx[order], self._frame[order]
        self._span = float(f.max() - min(int(f.min()), 0) + 2 * self.trail_frames + 2) \
            if len(f) else 1.0
        self._trail_key = t * self._span + f.astype(np.float64)
        self._trail_pts = np.round(np.stack([self._x[order], self._y[order]], axis=1)
                                   * (1 << _SHIFT)).astype(np.int32)  # (N, 2), sub-pixel
        first = np.full(len(self._track_ids), 0, dtype=np.int64)
        if len(t):
            starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
            first[t[starts]] = starts
        self._track_first = first

    def _prepare_layout(self) -> None:
        w, h = self.width, self.height
        self._ui_scale = float(np.clip(min(w, h) / 1000.0 + 0.2, 0.35, 0.9))
        s = self._ui_scale
        self._line_h = int(round(28 * s)) + 4
        self._margin = max(4, int(round(12 * s)))
        self._text_th = 1 if s < 0.6 else 2
        # Legend: rows for the classes present in this video (all three motility classes
        # always, "unclassified" only when some track has no class).
        rows = [c for c in range(len(_CLASSES)) if c < _UNCLASSIFIED or c in self.classes_present]
        self._legend_rows = rows
        names = [_CLASSES[c].replace("_", "-") for c in rows]
        name_w = max(cv2.getTextSize(n, _FONT, s, self._text_th)[0][0] for n in names)
        count_w = cv2.getTextSize("000", _FONT, s, self._text_th)[0][0]
        self._swatch = int(round(18 * s))
        pad = self._margin // 2 + 2
        self._legend_w = pad + self._swatch + pad + name_w + pad + count_w + pad
        self._legend_h = pad + len(rows) * self._line_h
        self._legend_x = w - self._margin - self._legend_w
        self._legend_y = self._margin
        self._legend_pad = pad
        self._legend_names = names
        # Scale bar, bottom-right; its label may contain "µ" rendered with Pillow.
        self.scale_bar_um = choose_scale_bar_um(w, self.um_per_px)
        self._bar_px = int(round(self.scale_bar_um / self.um_per_px))
        length = f"{self.scale_bar_um:g}"
        self._bar_mask = micro_label_mask(f"{length} ", s, self._text_th)
        self._bar_th = max(2, int(round(6 * s)))
        self._strip_items: list[tuple[str, int, int, int]] = []
        self._strip_h = 0
        if self.legend == "strip":
            self._prepare_strip(pad, count_w)

    def _prepare_strip(self, pad: int, count_w: int) -> None:
        """Flow the time stamp, one item per legend row and the scale bar into strip rows."""
        s, th, m = self._ui_scale, self._text_th, self._margin
        gap = 3 * pad
        widths: list[tuple[str, int, int]] = [
            ("time", -1, cv2.getTextSize("t = 000.00 s  frame 00000", _FONT, s, th)[0][0])]
        for row, name in zip(self._legend_rows, self._legend_names, strict=True):
            name_w = cv2.getTextSize(name, _FONT, s, th)[0][0]
            widths.append(("class", row, self._swatch + pad + name_w + pad + count_w))
        widths.append(("bar", -1, self._bar_px + pad + self._bar_mask.shape[1]))
        x, y = m, 0
        for kind, row, w in widths:
            if x > m and x + w > self.width - m:
                x, y = m, y + 1
            self._strip_items.append((kind, row, x, y))
            x += w + gap
        self._strip_h = (y + 1) * self._line_h + 2 * pad

    @property
    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames :meth:`render` returns (both even in strip mode)."""
        if self.legend != "strip":
            return self.width, self.height
        return self.width + self.width % 2, \
            self.height + self._strip_h + (self.height + self._strip_h) % 2

    # -- drawing ------------------------------------------------------------------------------
    def rows_of(self, frame_idx: int) -> slice:
        """Rows (in the renderer's frame-sorted order) belonging to frame ``frame_idx``."""
        lo = int(np.searchsorted(self._frame, frame_idx, side="left"))
        hi = int(np.searchsorted(self._frame, frame_idx, side="right"))
        return slice(lo, hi)

    def render(self, image: np.ndarray, frame_idx: int) -> np.ndarray:
        """Draw the results of frame ``frame_idx`` onto ``image`` in place.

        Args:
            image: BGR uint8 frame ``(H, W, 3)`` of the configured size.
            frame_idx: 0-based frame index.

        Returns:
            With ``legend="inside"``: ``image`` annotated in place (a contiguous copy if
            ``image`` was not contiguous). With ``legend="strip"``: a new frame of
            :attr:`output_size`: the strip with time stamp, legend and scale bar on top,
            ``image`` (boxes and trails drawn in place) below it.
        """
        if not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        rows = self.rows_of(frame_idx)
        if self.trail_frames > 0 and rows.stop > rows.start:
            self._draw_trails(image, frame_idx, self._tidx[rows])
        counts = np.bincount(self._cls[rows], minlength=len(_CLASSES))
        if rows.stop > rows.start:
            self._draw_boxes(image, rows)
        if self.legend == "strip":
            return self._draw_strip(image, frame_idx, counts)
        self._draw_timestamp(image, frame_idx)
        self._draw_legend(image, counts)
        self._draw_scale_bar(image)
        return image

    def _draw_trails(self, image: np.ndarray, frame_idx: int, present: np.ndarray) -> None:
        # A trail segment joins two consecutive positions of a track and takes the age of
        # its newer end; segments whose end is less than ``trail_frames`` old are drawn,
        # in ``_TRAIL_LEVELS`` age bands (one polyline per track and band).
        n_lev, length = _TRAIL_LEVELS, self.trail_frames
        present = np.unique(present)
        bounds = frame_idx - length * np.arange(n_lev, -1, -1) / n_lev  # oldest .. newest
        ends = np.searchsorted(self._trail_key, (present * self._span)[:, None] + bounds,
                               side="right")  # (P, n_lev + 1): band k ends in [k, k + 1)
        firsts = self._track_first[present]
        # Band k holds the segments ending at rows [ends[:, k], ends[:, k + 1]); its polyline
        # starts one row earlier (the older end of its first segment) but never before the
        # track's first row.
        starts = np.maximum(ends[:, :n_lev] - 1, firsts[:, None])  # (P, n_lev)
        stops = ends[:, 1:]
        keep = stops - starts >= 2
        whole = stops[:, -1] - np.maximum(ends[:, 0] - 1, firsts) >= 2
        if not whole.any():
            return
        pts = self._trail_pts
        th = 1 if self._ui_scale < 0.6 else 2
        cmap, alpha = self._trail_cls, self._trail_alpha
        alpha.fill(0)
        w_lo = np.maximum(ends[:, 0] - 1, firsts)[whole].tolist()
        w_hi = stops[whole, -1].tolist()
        w_cls = self._track_cls[present[whole]].tolist()
        for c in set(w_cls):
            chains = [pts[lo:hi] for lo, hi, cc in zip(w_lo, w_hi, w_cls, strict=True) if cc == c]
            # Solid and wider than the anti-aliased alpha strokes, so it covers them fully.
            cv2.polylines(cmap, chains, False, c, th + 2, cv2.LINE_8, _SHIFT)
        for k in range(n_lev):  # oldest band first, newest on top
            sel = keep[:, k]
            if sel.any():
                chains = [pts[lo:hi] for lo, hi in zip(starts[sel, k].tolist(),
                                                        stops[sel, k].tolist(), strict=True)]
                value = int(round(255 * (0.15 + 0.75 * k / max(n_lev - 1, 1))))
                cv2.polylines(alpha, chains, False, value, th, cv2.LINE_AA, _SHIFT)
        # Blend only the pixels the trails touch (a few thousand), not the whole frame.
        idx = np.flatnonzero(alpha)
        weight = alpha.reshape(-1)[idx].astype(np.uint16)[:, None]
        colour = _BGR_LUT[cmap.reshape(-1)[idx]].astype(np.uint16)
        pix = image.reshape(-1, 3)  # a view: render() makes ``image`` contiguous
        pix[idx] = ((pix[idx] * (255 - weight) + colour * weight + 127) // 255).astype(np.uint8)

    def _draw_boxes(self, image: np.ndarray, rows: slice) -> None:
        xyxy = self._xyxy[rows]
        cls = self._cls[rows]
        interp = self._interp[rows]
        det = sv.Detections(xyxy=xyxy.astype(np.float32), class_id=cls,
                            tracker_id=self._track_of_row[rows])
        solid = ~interp
        if solid.all():
            self._box.annotate(image, det, custom_color_lookup=cls)
        else:
            if solid.any():
                self._box.annotate(image, det[solid], custom_color_lookup=cls[solid])
            for (bx1, by1, bx2, by2), c in zip(np.round(xyxy[interp]).astype(int), cls[interp],
                                               strict=True):
                _dashed_rect(image, int(bx1), int(by1), int(bx2), int(by2), _BGR[c])
        labels = self._labels[rows]
        below = xyxy[:, 1] < self._label_h
        if not below.any():
            self._label.annotate(image, det, labels=list(labels), custom_color_lookup=cls)
        else:
            for sel, annotator in ((~below, self._label), (below, self._label_below)):
                if sel.any():
                    annotator.annotate(image, det[sel], labels=list(labels[sel]),
                                       custom_color_lookup=cls[sel])

    def _draw_strip(self, image: np.ndarray, frame_idx: int, counts: np.ndarray) -> np.ndarray:
        out_w, out_h = self.output_size
        canvas = np.empty((out_h, out_w, 3), np.uint8)
        y0 = out_h - self.height  # the strip is on top: a player's controls cover the bottom
        canvas[:y0] = 32  # dark gray: reads as "not the sample"
        canvas[y0:, :self.width] = image
        canvas[y0:, self.width:] = 0
        s, th, lh = self._ui_scale, self._text_th, self._line_h
        pad = self._legend_pad
        white = (255, 255, 255)
        for kind, row, x, y in self._strip_items:
            yc = pad + y * lh + lh // 2
            if kind == "time":
                text = f"t = {frame_idx / self.fps:.2f} s  frame {frame_idx}"
                tht = cv2.getTextSize(text, _FONT, s, th)[0][1]
                cv2.putText(canvas, text, (x, yc + tht // 2), _FONT, s, white, th, cv2.LINE_AA)
            elif kind == "class":
                sw = self._swatch
                cv2.rectangle(canvas, (x, yc - sw // 2), (x + sw, yc + sw // 2), _BGR[row], -1)
                name = _CLASSES[row].replace("_", "-")
                label = f"{name} {int(counts[row])}"
                tht = cv2.getTextSize(label, _FONT, s, th)[0][1]
                cv2.putText(canvas, label, (x + sw + pad, yc + tht // 2), _FONT, s, white, th,
                            cv2.LINE_AA)
            else:  # scale bar, its label to the right
                top = yc - self._bar_th // 2
                cv2.rectangle(canvas, (x, top), (x + self._bar_px - 1, top + self._bar_th - 1),
                              white, -1)
                lh_m, lw_m = self._bar_mask.shape
                lx, ly = x + self._bar_px + pad, yc - lh_m // 2
                lx2, ly2 = min(lx + lw_m, out_w), min(ly + lh_m, out_h)
                if lx2 > lx and ly2 > ly:
                    mask = self._bar_mask[:ly2 - ly, :lx2 - lx][..., None]
                    roi = canvas[ly:ly2, lx:lx2]
                    roi[...] = (roi * (1.0 - mask) + 255.0 * mask).astype(np.uint8)
        return canvas

    def _draw_timestamp(self, image: np.ndarray, frame_idx: int) -> None:
        text = f"t = {frame_idx / self.fps:.2f} s  frame {frame_idx}"
        s, th, m = self._ui_scale, self._text_th, self._margin
        (tw, tht), base = cv2.getTextSize(text, _FONT, s, th)
        pad = m // 2 + 2
        _darken(image, m, m, m + tw + 2 * pad, m + tht + base + 2 * pad)
        cv2.putText(image, text, (m + pad, m + pad + tht), _FONT, s, (255, 255, 255), th,
                    cv2.LINE_AA)

    def _draw_legend(self, image: np.ndarray, counts: np.ndarray) -> None:
        x0, y0, pad = self._legend_x, self._legend_y, self._legend_pad
        _darken(image, x0, y0, x0 + self._legend_w, y0 + self._legend_h + pad)
        s, th, sw = self._ui_scale, self._text_th, self._swatch
        for i, (c, name) in enumerate(zip(self._legend_rows, self._legend_names,
                                                      strict=True)):
            yc = y0 + pad + i * self._line_h + self._line_h // 2
            sx = x0 + pad
            cv2.rectangle(image, (sx, yc - sw // 2), (sx + sw, yc + sw // 2), _BGR[c], -1)
            (_, tht), _ = cv2.getTextSize(name, _FONT, s, th)
            ty = yc + tht // 2
            tx = sx + sw + pad
            cv2.putText(image, name, (tx, ty), _FONT, s, (255, 255, 255), th, cv2.LINE_AA)
            cnt = str(int(counts[c]))
            cw = cv2.getTextSize(cnt, _FONT, s, th)[0][0]
            cv2.putText(image, cnt, (x0 + self._legend_w - pad - cw, ty), _FONT, s,
                        (255, 255, 255), th, cv2.LINE_AA)

    def _draw_scale_bar(self, image: np.ndarray) -> None:
        m = self._margin
        pad = m // 2 + 2
        x2 = self.width - m - pad
        x1 = x2 - self._bar_px
        lh, lw = self._bar_mask.shape
        y_bar = self.height - m - pad - self._bar_th
        y_text = y_bar - pad - lh  # top of the label
        panel_x1 = min(x1, (x1 + x2 - lw) // 2) - pad
        _darken(image, panel_x1, y_text - pad, self.width - m, self.height - m)
        cv2.rectangle(image, (x1, y_bar), (x2, y_bar + self._bar_th - 1), (255, 255, 255), -1)
        lx = (x1 + x2 - lw) // 2
        ly1, lx1 = max(y_text, 0), max(lx, 0)
        ly2, lx2 = min(y_text + lh, self.height), min(lx + lw, self.width)
        if ly2 > ly1 and lx2 > lx1:
            mask = self._bar_mask[ly1 - y_text:ly2 - y_text, lx1 - lx:lx2 - lx][..., None]
            roi = image[ly1:ly2, lx1:lx2]
            roi[...] = (roi * (1.0 - mask) + 255.0 * mask).astype(np.uint8)
