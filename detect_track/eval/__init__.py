"""Scores of detect-track results against ground truth (e.g. from :mod:`detect_track.synth`).

* :func:`evaluate` loads a results folder and a truth folder and returns one nested dict;
  :func:`format_report` renders it for a terminal.
* :func:`detection_metrics`, :func:`tracking_metrics` (HOTA, MOTA, IDF1 via trackeval),
  :func:`match_tracks`, :func:`kinematics_errors` and :func:`sample_errors` work on
  plain DataFrames.

Everything matches by centroid distance (Hungarian per frame), never by box IoU.
"""

from detect_track.eval.evaluate import evaluate, load_prediction, load_truth
from detect_track.eval.matching import match_points
from detect_track.eval.measurements import kinematics_errors, sample_errors
from detect_track.eval.metrics import detection_metrics, match_tracks, tracking_metrics
from detect_track.eval.report import format_report

__all__ = [
    "detection_metrics",
    "evaluate",
    "format_report",
    "kinematics_errors",
    "load_prediction",
    "load_truth",
    "match_points",
    "match_tracks",
    "sample_errors",
    "tracking_metrics",
]
