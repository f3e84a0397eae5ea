"""Annotated still images: boxes, short labels, and a legend strip with a scale bar.

:func:`draw_annotated` is the annotator the command line hands to
:func:`~detect_track.stills.run_images`: the boxes and short labels of
:func:`~detect_track.stills.annotate` on the image, and below it a light strip (outside
the image, so it hides no cell) with one legend entry per class found (colour of its boxes,
short label, name, count in this image), the head-shape codes used, and a scale bar of a
round length (:func:`~detect_track.report.overlay_renderer.choose_scale_bar_um`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd

from detect_track.report.overlay_renderer import choose_scale_bar_um, micro_label_mask
from detect_track.stills import annotate, short_labels

__all__ = ["class_colours", "draw_annotated"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colours(names: Sequence[str]) -> dict[str, str]:
    """``{class name: "#rrggbb"}``: the box colour of each class (supervision's palette)."""
    import supervision as sv

    palette = sv.ColorPalette.DEFAULT
    return {n: palette.by_idx(k).as_hex() for k, n in enumerate(names)}


def draw_annotated(image: np.ndarray, detections: pd.DataFrame, class_names: Sequence[str],
                   um_per_px: float) -> np.ndarray:
    """The annotated image with a legend strip and a scale bar below it.

    Args:
        image: The image (any bit depth, gray or colour).
        detections: Its rows of ``detections.csv``.
        class_names: The detector's classes (their order fixes the colours).
        um_per_px: Micrometres per pixel (> 0 draws a scale bar).

    Returns:
        8-bit BGR image: the annotated image on top, the strip below (same width).
    """
    names = list(class_names) or sorted(detections["class_name"].unique())
    names += sorted(set(detections["class_name"]) - set(names))
    top = annotate(image, detections, names, um_per_px)
    h, w = top.shape[:2]
    shapes = sorted(s for s in detections["morphology"].fillna("").astype(str).unique() if s) \
        if len(detections) else []
    short = short_labels([*names, *shapes])
    counts = detections["class_name"].value_counts() if len(detections) else pd.Series()
    colours = class_colours(names)
    scale = float(np.clip(w / 1400.0, 0.45, 1.6))
    th = 1 if scale < 0.9 else 2
    line_h = int(round(30 * scale))
    pad = int(round(10 * scale))
    sw = int(round(16 * scale))
    items: list[tuple[str, str, int]] = []  # (kind, text or name, width)
    for n in names:
        if counts.get(n, 0) or not shapes:
            text = f"{short[n]} = {n.replace('_', ' ')} ({int(counts.get(n, 0))})"
            items.append(("class", n, sw + pad + cv2.getTextSize(text, _FONT, scale, th)[0][0]))
    if shapes:
        text = "head shape: " + ", ".join(f"{short[s]} = {s.replace('_', ' ')}"
                                          for s in shapes)
        items.append(("text", text, cv2.getTextSize(text, _FONT, scale, th)[0][0]))
    bar_um = choose_scale_bar_um(w, um_per_px) if um_per_px > 0 else 0.0
    mask = micro_label_mask(f"{bar_um:g} ", scale, th) if bar_um else np.zeros((0, 0))
    bar_px = int(round(bar_um / um_per_px)) if bar_um else 0
    if bar_um:
        items.append(("bar", "", bar_px + pad + mask.shape[1]))
    placed: list[tuple[str, str, int, int]] = []
    x, row = pad, 0
    for kind, text, width in items:
        if x > pad and x + width > w - pad:
            x, row = pad, row + 1
        placed.append((kind, text, x, row))
        x += width + 3 * pad
    strip = np.full(((row + 1) * line_h + 2 * pad, w, 3), 245, np.uint8)
    ink = (30, 30, 30)
    for kind, text, x, r in placed:
        yc = pad + r * line_h + line_h // 2
        if kind == "class":
            hexc = colours[text].lstrip("#")
            bgr = tuple(int(hexc[i:i + 2], 16) for i in (4, 2, 0))
            cv2.rectangle(strip, (x, yc - sw // 2), (x + sw, yc + sw // 2), bgr, -1)
            label = f"{short[text]} = {text.replace('_', ' ')} ({int(counts.get(text, 0))})"
            tht = cv2.getTextSize(label, _FONT, scale, th)[0][1]
            cv2.putText(strip, label, (x + sw + pad, yc + tht // 2), _FONT, scale, ink, th,
                        cv2.LINE_AA)
        elif kind == "text":
            tht = cv2.getTextSize(text, _FONT, scale, th)[0][1]
            cv2.putText(strip, text, (x, yc + tht // 2), _FONT, scale, ink, th, cv2.LINE_AA)
        else:
            bar_th = max(2, int(round(6 * scale)))
            cv2.rectangle(strip, (x, yc - bar_th // 2), (x + bar_px - 1, yc - bar_th // 2 + bar_th),
                          ink, -1)
            mh, mw = mask.shape
            lx, ly = x + bar_px + pad, yc - mh // 2
            mw = min(mw, w - lx)
            if mw > 0 and ly >= 0:
                m = mask[:, :mw, None]
                roi = strip[ly:ly + mh, lx:lx + mw]
                roi[...] = (roi * (1.0 - m) + np.array(ink) * m).astype(np.uint8)
    return np.vstack([top, strip])
