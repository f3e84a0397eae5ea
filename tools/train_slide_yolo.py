"""Train the stained-slide detector (whole sperm + heads) on Sperm Parsing Dataset v2.

1. reads ../shared/data/sperm-parsing-v2 (256 real bright-field slides, COCO boxes and
   part masks); holds out every 5th image (sorted by name) for the benchmark and every
   8th of the rest for validation (early stopping); the rest trains;
2. writes them, shrunk by 0.5 (to ~0.106 µm/px) and in gray, as a YOLO dataset in
   datasets/generated/sperm-parsing-yolo (git-ignored), classes sperm, sperm_head;
3. trains detect_track/models/yolo-slide.yaml from scratch and copies the best
   checkpoint to weights/yolo-slide-parsing.pt.

    python tools/train_slide_yolo.py [--epochs 80] [--device cpu|0]

No licence is stated for the data: the weights are not any preset's default (see their
card). Prints a note and stops when the data folder is absent.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.io.datasets import write_yolo_dataset  # noqa: E402
from detect_track.training.sperm_parsing import (  # noqa: E402
    CLASS_NAMES,
    holdout_split,
    load_sperm_parsing,
)
from detect_track.training.yolo import YoloTrainSettings, train_yolo  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sperm-parsing-v2"
DATASET = ROOT / "datasets" / "generated" / "sperm-parsing-yolo"
SCALE = 0.5
MODEL = ROOT / "detect_track" / "models" / "yolo-slide.yaml"


def build(data: Path) -> Path:
    """The YOLO dataset (train / val / holdout) of the shared Sperm Parsing images."""
    yaml_path = DATASET / "data.yaml"
    if yaml_path.is_file():
        return yaml_path
    kept, held = holdout_split(load_sperm_parsing(data))
    val = kept[7::8]
    train = [s for k, s in enumerate(kept) if k % 8 != 7]
    print(f"train {len(train)}, val {len(val)}, held out {len(held)} images")
    return write_yolo_dataset({"train": train, "val": val, "holdout": held}, DATASET,
                              CLASS_NAMES, scale=SCALE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA), help="Sperm Parsing v2 folder")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "runs" / "yolo-slide"))
    ap.add_argument("--no-copy", action="store_true", help="do not overwrite weights/")
    args = ap.parse_args()
    if not (Path(args.data) / "annotations.json").is_file():
        print(f"note: {args.data} not found; nothing to train on")
        return
    data_yaml = build(Path(args.data))
    t0 = time.time()
    best = train_yolo(data_yaml, args.out,
                      YoloTrainSettings(epochs=args.epochs, patience=15, imgsz=640,
                                        batch=args.batch, workers=2, device=args.device,
                                        lr0=0.004, model_yaml=str(MODEL), tile=False,
                                        scale=0.3, close_mosaic=10),
                      log=lambda m: print(f"{time.time() - t0:6.0f} s  {m}", flush=True))
    print(f"best: {best} ({time.time() - t0:.0f} s)")
    if not args.no_copy:
        shutil.copyfile(best, ROOT / "weights" / "yolo-slide-parsing.pt")
        print("copied to weights/yolo-slide-parsing.pt")


if __name__ == "__main__":
    main()
