"""Train the sperm verifier that looks again at each YOLO sperm box (weights/sperm-verifier.pt).

Most false positives of the shipped YOLO at its operating point are debris far from any
cell (``benchmarks/detection.md``). The verifier (:mod:`detect_track.detectors.verify`)
is a small CNN on gray crops of ``CROP_UM`` µm around each box, resampled to ``SIZE`` px.

1. renders (or reuses) ``datasets/generated/sim-det-v4`` (tools/train_yolo.py);
2. runs the shipped YOLO, without a verifier, on every training tile at the tile's own
   scale (recorded per clip in ``dataset.json``) and keeps a crop per box: ``sperm`` where
   the box overlaps a true head (IoU >= ``POS_IOU``), ``not_sperm`` where it touches no
   labelled box and lies more than ``CLEAR_HEADS`` head lengths from every one (boxes in
   between are left out); true heads the detector missed are added as ``sperm``;
3. trains the classifier (class-balanced, rotations, flips, blur, contrast, noise; a
   stratified 8 % held out to pick the epoch), exports ONNX;
4. chooses ``detector.yolo.verifier_operating`` (best F1, IoU 0.5) on the validation tiles
   with the verifier on, and copies both files to weights/ unless ``--no-copy``.

    python tools/train_sperm_verifier.py [--epochs 16] [--out runs/sperm-verifier.pt]
    python tools/train_sperm_verifier.py --calibrate effdet    (operating point only)

About 9 minutes on 2 CPU cores (the calibration alone: 1-3 minutes). The benchmark's
held-out videos are never used.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from train_yolo import ensure_dataset, log_since  # noqa: E402

from detect_track.config import Config, apply_overrides  # noqa: E402
from detect_track.detectors import create_detector  # noqa: E402
from detect_track.detectors.verify import (  # noqa: E402
    VERIFY_CLASSES,
    VERIFY_TASK,
    verifier_crops,
)
from detect_track.eval.boxes import BoxSet, box_iou  # noqa: E402
from detect_track.io.datasets import Sample, load_dataset  # noqa: E402
from detect_track.morphology.classifier import export_onnx  # noqa: E402
from detect_track.morphology.cnn import save_checkpoint  # noqa: E402
from detect_track.morphology.training import MorphTrainSettings, train_classifier  # noqa: E402
from detect_track.training.calibration import best_threshold  # noqa: E402
from detect_track.types import VideoMeta  # noqa: E402

DATASET = "sim-det-v4"
CROP_UM = 14.0  # µm: the head, its neck and the start of the tail, and what lies around
SIZE = 16  # classifier input, px (24 px: AP50 +0.005 at 2.5x the cost)
WIDTH = 8  # channels of the classifier's first block (8/16/32/64): ~0.02 ms per crop
POS_IOU = 0.3  # a box on a true head at least this much is a head
CLEAR_HEADS = 1.5  # a debris box lies farther than this many head lengths from any label
HEAD_UM = 5.0  # head length used for that distance


def tile_scales(data: Path) -> dict[int, float]:
    """µm/px of each clip of a simulated dataset (tiles are named ``v<clip>_...``)."""
    clips = json.loads((data.parent / "dataset.json").read_text())["clips"]
    return {int(c["index"]): float(c["um_per_px"]) for c in clips}


class PerTileScale:
    """A detector at each tile's own µm/px (tiles of one clip share it).

    Only the latest scale's detector is kept: the tiles come clip by clip, and hundreds of
    idle detectors (each with its own inference threads) would crowd the CPU and memory.
    """

    def __init__(self, cfg: Config, scales: dict[int, float], name: str = "yolo") -> None:
        self.cfg, self.scales, self.name = cfg, scales, name
        self._um, self._det = -1.0, None

    def scale_of(self, sample: Sample) -> float:
        return self.scales[int(Path(sample.image).name[1:6])]

    def detector(self, um: float):  # noqa: ANN201 - a learned detector
        if um != self._um:
            meta = VideoMeta(path="tiles", fps=50.0, n_frames=1, width_px=320, height_px=320,
                             um_per_px=um, um_per_px_source="config")
            self._um, self._det = um, create_detector(self.name, self.cfg, meta)
        return self._det


def mine(samples: list[Sample], tiles: PerTileScale) -> tuple[list[np.ndarray], np.ndarray]:
    """Crops around the detector's sperm boxes (and missed heads), labelled 0/1."""
    crops: list[np.ndarray] = []
    labels: list[int] = []
    for n, s in enumerate(samples):
        um = tiles.scale_of(s)
        img = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE)
        d = tiles.detector(um).detect(img)
        pb = d.xyxy[d.class_id == 0]
        gt, gcls = np.asarray(s.boxes, np.float64).reshape(-1, 4), np.asarray(s.classes)
        iou = box_iou(pb, gt)
        pc, gc = (pb[:, :2] + pb[:, 2:]) / 2, (gt[:, :2] + gt[:, 2:]) / 2
        dist = np.hypot(pc[:, None, 0] - gc[None, :, 0], pc[:, None, 1] - gc[None, :, 1])
        head = (gcls == 0)[None, :]
        pos = (head & (iou >= POS_IOU)).any(axis=1)
        clear = ~(iou > 0).any(axis=1) & ~(dist <= CLEAR_HEADS * HEAD_UM / um).any(axis=1)
        missed = (gcls == 0) & ~(iou >= POS_IOU).any(axis=0)
        xy = np.r_[pc[pos | clear], gc[missed]]
        lab = np.r_[pos[pos | clear].astype(int), np.ones(int(missed.sum()), int)]
        crops += list(verifier_crops(img, xy, CROP_UM / um, SIZE))
        labels += lab.tolist()
        if (n + 1) % 500 == 0:
            print(f"  {n + 1}/{len(samples)} tiles, {len(labels)} crops", flush=True)
    return crops, np.array(labels, np.int64)


def calibrate(name: str, verifier: Path, data: Path, scales: dict[int, float]
              ) -> tuple[float, dict[str, float]]:
    """Best-F1 ``verifier_operating`` of detector ``name`` with ``verifier``, on the
    validation tiles, each at its own scale."""
    val, _ = load_dataset(data, "val")
    on = apply_overrides(Config(), {f"detector.{name}.verifier": str(verifier),
                                    f"detector.{name}.confidence": 0.02,
                                    f"detector.{name}.verifier_operating": 0.5})
    tiles = PerTileScale(on, scales, name)
    gt, pred = {}, {}
    for s in val:
        d = tiles.detector(tiles.scale_of(s)).detect(
            cv2.imread(str(s.image), cv2.IMREAD_UNCHANGED))
        gt[str(s.image)] = BoxSet.make(s.boxes, s.classes)
        pred[str(s.image)] = BoxSet.make(d.xyxy, d.class_id, d.confidence)
    return best_threshold(gt, pred)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "runs" / "sperm-verifier.pt"))
    ap.add_argument("--no-copy", action="store_true", help="do not copy into weights/")
    ap.add_argument("--calibrate", default="", choices=["", "yolo", "effdet"],
                    help="only choose this detector's verifier_operating for the shipped "
                    "verifier (no training)")
    args = ap.parse_args()
    t0 = time.time()
    data = ensure_dataset(DATASET)
    scales = tile_scales(data)
    if args.calibrate:
        threshold, metrics = calibrate(args.calibrate, ROOT / "weights" / "sperm-verifier.onnx",
                                       data, scales)
        print(f"detector.{args.calibrate}.verifier_operating {threshold}: " +
              ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        return
    raw = apply_overrides(Config(), {"detector.yolo.verifier": "",
                                     "detector.yolo.confidence": 0.02})
    train, _ = load_dataset(data, "train")
    crops, labels = mine(train, PerTileScale(raw, scales))
    print(f"{len(labels)} crops ({int(labels.sum())} sperm, {int((labels == 0).sum())} "
          f"not) from {len(train)} tiles ({time.time() - t0:.0f} s)", flush=True)
    settings = MorphTrainSettings(epochs=args.epochs, patience=4, batch=128, lr=3e-3,
                                  size=SIZE, width=WIDTH, val_fraction=0.08)
    ckpt = train_classifier(crops, labels, VERIFY_CLASSES, VERIFY_TASK, settings,
                            log=log_since(t0))
    ckpt["train"].update({"crop_um": CROP_UM, "dataset": DATASET})
    out = save_checkpoint(ckpt, args.out)
    onnx = export_onnx(out)
    print(f"verifier: {out}, {onnx} ({time.time() - t0:.0f} s)")
    threshold, metrics = calibrate("yolo", onnx, data, scales)
    print(f"detector.yolo.verifier_operating {threshold} on the validation tiles: " +
          ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    if not args.no_copy:
        for f in (out, onnx):
            shutil.copyfile(f, ROOT / "weights" / f"sperm-verifier{f.suffix}")
        print("copied to weights/sperm-verifier.pt and .onnx; put verifier_operating "
              f"{threshold} in detect_track/config/schema.py and the card")


if __name__ == "__main__":
    main()
