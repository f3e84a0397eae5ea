"""Train the tail map of stained slides (a small U-Net) on Sperm Parsing Dataset v2.

1. reads ../shared/data/sperm-parsing-v2 (real bright-field slides with per-cell part
   masks) with the split of tools/train_slide_yolo.py: every 5th image (sorted by name) is
   held out for the benchmark and never read here, every 8th of the rest validates;
2. resamples each image and the union of its cells' midpiece and tail masks to the
   tracer's working scale (0.106 µm/px, half size);
3. trains :mod:`detect_track.training.tail_map` on random crops and writes its ONNX export
   to weights/tail-map-slide.onnx (the best validation pixel F1 is kept).

    python tools/train_tail_map.py [--steps 1200] [--device cpu|cuda:0] [--out FILE]

No licence is stated for the data: the map is used only by the ``sperm-slide-parsing``
preset, whose weights are not any default (see weights/tail-map-slide.md). Prints a note
and stops when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.detectors.tail_map import UM_PER_PX as WORK_UM_PER_PX  # noqa: E402
from detect_track.detectors.tail_map import standardise  # noqa: E402
from detect_track.training.sperm_parsing import UM_PER_PX  # noqa: E402
from detect_track.training.tail_map import (  # noqa: E402
    TailMapTrainSettings,
    export_tail_map,
    tail_target,
    train_tail_map,
)

DATA = ROOT.parent / "shared" / "data" / "sperm-parsing-v2"
OUT = ROOT / "weights" / "tail-map-slide.onnx"
CACHE = ROOT / "datasets" / "generated" / "tail-map-v1.npz"


def load(root: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray,
                                                                               np.ndarray]]]:
    """``(train, val)`` lists of (standardised image, tail mask) at the working scale."""
    data = json.loads((root / "annotations.json").read_text())
    masks: dict[int, list[Path]] = {}
    for a in data["annotations"]:
        if a.get("parsing"):
            masks.setdefault(a["image_id"], []).append(root / "parsing" / a["parsing"])
    images = sorted(data["images"], key=lambda i: i["file_name"])
    kept = [im for k, im in enumerate(images) if k % 5 != 4]  # every 5th is held out
    f = UM_PER_PX / WORK_UM_PER_PX
    out: tuple[list, list] = ([], [])
    for k, im in enumerate(kept):
        gray = cv2.imread(str(root / "images" / im["file_name"]), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        size = (round(gray.shape[1] * f), round(gray.shape[0] * f))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        target = tail_target(masks.get(im["id"], []), small.shape)
        out[int(k % 8 == 7)].append((standardise(small), target))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA), help="Sperm Parsing v2 folder")
    ap.add_argument("--steps", type=int, default=TailMapTrainSettings.steps)
    ap.add_argument("--width", type=int, default=TailMapTrainSettings.width)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    root = Path(args.data)
    if not (root / "annotations.json").is_file():
        print(f"note: {root} not found: nothing to train on (see its PROVENANCE.md)")
        return
    t0 = time.time()
    if CACHE.is_file():
        z = np.load(CACHE)
        train = [(z[f"x{k}"], z[f"y{k}"]) for k in range(int(z["n_train"]))]
        val = [(z[f"vx{k}"], z[f"vy{k}"]) for k in range(int(z["n_val"]))]
    else:
        train, val = load(root)
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"x{k}": x for k, (x, _) in enumerate(train)}
        arrays |= {f"y{k}": y.astype(np.uint8) for k, (_, y) in enumerate(train)}
        arrays |= {f"vx{k}": x for k, (x, _) in enumerate(val)}
        arrays |= {f"vy{k}": y.astype(np.uint8) for k, (_, y) in enumerate(val)}
        np.savez(CACHE, n_train=len(train), n_val=len(val), **arrays)
    print(f"train {len(train)}, val {len(val)} images ({time.time() - t0:.0f} s to load)")
    settings = TailMapTrainSettings(steps=args.steps, width=args.width, device=args.device)
    model, info = train_tail_map([x for x, _ in train], [y for _, y in train],
                                 [x for x, _ in val], [y for _, y in val], settings,
                                 log=lambda line: print(line, flush=True))
    info = {**info, "width": settings.width, "train_images": len(train),
            "val_images": len(val)}
    path = export_tail_map(model, args.out, info)
    print(f"wrote {path}: val pixel F1 {info['val_f1']:.3f} at {info['threshold']:.2f} "
          f"({(time.time() - t0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
