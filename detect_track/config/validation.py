"""Value ranges the types alone cannot express, checked on a whole configuration."""

from __future__ import annotations

import math

from detect_track.config.schema import Config
from detect_track.errors import ConfigError
from detect_track.io.meta import check_fps, check_um_per_px


def validate(cfg: Config) -> None:
    """Check value ranges that types alone cannot express.

    Raises:
        ConfigError: On the first invalid value.
    """
    v, t, c = cfg.video, cfg.tracker, cfg.detector.classical
    if v.fps is not None:
        check_fps(v.fps, "video.fps", v.max_fps)
    if v.default_fps is not None:
        check_fps(v.default_fps, "video.default_fps", v.max_fps)
    if v.um_per_px is not None:
        check_um_per_px(v.um_per_px, "video.um_per_px")
    check_um_per_px(v.default_um_per_px, "video.default_um_per_px")
    if v.chamber_depth_um is not None and not (0 < v.chamber_depth_um <= 1000):
        raise ConfigError("video.chamber_depth_um (--chamber-depth-um) must be in (0, 1000], "
                          f"got {v.chamber_depth_um:g}")
    if c.polarity not in ("auto", "bright", "dark"):
        raise ConfigError("detector.classical.polarity must be auto, bright or dark, "
                          f"got {c.polarity!r}")
    for name in ("head_length_um", "threshold_sigma", "background_sigma_um", "max_area_um2"):
        if getattr(c, name) <= 0:
            raise ConfigError(f"detector.classical.{name} must be > 0")
    for name in ("max_speed_um_s", "measurement_noise_um", "process_noise_um_s2",
                 "initial_speed_um_s"):
        if getattr(t, name) <= 0:
            raise ConfigError(f"tracker.{name} must be > 0")
    for name in ("max_gap_s", "min_track_s", "gate_min_um", "new_track_min_distance_um",
                 "gate_sigma", "coast_penalty_um_s", "satellite_confidence_margin"):
        if getattr(t, name) < 0:
            raise ConfigError(f"tracker.{name} must be >= 0")
    if cfg.detector.backend not in ("auto", "torch", "onnx"):
        raise ConfigError(f"detector.backend must be auto, torch or onnx, "
                          f"got {cfg.detector.backend!r}")
    if cfg.detector.onnx_runtime not in ("auto", "onnxruntime", "openvino"):
        raise ConfigError(f"detector.onnx_runtime must be auto, onnxruntime or openvino, "
                          f"got {cfg.detector.onnx_runtime!r}")
    if t.association not in ("distance", "mahalanobis"):
        raise ConfigError(f"tracker.association must be distance or mahalanobis, "
                          f"got {t.association!r}")
    if t.kalman not in ("numpy", "filterpy"):
        raise ConfigError(f"tracker.kalman must be numpy or filterpy, got {t.kalman!r}")
    if not 0.0 < t.iou_match <= 1.0:
        raise ConfigError("tracker.iou_match must be in (0, 1]")
    for section in ("yolo", "effdet"):
        d = getattr(cfg.detector, section)
        if not 0.0 <= d.confidence < 1.0 or not 0.0 < d.iou <= 1.0:
            raise ConfigError(f"detector.{section}.confidence must be in [0, 1) and iou in (0, 1]")
        if not 0.0 < d.operating_confidence < 1.0:
            raise ConfigError(f"detector.{section}.operating_confidence must be in (0, 1)")
        if not 0.0 < d.verifier_operating < 1.0:
            raise ConfigError(f"detector.{section}.verifier_operating must be in (0, 1)")
        if d.max_det < 1:
            raise ConfigError(f"detector.{section}.max_det must be >= 1")
        if not 0.0 < d.min_um_per_px <= d.max_um_per_px:
            raise ConfigError(f"detector.{section}: need 0 < min_um_per_px <= max_um_per_px")
    m = cfg.morphology
    if m.crops_per_track < 1 or not m.crop_um > 0 or m.isolation_um < 0:
        raise ConfigError("morphology: crops_per_track >= 1, crop_um > 0, isolation_um >= 0")
    if not m.min_px_per_um >= 0 or m.min_px_per_um == float("inf"):
        raise ConfigError(f"morphology.min_px_per_um must be a number >= 0, got "
                          f"{m.min_px_per_um}")
    if m.tta_views not in (0, 1, 2, 4, 8):
        raise ConfigError(f"morphology.tta_views must be 0 (auto), 1, 2, 4 or 8, got "
                          f"{m.tta_views}")
    if not 0.0 <= cfg.still.min_confidence <= 1.0:
        raise ConfigError("still.min_confidence must be in [0, 1]")
    if cfg.still.tile_px < 64 or not 0 <= cfg.still.overlap_px < cfg.still.tile_px // 2:
        raise ConfigError("still.tile_px must be >= 64 and still.overlap_px in "
                          "[0, tile_px / 2)")
    if cfg.still.whole_cells not in ("model", "traced"):
        raise ConfigError(f"still.whole_cells must be 'model' or 'traced', got "
                          f"{cfg.still.whole_cells!r}")
    for name in ("trace_um_per_px", "tail_threshold", "tail_gap_um", "max_cell_length_um"):
        if not math.isfinite(getattr(cfg.still, name)) or getattr(cfg.still, name) <= 0:
            raise ConfigError(f"still.{name} must be > 0")
    if not 0 < cfg.still.tail_map_threshold < 1:
        raise ConfigError("still.tail_map_threshold must be in (0, 1)")
    if v.read_ahead_frames < 0:
        raise ConfigError("video.read_ahead_frames must be >= 0")
    if v.max_pixels < 1:
        raise ConfigError("video.max_pixels must be >= 1")
    if cfg.kinematics.smoothing_window_frames < 1:
        raise ConfigError("kinematics.smoothing_window_frames must be >= 1")
    if not (math.isfinite(cfg.kinematics.progression_window_s)
            and cfg.kinematics.progression_window_s > 0):
        raise ConfigError("kinematics.progression_window_s must be > 0")
    if cfg.motility.rule not in ("progression", "casa"):
        raise ConfigError(f"motility.rule must be progression or casa, got {cfg.motility.rule!r}")
