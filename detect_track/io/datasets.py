"""Detection datasets on disk (YOLO or COCO layout): reading, writing, tiling.

* YOLO: a ``data.yaml`` with ``path``, ``train``, ``val`` (image folders) and ``names``;
  each image ``images/<split>/x.png`` has ``labels/<split>/x.txt`` with ``class cx cy w h``
  normalised to the image (VISEM-Tracking is distributed this way).
* COCO: a folder with ``annotations/<split>.json`` and ``images/<split>/``; ``bbox`` is
  ``[x, y, w, h]`` in pixels and ``category_id`` is 1-based (as EfficientDet counts).

Both load into :class:`Sample` lists: an image path and its boxes ``x1, y1, x2, y2`` in
pixels with 0-based classes. The training code (:mod:`detect_track.training`) and the
simulator's dataset builders (:mod:`detect_track.synth`) both read and write them here;
the training augmentations are in :mod:`detect_track.training.data`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from detect_track.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class Sample:
    """One annotated image.

    Attributes:
        image: Path of the image file.
        boxes: ``(N, 4)`` float ``x1, y1, x2, y2`` in pixels.
        classes: ``(N,)`` int 0-based class ids.
    """

    image: Path
    boxes: np.ndarray
    classes: np.ndarray


def _yolo_names(names: object) -> list[str]:
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise InputError("data.yaml: 'names' must be a list or a mapping")


def load_yolo(data_yaml: str | Path, split: str) -> tuple[list[Sample], list[str]]:
    """Samples of one split of a YOLO dataset, and its class names.

    Raises:
        InputError: If the file, the split or an image folder is missing.
    """
    path = Path(data_yaml)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read dataset file {path}: {exc}") from exc
    if not isinstance(spec, dict) or split not in spec or "names" not in spec:
        raise InputError(f"{path} needs '{split}' and 'names' keys")
    root = Path(spec.get("path") or path.parent)
    if not root.is_absolute():
        root = path.parent / root
    img_dir = root / str(spec[split])
    if not img_dir.is_dir():
        raise InputError(f"image folder of split '{split}' not found: {img_dir}")
    samples = []
    for img in sorted(p for p in img_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = img.relative_to(root)
        parts = list(rel.parts)
        if "images" in parts:
            parts[parts.index("images")] = "labels"
        label = (root / Path(*parts)).with_suffix(".txt")
        h, w = _image_size(img)
        rows = np.zeros((0, 5))
        if label.is_file():
            text = label.read_text().split()
            if text:
                rows = np.asarray(text, float).reshape(-1, 5)
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes = np.column_stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        samples.append(Sample(img, boxes.reshape(-1, 4), rows[:, 0].astype(np.int64)))
    return samples, _yolo_names(spec["names"])


def load_coco(json_path: str | Path, image_dir: str | Path) -> tuple[list[Sample], list[str]]:
    """Samples of a COCO json (1-based category ids become 0-based classes).

    Raises:
        InputError: If the json is unreadable.
    """
    try:
        data = json.loads(Path(json_path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read COCO file {json_path}: {exc}") from exc
    cats = sorted(data.get("categories", []), key=lambda c: c["id"])
    names = [str(c["name"]) for c in cats]
    index = {c["id"]: k for k, c in enumerate(cats)}
    per_image: dict[int, list[dict]] = {}
    for a in data.get("annotations", []):
        per_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for im in data.get("images", []):
        anns = [a for a in per_image.get(im["id"], []) if not a.get("iscrowd", 0)]
        b = np.array([a["bbox"] for a in anns], float).reshape(-1, 4)
        boxes = np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])
        cls = np.array([index[a["category_id"]] for a in anns], np.int64)
        samples.append(Sample(Path(image_dir) / im["file_name"], boxes, cls))
    return samples, names


def load_dataset(data: str | Path, split: str) -> tuple[list[Sample], list[str]]:
    """Load a split from a YOLO ``data.yaml`` or a COCO folder (``annotations/<split>.json``).

    Raises:
        InputError: If ``data`` is neither.
    """
    path = Path(data)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return load_yolo(path, split)
    if path.is_dir() and (path / "annotations" / f"{split}.json").is_file():
        return load_coco(path / "annotations" / f"{split}.json", path / "images" / split)
    if path.is_dir() and (path / "data.yaml").is_file():
        return load_yolo(path / "data.yaml", split)
    raise InputError(f"{path} is neither a YOLO data.yaml nor a folder with "
                     f"annotations/{split}.json (COCO)")


def _image_size(path: Path) -> tuple[int, int]:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read image {path}")
    return int(img.shape[0]), int(img.shape[1])


def window_boxes(boxes: np.ndarray, x0: float, y0: float, w: float, h: float,
                 min_visible: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` shifted into a ``w`` x ``h`` window at ``(x0, y0)`` and clipped to it.

    Returns:
        The clipped boxes ``(N, 4)`` and a mask ``(N,)`` of those with at least
        ``min_visible`` of their area inside the window.
    """
    b = np.asarray(boxes, float).reshape(-1, 4) - np.array([x0, y0, x0, y0], float)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    c = np.clip(b, 0, [w, h, w, h])
    vis = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1]) / area
    return c, vis >= min_visible


def rotate_flip(img: np.ndarray, boxes: np.ndarray, k: int, flip: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a square image ``k`` x 90° counter-clockwise, then mirror it if ``flip``.

    Boxes ``(N, 4)`` ``x1, y1, x2, y2`` move with the pixels.
    """
    size = img.shape[0]
    for _ in range(k):  # (x, y) -> (y, size - x)
        img = np.rot90(img)
        boxes = np.column_stack([boxes[:, 1], size - boxes[:, 2], boxes[:, 3],
                                 size - boxes[:, 0]])
    if flip:
        img = img[:, ::-1]
        boxes = np.column_stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0],
                                 boxes[:, 3]])
    return np.ascontiguousarray(img), boxes.reshape(-1, 4)


def _grid(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles covering ``[0, length)`` with at least ``overlap`` overlap."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def needs_tiling(samples: list[Sample], tile_px: int, probe: int = 8) -> bool:
    """True if the (first few) images are larger than the training tile."""
    for s in samples[:probe]:
        h, w = _image_size(s.image)
        if max(h, w) > tile_px:
            return True
    return False


def write_yolo_labels(path: Path, boxes: np.ndarray, classes: np.ndarray, width: float,
                      height: float) -> None:
    """Write one YOLO label file: ``class cx cy w h`` per box, normalised to the image.

    Args:
        path: The ``.txt`` file.
        boxes: ``(N, 4)`` ``x1, y1, x2, y2`` in px; empty boxes are left out.
        classes: ``(N,)`` 0-based class ids.
        width: Image width in px.
        height: Image height in px.
    """
    lines = [f"{int(k)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
             f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
             for (x1, y1, x2, y2), k in zip(np.asarray(boxes, float).reshape(-1, 4), classes,
                                            strict=True) if x2 > x1 and y2 > y1]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def add_coco_image(coco: dict, file_name: str, width: int, height: int, boxes: np.ndarray,
                   classes: np.ndarray) -> None:
    """Append one image and its boxes to a COCO dict (``images``, ``annotations`` lists).

    Args:
        coco: The dataset dict, changed in place; ids continue from its lengths.
        file_name: Image file name.
        width: Image width in px.
        height: Image height in px.
        boxes: ``(N, 4)`` ``x1, y1, x2, y2`` in px (stored as ``[x, y, w, h]``, 3 decimals).
        classes: ``(N,)`` 0-based class ids (stored 1-based, as COCO and effdet count).
    """
    image_id = len(coco["images"]) + 1
    coco["images"].append({"id": image_id, "file_name": file_name, "width": width,
                           "height": height})
    for (x1, y1, x2, y2), c in zip(np.asarray(boxes, float).reshape(-1, 4), classes,
                                   strict=True):
        w, h = x2 - x1, y2 - y1
        coco["annotations"].append({
            "id": len(coco["annotations"]) + 1, "image_id": image_id,
            "category_id": int(c) + 1, "bbox": [round(float(x1), 3), round(float(y1), 3),
                                                round(float(w), 3), round(float(h), 3)],
            "area": round(float(w * h), 3), "iscrowd": 0})


def write_data_yaml(out: Path, splits: list[str], names: list[str] | tuple[str, ...]) -> Path:
    """Write ``out/data.yaml`` (ultralytics): ``path``, ``images/<split>`` per split, names."""
    listing = "\n".join(f"  {k}: {n}" for k, n in enumerate(names))
    split_lines = "".join(f"{k}: images/{k}\n" for k in splits)
    path = out / "data.yaml"
    path.write_text(f"path: {out.resolve()}\n{split_lines}names:\n{listing}\n")
    return path


def tile_yolo_dataset(data_yaml: str | Path, out_dir: str | Path, tile_px: int,
                      overlap: float = 0.25, min_visible: float = 0.6) -> Path:
    """Cut every image of a YOLO dataset into overlapping native-resolution tiles.

    Ultralytics resizes each training image so its long side equals ``imgsz``; for full
    frames that would shrink 4 px heads to 2 px. Tiling first keeps their size.

    Args:
        data_yaml: The source dataset.
        out_dir: Folder of the tiled copy (``images/``, ``labels/``, ``data.yaml``).
        tile_px: Tile side in px (the training ``imgsz``).
        overlap: Fraction of overlap between neighbouring tiles.
        min_visible: Keep a box in a tile only if this fraction of it is inside.

    Returns:
        Path of the tiled copy's ``data.yaml``.
    """
    out = Path(out_dir)
    names: list[str] = []
    for split in ("train", "val"):
        samples, names = load_yolo(data_yaml, split)
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for s in samples:
            img = cv2.imread(str(s.image), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise InputError(f"cannot read image {s.image}")
            h, w = img.shape[:2]
            for y0 in _grid(h, tile_px, overlap):
                for x0 in _grid(w, tile_px, overlap):
                    tile = img[y0:y0 + tile_px, x0:x0 + tile_px]
                    th, tw = tile.shape[:2]
                    c, keep = window_boxes(s.boxes, x0, y0, tw, th, min_visible)
                    name = f"{s.image.stem}_{y0}_{x0}"
                    cv2.imwrite(str(out / "images" / split / f"{name}.png"), tile)
                    write_yolo_labels(out / "labels" / split / f"{name}.txt", c[keep],
                                      s.classes[keep], tw, th)
    return write_data_yaml(out, ["train", "val"], names)


def write_yolo_dataset(splits: dict[str, list[Sample]], out_dir: str | Path,
                       names: list[str] | tuple[str, ...], scale: float = 1.0) -> Path:
    """Write samples as a YOLO dataset of 8-bit gray images, resized by ``scale``.

    Gray, because the detectors convert every frame to gray before they see it.

    Args:
        splits: Samples per split name (``train``, ``val``, ...).
        out_dir: Dataset folder (``images/<split>``, ``labels/<split>``, ``data.yaml``).
        names: Class names, index = class id.
        scale: Resize factor of images and boxes (0.5 halves them).

    Returns:
        Path of ``data.yaml``.

    Raises:
        InputError: If an image cannot be read.
    """
    out = Path(out_dir)
    for split, samples in splits.items():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for s in samples:
            img = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise InputError(f"cannot read image {s.image}")
            if abs(scale - 1.0) > 1e-9:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
            b = np.clip(np.asarray(s.boxes, float) * scale, 0, [w, h, w, h])
            cv2.imwrite(str(out / "images" / split / f"{s.image.stem}.png"), img)
            write_yolo_labels(out / "labels" / split / f"{s.image.stem}.txt", b, s.classes, w, h)
    return write_data_yaml(out, list(splits), names)
