"""Train the small-object YOLO detector with ultralytics, offline, on CPU or GPU.

The model is built from ``detect_track/models/yolo-sperm-p2.yaml`` (or a yaml you give);
nothing is downloaded. Augmentations suit grayscale microscopy: flips both ways, no hue
or saturation shift, brightness changes, mild scale jitter, mosaic; 90° rotations, blur,
noise and contrast come from the dataset builder (:mod:`detect_track.synth.dataset`).
Training images are used at native resolution: ``imgsz`` must equal the tile size of the
dataset, so a 4 px head is never shrunk.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detect_track.errors import ConfigError, InputError, OutputError
from detect_track.io.datasets import (
    load_dataset,
    load_yolo,
    needs_tiling,
    tile_yolo_dataset,
    write_yolo_dataset,
)
from detect_track.ml import prepare_ultralytics, torch_threads

MODEL_YAML = Path(__file__).resolve().parent.parent / "models" / "yolo-sperm-p2.yaml"


@dataclass(frozen=True)
class YoloTrainSettings:
    """Settings of one YOLO training run (ultralytics argument names where they exist).

    Attributes:
        epochs: Maximum number of epochs.
        patience: Early stopping: epochs without validation improvement before stopping.
        imgsz: Training image size in px (the dataset's tile size; images are not resized).
        batch: Images per batch.
        workers: Data-loading worker processes.
        device: ``"cpu"``, a CUDA index such as ``"0"``, or ``""`` for automatic.
        seed: Random seed (training is deterministic on CPU for one seed).
        lr0: Initial learning rate (AdamW).
        model_yaml: Model definition; default the shipped small-object P2 yaml.
        fraction: Fraction of the training images to use (smoke runs).
        close_mosaic: Final epochs trained without mosaic.
        cache: Keep decoded images in memory.
        init_weights: Start from these weights (fine-tuning) instead of from scratch.
        tile: Cut images larger than ``imgsz`` into native-resolution tiles (small heads);
            False lets ultralytics resize each image to ``imgsz`` (large objects such as
            whole cells on a slide).
        scale: Random scale jitter (ultralytics ``scale``, +-fraction).
        warmup_epochs: Learning-rate warm-up (ultralytics lasts at least 100 batches and
            starts the biases at lr 0.1); 0 for none, which suits fine-tuning a trained
            model on a small set (the warm-up first undoes much of what it knew).
    """

    epochs: int = 40
    patience: int = 8
    imgsz: int = 320
    batch: int = 32
    workers: int = 2
    device: str = "cpu"
    seed: int = 0
    lr0: float = 0.004
    model_yaml: str = str(MODEL_YAML)
    fraction: float = 1.0
    close_mosaic: int = 5
    cache: bool = True
    init_weights: str = ""
    tile: bool = True
    scale: float = 0.25
    warmup_epochs: float = 1.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.patience < 1:
            raise ConfigError("epochs, batch and patience must be >= 1")
        if not self.warmup_epochs >= 0:
            raise ConfigError("warmup_epochs must be >= 0")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ConfigError("imgsz must be a multiple of 32")
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError("fraction must be in (0, 1]")


def coco_to_yolo(coco_dir: Path, out_dir: Path) -> Path:
    """Copy a COCO dataset (``annotations/{train,val}.json``, ``images/<split>/``) as YOLO.

    Returns:
        Path of the copy's ``data.yaml`` (images in 8-bit gray, as the detectors see them;
        boxes unchanged).

    Raises:
        InputError: If the train or val split is missing or unreadable.
    """
    train, names = load_dataset(coco_dir, "train")
    val, _ = load_dataset(coco_dir, "val")
    return write_yolo_dataset({"train": train, "val": val}, out_dir, names)


def train_yolo(data_yaml: str | Path, out_dir: str | Path,
               settings: YoloTrainSettings = YoloTrainSettings(),  # noqa: B008 - frozen
               log: Callable[[str], None] | None = None) -> Path:
    """Train a YOLO detector and return the path of its best weights.

    Args:
        data_yaml: Ultralytics dataset file (``path``, ``train``, ``val``, ``names``), or a
            COCO folder (``annotations/{train,val}.json``: converted first), e.g.
            written by :func:`detect_track.synth.dataset.build_detection_dataset` or a
            VISEM-Tracking-style dataset (classes 0 sperm, 1 cluster, 2 small_or_pinhead).
        out_dir: Folder for the run (``out_dir/train``: weights, results.csv, args.yaml).
        settings: Training settings.
        log: Called with a one-line message at the end of each epoch.

    Returns:
        Path of ``best.pt`` (chosen on validation mAP50-95, optimiser stripped).

    Raises:
        InputError: If the dataset file or model yaml is missing.
        OutputError: If training produced no weights.
    """
    data_yaml = Path(data_yaml)
    if not Path(settings.model_yaml).is_file():
        raise InputError(f"model yaml not found: {settings.model_yaml}")
    out = Path(out_dir).resolve()
    if data_yaml.is_dir() and (data_yaml / "annotations" / "train.json").is_file():
        data_yaml = coco_to_yolo(data_yaml, out / "yolo-data")  # ultralytics reads YOLO only
        if log is not None:
            log(f"COCO dataset converted to YOLO layout in {data_yaml.parent}")
    if not data_yaml.is_file():
        raise InputError(f"dataset file not found: {data_yaml}")
    prepare_ultralytics()
    from ultralytics import YOLO

    out.mkdir(parents=True, exist_ok=True)
    train_samples, _ = load_yolo(data_yaml, "train")
    if not train_samples:
        raise InputError(f"no training images found for {data_yaml}")
    if settings.tile and needs_tiling(train_samples, settings.imgsz):  # tile, never shrink
        if log is not None:
            log(f"images are larger than {settings.imgsz} px: training on native-resolution "
                f"tiles in {out / 'tiles'}")
        data_yaml = tile_yolo_dataset(data_yaml, out / "tiles", settings.imgsz)
    model = YOLO(settings.model_yaml, task="detect")
    if settings.init_weights:
        if not Path(settings.init_weights).is_file():
            raise InputError(f"initial weights not found: {settings.init_weights}")
        model.load(settings.init_weights)
    threads = torch_threads()

    def _restore_threads(_: Any) -> None:  # ultralytics' device set-up drops to 1 thread
        import torch

        torch.set_num_threads(threads)

    def _log_epoch(trainer: Any) -> None:
        if log is not None:
            m = trainer.metrics or {}
            log(f"epoch {trainer.epoch + 1}/{trainer.epochs}: "
                f"mAP50 {m.get('metrics/mAP50(B)', float('nan')):.3f} "
                f"mAP50-95 {m.get('metrics/mAP50-95(B)', float('nan')):.3f}")

    model.add_callback("on_pretrain_routine_end", _restore_threads)
    model.add_callback("on_train_epoch_start", _restore_threads)
    model.add_callback("on_fit_epoch_end", _log_epoch)
    model.train(
        data=str(data_yaml), epochs=settings.epochs, patience=settings.patience,
        imgsz=settings.imgsz, batch=settings.batch, workers=settings.workers,
        device=settings.device, seed=settings.seed, deterministic=True,
        optimizer="AdamW", lr0=settings.lr0, cos_lr=True, warmup_epochs=settings.warmup_epochs,
        project=str(out), name="train", exist_ok=True, plots=False, amp=False,
        fraction=settings.fraction, close_mosaic=settings.close_mosaic,
        cache="ram" if settings.cache else False, verbose=False,
        # microscopy augmentation: no colour shifts on grayscale, flips both ways,
        # gentle scale jitter (magnification varies in the data already), no shear
        hsv_h=0.0, hsv_s=0.0, hsv_v=0.3, degrees=0.0, translate=0.1, scale=settings.scale,
        shear=0.0, perspective=0.0, flipud=0.5, fliplr=0.5, mosaic=1.0, mixup=0.0,
        rect=False, single_cls=False, val=True,
    )
    best = out / "train" / "weights" / "best.pt"
    if not best.is_file():
        last = out / "train" / "weights" / "last.pt"
        if not last.is_file():
            raise OutputError(f"training wrote no weights under {out / 'train'}")
        shutil.copyfile(last, best)
    return best

