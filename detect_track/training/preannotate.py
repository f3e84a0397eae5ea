"""Frames of a video with the current detections, as pre-annotations to correct.

The fine-tune loop of a lab: export frames of its own footage with what the detector finds
today (:func:`preannotate`), correct the boxes in CVAT or Label Studio (both import YOLO
txt and COCO json), then fine-tune the shipped detector on the corrections
(``detect-track train yolo OUT/data.yaml --init weights/yolo-sperm.pt``). The same export
hands the raw per-frame detections to other tools.

Layout of the output folder (one dataset, two formats, both trainable as they are)::

    data.yaml                 ultralytics: path, train, val, names
    classes.txt               one class name per line (Label Studio, CVAT "YOLO 1.1")
    images/{train,val}/*.png  the exported frames, lossless
    labels/{train,val}/*.txt  YOLO: class cx cy w h (normalised), one box per line
    annotations/{train,val}.json   COCO: the same boxes, with a "score" per box

Every ``val_every``-th exported frame, from the second on, goes to ``val`` (it picks the
best epoch).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from detect_track.config import Config
from detect_track.detectors import create_detector
from detect_track.errors import ConfigError, InputError
from detect_track.io.datasets import add_coco_image, write_data_yaml, write_yolo_labels
from detect_track.io.export import atomic_write, ensure_output_dir
from detect_track.io.meta import resolve_meta
from detect_track.io.video import FrameSource

#: Splits written, in order.
SPLITS: tuple[str, ...] = ("train", "val")


@dataclass(frozen=True)
class PreannotateSettings:
    """Which frames are exported and which boxes go with them.

    Attributes:
        every_n_frames: Export frame 0, N, 2N, ... (consecutive frames are near copies).
        max_frames: Export at most this many frames.
        min_confidence: Keep boxes whose calibrated confidence is at least this (0.5 =
            the detector's operating point; lower shows more candidates to accept).
        val_every: Every k-th exported frame, starting with the second, goes to the
            ``val`` split (0 = none): two frames or more always give both splits.
    """

    every_n_frames: int = 25
    max_frames: int = 40
    min_confidence: float = 0.5
    val_every: int = 5

    def __post_init__(self) -> None:
        if self.every_n_frames < 1 or self.max_frames < 1 or self.val_every < 0:
            raise ConfigError("every_n_frames and max_frames must be >= 1, val_every >= 0")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError("min_confidence must be in [0, 1]")


def preannotate(source: str | os.PathLike[str], out_dir: str | os.PathLike[str], cfg: Config,
                settings: PreannotateSettings = PreannotateSettings(),  # noqa: B008 - frozen
                *, um_per_px: float | None = None,
                progress: Callable[[int, int], None] | None = None) -> Path:
    """Export frames of ``source`` with the configured detector's boxes (YOLO and COCO).

    Args:
        source: Video file, folder of frames or multi-page TIFF.
        out_dir: Output folder (created; files already there with the same names are
            replaced, each file written atomically).
        cfg: Configuration: ``detector.name`` and its section choose the detector.
        settings: Which frames and boxes to export.
        um_per_px: Micrometres per pixel (the detector resizes frames into its trained
            range and drops specks by their size in µm); else from ``cfg`` / default.
        progress: Called as ``progress(exported, planned)`` after each exported frame.

    Returns:
        Path of the written ``data.yaml``.

    Raises:
        InputError: Missing or unreadable input, or no frame to export.
        ConfigError: Invalid settings.
        OutputError: If the folder cannot be written.
    """
    src = FrameSource(source)
    meta, _ = resolve_meta(src, cfg, fps=1.0, um_per_px=um_per_px)  # fps plays no part
    detector = create_detector(cfg.detector.name, cfg, meta)
    names = [str(n) for n in detector.class_names]
    out = ensure_output_dir(out_dir)
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    coco = {s: {"images": [], "annotations": [], "categories": [
        {"id": k + 1, "name": n} for k, n in enumerate(names)]} for s in SPLITS}
    stem = Path(src.path).stem or "frames"
    n_total = src.info.n_frames
    planned = settings.max_frames if n_total < 0 else min(
        settings.max_frames, (n_total + settings.every_n_frames - 1) // settings.every_n_frames)
    done = 0
    for i, frame in src:
        if i % settings.every_n_frames:
            continue
        d = detector.detect(frame)
        keep = d.confidence >= settings.min_confidence
        boxes, classes, scores = d.xyxy[keep], d.class_id[keep], d.confidence[keep]
        split = "val" if settings.val_every and done % settings.val_every == \
            1 % settings.val_every else "train"
        name = f"{stem}_{i:06d}"
        h, w = frame.shape[:2]
        atomic_write(out / "images" / split / f"{name}.png", partial(_imwrite, frame=frame))
        atomic_write(out / "labels" / split / f"{name}.txt",
                     partial(write_yolo_labels, boxes=boxes, classes=classes, width=w, height=h))
        n_before = len(coco[split]["annotations"])
        add_coco_image(coco[split], f"{name}.png", w, h, boxes, classes)
        for ann, s in zip(coco[split]["annotations"][n_before:], scores, strict=True):
            ann["score"] = round(float(s), 4)
        done += 1
        if progress is not None:
            progress(done, planned)
        if done >= settings.max_frames:
            break
    if done == 0:
        raise InputError(f"{src.path}: no frame to export")
    for split in SPLITS:
        text = json.dumps(coco[split])
        atomic_write(out / "annotations" / f"{split}.json", partial(Path.write_text, data=text))
    atomic_write(out / "classes.txt", lambda p: p.write_text("\n".join(names) + "\n"))
    return write_data_yaml(out, list(SPLITS), names)


def _imwrite(path: Path, *, frame: np.ndarray) -> None:
    # atomic_write's temporary name may not end in .png: encode, then write the bytes
    ok, buf = cv2.imencode(".png", frame)
    if not ok:
        raise InputError(f"cannot encode a frame as PNG for {path}")
    path.write_bytes(buf.tobytes())
