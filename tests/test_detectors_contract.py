"""Contract tests run over every registered detector (classical, YOLO, EfficientDet).

The learned detectors load the shipped weights in weights/: these tests fail (never skip)
when a weights file is missing, because the CLI default needs them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.config import Config
from detect_track.detectors import available_detectors, create_detector
from detect_track.detectors.base import Detector
from detect_track.errors import ConfigError
from detect_track.io.video import FrameSource
from detect_track.types import Detections, VideoMeta

SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "samples" / "sim_phase_contrast"
META = VideoMeta(path="x", fps=50.0, n_frames=10, width_px=640, height_px=480, um_per_px=0.7)
DETECTORS = available_detectors()
#: (detector, backend, test-time views): YOLO runs on both of its backends, and once
#: fused over 8 flipped / transposed views (detectors/views.py), which must keep the contract.
CASES = [(name, "auto", 1) for name in DETECTORS if name != "yolo"] + [
    ("yolo", "onnx", 1), ("yolo", "torch", 1), ("yolo", "onnx", 8)]


def test_registry_lists_all_three():
    assert {"classical", "yolo", "effdet"} <= set(DETECTORS)


@pytest.fixture(scope="module")
def sample_frames() -> list[np.ndarray]:
    return [f for i, f in FrameSource(SAMPLE / "video.mp4") if i < 3]


IDS = [f"{n}-{b}" + (f"-{v}views" if v > 1 else "") for n, b, v in CASES]


def _build(case: tuple[str, str, int], preset: str | None) -> Detector:
    from detect_track.config import load_config

    name, backend, views = case
    overrides = {"detector.backend": backend}
    if views > 1:
        overrides[f"detector.{name}.tta_views"] = views
    return create_detector(name, load_config(preset, overrides), META)


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def detector(request: pytest.FixtureRequest) -> Detector:
    """Each detector as configured by default (YOLO: the weights tuned on real frames)."""
    return _build(request.param, None)


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def sim_detector(request: pytest.FixtureRequest) -> Detector:
    """Each detector for simulated footage (preset sperm-sim: the simulation-trained YOLO),
    judged on the simulated sample below; the default on real frames: test_real_frames.py."""
    return _build(request.param, "sperm-sim")


def _inside(d: Detections, shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    b = d.xyxy
    return bool(np.all(b[:, 0] >= 0) and np.all(b[:, 1] >= 0) and np.all(b[:, 2] <= w)
                and np.all(b[:, 3] <= h) and np.all(b[:, 2] >= b[:, 0])
                and np.all(b[:, 3] >= b[:, 1]))


def test_protocol_and_class_names(detector: Detector):
    assert isinstance(detector, Detector)
    assert detector.class_names[0] == "sperm"
    if detector.name != "classical":
        assert detector.class_names == ("sperm", "cluster", "small_or_pinhead")


def test_blank_frame_gives_no_detections(detector: Detector):
    d = detector.detect(np.full((480, 640), 128, np.uint8))
    assert isinstance(d, Detections) and len(d) == 0


def test_noise_only_frame_gives_almost_nothing(detector: Detector):
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(120, 4, (480, 640)), 0, 255).astype(np.uint8)
    d = detector.detect(frame)
    tracker = Config().tracker
    # nothing the tracker would use: weaker answers never reach it (tracker.min_confidence)
    assert np.sum(d.confidence >= tracker.min_confidence) <= 2
    assert np.all(d.confidence < tracker.high_confidence)  # and none starts a track


def test_finds_the_sample_heads(sim_detector: Detector, sample_frames: list[np.ndarray]):
    detector = sim_detector
    gt = pd.read_csv(SAMPLE / "gt" / "gt.txt", header=None,
                     names=["frame", "id", "x", "y", "w", "h", "conf", "c", "v"])
    g = gt[(gt["frame"] == 1) & (gt["conf"] == 1)]
    centres = np.c_[g["x"] + g["w"] / 2, g["y"] + g["h"] / 2]
    d = detector.detect(sample_frames[0])
    d = d[d.class_id == 0]
    dist = np.linalg.norm(centres[:, None] - d.xy[None], axis=2)
    recall = float(np.mean(dist.min(axis=1) <= 4.0 / 0.7)) if len(d) else 0.0
    assert recall >= 0.8
    sure = d[d.confidence >= 0.5]  # calibrated: 0.5 is each detector's operating point
    # heads too far out of focus to annotate are "ignore" rows (conf 0): allowed, not needed
    assert len(sure) <= 1.5 * int((gt["frame"] == 1).sum())


def test_boxes_use_pixel_edge_coordinates(sim_detector: Detector,
                                           sample_frames: list[np.ndarray]):
    """Box centres are unbiased against the truth, which puts pixel edges at integers.

    A half-pixel convention mix-up (pixel centres vs edges) shifts every box by 0.5 px,
    which costs a 4 px head box about a third of its IoU.
    """
    detector = sim_detector
    gt = pd.read_csv(SAMPLE / "gt" / "gt.txt", header=None,
                     names=["frame", "id", "x", "y", "w", "h", "conf", "c", "v"])
    offsets = []
    for k, frame in enumerate(sample_frames):
        g = gt[(gt["frame"] == k + 1) & (gt["conf"] == 1)]
        centres = np.c_[g["x"] + g["w"] / 2, g["y"] + g["h"] / 2]
        d = detector.detect(frame)
        d = d[(d.class_id == 0) & (d.confidence >= 0.5)]
        if len(d) == 0 or len(centres) == 0:
            continue
        diff = d.xy[:, None] - centres[None]
        j = np.argmin(np.linalg.norm(diff, axis=2), axis=1)
        near = diff[np.arange(len(d)), j]
        offsets.append(near[np.linalg.norm(near, axis=1) < 2.0])
    off = np.concatenate(offsets)
    assert len(off) >= 20
    assert np.all(np.abs(np.median(off, axis=0)) < 0.25), np.median(off, axis=0)


def test_gray_and_colour_agree(detector: Detector, sample_frames: list[np.ndarray]):
    gray = sample_frames[0]
    colour = np.repeat(gray[:, :, None], 3, axis=2)
    a, b = detector.detect(gray), detector.detect(colour)
    assert len(a) == len(b)
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)


@pytest.mark.parametrize("shape", [(101, 157), (33, 45), (481, 643)])
def test_odd_sizes_boxes_inside(detector: Detector, sample_frames: list[np.ndarray],
                                shape: tuple[int, int]):
    frame = np.full(shape, int(np.median(sample_frames[0])), np.uint8)
    h, w = min(shape[0], 480), min(shape[1], 640)
    frame[:h, :w] = sample_frames[0][:h, :w]
    d = detector.detect(frame)
    assert _inside(d, shape)


def test_batch_equals_single_and_is_deterministic(detector: Detector,
                                                  sample_frames: list[np.ndarray]):
    batch = detector.detect_batch(sample_frames)
    assert len(batch) == len(sample_frames)
    for frame, b in zip(sample_frames, batch, strict=True):
        s = detector.detect(frame)
        assert len(s) == len(b)
        np.testing.assert_allclose(s.xyxy, b.xyxy, atol=1e-3)
        np.testing.assert_allclose(s.confidence, b.confidence, atol=1e-4)
    again = detector.detect(sample_frames[0])
    np.testing.assert_array_equal(again.xyxy, detector.detect(sample_frames[0]).xyxy)
    assert detector.detect_batch([]) == []


def test_uint16_frames_are_accepted(detector: Detector, sample_frames: list[np.ndarray]):
    d16 = detector.detect(sample_frames[0].astype(np.uint16) * 257)
    assert _inside(d16, sample_frames[0].shape)
    assert len(d16) >= 0.7 * len(detector.detect(sample_frames[0]))


def test_reset_keeps_working(detector: Detector, sample_frames: list[np.ndarray]):
    before = detector.detect(sample_frames[0])
    detector.reset()
    after = detector.detect(sample_frames[0])
    np.testing.assert_allclose(before.xyxy, after.xyxy, atol=1e-3)


@pytest.mark.parametrize("name, backend", [("yolo", "onnx"), ("yolo", "torch"),
                                           ("yolo", "auto"), ("effdet", "auto")])
def test_missing_weights_is_a_config_error(name: str, backend: str):
    from detect_track.config import apply_overrides

    cfg = apply_overrides(Config(), {f"detector.{name}.weights": "no-such-model",
                                     "detector.backend": backend})
    with pytest.raises(ConfigError, match="not found"):
        create_detector(name, cfg, META)


def test_magnification_outside_training_range_rescales():
    from detect_track.config import LearnedConfig
    from detect_track.detectors.learned import magnification_scale

    cfg = LearnedConfig()
    assert magnification_scale(0.7, cfg) == 1.0
    assert magnification_scale(0.15, cfg) == pytest.approx(0.5)
    assert magnification_scale(2.4, cfg) == pytest.approx(2.0)


def test_calibration_is_monotone_and_centres_the_operating_point():
    from detect_track.detectors.learned import calibrate

    s = np.linspace(0, 1, 101)
    for op in (0.2, 0.5, 0.8):
        c = calibrate(s, op)
        assert c[0] == 0.0 and c[-1] == 1.0 and np.all(np.diff(c) > 0)
        assert calibrate(np.array([op]), op)[0] == pytest.approx(0.5)


def test_duplicate_answers_for_one_head_are_fused():
    from detect_track.detectors.learned import merge_duplicates

    xyxy = np.array([[10, 10, 18, 16], [12, 11, 20, 17], [30, 30, 38, 36], [31, 30, 39, 36.0],
                     [37, 30, 45, 36]])
    conf = np.array([0.9, 0.3, 0.5, 0.7, 0.6])
    cls = np.array([0, 0, 0, 1, 0])  # box 3 is another class; box 4 is the next head
    boxes, score, c = merge_duplicates(xyxy, conf, cls)
    assert len(boxes) == 4 and c.tolist() == [0, 1, 0, 0]
    assert score.tolist() == [0.9, 0.7, 0.6, 0.5]
    np.testing.assert_allclose(boxes[0], [10.5, 10.25, 18.5, 16.25])  # score-weighted mean
    np.testing.assert_allclose(boxes[3], xyxy[2])
    assert len(merge_duplicates(xyxy[:0], conf[:0], cls[:0])[0]) == 0


def test_boxes_too_small_for_a_head_are_dropped_only_with_a_stated_scale():
    from detect_track.config import LearnedConfig
    from detect_track.detectors.learned import finish, min_box_px

    names = ("sperm", "cluster", "small_or_pinhead")
    cfg = LearnedConfig(min_head_um=2.0)
    np.testing.assert_allclose(min_box_px(names, 0.5, cfg, scale_known=True), [4.0, 0, 0])
    assert not min_box_px(names, 0.5, cfg, scale_known=False).any()
    assert not min_box_px(names, 0.5, LearnedConfig(min_head_um=0), scale_known=True).any()
    xyxy = np.array([[50, 50, 53, 53], [60, 60, 63, 63], [0, 20, 3, 23], [70, 70, 76, 73.0]])
    cls = np.array([0, 2, 0, 0])  # speck; pinhead; speck cut by the edge; a head
    d = finish(xyxy, np.full(4, 0.9), cls, 1.0, (100, 100), 3,
               min_side_px=min_box_px(names, 0.5, cfg, scale_known=True))
    np.testing.assert_allclose(d.xyxy, xyxy[1:])
    assert len(finish(xyxy, np.full(4, 0.9), cls, 1.0, (100, 100), 3)) == 4


@pytest.mark.parametrize("name", ["yolo", "effdet"])
def test_factories_apply_the_head_size_bound_only_to_stated_scales(name: str):
    import dataclasses

    stated = create_detector(name, Config(), dataclasses.replace(META, um_per_px_source="cli"))
    assumed = create_detector(name, Config(), META)
    head = stated.class_names.index("sperm")
    assert stated.min_side_px[head] == pytest.approx(Config().detector.yolo.min_head_um / 0.7)
    assert not assumed.min_side_px.any()
