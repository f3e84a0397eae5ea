"""Morphology image sets: class folders, plain image folders, MHSMA-style ``.npy`` arrays.

Three layouts are read, as HuSHeM, SCIAN and MHSMA are distributed:

* a folder with one sub-folder per class (``DATA/normal/*.png``, ``DATA/tapered/*.png``);
* a folder of images (no labels: for prediction);
* MHSMA arrays: ``x_*.npy`` images ``(N, H, W)`` uint8 with ``y_<task>_*.npy`` labels
  ``(N,)`` (0 normal, 1 abnormal), given as the folder holding them or one ``x_*.npy`` file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detect_track.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Classes of the binary per-part tasks (MHSMA convention: label 0 normal, 1 abnormal).
BINARY_CLASSES = ("normal", "abnormal")


@dataclass
class ImageSet:
    """Grayscale crops with their names and (optionally) labels.

    Attributes:
        images: List of ``(H, W)`` uint8 arrays (sizes may differ).
        items: One name per image: the file name, or the 0-based index for ``.npy`` input.
        labels: Class index per image ``(N,)`` int64, or None when unlabelled.
        class_names: Names of the class indices (empty when unlabelled).
    """

    images: list[np.ndarray]
    items: list[str]
    labels: np.ndarray | None
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Any 2-D / 3-channel 8- or 16-bit image as ``(H, W)`` uint8 (16-bit stretched)."""
    img = np.asarray(image)
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        img = img.mean(axis=2) if img.shape[2] == 3 else img[:, :, 0]
    if img.ndim != 2:
        raise InputError(f"expected a 2-D image, got shape {np.asarray(image).shape}")
    if img.dtype == np.uint8:
        return img
    f = img.astype(np.float64)
    lo, hi = np.percentile(f, [0.5, 99.5]) if f.size else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1.0
    return np.clip((f - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)


def _read_image(path: Path) -> np.ndarray:
    from detect_track.io.video import DEFAULT_MAX_PIXELS, check_pixels, image_size

    size = image_size(path)  # a crop: refuse a bomb before decoding it
    if size is not None:
        check_pixels(size[0], size[1], DEFAULT_MAX_PIXELS, path)
    if not path.is_file():
        raise InputError(f"{path} is not a readable image")
    data = np.fromfile(path, np.uint8)  # bytes decoded here: any file name, even not UTF-8
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path} is not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) if img.shape[2] == 4 else img
    return to_gray_u8(img)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()  # no macOS "._x.png" forks
                  and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _npy_pairs(folder: Path, task: str | None) -> list[tuple[Path, Path | None]]:
    """``(x_*.npy, y_<task>_*.npy or None)`` pairs; the 64 px arrays are preferred."""
    pairs = []
    for x in sorted(folder.glob("x_*.npy")):
        m = re.fullmatch(r"x_(?:(\d+)_)?(.+)\.npy", x.name)
        if not m:
            continue
        size, split = m.group(1), m.group(2)
        if size and size != "64" and (folder / f"x_64_{split}.npy").exists():
            continue
        y = folder / f"y_{task}_{split}.npy" if task else None
        pairs.append((x, y if y is not None and y.exists() else None))
    return pairs


def _load_npy(x_path: Path, y_path: Path | None, offset: int = 0
              ) -> tuple[list[np.ndarray], list[str], np.ndarray | None]:
    try:
        x = np.load(x_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{x_path} is not a readable .npy array ({exc})") from None
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.mean(axis=-1) if x.shape[-1] == 3 else x[..., 0]
    if x.ndim != 3:
        raise InputError(f"{x_path} must hold images (N, H, W), got shape {x.shape}")
    images = [to_gray_u8(im) for im in x]
    items = [str(offset + i) for i in range(len(images))]
    labels = None
    if y_path is not None:
        y = np.load(y_path, allow_pickle=False).reshape(-1)
        if len(y) != len(images):
            raise InputError(f"{y_path} has {len(y)} labels for {len(images)} images")
        if not np.isin(y, (0, 1)).all():
            raise InputError(f"{y_path}: labels must be 0 (normal) or 1 (abnormal)")
        labels = y.astype(np.int64)
    return images, items, labels


def load_image_set(path: str | os.PathLike[str], task: str | None = None,
                   labelled: bool = True) -> ImageSet:
    """Read crops from any of the three layouts (see the module docstring).

    Args:
        path: Folder or ``x_*.npy`` file.
        task: For ``.npy`` input, which labels to read (``y_<task>_*.npy``).
        labelled: If True, labels are required (class folders or ``y_*.npy`` arrays).

    Returns:
        The images, item names and labels.

    Raises:
        InputError: Missing path, nothing readable, or labels required but absent.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist")
    if p.is_file():
        if p.suffix.lower() == ".npy":
            y = None
            if task:
                m = re.fullmatch(r"x_(?:\d+_)?(.+)\.npy", p.name)
                cand = p.with_name(f"y_{task}_{m.group(1)}.npy") if m else None
                y = cand if cand is not None and cand.exists() else None
            images, items, labels = _load_npy(p, y)
            out = ImageSet(images, items, labels, BINARY_CLASSES if labels is not None else ())
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            out = ImageSet([_read_image(p)], [p.name], None, ())
        else:
            raise InputError(f"{p}: expected a folder, an image or an x_*.npy array")
    else:
        subdirs = sorted(d for d in p.iterdir() if d.is_dir() and _images_in(d))
        pairs = _npy_pairs(p, task)
        if subdirs:
            images, items, labels = [], [], []
            for k, d in enumerate(subdirs):
                for f in _images_in(d):
                    images.append(_read_image(f))
                    items.append(f"{d.name}/{f.name}")
                    labels.append(k)
            out = ImageSet(images, items, np.array(labels, np.int64),
                           tuple(d.name for d in subdirs))
        elif pairs:
            images, items, labs = [], [], []
            for x, y in pairs:
                if labelled and y is None:
                    continue
                im, it, lab = _load_npy(x, y, offset=0)
                images += im
                items += [f"{x.name}:{i}" for i in it] if len(pairs) > 1 else it
                labs.append(lab)
            have = [lab for lab in labs if lab is not None]
            labels_arr = np.concatenate(have) if have and len(have) == len(labs) else None
            out = ImageSet(images, items, labels_arr,
                           BINARY_CLASSES if labels_arr is not None else ())
        else:
            files = _images_in(p)
            out = ImageSet([_read_image(f) for f in files], [f.name for f in files], None, ())
    if len(out) == 0:
        raise InputError(f"no images found in {p}")
    if labelled and out.labels is None:
        hint = (f" (no y_{task}_*.npy beside the images)" if task else
                " (give a folder with one sub-folder per class, or MHSMA arrays with --task)")
        raise InputError(f"{p} has no labels{hint}")
    return out
