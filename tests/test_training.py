"""Training smoke runs: one short epoch on a handful of simulated tiles, for each detector.

They check the plumbing (dataset -> trainer -> checkpoint -> detector), not accuracy;
accuracy lives in benchmarks/detection.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from detect_track.cli import main
from detect_track.config import LearnedConfig
from detect_track.synth.dataset import DatasetSpec, build_detection_dataset


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds")
    spec = DatasetSpec(n_videos=3, seed=9, tile_px=128, frames_per_video=2,
                       tiles_per_frame=1, val_fraction=0.34, clip_frames=4)
    return build_detection_dataset(out, spec)


@pytest.mark.slow
def test_yolo_trains_one_epoch_and_loads(tiny_dataset: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    from detect_track.detectors.yolo import YoloDetector
    from detect_track.training.yolo import YoloTrainSettings, train_yolo
    from detect_track.trust import TRUST_ENV

    monkeypatch.setenv(TRUST_ENV, "1")  # our own checkpoint, outside weights/ (--trust-model)

    best = train_yolo(tiny_dataset, tmp_path / "run",
                      YoloTrainSettings(epochs=1, imgsz=128, batch=4, workers=0, cache=False))
    assert best.is_file()
    det = YoloDetector(LearnedConfig(weights=str(best)), um_per_px=0.7)
    assert det.class_names == ("sperm", "cluster", "small_or_pinhead")
    assert len(det.detect(np.full((96, 96), 100, np.uint8))) >= 0


@pytest.mark.slow
def test_effdet_trains_one_epoch_via_cli_and_loads(tiny_dataset: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    from detect_track.detectors.effdet import EffdetDetector

    # the COCO layout of the same dataset (annotations/*.json)
    assert main(["train", "effdet", str(tiny_dataset.parent), "--out", str(tmp_path / "e"),
                 "--epochs", "1", "--batch", "2", "--imgsz", "128", "-q"]) == 0
    best = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert best.is_file()
    det = EffdetDetector(LearnedConfig(weights=str(best)), um_per_px=0.7)
    assert det.class_names == ("sperm", "cluster", "small_or_pinhead")
    assert det.detect(np.full((96, 96), 100, np.uint8)).xyxy.shape[1] == 4
    # fine-tuning starts from those weights: every tensor fits the same network
    assert main(["train", "effdet", str(tiny_dataset.parent), "--out", str(tmp_path / "f"),
                 "--epochs", "1", "--batch", "2", "--imgsz", "128", "--init", str(best)]) == 0
    err = capsys.readouterr().err
    assert "started from" in err
    n_fit, n_all = re.search(r"\((\d+) of (\d+) tensors\)", err).groups()
    assert n_fit == n_all
    # a file that is not an EfficientDet checkpoint is refused in one line
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    assert main(["train", "effdet", str(tiny_dataset.parent), "--out", str(tmp_path / "g"),
                 "--epochs", "1", "--init", str(bogus), "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot load EfficientDet weights" in err and "Traceback" not in err
    # weights of another network are refused
    import torch

    from detect_track.errors import ConfigError
    from detect_track.training.effdet import load_init_weights

    with pytest.raises(ConfigError, match="does not fit"):
        load_init_weights(torch.nn.Linear(2, 2), str(best), "other.yaml", None)


def test_train_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["train", "yolo", str(tmp_path / "missing.yaml"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "effdet", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err


def test_operating_point_maximises_f1(tiny_dataset: Path):
    from detect_track.config import Config
    from detect_track.detectors import create_detector
    from detect_track.io.datasets import load_dataset
    from detect_track.training.calibration import operating_point
    from detect_track.types import VideoMeta

    samples, _ = load_dataset(tiny_dataset, "train")
    meta = VideoMeta(path="x", fps=50.0, n_frames=1, width_px=128, height_px=128,
                     um_per_px=0.7)
    det = create_detector("classical", Config(), meta)
    grid = np.array([0.3, 0.6, 0.9, 0.99])
    t, m = operating_point(det, samples, grid=grid)
    assert t in grid and 0.0 <= m["f1"] <= 1.0
    assert m["f1"] >= 0.0 and set(m) == {"precision", "recall", "f1", "map50"}
