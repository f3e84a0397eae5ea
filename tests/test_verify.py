"""The sperm verifier: a crop classifier's second look at every YOLO sperm box."""

from pathlib import Path

import numpy as np
import pytest

from detect_track.config import load_config
from detect_track.detectors import create_detector
from detect_track.detectors.learned import calibrate
from detect_track.detectors.verify import VERIFY_CLASSES, VERIFY_TASK, HeadVerifier
from detect_track.errors import ConfigError
from detect_track.eval.boxes import BoxSet, detection_ap
from detect_track.io.video import FrameSource
from detect_track.morphology.cnn import save_checkpoint
from detect_track.morphology.training import MorphTrainSettings, train_classifier
from detect_track.synth import random_config, simulate
from detect_track.synth.dataset import frame_boxes
from detect_track.types import VideoMeta

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "samples" / "sim_phase_contrast"
META = VideoMeta(path="x", fps=50.0, n_frames=10, width_px=640, height_px=480, um_per_px=0.7,
                 um_per_px_source="config")


def _yolo(**over: object):
    """The simulation-trained YOLO with its verifier (preset sperm-sim), on the simulated
    sample; the default YOLO, tuned on real frames, runs without the verifier."""
    return create_detector("yolo", load_config("sperm-sim",
                                               {"detector.yolo.confidence": 0.02, **over}),
                           META)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return next(f for _i, f in FrameSource(SAMPLE / "video.mp4"))


def test_the_shipped_verifier_loads_and_the_simulation_preset_uses_it():
    v = HeadVerifier(str(ROOT / "weights" / "sperm-verifier.onnx"))
    assert v.model.task == VERIFY_TASK and v.model.class_names == VERIFY_CLASSES
    assert 5 < v.crop_um < 30
    assert type(_yolo()).__name__ == "VerifiedDetector"
    assert type(_yolo(**{"detector.yolo.verifier": ""})).__name__ != "VerifiedDetector"
    default = create_detector("yolo", load_config(), META)  # real-tuned: verifier off
    assert type(default).__name__ != "VerifiedDetector"


def test_only_sperm_scores_change_and_boxes_stay(frame: np.ndarray):
    on = _yolo().detect(frame)
    off = _yolo(**{"detector.yolo.verifier": ""}).detect(frame)
    np.testing.assert_allclose(on.xyxy, off.xyxy)
    np.testing.assert_array_equal(on.class_id, off.class_id)
    other = on.class_id != 0
    np.testing.assert_allclose(on.confidence[other], off.confidence[other])
    assert np.any(np.abs(on.confidence[~other] - off.confidence[~other]) > 0.05)
    assert np.all((on.confidence >= 0) & (on.confidence <= 1))


def test_verified_score_is_the_calibrated_geometric_mean(frame: np.ndarray):
    cfg = load_config("sperm-sim")
    raw = _yolo(**{"detector.yolo.verifier": "", "detector.yolo.operating_confidence": 0.5})
    d = raw.detect(frame)
    sperm = d[d.class_id == 0]
    p = HeadVerifier(str(ROOT / "weights" / "sperm-verifier.onnx")).probability(
        frame, sperm.xy, META.um_per_px)
    want = calibrate(np.sqrt(sperm.confidence * p), cfg.detector.yolo.verifier_operating)
    got = _yolo().detect(frame)
    np.testing.assert_allclose(got.confidence[got.class_id == 0], want, atol=1e-6)


def test_verifier_raises_precision_on_a_simulated_clip_with_debris(tmp_path: Path):
    """Held-out seed, many debris particles: the verified ranking is better (AP50)."""
    cfg = random_config(424242, n_debris=80, duration_s=0.2)
    res = simulate(tmp_path / "clip", cfg)
    truth = frame_boxes(res.gt_path, tmp_path / "clip" / "truth_points.csv")
    frames = {i: f for i, f in FrameSource(res.video_path) if i % 3 == 0}
    meta = VideoMeta(path="x", fps=cfg.fps, n_frames=len(frames), width_px=640,
                     height_px=480, um_per_px=cfg.um_per_px, um_per_px_source="config")
    scores = {}
    for name, verifier in (("on", "sperm-verifier"), ("off", "")):
        det = create_detector("yolo", load_config(None, {"detector.yolo.verifier": verifier,
                                                         "detector.yolo.confidence": 0.02}),
                              meta)
        pred = {str(i): BoxSet.make(d.xyxy, d.class_id, d.confidence)
                for i, d in ((i, det.detect(f)) for i, f in frames.items())}
        gt = {str(i): BoxSet.make(truth[i][:, :4], truth[i][:, 4]) if i in truth
              else BoxSet.make(np.zeros((0, 4))) for i in frames}
        scores[name] = detection_ap(gt, pred, (0,))["map50"]
    assert scores["on"] > scores["off"] + 0.03


def test_a_model_of_another_task_is_refused(tmp_path: Path):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (16, 16)).astype(np.uint8) for _ in range(20)]
    ckpt = train_classifier(crops, np.arange(20) % 2, ("normal", "abnormal"), "head",
                            MorphTrainSettings(epochs=1, width=4, size=16))
    path = save_checkpoint(ckpt, tmp_path / "head.pt")
    with pytest.raises(ConfigError, match="not a sperm verifier"):
        HeadVerifier(str(path))
    ckpt = train_classifier(crops, np.arange(20) % 2, VERIFY_CLASSES, VERIFY_TASK,
                            MorphTrainSettings(epochs=1, width=4, size=16))
    path = save_checkpoint(ckpt, tmp_path / "v.pt")  # no crop size recorded
    with pytest.raises(ConfigError, match="crop size"):
        HeadVerifier(str(path))
    with pytest.raises(ConfigError):
        _yolo(**{"detector.yolo.verifier": str(tmp_path / "missing.onnx")})
    with pytest.raises(ConfigError, match="verifier_operating"):
        load_config(None, {"detector.yolo.verifier_operating": 1.0})


def test_no_sperm_boxes_and_empty_frames(frame: np.ndarray):
    v = HeadVerifier(str(ROOT / "weights" / "sperm-verifier.onnx"))
    assert v.probability(frame, np.zeros((0, 2)), 0.7).shape == (0,)
    assert len(_yolo().detect(np.full((480, 640), 128, np.uint8))) == 0
    p = v.probability(frame, np.array([[10.0, 10.0], [300.0, 200.0]]), 0.7)
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
    colour = v.probability(np.dstack([frame] * 3), np.array([[10.0, 10.0], [300.0, 200.0]]),
                           0.7)
    np.testing.assert_allclose(colour, p, atol=1e-6)


def test_crops_cut_in_one_pass_match_the_per_crop_cut():
    from detect_track.detectors.reclassify import cut_colour
    from detect_track.detectors.verify import cut_gray, verifier_crops

    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (120, 160)).astype(np.uint8)
    xy = np.c_[rng.uniform(-3, 163, 20), rng.uniform(-3, 123, 20)]  # some over the edge
    one = cut_gray(img, xy, 13.7, 16)
    each = np.stack(cut_colour(img, xy, 13.7, 16))
    assert one.shape == (20, 16, 16)
    assert np.abs(one.astype(int) - each).max() <= 1  # float32 vs float64 sampling
    assert cut_gray(img, np.zeros((0, 2)), 13.7, 16).shape == (0, 16, 16)
    # a fine image is area-averaged before cutting: a bright dot keeps its mean, not aliased
    fine = np.zeros((400, 400), np.uint8)
    fine[195:205, 195:205] = 250
    (crop,) = verifier_crops(fine, np.array([[200.0, 200.0]]), 160.0, 16)
    assert crop.max() < 250 and 0 < crop.sum() * (160 / 16) ** 2 / 250 / 100 < 2.5
