"""Pre-annotations: frames of a video with the detector's boxes, as YOLO txt and COCO json."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detect_track.cli import main
from detect_track.config import Config, load_config
from detect_track.detectors import create_detector
from detect_track.io.datasets import load_coco, load_yolo
from detect_track.io.video import FrameSource
from detect_track.training.preannotate import PreannotateSettings, preannotate
from detect_track.types import VideoMeta

SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "samples" / "sim_phase_contrast"


def test_annotate_command_writes_matching_yolo_and_coco(tmp_path: Path):
    out = tmp_path / "labels"
    assert main(["annotate", str(SAMPLE / "video.mp4"), "--um-per-px", "0.7", "--out",
                 str(out), "--every", "10", "--max-frames", "3", "-q", "--config",
                 "sperm-sim"]) == 0
    names = (out / "classes.txt").read_text().split()
    assert names[0] == "sperm"
    train_png = sorted(p.name for p in (out / "images" / "train").glob("*.png"))
    val_png = sorted(p.name for p in (out / "images" / "val").glob("*.png"))
    assert train_png == ["video_000000.png", "video_000020.png"]  # frames 0, 10, 20
    assert val_png == ["video_000010.png"]  # the second exported frame
    for split in ("train", "val"):
        yolo, yolo_names = load_yolo(out / "data.yaml", split)
        coco, coco_names = load_coco(out / "annotations" / f"{split}.json",
                                     out / "images" / split)
        assert yolo_names == coco_names == names
        by_name = {s.image.name: s for s in coco}
        for s in yolo:
            c = by_name[s.image.name]
            assert np.array_equal(s.classes, c.classes)
            np.testing.assert_allclose(s.boxes, c.boxes, atol=0.01)  # 6-decimal YOLO txt
    # the boxes are the detector's answers at the operating point, frame by frame
    cfg = load_config("sperm-sim")
    meta = VideoMeta(path="v", fps=1.0, n_frames=-1, width_px=0, height_px=0, um_per_px=0.7,
                     um_per_px_source="cli")
    det = create_detector(cfg.detector.name, cfg, meta)
    frame10 = next(f for i, f in FrameSource(SAMPLE / "video.mp4") if i == 10)
    d = det.detect(frame10)
    keep = d.confidence >= 0.5
    assert keep.sum() > 5
    coco = json.loads((out / "annotations" / "val.json").read_text())
    assert len(coco["annotations"]) == int(keep.sum())
    assert all(a["score"] >= 0.5 for a in coco["annotations"])
    img = cv2.imread(str(out / "images" / "val" / "video_000010.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape[:2] == frame10.shape[:2]
    assert not list(out.rglob("*.tmp"))


def test_settings_are_checked():
    with pytest.raises(Exception, match="every_n_frames"):
        PreannotateSettings(every_n_frames=0)


def test_annotate_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["annotate", str(tmp_path / "missing.avi"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.avi" in err[0]


def test_one_frame_source_exports_train_only(tmp_path: Path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"{k}.png"), np.full((64, 64), 90, np.uint8))
    data = preannotate(frames, tmp_path / "o", Config(), PreannotateSettings(max_frames=1),
                       um_per_px=0.7)
    assert data.is_file()
    assert len(list((tmp_path / "o" / "images" / "train").glob("*.png"))) == 1
    assert not list((tmp_path / "o" / "images" / "val").glob("*.png"))


@pytest.mark.slow
def test_the_fine_tune_loop_runs_from_an_export(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch):
    """annotate -> (corrections) -> train yolo --init weights/yolo-sperm.pt, as the README."""
    from detect_track.config import LearnedConfig
    from detect_track.detectors.yolo import YoloDetector
    from detect_track.trust import TRUST_ENV

    labels = tmp_path / "labels"
    assert main(["annotate", str(SAMPLE / "video.mp4"), "--um-per-px", "0.7", "--out",
                 str(labels), "--every", "20", "--max-frames", "2", "-q"]) == 0
    capsys.readouterr()
    weights = Path(__file__).resolve().parent.parent / "weights" / "yolo-sperm.pt"
    assert main(["train", "yolo", str(labels / "data.yaml"), "--init", str(weights), "--out",
                 str(tmp_path / "run"), "--epochs", "1", "--batch", "4", "--imgsz", "160",
                 "-q"]) == 0
    best = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert best.is_file()
    monkeypatch.setenv(TRUST_ENV, "1")  # the user's own run: --trust-model
    det = YoloDetector(LearnedConfig(weights=str(best)), um_per_px=0.7)
    assert det.class_names == ("sperm", "cluster", "small_or_pinhead")
