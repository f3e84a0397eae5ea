"""The default detector on real annotated phase-contrast frames (VISEM-Tracking video 11).

Real data is the yardstick (benchmarks/real.md has the full numbers); this checks a few of
the held-out frames, never used in training or tuning, from ../shared/data when it is there.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detect_track.config import Config
from detect_track.detectors import create_detector
from detect_track.eval.matching import match_points
from detect_track.types import VideoMeta

VISEM = (Path(__file__).resolve().parents[2] / "shared" / "data" / "visem-tracking-frames"
         / "video_11")
FRAMES = (70, 80, 90)  # inside the benchmark's held-out part (65-99)


@pytest.mark.skipif(not (VISEM / "images").is_dir(),
                    reason=f"real frames not found at {VISEM}")
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_default_detector_finds_real_heads(backend: str):
    from detect_track.config import apply_overrides

    cfg = apply_overrides(Config(), {"detector.backend": backend})
    meta = VideoMeta(path="visem", fps=49.0, n_frames=100, width_px=640, height_px=480,
                     um_per_px=0.5, um_per_px_source="cli")
    det = create_detector(cfg.detector.name, cfg, meta)
    tp = n_gt = n_pred = 0
    for i in FRAMES:
        img = cv2.imread(str(VISEM / "images" / f"11_frame_{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        rows = [line.split() for line in
                (VISEM / "labels" / f"11_frame_{i}.txt").read_text().splitlines() if line]
        heads = np.array([[float(r[1]) * 640, float(r[2]) * 480] for r in rows if r[0] == "0"])
        d = det.detect(img)
        d = d[(d.class_id == 0) & (d.confidence >= 0.5)]
        gi, _, _ = match_points(heads, d.xy, 6.0)
        tp, n_gt, n_pred = tp + len(gi), n_gt + len(heads), n_pred + len(d)
    # measured 2026-12-07: recall 0.90, precision 0.85 over all held-out frames
    assert tp / n_gt >= 0.8
    assert tp / n_pred >= 0.75
