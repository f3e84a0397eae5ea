"""The ONNX Runtime path: same answers as torch, and no torch needed to run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detect_track.config import load_config
from detect_track.detectors import create_detector
from detect_track.errors import ConfigError
from detect_track.io.video import FrameSource
from detect_track.types import VideoMeta
from detect_track.weights import resolve_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "samples" / "sim_phase_contrast" / "video.mp4"
META = VideoMeta(path="x", fps=50.0, n_frames=10, width_px=640, height_px=480, um_per_px=0.7)


def _yolo(backend: str, **extra: object):
    return create_detector("yolo", load_config(None, {"detector.backend": backend, **extra}),
                           META)


def _same_boxes(a, b, px: float, share: float, score_tol: float) -> None:
    """``share`` of ``a``'s boxes have one of ``b`` within ``px`` on every side and a score
    within ``score_tol``; the counts differ by at most a few percent."""
    assert abs(len(a) - len(b)) <= max(1, len(a) // 20)
    dist = np.abs(a.xyxy[:, None, :] - b.xyxy[None, :, :]).max(axis=2)
    nearest = dist.argmin(axis=1)
    close = dist[np.arange(len(a)), nearest] < px
    assert close.mean() >= share
    np.testing.assert_allclose(a.confidence[close], b.confidence[nearest[close]],
                               atol=score_tol)


def test_onnxruntime_and_openvino_give_the_same_boxes():
    """OpenVINO runs bfloat16 on CPUs that have it: the same cells, boxes within 1 px."""
    frames = [f for i, f in FrameSource(SAMPLE) if i in (0, 60, 120, 180)]
    ort = _yolo("onnx", **{"detector.onnx_runtime": "onnxruntime"})
    ov = _yolo("onnx", **{"detector.onnx_runtime": "openvino"})
    assert (ort.runtime, ov.runtime) == ("onnxruntime", "openvino")
    assert ov.class_names == ort.class_names and ov.stride == ort.stride
    batch = ov.detect_batch(frames)
    for frame, together in zip([*frames, frames[0][:301, :437]], [*batch, None],
                               strict=True):
        alone = ov.detect(frame)
        _same_boxes(ort.detect(frame), alone, px=1.0, share=0.95, score_tol=0.05)
        if together is not None:  # one frame alone or in a batch: the same answer
            np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-3)
    with pytest.raises(ConfigError, match="onnx_runtime"):
        load_config(None, {"detector.onnx_runtime": "tensorrt"})


def test_onnx_and_torch_yolo_give_the_same_boxes():
    frames = [f for i, f in FrameSource(SAMPLE) if i in (0, 60, 120, 180)]
    torch_det = _yolo("torch")
    onnx_det = _yolo("onnx", **{"detector.onnx_runtime": "onnxruntime"})
    assert (torch_det.backend, onnx_det.backend) == ("torch", "onnx")
    n = 0
    for frame in [*frames, frames[0][:301, :437]]:  # and an odd size (padded to /32)
        a, b = torch_det.detect(frame), onnx_det.detect(frame)
        assert abs(len(a) - len(b)) <= max(1, len(a) // 50)
        dist = np.abs(a.xyxy[:, None, :] - b.xyxy[None, :, :]).max(axis=2)
        nearest = dist.argmin(axis=1)
        close = dist[np.arange(len(a)), nearest] < 0.5  # px
        assert close.mean() >= 0.98
        np.testing.assert_allclose(a.confidence[close], b.confidence[nearest[close]],
                                   atol=0.01)
        n += len(a)
    assert n > 50


def test_onnx_and_torch_morphology_agree():
    from detect_track.morphology.classifier import MorphologyClassifier
    from detect_track.synth.heads import head_dataset

    images, _labels = head_dataset(4, seed=3)
    pt = MorphologyClassifier(resolve_model("", "head-shape-synth", "torch"))
    ox = MorphologyClassifier(resolve_model("", "head-shape-synth", "onnx"))
    assert (pt.backend, ox.backend, ox.class_names, ox.size) == (
        "torch", "onnx", pt.class_names, pt.size)
    np.testing.assert_allclose(pt.predict_proba(images), ox.predict_proba(images), atol=1e-4)


def test_backend_choice_and_missing_export(tmp_path: Path):
    assert resolve_model("", "yolo-sperm", "auto").suffix == ".onnx"
    assert resolve_model("", "yolo-sperm", "torch").suffix == ".pt"
    lonely = tmp_path / "mine.pt"
    lonely.write_bytes(b"x")
    assert resolve_model(str(lonely), "yolo-sperm", "auto") == lonely  # no export: torch
    with pytest.raises(ConfigError, match="export onnx"):
        resolve_model(str(lonely), "yolo-sperm", "onnx")
    with pytest.raises(ConfigError, match="detector.backend"):
        load_config(None, {"detector.backend": "tensorrt"})


@pytest.mark.slow
def test_export_reproduces_a_working_model(tmp_path: Path):
    from detect_track.training.export import export_onnx

    out = export_onnx(ROOT / "weights" / "head-shape-synth.pt", tmp_path / "head.onnx")
    from detect_track.morphology.classifier import MorphologyClassifier

    assert MorphologyClassifier(out).class_names[0] == "normal"
    yolo = export_onnx(ROOT / "weights" / "yolo-sperm.pt", tmp_path / "yolo.onnx")
    frame = next(f for _i, f in FrameSource(SAMPLE))
    shipped = _yolo("onnx").detect(frame)
    fresh = _yolo("onnx", **{"detector.yolo.weights": str(yolo)}).detect(frame)
    np.testing.assert_allclose(shipped.xyxy, fresh.xyxy, atol=0.05)
    with pytest.raises(ConfigError, match="EfficientDet"):
        export_onnx(ROOT / "weights" / "effdet-sperm.pt", tmp_path / "e.onnx")


BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "ultralytics", "effdet", "timm"}:
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.slow
def test_onnx_pipeline_runs_without_torch(tmp_path: Path):
    out = tmp_path / "res"
    # morphology.min_px_per_um=0: the sample (0.7 µm/px) is below the resolution floor
    code = BLOCK_TORCH + f"""
from detect_track.cli import main
rc = main([{str(SAMPLE)!r}, "--um-per-px", "0.7", "--out", {str(out)!r}, "-q",
           "--backend", "onnx", "--no-report", "video.read_ahead_frames=4",
           "--config", "sperm-sim", "morphology.min_px_per_um=0"])
assert rc == 0, rc
assert not any(m.split(".")[0] in ("torch", "ultralytics") for m in sys.modules), "torch loaded"
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["detector_backend"] == "onnx"
    assert summary["morphology_model"] == "head-shape-synth.onnx"
    assert summary["n_tracks"] > 20 and summary["n_morphology_assessed"] > 10
    assert "torch" not in summary["versions"]


def test_openvino_runs_from_several_threads_at_once():
    """Frames in flight share one compiled model; first inferences from two threads at the
    same moment once deadlocked OpenVINO, so its requests are warmed one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from detect_track.ml import OpenVinoModel

    blob = np.random.default_rng(0).random((1, 3, 96, 128), dtype=np.float32)
    path = ROOT / "weights" / "yolo-sperm.onnx"
    want = OpenVinoModel(path, 1).run(blob)
    for _ in range(5):
        model = OpenVinoModel(path, 2, streams=2)
        pool = ThreadPoolExecutor(2)
        try:
            outs = [f.result(timeout=60) for f in [pool.submit(model.run, blob) for _ in range(6)]]
        finally:
            pool.shutdown(wait=False)
        for out in outs:
            np.testing.assert_allclose(out, want, atol=1e-3)
