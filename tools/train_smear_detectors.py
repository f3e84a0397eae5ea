"""Train the testicular smear detectors (six cell types) on synthetic smears.

1. renders the synthetic smear set (:mod:`detect_track.synth.smears`, seed 7: train /
   val / test images of 768x1024 at ~0.55 µm/px) into
   datasets/generated/smears-v1 (git-ignored); the test split is only for the benchmark;
2. ``--model yolo``: trains detect_track/models/yolo-testis-p2.yaml (P2/P3 outputs) on
   native-resolution 512 px tiles of the images (cheaper than whole 1024 px images: the
   label assigner's cost grows with objects x anchors per image), and copies the best
   checkpoint to weights/yolo-testis-synth.pt;
   ``--model effdet``: trains the EfficientDet of detect_track/models/effdet-testis.yaml
   (small anchors, IoU 0.3 matching, 768x1024) and copies it to
   weights/effdet-testis-synth.pt.

    python tools/train_smear_detectors.py --model yolo [--epochs 40] [--device cpu|0]

The models are synthetic-trained: their cards say so.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.synth.smears import build_still_dataset  # noqa: E402

DATASET = ROOT / "datasets" / "generated" / "smears-v1"
N_TRAIN, N_VAL, N_TEST, SEED = 320, 40, 60, 7


def ensure_dataset() -> Path:
    """Render the synthetic smear dataset once."""
    data = DATASET / "data.yaml"
    if not data.is_file():
        t = time.time()
        build_still_dataset(DATASET, N_TRAIN, N_VAL, N_TEST, seed=SEED,
                            progress=lambda d, n: print(f"images {d}/{n}", flush=True)
                            if d % 50 == 0 else None)
        print(f"dataset built in {time.time() - t:.0f} s")
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["yolo", "effdet", "data"], default="yolo")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="")
    ap.add_argument("--init", default="",
                    help="continue from these weights (e.g. the shipped file)")
    ap.add_argument("--lr0", type=float, default=None,
                    help="initial learning rate (default: yolo 0.004, effdet 0.003)")
    ap.add_argument("--no-copy", action="store_true", help="do not overwrite weights/")
    args = ap.parse_args()
    data = ensure_dataset()
    if args.model == "data":
        return
    t0 = time.time()

    def log(m: str) -> None:
        print(f"{time.time() - t0:6.0f} s  {m}", flush=True)

    # Learning rate: the settings' own default unless --lr0 is given.
    lr_kw = {} if args.lr0 is None else {"lr0" if args.model == "yolo" else "lr": args.lr0}
    if args.model == "yolo":
        from detect_track.training.yolo import YoloTrainSettings, train_yolo

        best = train_yolo(data, args.out or ROOT / "runs" / "yolo-testis",
                          YoloTrainSettings(
                              epochs=args.epochs, patience=10, imgsz=512, batch=args.batch,
                              close_mosaic=max(1, args.epochs // 4),
                              device=args.device, tile=True, scale=0.2, **lr_kw,
                              init_weights=args.init,
                              model_yaml=str(ROOT / "detect_track" / "models"
                                             / "yolo-testis-p2.yaml")),
                          log=log)
        name = "yolo-testis-synth.pt"
    else:
        from detect_track.training.effdet import EffdetTrainSettings, train_effdet

        best = train_effdet(DATASET, args.out or ROOT / "runs" / "effdet-testis",
                            EffdetTrainSettings(
                                epochs=args.epochs, patience=4, imgsz=384, batch=args.batch,
                                samples_per_epoch=2 * N_TRAIN, device=args.device,
                                **lr_kw,
                                init_weights=args.init,
                                arch_yaml=str(ROOT / "detect_track" / "models"
                                              / "effdet-testis.yaml")),
                            log=log)
        name = "effdet-testis-synth.pt"
    log(f"best: {best}")
    if not args.no_copy:
        shutil.copyfile(best, ROOT / "weights" / name)
        log(f"copied to weights/{name}")


if __name__ == "__main__":
    main()
