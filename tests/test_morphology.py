"""Morphology: simulated heads, image-set readers, classifier training and prediction."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.errors import InputError
from detect_track.morphology.classifier import MorphologyClassifier
from detect_track.morphology.cnn import HEAD_SHAPES, fit_crop, save_checkpoint
from detect_track.morphology.data import load_image_set
from detect_track.morphology.training import MorphTrainSettings, stratified_folds, train_classifier
from detect_track.synth.heads import head_dataset, head_outline, render_head

TINY = MorphTrainSettings(epochs=2, width=4, batch=16, patience=5)


def test_heads_render_every_class_deterministically():
    for shape in HEAD_SHAPES:
        a = render_head(shape, np.random.default_rng(3))
        b = render_head(shape, np.random.default_rng(3))
        assert a.shape == (64, 64) and a.dtype == np.uint8 and np.array_equal(a, b)
        assert a.std() > 2  # something is drawn
    with pytest.raises(ValueError):
        render_head("round", np.random.default_rng(0))


def test_head_shapes_follow_their_definitions():
    rng = np.random.default_rng(0)
    shapes = ("normal", "tapered", "small")
    stats = {s: [head_outline(s, rng)[1:] for _ in range(50)] for s in shapes}
    ratio = {s: np.median([L / W for L, W in v]) for s, v in stats.items()}
    length = {s: np.median([L for L, _ in v]) for s, v in stats.items()}
    assert ratio["tapered"] > 2.0 > ratio["normal"] > 1.3
    assert length["small"] < 3.5 < 4.0 <= length["normal"]


def test_fit_crop_standardises_any_size():
    out = fit_crop(np.random.default_rng(0).integers(0, 255, (30, 90)).astype(np.uint8), 64)
    assert out.shape == (64, 64) and abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3


def test_stratified_folds_cover_everything_once():
    labels = np.array([0] * 10 + [1] * 4)
    folds = stratified_folds(labels, 4)
    assert sorted(np.concatenate(folds).tolist()) == list(range(14))
    assert all((labels[f] == 1).sum() == 1 for f in folds)


@pytest.fixture()
def class_folder(tmp_path: Path) -> Path:
    images, labels = head_dataset(8, seed=4, classes=("normal", "small"))
    for i, (img, k) in enumerate(zip(images, labels, strict=True)):
        d = tmp_path / "data" / ("normal", "small")[k]
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i}.png"), img)
    return tmp_path / "data"


def test_read_class_folders_image_folders_and_npy(class_folder: Path, tmp_path: Path):
    s = load_image_set(class_folder)
    assert s.class_names == ("normal", "small") and len(s) == 16
    assert np.bincount(s.labels).tolist() == [8, 8]
    u = load_image_set(class_folder / "small", labelled=False)
    assert u.labels is None and len(u) == 8 and u.items[0].endswith(".png")
    x = np.stack(s.images)
    np.save(tmp_path / "x_64_train.npy", x)
    np.save(tmp_path / "y_head_train.npy", s.labels.astype(np.uint8))
    n = load_image_set(tmp_path / "x_64_train.npy", task="head")
    assert n.items[:2] == ["0", "1"] and n.labels.tolist() == s.labels.tolist()
    assert n.class_names == ("normal", "abnormal")
    with pytest.raises(InputError, match="no labels"):
        load_image_set(tmp_path / "x_64_train.npy", task="tail")
    with pytest.raises(InputError, match="does not exist"):
        load_image_set(tmp_path / "nope")


def test_train_save_load_predict(class_folder: Path, tmp_path: Path):
    s = load_image_set(class_folder)
    ckpt = train_classifier(s.images, s.labels, s.class_names, "head_shape", TINY)
    path = save_checkpoint(ckpt, tmp_path / "m.pt")
    model = MorphologyClassifier(path)
    assert model.task == "head_shape" and model.class_names == ("normal", "small")
    p = model.predict_proba(s.images)
    assert p.shape == (16, 2) and np.allclose(p.sum(axis=1), 1)
    labels, conf = model.predict(s.images[:3])
    assert set(labels) <= {"normal", "small"} and np.all((conf >= 0.5) & (conf <= 1))
    again = MorphologyClassifier(path).predict_proba(s.images)
    np.testing.assert_allclose(p, again)
    with pytest.raises(InputError):
        train_classifier(s.images[:3], s.labels[:3], s.class_names, "head", TINY)
    # transfer: start from the trained model; a model of another width is refused
    from dataclasses import replace

    again = train_classifier(s.images, s.labels, ("normal", "abnormal"), "head",
                             replace(TINY, init=str(path), epochs=1))
    assert again["class_names"] == ["normal", "abnormal"]
    from detect_track.errors import ConfigError

    with pytest.raises(ConfigError, match="width"):
        train_classifier(s.images, s.labels, s.class_names, "head",
                         replace(TINY, init=str(path), width=8))


def test_cli_train_and_predict(class_folder: Path, tmp_path: Path, capsys):
    model = tmp_path / "m.pt"
    assert main(["morphology", "train", str(class_folder), "--task", "head_shape", "--out",
                 str(model), "--epochs", "1", "-q"]) == 0
    out = tmp_path / "pred.csv"
    assert main(["morphology", "predict", str(model), str(class_folder / "normal"), "--out",
                 str(out), "-q"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["item", "label", "confidence"] and len(table) == 8
    capsys.readouterr()
    rc = main(["morphology", "predict", str(tmp_path / "missing.pt"), str(class_folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not found" in err[0]
    rc = main(["morphology", "train", str(class_folder), "--task", "shape", "--out", "x.pt"])
    assert rc == 2 and "--task must be one of" in capsys.readouterr().err


def test_transfer_settings_take_smaller_steps_unless_told_otherwise():
    from detect_track.morphology.training import (
        TRANSFER_LR,
        TRANSFER_PATIENCE,
        MorphTrainSettings,
        transfer_settings,
    )

    s = transfer_settings("m.pt", epochs=5)
    assert (s.init, s.epochs, s.lr, s.patience) == ("m.pt", 5, TRANSFER_LR, TRANSFER_PATIENCE)
    assert TRANSFER_LR < MorphTrainSettings().lr
    assert transfer_settings("m.pt", lr=1e-3).lr == 1e-3
