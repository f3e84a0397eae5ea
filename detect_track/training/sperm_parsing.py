"""Sperm Parsing Dataset v2 (CLPMnet): real stained slides as a detection dataset.

The dataset (see ``../shared/data/sperm-parsing-v2/PROVENANCE.md``) gives one COCO box
around each whole spermatozoon (head + tail) and one part mask per cell (1 vacuole,
2 acrosome, 3 nucleus, 4 midpiece, 5 tail). Here each cell becomes two boxes: class 0
``sperm`` (the whole cell, the published box) and class 1 ``sperm_head`` (the bounding box
of acrosome, nucleus and vacuoles in its mask). Images are 1280x1024 at about
0.053 µm/px (a head is ~84 px long, ~4.5 µm).

No licence is stated for the data: weights trained on it are never the default.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from detect_track.errors import InputError
from detect_track.io.datasets import Sample

#: Classes of the slide detector trained on this data.
CLASS_NAMES = ("sperm", "sperm_head")
#: Part-mask values that make up the head (vacuole, acrosome, nucleus).
HEAD_PARTS = (1, 2, 3)
#: Scale of the images, from the median head length (84 px) and a 4.5 µm head.
UM_PER_PX = 0.053


def load_sperm_parsing(root: str | Path, heads: bool = True) -> list[Sample]:
    """Samples (sorted by file name) of a Sperm Parsing v2 folder.

    Args:
        root: Folder with ``annotations.json``, ``images/`` and ``parsing/``.
        heads: Add a ``sperm_head`` box (class 1) per cell from its part mask.

    Returns:
        One sample per image; boxes ``(N, 4)`` ``x1, y1, x2, y2`` in image pixels.

    Raises:
        InputError: If the folder or its annotations are missing.
    """
    root = Path(root)
    try:
        data = json.loads((root / "annotations.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {root / 'annotations.json'}: {exc}") from exc
    per_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for im in sorted(data["images"], key=lambda i: i["file_name"]):
        boxes, classes = [], []
        for a in per_image.get(im["id"], []):
            x, y, w, h = (float(v) for v in a["bbox"])
            boxes.append([x, y, x + w, y + h])
            classes.append(0)
            if heads and a.get("parsing"):
                head = head_box(root / "parsing" / a["parsing"])
                if head is not None:
                    boxes.append(head)
                    classes.append(1)
        samples.append(Sample(root / "images" / im["file_name"],
                              np.asarray(boxes, float).reshape(-1, 4),
                              np.asarray(classes, np.int64)))
    return samples


def head_box(mask_path: Path) -> list[float] | None:
    """Bounding box ``[x1, y1, x2, y2]`` of the head parts of one part mask, or None."""
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    ys, xs = np.nonzero(np.isin(mask, HEAD_PARTS))
    if len(xs) < 20:  # no head annotated (cell cut by the edge)
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def holdout_split(samples: list[Sample], every: int = 5) -> tuple[list[Sample], list[Sample]]:
    """Deterministic split: every ``every``-th image (sorted by name) is held out.

    Returns:
        ``(kept, held_out)``.
    """
    kept = [s for k, s in enumerate(samples) if k % every != every - 1]
    held = [s for k, s in enumerate(samples) if k % every == every - 1]
    return kept, held
