"""Still images (stained slides, smears): detect, classify and count, no tracking.

``detect-track IMAGE|FOLDER --config sperm-slide`` runs :func:`run_images`: each image is
read at its own bit depth (PNG, JPEG, TIFF; 8 or 16 bit; gray or colour), cut into
overlapping tiles when it is larger than ``still.tile_px`` (in model pixels, after the
detector's magnification resize), detected tile by tile, and the boxes of neighbouring
tiles are merged across the seams (a head cut by a seam is found whole in the tile that
contains it; the duplicate answers of the overlap are fused). Sperm heads get the head-
shape call of the morphology model from an aligned crop; with a model that finds whole
cells and their heads (``sperm`` + ``sperm_head``) the heads are classified and each
whole cell carries the call of the head inside it. With ``still.whole_cells = "traced"``
the whole-cell boxes are not the model's: each head box is grown along its traced tail
(:mod:`detect_track.detectors.tails`), one whole cell per head, whose confidence is the
head's times the chance that the trace holds the whole tail (low for a trace that fades
out after a few µm): count cells by their heads, whole-cell boxes by their extent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from detect_track.config import Config
from detect_track.detectors.reclassify import CellReclassifier, load_reclassifier
from detect_track.errors import ConfigError, InputError
from detect_track.io.video import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    check_pixels,
    image_size,
    read_image_file,
)
from detect_track.types import Detections, ImageScale

#: Columns of ``detections.csv``: one row per object found (pixels of the original image).
DETECTION_COLUMNS = ("image", "x1", "y1", "x2", "y2", "class_name", "confidence",
                     "morphology", "morphology_confidence")
#: Columns added to ``detections.csv`` when the scale was given (``--um-per-px`` or the
#: configuration, not the assumed default): box centre and size in µm.
DETECTION_UM_COLUMNS = ("x_um", "y_um", "width_um", "height_um")

#: Short labels drawn over the cells of annotated images (a legend spells them out).
SHORT_LABELS: dict[str, str] = {
    "sperm": "S", "sperm_head": "H",
    "sertoli": "Se", "primary_spermatocyte": "PS", "round_spermatid": "RS",
    "elongated_spermatid": "ES", "immature_sperm": "IS", "mature_sperm": "MS",
    "normal": "N", "tapered": "T", "pyriform": "P", "amorphous": "A", "small": "Sm",
    "not_assessable": "NA",
}


def short_labels(names: Sequence[str]) -> dict[str, str]:
    """A short, unique label for each class or head-shape name.

    Known names get :data:`SHORT_LABELS`; others their initials (``round_spermatid`` ->
    ``RS``) or, for one word, its first two letters (``leucocyte`` -> ``Le``); a number is
    appended where two names would share a label.

    Args:
        names: Class and head-shape names (duplicates and empty names are ignored).

    Returns:
        ``{name: label}``.
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in dict.fromkeys(n for n in names if n):
        words = [w for w in str(name).replace("-", "_").split("_") if w]
        label = SHORT_LABELS.get(name) or (
            "".join(w[0].upper() for w in words) if len(words) > 1
            else str(name)[:2].capitalize())
        base, k = label, 2
        while label in used:
            label, k = f"{base}{k}", k + 1
        used.add(label)
        out[name] = label
    return out


@dataclass
class StillResults:
    """What :func:`run_images` found.

    Attributes:
        detections: One row per object (``DETECTION_COLUMNS``).
        counts: One row per image and class: ``image, class_name, count``.
        errors: ``(image, message)`` of the images that could not be read.
        um_per_px: The scale used.
        warnings: Problems the user should know about (e.g. the scale was assumed).
        scale_source: Where the scale came from: ``cli``, ``config`` or ``default``
            (assumed; then ``detections.csv`` has no µm columns).
        class_names: The detector's classes, in its order (class ids of the exports).
        image_sizes: ``{image name: (width_px, height_px)}`` of the images read.
    """

    detections: pd.DataFrame
    counts: pd.DataFrame
    errors: list[tuple[str, str]]
    um_per_px: float = 0.0
    warnings: list[str] = field(default_factory=list)
    scale_source: str = ""
    class_names: tuple[str, ...] = ()
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)


def list_images(path: str | os.PathLike[str]) -> list[Path]:
    """The image files of a path: the file itself, or a folder's images (sorted).

    Raises:
        InputError: If the path is missing or holds no image.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file or folder: {p}")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
                   and not f.name.startswith(".")) if p.is_dir() else [p]  # no "._x.png"
    if not files:
        raise InputError(f"no images (png, jpg, tif, bmp) in {p}")
    return files


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS
               ) -> np.ndarray:
    """An image as stored: ``(H, W)`` or ``(H, W, 3)`` BGR, uint8 or uint16.

    Raises:
        InputError: If the file cannot be decoded, or is larger than ``max_pixels``
            (checked from its header, before decoding).
    """
    p = Path(path)
    size = image_size(p)
    if size is not None:
        check_pixels(size[0], size[1], max_pixels, p)
    try:
        img = read_image_file(p)
    except InputError:
        img = None
    if img is None and p.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            img = np.asarray(tifffile.imread(p))
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types
            raise InputError(f"cannot read image {p}: {exc}") from exc
    if img is None or img.size == 0:
        raise InputError(f"cannot read image (unsupported or corrupt file): {p}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"unsupported image {p}: shape {img.shape}, {img.dtype}")
    return img


def tile_origins(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``size`` px with ``overlap`` px."""
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def detect_tiled(detector: object, image: np.ndarray, tile_px: int, overlap_px: int
                 ) -> Detections:
    """Detections of a whole image, tile by tile, merged across the seams.

    Args:
        detector: Any detector (``detect(frame) -> Detections``).
        image: ``(H, W)`` or ``(H, W, 3)`` image.
        tile_px: Tile side in the detector's pixels (the learned detectors resize by
            their ``scale`` first); tiles in image pixels are ``tile_px / scale``.
        overlap_px: Overlap of neighbouring tiles, in the detector's pixels.

    Returns:
        Boxes in image pixels; answers of overlapping tiles on one object fused.
    """
    from detect_track.detectors.learned import merge_duplicates

    scale = float(getattr(detector, "scale", 1.0)) or 1.0
    tile, overlap = max(32, round(tile_px / scale)), max(0, round(overlap_px / scale))
    h, w = image.shape[:2]
    parts = []
    for y0 in tile_origins(h, tile, overlap):
        for x0 in tile_origins(w, tile, overlap):
            d = detector.detect(image[y0:y0 + tile, x0:x0 + tile])  # type: ignore[attr-defined]
            if len(d):
                parts.append((d.xyxy + [x0, y0, x0, y0], d.confidence, d.class_id))
    if not parts:
        return Detections.empty()
    xyxy = np.concatenate([p[0] for p in parts])
    conf = np.concatenate([p[1] for p in parts])
    cls = np.concatenate([p[2] for p in parts])
    if len(parts) > 1:  # the same object answered by two tiles: one box
        xyxy, conf, cls = merge_duplicates(xyxy, conf, cls)
    return Detections(xyxy, conf, cls)


def detect_image(detector: object, image: np.ndarray, cfg: Config, um_per_px: float,
                 reclassifier: CellReclassifier | None = None) -> Detections:
    """Every object of one still image: tiled detection, classes re-checked, cells traced.

    The classes of small cells are decided again when a crop classifier is given; whole
    cells are traced from their heads when ``still.whole_cells = "traced"``.

    Args:
        detector: A detector whose ``class_names`` are known to the caller.
        image: ``(H, W)`` or ``(H, W, 3)`` image.
        cfg: Configuration (``still`` section).
        um_per_px: Micrometres per pixel of ``image``.
        reclassifier: The crop classifier of ``still.reclassify``
            (:func:`~detect_track.detectors.reclassify.load_reclassifier`), or None.

    Returns:
        Boxes in image pixels (all confidences; ``still.min_confidence`` is not applied).

    Raises:
        ConfigError: ``still.whole_cells = "traced"`` with a detector that has no
            ``sperm`` and ``sperm_head`` classes.
    """
    d = detect_tiled(detector, image, cfg.still.tile_px, cfg.still.overlap_px)
    if reclassifier is not None:
        d = reclassifier.apply(image, d, getattr(detector, "class_names", ()), um_per_px)
    if cfg.still.whole_cells != "traced":
        return d
    from detect_track.detectors.tails import tail_trace_settings, trace_whole_cells
    from detect_track.morphology.crops import to_gray

    head_id, cell_id = _traced_classes(getattr(detector, "class_names", ()))
    heads = d[d.class_id == head_id]
    cells, reliability = trace_whole_cells(to_gray(image), heads.xyxy, um_per_px,
                                           tail_trace_settings(cfg))
    rest = d[d.class_id != cell_id]  # heads and any other class, then the traced cells
    return Detections(np.concatenate([rest.xyxy, cells]),
                      np.concatenate([rest.confidence, heads.confidence * reliability]),
                      np.concatenate([rest.class_id, np.full(len(heads), cell_id)]))


def still_reclassifier(cfg: Config, detector_names: Sequence[str]
                       ) -> CellReclassifier | None:
    """The crop classifier ``still.reclassify`` names, checked against the detector.

    Returns:
        None when ``still.reclassify`` is empty.

    Raises:
        ConfigError: The model cannot be found or loaded, is not a cell classifier, or
            knows a class the detector does not have.
    """
    if not cfg.still.reclassify:
        return None
    reclassifier = load_reclassifier(cfg.still.reclassify, cfg.detector.backend)
    reclassifier.class_map(detector_names)
    return reclassifier


def _traced_classes(names: Sequence[str]) -> tuple[int, int]:
    """Class ids of ``sperm_head`` and ``sperm``, which traced whole cells need.

    Raises:
        ConfigError: The detector lacks one of them.
    """
    names = list(names)
    if "sperm" not in names or "sperm_head" not in names:
        raise ConfigError("still.whole_cells = traced needs a detector with 'sperm' and "
                          f"'sperm_head' classes; this one has {names}")
    return names.index("sperm_head"), names.index("sperm")


#: Draws the annotated copy of one image: ``(image, detections, class_names, um_per_px)``
#: -> 8-bit BGR image.
Annotator = Callable[[np.ndarray, pd.DataFrame, Sequence[str], float], np.ndarray]


def run_images(images: Sequence[Path], cfg: Config, um_per_px: float | None = None,
               progress: Callable[[int, int], None] | None = None,
               annotated_dir: Path | None = None,
               annotator: Annotator | None = None) -> StillResults:
    """Detect, classify (sperm heads) and count the objects of still images.

    Args:
        images: Image files.
        cfg: Configuration (``detector``, ``morphology``, ``still`` sections).
        um_per_px: Micrometres per pixel of the images (else ``video.um_per_px``, else
            the flagged default). The learned detectors resize images outside their
            trained range; crops are cut at ``morphology.crop_um``.
        progress: ``progress(images_done, images_total)``.
        annotated_dir: If given, ``<stem>.png`` with the boxes drawn is written there
            for each image as soon as it is done (atomically).
        annotator: Draws those images (default :func:`annotate`: boxes and short labels;
            the command line passes the report's, which adds a legend and a scale bar).

    Returns:
        Detections, counts, and the images that could not be read (the others go on).

    Raises:
        ConfigError: Invalid settings or a model that cannot be loaded.
    """
    from detect_track.detectors import create_detector
    from detect_track.io.meta import resolve_um_per_px
    from detect_track.morphology.crops import align_head, cut, to_gray

    um_per_px, source, warnings = resolve_um_per_px(cfg, um_per_px)
    detector = create_detector(cfg.detector.name, cfg, ImageScale(um_per_px, source))
    names = tuple(detector.class_names)
    if cfg.still.whole_cells == "traced":
        _traced_classes(names)  # fail before the first image, not on it
        if cfg.still.tail_map:
            from detect_track.detectors.tails import load_tail_map

            load_tail_map(cfg.still.tail_map)  # a missing or foreign map fails here too
    reclassifier = still_reclassifier(cfg, names)
    model = None
    if cfg.morphology.enabled:
        from detect_track.morphology.stage import STILL_TTA_VIEWS, load_model

        model = load_model(cfg.morphology, cfg.detector.backend)
    crop_px = max(8, round(cfg.morphology.crop_um / um_per_px))
    # models that find whole cells and heads classify the heads; head-only models: "sperm"
    head_class = "sperm_head" if "sperm_head" in names else "sperm"
    rows: list[pd.DataFrame] = []
    counts: list[dict[str, object]] = []
    errors: list[tuple[str, str]] = []
    sizes: dict[str, tuple[int, int]] = {}
    for k, path in enumerate(images):
        if progress is not None and k:
            progress(k, len(images))
        try:
            image = read_image(path, cfg.video.max_pixels)
        except InputError as exc:
            errors.append((path.name, str(exc)))
            continue
        sizes[path.name] = (int(image.shape[1]), int(image.shape[0]))
        d = detect_image(detector, image, cfg, um_per_px, reclassifier)
        d = d[d.confidence >= cfg.still.min_confidence]  # what is reported and counted
        cls = [names[c] if 0 <= c < len(names) else str(c) for c in d.class_id]
        table = pd.DataFrame({"image": path.name, "x1": d.xyxy[:, 0], "y1": d.xyxy[:, 1],
                              "x2": d.xyxy[:, 2], "y2": d.xyxy[:, 3], "class_name": cls,
                              "confidence": d.confidence, "morphology": "",
                              "morphology_confidence": np.nan})
        heads = np.flatnonzero(np.asarray(cls) == head_class)
        if model is not None and len(heads):
            gray = to_gray(image)  # once per image, not once per crop
            xy = d.xy[heads]
            crops = [align_head(cut(gray, float(x), float(y), crop_px)) for x, y in xy]
            views = cfg.morphology.tta_views or STILL_TTA_VIEWS
            labels, conf = model.predict(crops, views=views)
            table.loc[heads, "morphology"] = labels
            table.loc[heads, "morphology_confidence"] = conf
            if head_class != "sperm":
                calls_to_cells(table, heads)
        rows.append(table)
        for name in names:
            counts.append({"image": path.name, "class_name": name,
                           "count": int(sum(c == name for c in cls))})
        if annotated_dir is not None:
            draw = annotator or annotate
            _write_png(Path(annotated_dir) / f"{path.stem}.png",
                       draw(image, table, names, um_per_px))
    if progress is not None and images:
        progress(len(images), len(images))
    detections = (pd.concat(rows, ignore_index=True) if rows else
                  pd.DataFrame(columns=list(DETECTION_COLUMNS)))
    detections = detections[list(DETECTION_COLUMNS)]
    if source != "default":
        detections = with_um_columns(detections, um_per_px)
    return StillResults(detections,
                        pd.DataFrame(counts, columns=["image", "class_name", "count"]), errors,
                        um_per_px, warnings, source, names, sizes)


def with_um_columns(detections: pd.DataFrame, um_per_px: float) -> pd.DataFrame:
    """``detections`` plus :data:`DETECTION_UM_COLUMNS` (box centre and size in µm).

    Values are rounded to 0.01 µm (the pixel boxes are sub-pixel estimates).
    """
    box = detections[["x1", "y1", "x2", "y2"]].to_numpy(float).reshape(-1, 4)
    out = detections.copy()
    out["x_um"] = np.round((box[:, 0] + box[:, 2]) / 2 * um_per_px, 2)
    out["y_um"] = np.round((box[:, 1] + box[:, 3]) / 2 * um_per_px, 2)
    out["width_um"] = np.round((box[:, 2] - box[:, 0]) * um_per_px, 2)
    out["height_um"] = np.round((box[:, 3] - box[:, 1]) * um_per_px, 2)
    return out


def calls_to_cells(table: pd.DataFrame, heads: np.ndarray) -> None:
    """Copy each head's call to the whole-sperm box that holds it (the tightest one).

    Args:
        table: One image's detections (``DETECTION_COLUMNS``), changed in place.
        heads: Row positions of the classified head boxes.
    """
    cells = np.flatnonzero(table["class_name"].to_numpy() == "sperm")
    if not len(cells):
        return
    box = table[["x1", "y1", "x2", "y2"]].to_numpy(float)
    area = (box[cells, 2] - box[cells, 0]) * (box[cells, 3] - box[cells, 1])
    taken = np.zeros(len(cells), bool)
    for h in heads[np.argsort(-table["confidence"].to_numpy()[heads], kind="stable")]:
        cx, cy = (box[h, 0] + box[h, 2]) / 2, (box[h, 1] + box[h, 3]) / 2
        inside = ((box[cells, 0] <= cx) & (cx <= box[cells, 2]) & (box[cells, 1] <= cy)
                  & (cy <= box[cells, 3]) & ~taken)
        if inside.any():
            k = int(np.argmin(np.where(inside, area, np.inf)))
            taken[k] = True
            table.iloc[cells[k], table.columns.get_loc("morphology")] = \
                table.iloc[h, table.columns.get_loc("morphology")]
            table.iloc[cells[k], table.columns.get_loc("morphology_confidence")] = \
                table.iloc[h, table.columns.get_loc("morphology_confidence")]


def annotate(image: np.ndarray, detections: pd.DataFrame,
             class_names: Sequence[str] = (), um_per_px: float = 0.0) -> np.ndarray:
    """The image as 8-bit BGR with a box and a short label per detection (supervision).

    Boxes are coloured by class (``class_names`` order, else sorted names); the label is the
    short form (:func:`short_labels`) of the head shape where there is one, else of the
    class. :func:`detect_track.report.annotated.draw_annotated` adds the legend and a
    scale bar below the image.

    Args:
        image: The image (any bit depth, gray or colour).
        detections: Its rows of ``detections.csv``.
        class_names: The detector's classes (fixes each class's colour across images).
        um_per_px: Unused here (the scale bar is the report's); for the annotator protocol.

    Returns:
        8-bit BGR copy of the image with the boxes drawn.
    """
    import supervision as sv

    from detect_track.detectors.learned import to_bgr

    del um_per_px
    canvas = image if image.dtype == np.uint8 and image.ndim == 3 else to_bgr(image)
    canvas = canvas.copy()
    if not len(detections):
        return canvas
    names = list(class_names) or sorted(detections["class_name"].unique())
    names += sorted(set(detections["class_name"]) - set(names))
    shape = detections["morphology"].fillna("").astype(str)
    short = short_labels([*names, *shape])
    dets = sv.Detections(xyxy=detections[["x1", "y1", "x2", "y2"]].to_numpy(float),
                         confidence=detections["confidence"].to_numpy(float),
                         class_id=detections["class_name"].map(names.index).to_numpy(int))
    labels = [short[m] if m else short[c] for c, m in zip(detections["class_name"], shape,
                                                          strict=True)]
    thickness = max(1, round(max(canvas.shape[:2]) / 800))
    canvas = sv.BoxAnnotator(thickness=thickness).annotate(canvas, dets)
    return sv.LabelAnnotator(text_scale=0.35 * thickness, text_padding=2).annotate(
        canvas, dets, labels=labels)


def write_still_results(results: StillResults, out_dir: Path) -> dict[str, Path]:
    """Write ``detections.csv``, ``counts.csv`` and the annotation exports, atomically.

    ``annotations/`` holds the detections as pre-annotations to correct in CVAT or Label
    Studio (:func:`write_annotations`).
    """
    from detect_track.io.export import ensure_output_dir, write_csv

    out = ensure_output_dir(out_dir)
    paths = {"detections": write_csv(results.detections, out / "detections.csv"),
             "counts": write_csv(results.counts, out / "counts.csv")}
    paths.update(write_annotations(results, out / "annotations"))
    return paths


def write_annotations(results: StillResults, out_dir: Path) -> dict[str, Path]:
    """The detections as COCO json and YOLO txt, to correct in CVAT or Label Studio.

    Layout (the writers of :mod:`detect_track.io.datasets`, as the frame export of
    ``detect-track annotate`` uses)::

        coco.json            COCO: images (the original file names), boxes, a "score" each
        yolo/classes.txt     one class name per line (id = line number, from 0)
        yolo/labels/<stem>.txt   YOLO: class cx cy w h, normalised, one box per line

    Import ``coco.json`` with the image folder, or ``yolo/`` with the images copied to
    ``yolo/images/`` (Label Studio's YOLO import; CVAT "YOLO 1.1" reads the same lines).

    Returns:
        ``{"coco": path, "yolo": folder}``.
    """
    import json
    from functools import partial

    from detect_track.io.datasets import add_coco_image, write_yolo_labels
    from detect_track.io.export import atomic_write, ensure_output_dir

    out = ensure_output_dir(out_dir)
    labels_dir = ensure_output_dir(out / "yolo" / "labels")
    names = list(results.class_names) or sorted(results.detections["class_name"].unique())
    det = results.detections
    extra = sorted(set(det["class_name"]) - set(names))
    names += extra
    coco: dict = {"images": [], "annotations": [], "categories": [
        {"id": k + 1, "name": n} for k, n in enumerate(names)]}
    for image, (width, height) in results.image_sizes.items():
        rows = det[det["image"] == image]
        boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(float).reshape(-1, 4)
        classes = rows["class_name"].map(names.index).to_numpy(int)
        n_before = len(coco["annotations"])
        add_coco_image(coco, image, width, height, boxes, classes)
        for ann, score in zip(coco["annotations"][n_before:], rows["confidence"], strict=True):
            ann["score"] = round(float(score), 4)
        atomic_write(labels_dir / f"{Path(image).stem}.txt",
                     partial(write_yolo_labels, boxes=boxes, classes=classes, width=width,
                             height=height))
    text = json.dumps(coco)
    coco_path = atomic_write(out / "coco.json", partial(Path.write_text, data=text))
    atomic_write(out / "yolo" / "classes.txt", lambda p: p.write_text("\n".join(names) + "\n"))
    return {"coco": coco_path, "yolo": out / "yolo"}


def _write_png(path: Path, image: np.ndarray) -> Path:
    """Write an 8-bit image as PNG atomically."""
    from detect_track.io.export import atomic_write

    ok, data = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - encoding an 8-bit BGR array does not fail
        raise InputError(f"cannot encode {path.name} as PNG")
    return atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))
