"""Train the small-anchor EfficientDet on a YOLO or COCO dataset, offline.

The network comes from the architecture preset (``detect_track/models/effdet-sperm.yaml``)
with ``pretrained=False, pretrained_backbone=False``. Each step samples a native-resolution
tile from every image (full frames are never shrunk), augments it (90° rotations, flips,
brightness/contrast, blur, noise) and trains with effdet's focal + box loss, the anchor
labeler using the preset's looser IoU match threshold. AdamW with a cosine schedule;
early stopping on the validation loss; the best epoch is saved as a self-describing
checkpoint (architecture preset, class names, weights).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from detect_track.detectors.effdet import ARCH_YAML, CHECKPOINT_FORMAT, build_model, load_arch
from detect_track.errors import ConfigError, InputError
from detect_track.io.datasets import Sample, load_dataset
from detect_track.ml import require, torch_threads
from detect_track.training.data import augment, random_tile


@dataclass(frozen=True)
class EffdetTrainSettings:
    """Settings of one EfficientDet training run.

    Attributes:
        epochs: Maximum number of epochs.
        patience: Early stopping: epochs without a lower validation loss before stopping.
        imgsz: Side of the square training tiles in px (multiple of ``2**max_level``).
        batch: Tiles per step.
        lr: Peak AdamW learning rate (cosine decay, one warm-up epoch).
        weight_decay: AdamW weight decay.
        samples_per_epoch: Tiles per epoch (0 = one per training image).
        device: ``"cpu"`` or a CUDA device such as ``"cuda:0"``.
        seed: Random seed.
        arch_yaml: Architecture preset.
        fraction: Fraction of the training images used (smoke runs).
        init_weights: Start from this detect-track EfficientDet checkpoint (fine-tuning):
            every tensor whose name and shape fit the preset's network is loaded (a
            different number of classes leaves only the class head untrained).
    """

    epochs: int = 12
    patience: int = 3
    imgsz: int = 320
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    samples_per_epoch: int = 0
    device: str = "cpu"
    seed: int = 0
    arch_yaml: str = str(ARCH_YAML)
    fraction: float = 1.0
    init_weights: str = ""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.patience < 1 or self.imgsz < 32:
            raise ConfigError("epochs, batch, patience must be >= 1 and imgsz >= 32")
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError("fraction must be in (0, 1]")


def _read(sample: Sample) -> np.ndarray:
    img = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {sample.image}")
    return img


def _batch(samples: list[Sample], size: int, rng: np.random.Generator, train: bool,
           torch: object) -> tuple[object, dict]:
    """Images ``(B, 3, S, S)`` and effdet targets (boxes ``y1 x1 y2 x2``, 1-based classes)."""
    from detect_track.detectors.effdet import normalise

    imgs, boxes, classes = [], [], []
    for s in samples:
        tile, b, c = random_tile(_read(s), s.boxes, s.classes, size, rng)
        if train:
            tile, b = augment(tile, b, rng)
        imgs.append(tile)
        boxes.append(b)
        classes.append(c)
    n = max(1, max(len(b) for b in boxes))
    bb = np.full((len(samples), n, 4), -1.0, np.float32)
    cc = np.full((len(samples), n), -1.0, np.float32)
    for i, (b, c) in enumerate(zip(boxes, classes, strict=True)):
        bb[i, :len(b)] = b[:, [1, 0, 3, 2]]
        cc[i, :len(c)] = c + 1
    x = torch.from_numpy(normalise(np.stack(imgs)))  # type: ignore[attr-defined]
    target = {"bbox": torch.from_numpy(bb), "cls": torch.from_numpy(cc)}  # type: ignore
    return x, target


def train_effdet(data: str | Path, out_dir: str | Path,
                 settings: EffdetTrainSettings = EffdetTrainSettings(),  # noqa: B008
                 log: Callable[[str], None] | None = None) -> Path:
    """Train an EfficientDet and return the path of the best checkpoint.

    Args:
        data: YOLO ``data.yaml`` or a COCO folder (``annotations/{train,val}.json`` +
            ``images/{train,val}/``).
        out_dir: Folder for ``best.pt``, ``last.pt`` and ``results.csv``.
        settings: Training settings.
        log: Called with a one-line message after each epoch.

    Returns:
        Path of ``best.pt`` (lowest validation loss).

    Raises:
        InputError: On a missing or unreadable dataset.
        ConfigError: On an invalid preset or settings.
    """
    torch = require("torch")
    train, names = load_dataset(data, "train")
    val, _ = load_dataset(data, "val")
    if not train:
        raise InputError(f"no training images in {data}")
    arch = load_arch(settings.arch_yaml)
    arch["num_classes"] = len(names)
    if settings.imgsz % 2 ** int(arch.get("max_level", 7)):
        raise ConfigError(f"imgsz must be divisible by 2**max_level = {2 ** arch['max_level']}")
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(torch_threads())
    if settings.fraction < 1.0:
        keep = rng.permutation(len(train))[:max(1, int(len(train) * settings.fraction))]
        train = [train[i] for i in sorted(keep)]
        val = val[:max(1, int(len(val) * settings.fraction))] if val else val
    size = settings.imgsz
    bench = build_model(arch, (size, size), "train")
    if settings.init_weights:
        load_init_weights(bench.model, settings.init_weights, settings.arch_yaml, log)
    bench = bench.to(settings.device)
    opt = torch.optim.AdamW(bench.parameters(), lr=settings.lr,
                            weight_decay=settings.weight_decay)
    per_epoch = settings.samples_per_epoch or len(train)
    steps = max(1, math.ceil(per_epoch / settings.batch))
    total = steps * settings.epochs

    def lr_at(step: int) -> float:
        if step < steps:  # one warm-up epoch
            return settings.lr * (step + 1) / steps
        return settings.lr * 0.5 * (1 + math.cos(math.pi * step / total))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    best_loss, best_epoch, step = math.inf, -1, 0
    rows = ["epoch,train_loss,val_loss,seconds"]
    val_rng_seed = settings.seed + 1
    for epoch in range(settings.epochs):
        t0 = time.perf_counter()
        bench.train()
        order = rng.permutation(len(train))
        order = np.resize(order, steps * settings.batch)
        losses = []
        for k in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            idx = order[k * settings.batch:(k + 1) * settings.batch]
            x, target = _batch([train[i] for i in idx], size, rng, True, torch)
            loss = bench(x.to(settings.device),
                         {k2: v.to(settings.device) for k2, v in target.items()})["loss"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(bench.parameters(), 10.0)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        val_loss = _val_loss(bench, val, size, val_rng_seed, settings, torch) if val \
            else float(np.mean(losses))
        ckpt = {"format": CHECKPOINT_FORMAT, "arch": arch, "class_names": list(names),
                "state_dict": bench.model.state_dict(),
                "train": {**asdict(settings), "epoch": epoch + 1, "val_loss": val_loss,
                          "data": str(data)}}
        torch.save(ckpt, out / "last.pt")
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            torch.save(ckpt, out / "best.pt")
        rows.append(f"{epoch + 1},{np.mean(losses):.5f},{val_loss:.5f},"
                    f"{time.perf_counter() - t0:.1f}")
        (out / "results.csv").write_text("\n".join(rows) + "\n")
        if log is not None:
            log(f"epoch {epoch + 1}/{settings.epochs}: train loss {np.mean(losses):.4f} "
                f"val loss {val_loss:.4f} ({time.perf_counter() - t0:.0f} s)")
        if epoch - best_epoch >= settings.patience:
            break
    return out / "best.pt"


def load_init_weights(model: object, path: str, arch_yaml: str,
                      log: Callable[[str], None] | None) -> None:
    """Load the tensors of checkpoint ``path`` that fit ``model`` (names and shapes)."""
    from detect_track.detectors.effdet import read_checkpoint

    if not Path(path).is_file():
        raise InputError(f"initial weights not found: {path}")
    own = model.state_dict()  # type: ignore[attr-defined]
    fit = {k: v for k, v in read_checkpoint(path)["state_dict"].items()
           if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if len(fit) < len(own) // 2:
        raise ConfigError(f"{path} does not fit the network of {arch_yaml} "
                          f"({len(fit)} of {len(own)} tensors match): give its --arch")
    model.load_state_dict(fit, strict=False)  # type: ignore[attr-defined]
    if log is not None:
        log(f"started from {path} ({len(fit)} of {len(own)} tensors)")


def _val_loss(bench: object, val: list[Sample], size: int, seed: int,
              settings: EffdetTrainSettings, torch: object) -> float:
    """Mean loss on fixed (seeded) validation tiles, without augmentation."""
    rng = np.random.default_rng(seed)
    total, n = 0.0, 0
    bench.train()  # type: ignore[attr-defined]  # train bench computes the loss
    with torch.no_grad():  # type: ignore[attr-defined]
        for k in range(0, len(val), settings.batch):
            x, target = _batch(val[k:k + settings.batch], size, rng, False, torch)
            # batch-norm statistics must not move: evaluate modules in eval mode
            bench.model.eval()  # type: ignore[attr-defined]
            loss = bench(x.to(settings.device),  # type: ignore[operator]
                         {k2: v.to(settings.device) for k2, v in target.items()})["loss"]
            total += float(loss) * len(x)
            n += len(x)
    return total / max(n, 1)
