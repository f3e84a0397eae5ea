"""Render the bundled sample video and its ground truth into datasets/samples/.

    .venv/bin/python tools/make_samples.py

The sample is simulated (seed 7, 5 s, 640x480, 50 fps, 0.7 µm/px): a short phase-contrast-like
video with progressive, non-progressive and immotile cells, debris and crossings. Re-running
this script reproduces the committed files exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect_track.synth import SynthConfig, simulate  # noqa: E402

SAMPLE = SynthConfig(width_px=640, height_px=480, fps=50.0, duration_s=5.0, um_per_px=0.7,
                     n_cells=40, seed=7, look="phase_dark", video_format="mp4")


def main() -> int:
    out = ROOT / "datasets" / "samples" / "sim_phase_contrast"
    res = simulate(out, SAMPLE)
    size_mb = res.video_path.stat().st_size / 1e6
    print(f"wrote {res.video_path} ({size_mb:.1f} MB, {res.n_tracks} true tracks) and its truth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
