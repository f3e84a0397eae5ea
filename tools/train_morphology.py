"""Train the shipped head-shape classifier on simulated head crops (CPU).

    .venv/bin/python tools/train_morphology.py [--n-per-class 700] [--epochs 60] [--no-copy]

Renders ``n_per_class`` crops of each head shape (seed 1; the benchmark uses other seeds),
trains :mod:`detect_track.morphology.classifier` on them and copies the model to
``weights/head-shape-synth.pt`` (unless --no-copy). Prints the validation accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect_track.morphology.cnn import HEAD_SHAPES, save_checkpoint  # noqa: E402
from detect_track.morphology.training import MorphTrainSettings, train_classifier  # noqa: E402
from detect_track.synth.heads import head_dataset  # noqa: E402

TRAIN_SEED = 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-per-class", type=int, default=700)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default="runs/head-shape-synth.pt")
    ap.add_argument("--no-copy", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    images, labels = head_dataset(args.n_per_class, TRAIN_SEED)
    print(f"rendered {len(images)} crops in {time.perf_counter() - t0:.0f} s", flush=True)
    settings = MorphTrainSettings(epochs=args.epochs, patience=10)
    ckpt = train_classifier(images, labels, HEAD_SHAPES, "head_shape", settings,
                            log=lambda m: print(m, flush=True))
    ckpt["train"]["data"] = (f"simulated: detect_track.synth.heads.head_dataset("
                             f"{args.n_per_class}, seed={TRAIN_SEED})")
    out = save_checkpoint(ckpt, ROOT / args.out)
    print(f"saved {out} (val accuracy {ckpt['train']['val_accuracy']:.3f}, "
          f"{(time.perf_counter() - t0) / 60:.1f} min)")
    if not args.no_copy:
        import shutil

        target = ROOT / "weights" / "head-shape-synth.pt"
        shutil.copyfile(out, target)
        print(f"copied to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
