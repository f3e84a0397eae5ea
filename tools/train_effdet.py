"""Reproduce the shipped EfficientDet sperm detector (weights/effdet-sperm.pt).

Uses the same simulated dataset as tools/train_yolo.py (built if missing) in its COCO
layout, the architecture preset detect_track/models/effdet-sperm.yaml (P2-P5 BiFPN,
8 px anchors, IoU 0.3 matching), trains from scratch and copies the checkpoint with the
lowest validation loss to weights/effdet-sperm.pt.

    python tools/train_effdet.py [--epochs 8] [--samples-per-epoch 1344] [--device cpu]
    python tools/train_effdet.py --init weights/effdet-sperm.pt --epochs 20   (continue)

About 35 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.training.effdet import EffdetTrainSettings, train_effdet  # noqa: E402
from tools.train_yolo import ensure_dataset, log_since, ship  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--samples-per-epoch", type=int, default=1344)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "runs" / "effdet-sperm"))
    ap.add_argument("--init", default="", help="continue from these weights (the shipped file)")
    ap.add_argument("--lr", type=float, default=EffdetTrainSettings.lr,
                    help="peak AdamW learning rate")
    ap.add_argument("--no-copy", action="store_true", help="do not overwrite weights/")
    args = ap.parse_args()
    data = ensure_dataset()
    t = time.time()
    best = train_effdet(data.parent, args.out,
                        EffdetTrainSettings(epochs=args.epochs, patience=3, batch=16,
                                            samples_per_epoch=args.samples_per_epoch,
                                            device=args.device, seed=0, lr=args.lr,
                                            init_weights=args.init),
                        log=log_since(t))
    ship(best, "effdet-sperm", t, not args.no_copy)


if __name__ == "__main__":
    main()
