"""Render the bundled samples and their ground truth into datasets/samples/.

    .venv/bin/python tools/make_samples.py

The sample is simulated (seed 7, 5 s, 640x480, 50 fps, 0.7 µm/px): a short phase-contrast-like
video with progressive, non-progressive and immotile cells, debris and crossings. Re-running
this script reproduces the committed files exactly.

Two still images come with it (``--stills`` renders only those):

* ``smear_testicular/smear.jpg``: a synthetic testicular touch-print smear (768x1024,
  0.55 µm/px, seed 424242, outside every training, validation and test seed) with its
  boxes in ``truth.csv`` (``x1, y1, x2, y2`` px, ``class_name``);
* ``slide_stained/slide.jpg``: a synthetic stained semen slide (768x1024, 0.1 µm/px,
  seed 434343), whole cells and heads in ``truth.csv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detect_track.synth import SynthConfig, simulate  # noqa: E402
from detect_track.synth.smears import SmearSpec, render_smear  # noqa: E402

SAMPLE = SynthConfig(width_px=640, height_px=480, fps=50.0, duration_s=5.0, um_per_px=0.7,
                     n_cells=40, seed=7, look="phase_dark", video_format="mp4")


STILLS = {
    "smear_testicular/smear.jpg": (SmearSpec(n_cells=140, n_confusers=30), 424242),
    "slide_stained/slide.jpg": (SmearSpec(um_per_px=0.1, n_cells=12, n_confusers=15,
                                          clumping=0.0, preset="slide"), 434343),
}


def write_stills() -> None:
    """Render the two still-image samples and their truth tables."""
    for rel, (spec, seed) in STILLS.items():
        img = render_smear(spec, seed)
        path = ROOT / "datasets" / "samples" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        truth = pd.DataFrame(np.round(img.boxes, 1), columns=["x1", "y1", "x2", "y2"])
        truth["class_name"] = [img.names[k] for k in img.classes]
        truth.to_csv(path.parent / "truth.csv", index=False)
        print(f"wrote {path} ({len(truth)} true boxes, {spec.um_per_px} µm/px)")


def main() -> int:
    write_stills()
    if "--stills" in sys.argv[1:]:
        return 0
    out = ROOT / "datasets" / "samples" / "sim_phase_contrast"
    res = simulate(out, SAMPLE)
    size_mb = res.video_path.stat().st_size / 1e6
    print(f"wrote {res.video_path} ({size_mb:.1f} MB, {res.n_tracks} true tracks) and its truth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
