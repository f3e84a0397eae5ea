"""``report.html`` of still images (stained slides, smears): counts, head shapes, images.

:func:`write_still_report` renders ``stills.html.j2`` (on ``base.html.j2``, with the same
inlined stylesheet as the video report) from the :class:`~detect_track.stills.StillResults`
of a folder of images: the scale and where it came from, warnings and unreadable images,
the number of objects of each class per image and in all, for sperm slides the head
shapes (% normal forms beside the WHO 6th-edition lower reference limit of 4 %, and each
defect class), a legend of the short labels drawn over the cells, and the annotated images
(``annotated/<stem>.png``, linked relatively, not embedded: a folder of slides is large).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detect_track import __version__
from detect_track.io.export import ensure_output_dir, write_text
from detect_track.report.annotated import class_colours
from detect_track.stills import StillResults, short_labels

__all__ = ["NORMAL_FORMS_LOWER_LIMIT_PCT", "still_context", "still_report",
           "write_still_report"]

#: WHO laboratory manual, 6th edition (2021): lower reference limit of normal forms, %.
NORMAL_FORMS_LOWER_LIMIT_PCT = 4.0
#: Head-shape calls that are not an assessment (left out of the percentages).
NOT_ASSESSED = ("", "not_assessable")
_SCALE_SOURCE = {"cli": "given with --um-per-px", "config": "from the configuration",
                 "default": "ASSUMED (not given): µm values are unreliable"}


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}" if total else "–"


def still_context(results: StillResults, *, source: str = "",
                  annotated: str | None = "annotated",
                  morphology_model: str = "") -> dict[str, Any]:
    """What ``stills.html.j2`` shows.

    Args:
        results: What :func:`~detect_track.stills.run_images` returned.
        source: The image or folder given on the command line (title of the report).
        annotated: Folder of the annotated images relative to the report (None: none).
        morphology_model: Name of the head-shape model (for the note beside its numbers).

    Returns:
        The template context.
    """
    det = results.detections
    names = list(results.class_names) or sorted(det["class_name"].unique())
    names += sorted(set(det["class_name"]) - set(names))
    shapes_all = det["morphology"].fillna("").astype(str) if len(det) else det["class_name"]
    shape_names = sorted({s for s in shapes_all if s})
    short = short_labels([*names, *shape_names])
    colours = class_colours(names)
    images = list(results.image_sizes)
    per_image = {img: det[det["image"] == img]["class_name"].value_counts() for img in images}
    totals = det["class_name"].value_counts()
    shown = [n for n in names if totals.get(n, 0)] or names
    count_rows = [{"image": img, "counts": [int(per_image[img].get(n, 0)) for n in shown],
                   "total": int(per_image[img].sum())} for img in images]
    count_total = [int(totals.get(n, 0)) for n in shown]

    cards: list[dict[str, Any]] = [
        {"key": "Images", "value": str(len(images)), "colour": "",
         "detail": f"{len(results.errors)} unreadable" if results.errors else ""},
        {"key": "Objects", "value": str(int(len(det))), "detail": "all classes", "colour": ""}]
    cards += [{"key": short[n], "value": str(int(totals.get(n, 0))),
               "detail": f"{n.replace('_', ' ')} · {_pct(int(totals.get(n, 0)), len(det))} %",
               "colour": colours[n]} for n in shown]  # long names wrap in the detail line

    morphology = None
    if shape_names:
        shapes = shapes_all[shapes_all != ""]
        assessed = shapes[~shapes.isin(NOT_ASSESSED)]
        n_assessed = int(len(assessed))
        n_normal = int((assessed == "normal").sum())
        pct_normal = 100.0 * n_normal / n_assessed if n_assessed else None
        flag = ("" if pct_normal is None else
                "below" if pct_normal < NORMAL_FORMS_LOWER_LIMIT_PCT else "within")
        rows = []
        for s in shape_names:
            n = int((shapes == s).sum())
            rows.append({"label": short[s], "name": s.replace("_", " "), "n": n,
                         "pct": "–" if s in NOT_ASSESSED else _pct(n, n_assessed),
                         "defect": s not in ("normal", *NOT_ASSESSED)})
        by_image = []
        for img in images:
            sub = det[(det["image"] == img)]["morphology"].fillna("").astype(str)
            sub = sub[~sub.isin(NOT_ASSESSED)]
            by_image.append({"image": img, "n": int(len(sub)),
                             "pct": _pct(int((sub == "normal").sum()), int(len(sub)))})
        morphology = {
            "n_assessed": n_assessed, "n_normal": n_normal,
            "pct_normal": "–" if pct_normal is None else f"{pct_normal:.1f}",
            "flag": flag, "limit": f"{NORMAL_FORMS_LOWER_LIMIT_PCT:g}", "rows": rows,
            "by_image": by_image, "model": morphology_model or "head-shape model",
            "small_n": n_assessed < 200}
        cards.insert(2, {"key": "Normal forms", "value": f"{morphology['pct_normal']} %",
                         "colour": "#b42318" if flag == "below" else "",
                         "detail": f"of {n_assessed} heads; lower limit "
                                   f"{NORMAL_FORMS_LOWER_LIMIT_PCT:g} % · screening"})

    figures = []
    if annotated is not None:
        for img in images:
            counts = per_image[img]
            caption = f"{img}: " + (", ".join(f"{int(counts[n])} {short[n]}" for n in names
                                              if counts.get(n, 0)) or "nothing found")
            figures.append({"src": f"{annotated.rstrip('/')}/{Path(img).stem}.png",
                            "caption": caption, "image": img})
    legend = [{"label": short[n], "name": n.replace("_", " "), "colour": colours[n],
               "kind": "class"} for n in names]
    legend += [{"label": short[s], "name": s.replace("_", " "), "colour": "",
                "kind": "head shape"} for s in shape_names]
    return {
        "name": Path(source.rstrip("/")).name or "images", "path": source,
        "warnings": list(results.warnings),
        "errors": [{"image": i, "message": m} for i, m in results.errors],
        "scale": f"{results.um_per_px:g} µm/px",
        "scale_source": _SCALE_SOURCE.get(results.scale_source, results.scale_source),
        "um_columns": "x_um" in det.columns, "cards": cards, "classes": shown,
        "class_labels": [short[n] for n in shown], "count_rows": count_rows,
        "count_total": count_total, "n_objects": int(len(det)), "morphology": morphology,
        "legend": legend, "figures": figures,
    }


def still_report(results: StillResults, *, source: str = "", annotated: str | None = "annotated",
                 morphology_model: str = "",
                 template_dirs: Sequence[str | os.PathLike[str]] = ()) -> str:
    """The HTML report of still images (see :func:`still_context` for the arguments).

    Returns:
        The complete HTML document (inline CSS; annotated images linked relatively).
    """
    from detect_track.report.html import environment

    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    context = still_context(results, source=source, annotated=annotated,
                            morphology_model=morphology_model)
    return environment(template_dirs).get_template("stills.html.j2").render(
        **context, version=__version__, generated=generated)


def write_still_report(results: StillResults, path: str | os.PathLike[str], *,
                       source: str = "", annotated: str | None = "annotated",
                       config: Any = None,
                       template_dirs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Write :func:`still_report` to ``path`` atomically.

    Args:
        results: What :func:`~detect_track.stills.run_images` returned.
        path: The ``report.html`` to write.
        source: The image or folder analysed.
        annotated: Folder of the annotated images relative to the report (None: none).
        config: The configuration used (names the head-shape model), optional.
        template_dirs: Folders searched before the packaged templates.

    Returns:
        The path written.

    Raises:
        OutputError: If the file cannot be written.
    """
    model = ""
    morph = getattr(config, "morphology", None)
    if morph is not None:
        model = Path(str(getattr(morph, "weights", "") or "head-shape-synth")).stem
    doc = still_report(results, source=source, annotated=annotated, morphology_model=model,
                       template_dirs=template_dirs)
    ensure_output_dir(Path(path).parent)
    return write_text(doc, path)
