"""Render detection training sets from the simulator (YOLO and COCO layouts).

:func:`build_detection_dataset` simulates many short, widely varied clips (look,
illumination, density, noise, blur, debris, defocus, compression and magnification
0.3-1.2 µm/px), reads a few frames of each back through the video decoder (so training
images carry the same compression artefacts as real files), samples square tiles from
the full frames at native resolution (never rescaled: a 4 px head stays 4 px), applies
microscopy-safe augmentations (90° rotations and flips; brightness, contrast, blur and
noise already vary with the simulated conditions) and writes:

* ``images/{train,val}/*.png`` and ``labels/{train,val}/*.txt`` (YOLO: ``class cx cy w h``
  normalised to the tile), ``data.yaml`` for ultralytics;
* ``annotations/{train,val}.json`` (COCO: ``bbox = [x, y, w, h]`` in pixels, category ids
  1-based) for EfficientDet;
* ``dataset.json``: the settings and the seed of every clip, so the set can be rebuilt.

Classes follow the VISEM-Tracking convention (``0 sperm, 1 cluster, 2 small_or_pinhead``)
so real data annotated that way trains the same models as is. The simulator labels free
heads ``sperm`` and agglutinates ``cluster`` (one box around the clump); it produces no
``small_or_pinhead`` labels (small heads are still sperm), so that class is learned only
from user data.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from detect_track.errors import ConfigError, OutputError
from detect_track.io.datasets import (
    add_coco_image,
    rotate_flip,
    window_boxes,
    write_yolo_labels,
)
from detect_track.io.video import FrameSource
from detect_track.synth.config import (
    PRESETS,
    SynthConfig,
    preset_config,
    random_config,
    replace_config,
)
from detect_track.synth.video import simulate

#: Class names of the detection datasets and models (VISEM-Tracking ids 0, 1, 2).
DETECTION_CLASSES: tuple[str, ...] = ("sperm", "cluster", "small_or_pinhead")


@dataclass(frozen=True)
class DatasetSpec:
    """How a simulated detection dataset is drawn.

    Attributes:
        n_videos: Clips to simulate (each gives ``frames_per_video`` frames).
        seed: Base seed; clip ``i`` uses seed ``seed * 100_000 + i``.
        tile_px: Side of the square training tiles in pixels (multiple of 32).
        frames_per_video: Frames read from each clip (spread over its length).
        tiles_per_frame: Random tiles cut from each frame.
        val_fraction: Fraction of clips (not tiles) held out for validation.
        um_per_px_min: Smallest magnification drawn (µm per pixel).
        um_per_px_max: Largest magnification drawn (µm per pixel).
        clip_frames: Frames simulated per clip.
        min_visible: Keep a label only if at least this fraction of its box is in the tile.
        preset: Name of a simulator preset fitted to real footage (e.g. ``visem``,
            :func:`~detect_track.synth.config.preset_config`); "" = none.
        preset_fraction: Fraction of clips drawn from ``preset`` (the rest from
            :func:`~detect_track.synth.config.random_config`); their cell count is varied
            x0.3-2.5 (about 10-100 heads per frame) on its own random stream.
        hard_fraction: Fraction of clips whose optics are drawn beyond
            :func:`~detect_track.synth.config.random_config`'s range (:func:`harder`:
            stronger blur, more defocused cells, lower head contrast, more noise); 0 keeps
            every clip within it (and the draws of earlier datasets unchanged).
    """

    n_videos: int = 400
    seed: int = 0
    tile_px: int = 320
    frames_per_video: int = 3
    tiles_per_frame: int = 2
    val_fraction: float = 0.1
    um_per_px_min: float = 0.3
    um_per_px_max: float = 1.2
    clip_frames: int = 12
    min_visible: float = 0.6
    hard_fraction: float = 0.0
    preset: str = ""
    preset_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.n_videos < 1 or self.frames_per_video < 1 or self.tiles_per_frame < 1:
            raise ConfigError("n_videos, frames_per_video and tiles_per_frame must be >= 1")
        if self.tile_px < 32 or self.tile_px % 32:
            raise ConfigError("tile_px must be a multiple of 32 and >= 32")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError("val_fraction must be in [0, 1)")
        if not 0.05 <= self.um_per_px_min <= self.um_per_px_max:
            raise ConfigError("need 0.05 <= um_per_px_min <= um_per_px_max")
        if self.clip_frames < self.frames_per_video:
            raise ConfigError("clip_frames must be >= frames_per_video")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise ConfigError("hard_fraction must be in [0, 1]")
        if not 0.0 <= self.preset_fraction <= 1.0:
            raise ConfigError("preset_fraction must be in [0, 1]")
        if self.preset and self.preset not in PRESETS:
            raise ConfigError(f"unknown simulator preset '{self.preset}' (known: {PRESETS})")


def harder(cfg: SynthConfig, rng: np.random.Generator) -> SynthConfig:
    """The same clip seen through worse optics than :func:`random_config` draws.

    Blur 0.8-1.4 µm (its range: 0.2-0.8), 20-45 % of cells defocused (0-20 %), head
    contrast x0.6-0.9 and noise x1.5-2.5 (capped at 16 grey levels): the footage of a
    badly focused or dim microscope, which a detector should still read.

    Args:
        cfg: A drawn configuration.
        rng: Source of the extra draws.

    Returns:
        The configuration with those optics.
    """
    return replace_config(
        cfg, blur_um=float(rng.uniform(0.8, 1.4)),
        defocus_frac=float(rng.uniform(0.2, 0.45)),
        head_contrast=cfg.head_contrast * float(rng.uniform(0.6, 0.9)),
        noise_std=float(min(16.0, cfg.noise_std * rng.uniform(1.5, 2.5))))


def frame_boxes(gt_txt: Path, truth_points: Path) -> dict[int, np.ndarray]:
    """Labelled boxes per frame from a simulated video's truth.

    Free heads centred in the frame (``conf = 1`` in ``gt.txt``) become ``sperm`` boxes;
    the heads of each agglutinate become one ``cluster`` box around them.

    Args:
        gt_txt: ``gt/gt.txt`` of the video.
        truth_points: ``truth_points.csv`` of the video (for the agglutinate flag).

    Returns:
        ``{frame (0-based): array (N, 5)}`` of ``x1, y1, x2, y2, class_id`` in pixels.
    """
    cols = ["frame", "id", "left", "top", "w", "h", "conf", "cls", "vis"]
    gt = pd.read_csv(gt_txt, header=None, names=cols)
    if len(gt) == 0:
        return {}
    gt["frame"] -= 1
    pts = pd.read_csv(truth_points, usecols=["frame", "track_id", "agglutinated"])
    gt = gt.merge(pts.rename(columns={"track_id": "id"}), on=["frame", "id"], how="left")
    gt["agglutinated"] = gt["agglutinated"].fillna(False).astype(bool)
    gt["x1"], gt["y1"] = gt["left"], gt["top"]
    gt["x2"], gt["y2"] = gt["left"] + gt["w"], gt["top"] + gt["h"]
    out: dict[int, np.ndarray] = {}
    free = gt[(gt["conf"] == 1) & ~gt["agglutinated"]]
    for frame, g in free.groupby("frame"):
        out[int(frame)] = np.column_stack([g[["x1", "y1", "x2", "y2"]].to_numpy(),
                                           np.zeros(len(g))])
    clumped = gt[gt["agglutinated"]]
    if len(clumped):
        # heads of one agglutinate overlap: link them by box overlap within a frame
        for frame, g in clumped.groupby("frame"):
            boxes = g[["x1", "y1", "x2", "y2"]].to_numpy()
            merged = _merge_touching(boxes, pad=1.0)
            rows = np.column_stack([merged, np.ones(len(merged))])
            prev = out.get(int(frame))
            out[int(frame)] = rows if prev is None else np.vstack([prev, rows])
    return out


def _merge_touching(boxes: np.ndarray, pad: float) -> np.ndarray:
    """Union boxes that overlap (after padding by ``pad`` px) into clump boxes."""
    boxes = boxes.copy()
    changed = True
    while changed and len(boxes) > 1:
        changed = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if (a[0] - pad <= b[2] and b[0] - pad <= a[2]
                        and a[1] - pad <= b[3] and b[1] - pad <= a[3]):
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                max(a[3], b[3])]
                    boxes = np.delete(boxes, j, axis=0)
                    changed = True
                    break
            if changed:
                break
    return boxes


def _tile_labels(boxes: np.ndarray, x0: int, y0: int, size: int,
                 min_visible: float) -> np.ndarray:
    """Boxes ``(N, 5)`` shifted into a tile and clipped; mostly-outside ones dropped."""
    if len(boxes) == 0:
        return np.zeros((0, 5))
    c, keep = window_boxes(boxes[:, :4], x0, y0, size, size, min_visible)
    return np.column_stack([c, boxes[:, 4]])[keep]


def augment_tile(tile: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Random 90° rotation and flip of a square tile and its boxes ``(N, 5)``."""
    k = int(rng.integers(0, 4))
    tile, boxes = rotate_flip(tile, labels[:, :4], k, bool(rng.random() < 0.5))
    return tile, np.column_stack([boxes, labels[:, 4]])


def build_detection_dataset(
    out_dir: str | Path,
    spec: DatasetSpec = DatasetSpec(),  # noqa: B008 - frozen, immutable default
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate clips and write a YOLO + COCO detection dataset of tiles.

    Args:
        out_dir: Dataset folder (created; an existing dataset there is replaced).
        spec: How many clips, tiles, which magnifications.
        progress: Called as ``progress(done, total)`` after each clip.

    Returns:
        Path of ``data.yaml`` (ultralytics dataset file).

    Raises:
        OutputError: If the folder cannot be written.
    """
    out = Path(out_dir)
    try:
        if out.exists():
            shutil.rmtree(out)
        for split in ("train", "val"):
            (out / "images" / split).mkdir(parents=True)
            (out / "labels" / split).mkdir(parents=True)
        (out / "annotations").mkdir()
    except OSError as exc:
        raise OutputError(f"cannot write dataset folder {out}: {exc}") from exc
    rng = np.random.default_rng([spec.seed, 0xDA7A])
    coco: dict[str, dict] = {s: {"images": [], "annotations": []} for s in ("train", "val")}
    clips = []
    n_val = int(round(spec.n_videos * spec.val_fraction))
    val_ids = set(np.linspace(0, spec.n_videos - 1, n_val).round().astype(int).tolist()) \
        if n_val else set()
    size = spec.tile_px
    with tempfile.TemporaryDirectory(prefix="dt-dataset-") as tmp:
        for i in range(spec.n_videos):
            split = "val" if i in val_ids else "train"
            seed = spec.seed * 100_000 + i
            um = float(np.exp(rng.uniform(math.log(spec.um_per_px_min),
                                          math.log(spec.um_per_px_max))))
            fmt = str(rng.choice(["avi", "mp4", "png"], p=[0.45, 0.35, 0.2]))
            base = random_config(seed, um_per_px=round(um, 3), video_format=fmt,
                                 duration_s=1.0)
            cfg = random_config(seed, um_per_px=round(um, 3), video_format=fmt,
                                duration_s=spec.clip_frames / base.fps)
            hard_rng = np.random.default_rng([spec.seed, i, 0x4A2D])  # own stream: the
            # main one draws exactly as in datasets built before hard clips existed
            hard = spec.hard_fraction > 0 and hard_rng.random() < spec.hard_fraction
            preset_rng = np.random.default_rng([spec.seed, i, 0x9E5E])  # own stream as well
            from_preset = bool(spec.preset) and preset_rng.random() < spec.preset_fraction
            if from_preset:
                pre = preset_config(spec.preset, seed, um_per_px=round(um, 3),
                                    video_format=fmt)
                cfg = replace_config(
                    pre, duration_s=spec.clip_frames / pre.fps,
                    n_cells=max(3, int(round(pre.n_cells * math.exp(
                        preset_rng.uniform(math.log(0.3), math.log(2.5)))))))
            if hard:
                cfg = harder(cfg, hard_rng)
            res = simulate(Path(tmp) / "clip", cfg)
            boxes = frame_boxes(res.gt_path, res.gt_path.parent.parent / "truth_points.csv")
            wanted = set(np.linspace(0, cfg.n_frames - 1, spec.frames_per_video)
                         .round().astype(int).tolist())
            clips.append({"index": i, "split": split, "seed": seed, "um_per_px": cfg.um_per_px,
                          "look": json.loads(res.meta_path.read_text())["look"],
                          "video_format": fmt, "hard": bool(hard)})
            if from_preset:  # only then: datasets without a preset keep their dataset.json
                clips[-1]["preset"] = spec.preset
            for f, frame in FrameSource(res.video_path):
                if f not in wanted:
                    continue
                h, w = frame.shape[:2]
                for t in range(spec.tiles_per_frame):
                    x0 = int(rng.integers(0, max(1, w - size + 1)))
                    y0 = int(rng.integers(0, max(1, h - size + 1)))
                    tile = np.zeros((size, size), np.uint8)
                    crop = frame[y0:y0 + size, x0:x0 + size]
                    tile[:crop.shape[0], :crop.shape[1]] = crop
                    labels = _tile_labels(boxes.get(f, np.zeros((0, 5))), x0, y0, size,
                                          spec.min_visible)
                    tile, labels = augment_tile(tile, labels, rng)
                    name = f"v{i:05d}_f{f:03d}_t{t}"
                    _write_tile(out, split, name, tile, labels, coco[split], size)
            if progress is not None:
                progress(i + 1, spec.n_videos)
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(DETECTION_CLASSES)]
    for split, d in coco.items():
        d["categories"] = categories
        (out / "annotations" / f"{split}.json").write_text(json.dumps(d))
    names = "\n".join(f"  {k}: {n}" for k, n in enumerate(DETECTION_CLASSES))
    yaml_path = out / "data.yaml"
    yaml_path.write_text(f"# simulated sperm detection tiles (detect_track.synth.dataset)\n"
                         f"path: {out.resolve()}\ntrain: images/train\nval: images/val\n"
                         f"names:\n{names}\n")
    (out / "dataset.json").write_text(json.dumps({"spec": asdict(spec), "clips": clips},
                                                 indent=1))
    return yaml_path


def _write_tile(out: Path, split: str, name: str, tile: np.ndarray, labels: np.ndarray,
                coco: dict, size: int) -> None:
    """Write one tile image, its YOLO label file and its COCO records."""
    img_path = out / "images" / split / f"{name}.png"
    if not cv2.imwrite(str(img_path), tile):
        raise OutputError(f"cannot write {img_path}")
    b, c = labels[:, :4].reshape(-1, 4), labels[:, 4].astype(np.int64)
    keep = (b[:, 2] - b[:, 0] >= 1.0) & (b[:, 3] - b[:, 1] >= 1.0)  # no sub-pixel boxes
    add_coco_image(coco, f"{name}.png", size, size, b[keep], c[keep])
    write_yolo_labels(out / "labels" / split / f"{name}.txt", b[keep], c[keep], size, size)
