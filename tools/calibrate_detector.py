"""Choose a learned detector's operating confidence on validation tiles (best F1, IoU 0.5).

    python tools/calibrate_detector.py yolo [--weights weights/yolo-sperm.pt]
    python tools/calibrate_detector.py effdet --data datasets/generated/sim-det-v3/data.yaml
    python tools/calibrate_detector.py yolo --preset testicular --um-per-px 0.55 \
        --data datasets/generated/smears-v1/data.yaml      (all classes pooled; the
        preset's crop classifier, still.reclassify, re-labels the small cells first)

Prints the threshold to put in `detector.<name>.operating_confidence` (the default in
detect_track/config/schema.py and the model card), with precision, recall and F1 there. Uses the
validation split of the training dataset, never the benchmark's held-out videos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.config import apply_overrides, load_config  # noqa: E402
from detect_track.detectors import create_detector  # noqa: E402
from detect_track.io.datasets import load_dataset  # noqa: E402
from detect_track.stills import still_reclassifier  # noqa: E402
from detect_track.training.calibration import operating_point  # noqa: E402
from detect_track.types import Detections, VideoMeta  # noqa: E402

DATA = ROOT / "datasets" / "generated" / "sim-det-v3" / "data.yaml"


class Relabelled:
    """A detector followed by the preset's crop classifier (``still.reclassify``), as
    still images run it: the operating point is chosen on the classes it reports."""

    def __init__(self, detector: object, reclassifier: object, um_per_px: float) -> None:
        self.detector, self.reclassifier, self.um_per_px = detector, reclassifier, um_per_px

    def detect(self, image: np.ndarray) -> Detections:
        d = self.detector.detect(image)  # type: ignore[attr-defined]
        return self.reclassifier.apply(  # type: ignore[attr-defined]
            image, d, self.detector.class_names, self.um_per_px)  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("detector", choices=["yolo", "effdet"])
    ap.add_argument("--weights", default="", help="default: the shipped weights")
    ap.add_argument("--data", default=str(DATA), help="dataset with a val split")
    ap.add_argument("--preset", default=None, help="config preset (e.g. testicular); its "
                    "weights are calibrated and every class of the data is pooled")
    ap.add_argument("--um-per-px", type=float, default=0.7, help="scale of the images")
    args = ap.parse_args()
    samples, names = load_dataset(args.data, "val")
    cfg = load_config(args.preset)
    weights = args.weights or getattr(cfg.detector, args.detector).weights
    cfg = apply_overrides(cfg, {f"detector.{args.detector}.weights": weights,
                                     f"detector.{args.detector}.confidence": 0.01,
                                     f"detector.{args.detector}.operating_confidence": 0.5,
                                     # the detector's own scores (the sperm verifier has its
                                     # own operating point: tools/train_sperm_verifier.py)
                                     f"detector.{args.detector}.verifier": ""})
    # tiles come from clips at 0.3-1.2 µm/px: all inside the trained range, never resized;
    # their scale is not given per tile, so it stays "default" (no min_head_um filter)
    meta = VideoMeta(path="val", fps=50.0, n_frames=1, width_px=320, height_px=320,
                     um_per_px=args.um_per_px)
    det = create_detector(args.detector, cfg, meta)
    reclassifier = still_reclassifier(cfg, det.class_names) if args.preset else None
    if reclassifier is not None:
        det = Relabelled(det, reclassifier, args.um_per_px)
    classes = range(len(names)) if args.preset else (0,)
    threshold, metrics = operating_point(det, samples, classes)
    print(f"operating_confidence {threshold} on {len(samples)} validation tiles: " +
          ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
