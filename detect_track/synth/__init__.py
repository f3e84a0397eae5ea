"""Simulated microscopy videos of semen with ground truth.

* :class:`SynthConfig`: every condition of a video (frozen; all fields have defaults).
* :func:`random_config`: widely varied realistic conditions drawn from a seed.
* :func:`preset_config`: a named preset fitted to real footage (``visem``).
* :func:`simulate`: render the video frame by frame and write it with its truth
  (``gt/gt.txt``, ``truth_tracks.csv``, ``truth_points.csv``, ``truth.json``).
"""

from detect_track.synth.config import (
    LOOKS,
    PRESETS,
    VIDEO_FORMATS,
    SynthConfig,
    preset_config,
    random_config,
)
from detect_track.synth.video import SynthResult, simulate

__all__ = ["LOOKS", "PRESETS", "VIDEO_FORMATS", "SynthConfig", "SynthResult", "preset_config",
           "random_config", "simulate"]
