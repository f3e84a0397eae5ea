"""Train the smear cell classifier that re-labels small cells (weights/smear-cell-classifier.pt).

The testicular detectors find elongated spermatids, immature and mature sperm well but
mix their classes up (an immature sperm differs from a mature one by a droplet a few
pixels across). This classifier looks again at each such detection
(:mod:`detect_track.detectors.reclassify`): colour crops of ``CROP_UM`` µm around the
box centre, resampled to ``SIZE`` px.

1. renders (or reuses) the synthetic smear set of tools/train_smear_detectors.py
   (datasets/generated/smears-v1, git-ignored);
2. cuts one crop per true box of the three classes from the train images, its centre
   moved by a random offset (sd ``JITTER`` of the box's shorter side: detections are
   not centred exactly), and trains the morphology classifier on them in colour
   (``channels=3``, rotations, flips, blur, contrast, noise; 15 % held out for early
   stopping);
3. scores the val images' true boxes and copies the checkpoint (and its ONNX export)
   to weights/ unless ``--no-copy``.

    python tools/train_cell_classifier.py [--epochs 10] [--out runs/cell-classifier.pt]

About 20 minutes on 2 CPU cores. The test images are only for benchmarks/still_images.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from train_smear_detectors import ensure_dataset  # noqa: E402

from detect_track.detectors.reclassify import CELL_TASK, cut_colour  # noqa: E402
from detect_track.io.datasets import load_dataset  # noqa: E402
from detect_track.morphology.classifier import MorphologyClassifier, export_onnx  # noqa: E402
from detect_track.morphology.cnn import save_checkpoint  # noqa: E402
from detect_track.morphology.training import MorphTrainSettings, train_classifier  # noqa: E402

CLASSES = ("elongated_spermatid", "immature_sperm", "mature_sperm")
CROP_UM = 17.6  # µm: a head, its droplet and neck, and some context (32 px at 0.55 µm/px)
SIZE = 32  # classifier input, px
JITTER = 0.15  # sd of the crop centre's offset, in units of the box's shorter side
UM_PER_PX = 0.55  # scale of the synthetic smears


def crops_of(data: Path, split: str, rng: np.random.Generator | None
             ) -> tuple[list[np.ndarray], np.ndarray]:
    """Colour crops of the true boxes of ``CLASSES`` in one split, and their labels."""
    samples, names = load_dataset(data, split)
    ids = [names.index(c) for c in CLASSES]
    images, labels = [], []
    for s in samples:
        keep = np.isin(s.classes, ids)
        if not keep.any():
            continue
        img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        boxes = s.boxes[keep]
        xy = (boxes[:, :2] + boxes[:, 2:]) / 2
        if rng is not None:
            short = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            xy = xy + rng.normal(0, JITTER, xy.shape) * short[:, None]
        images += cut_colour(img, xy, CROP_UM / UM_PER_PX, SIZE)
        labels += [ids.index(c) for c in s.classes[keep]]
    return images, np.asarray(labels, np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "runs" / "cell-classifier.pt"))
    ap.add_argument("--no-copy", action="store_true", help="do not overwrite weights/")
    args = ap.parse_args()
    data = ensure_dataset()
    rng = np.random.default_rng(0)
    images, labels = crops_of(data, "train", rng)
    print(f"{len(images)} training crops: " + ", ".join(
        f"{c} {n}" for c, n in zip(CLASSES, np.bincount(labels, minlength=len(CLASSES)),
                                   strict=True)), flush=True)
    t0 = time.time()
    settings = MorphTrainSettings(epochs=args.epochs, patience=8, size=SIZE, channels=3,
                                  width=args.width, lr=2e-3, device=args.device)
    ckpt = train_classifier(images, labels, CLASSES, CELL_TASK, settings,
                            lambda m: print(f"{time.time() - t0:6.0f} s  {m}", flush=True))
    ckpt["train"].update({"crop_um": CROP_UM, "data": "smears-v1 (synthetic, seed 7)"})
    out = save_checkpoint(ckpt, args.out)
    val_images, val_labels = crops_of(data, "val", None)
    pred = MorphologyClassifier(out, args.device).predict_proba(val_images).argmax(axis=1)
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    np.add.at(confusion, (val_labels, pred), 1)
    print(f"val (true boxes, {len(val_labels)} crops): accuracy "
          f"{np.trace(confusion) / confusion.sum():.3f}; confusion (rows true) "
          f"{confusion.tolist()}")
    onnx = export_onnx(out)
    if not args.no_copy:
        for f in (out, onnx):
            shutil.copy(f, ROOT / "weights" / f"smear-cell-classifier{f.suffix}")
        print("copied to weights/smear-cell-classifier.pt / .onnx")


if __name__ == "__main__":
    main()
