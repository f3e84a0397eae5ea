"""Simulated detection datasets: labels sit on the heads, augmentations move boxes right."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detect_track.errors import ConfigError, InputError
from detect_track.io.datasets import load_dataset
from detect_track.synth.config import random_config
from detect_track.synth.dataset import DatasetSpec, augment_tile, build_detection_dataset, harder
from detect_track.training.data import augment, random_tile


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds")
    spec = DatasetSpec(n_videos=4, seed=5, tile_px=128, frames_per_video=2,
                       tiles_per_frame=2, val_fraction=0.25, clip_frames=4)
    return build_detection_dataset(out, spec)


def test_yolo_and_coco_layouts_agree(tiny_dataset: Path):
    root = tiny_dataset.parent
    yolo_train, names = load_dataset(tiny_dataset, "train")
    coco_train, coco_names = load_dataset(root, "train")
    assert names == coco_names == ["sperm", "cluster", "small_or_pinhead"]
    assert len(yolo_train) == len(coco_train) == 12  # 3 clips x 2 frames x 2 tiles
    for a, b in zip(yolo_train, coco_train, strict=True):
        assert a.image.name == b.image.name
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.01)
        assert (a.classes == b.classes).all()
    assert sum(len(s.boxes) for s in yolo_train) > 0
    meta = json.loads((root / "dataset.json").read_text())
    assert len(meta["clips"]) == 4 and {c["split"] for c in meta["clips"]} == {"train", "val"}


def test_hard_clips_have_worse_optics_and_leave_other_draws_alone(tmp_path: Path):
    base = random_config(7)
    rng = np.random.default_rng(0)
    for _ in range(20):
        hard = harder(base, rng)
        assert 0.8 <= hard.blur_um <= 1.4 and hard.blur_um > base.blur_um
        assert 0.2 <= hard.defocus_frac <= 0.45
        assert 0.6 * base.head_contrast <= hard.head_contrast <= 0.9 * base.head_contrast
        assert hard.noise_std > base.noise_std or hard.noise_std == 16.0
        assert (hard.fps, hard.n_cells, hard.look) == (base.fps, base.n_cells, base.look)
    spec = dict(n_videos=3, seed=5, tile_px=64, frames_per_video=1, tiles_per_frame=1,
                val_fraction=0.0, clip_frames=2)
    plain = json.loads((build_detection_dataset(tmp_path / "a", DatasetSpec(**spec)).parent
                        / "dataset.json").read_text())["clips"]
    mixed = json.loads((build_detection_dataset(tmp_path / "b", DatasetSpec(
        **spec, hard_fraction=1.0)).parent / "dataset.json").read_text())["clips"]
    assert not any(c["hard"] for c in plain) and all(c["hard"] for c in mixed)
    # the hard draws come from their own stream: every other draw is the same
    for a, b in zip(plain, mixed, strict=True):
        assert {k: v for k, v in a.items() if k != "hard"} == \
            {k: v for k, v in b.items() if k != "hard"}


def test_labels_sit_on_heads(tiny_dataset: Path):
    """Pixels inside head boxes differ from the tile's background more than random ones."""
    samples, _ = load_dataset(tiny_dataset, "train")
    inside, outside = [], []
    rng = np.random.default_rng(0)
    for s in samples:
        img = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE).astype(float)
        dev = np.abs(img - np.median(img))
        for x1, y1, x2, y2 in s.boxes[s.classes == 0].round().astype(int):
            inside.append(dev[y1:y2 + 1, x1:x2 + 1].max())
            rx, ry = rng.integers(0, img.shape[1] - 6), rng.integers(0, img.shape[0] - 6)
            outside.append(dev[ry:ry + (y2 - y1) + 1, rx:rx + (x2 - x1) + 1].max())
    assert np.median(inside) > 2 * np.median(outside)


def test_rotation_and_flip_move_boxes_with_pixels():
    img = np.zeros((64, 64), np.uint8)
    img[10:14, 40:48] = 255  # box x 40-48, y 10-14
    labels = np.array([[40, 10, 48, 14, 0]], float)
    rng = np.random.default_rng(1)
    for _ in range(8):
        t, lab = augment_tile(img, labels, rng)
        ys, xs = np.nonzero(t)
        np.testing.assert_allclose(lab[0, :4], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        t2, b2 = augment(img, labels[:, :4], rng)
        ys, xs = np.nonzero(t2 > 128)
        np.testing.assert_allclose(b2[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_random_tile_keeps_native_scale_and_clips():
    img = np.zeros((100, 200), np.uint8)
    boxes = np.array([[5.0, 5.0, 15.0, 12.0], [190.0, 90.0, 210.0, 110.0]])
    tile, b, c = random_tile(img, boxes, np.array([0, 1]), 64, np.random.default_rng(0))
    assert tile.shape == (64, 64)
    assert np.all((b[:, 2] - b[:, 0]) <= 10.0 + 1e-9)


def test_bad_specs_and_data_are_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigError):
        DatasetSpec(tile_px=100)
    with pytest.raises(ConfigError, match="hard_fraction"):
        DatasetSpec(hard_fraction=1.5)
    with pytest.raises(InputError):
        load_dataset(tmp_path, "train")


def test_full_frames_are_tiled_not_shrunk(tmp_path: Path):
    from detect_track.io.datasets import needs_tiling, tile_yolo_dataset

    root = tmp_path / "full"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        img = np.zeros((200, 300), np.uint8)
        img[100:104, 250:256] = 255
        cv2.imwrite(str(root / "images" / split / "a.png"), img)
        (root / "labels" / split / "a.txt").write_text(
            f"0 {253 / 300:.6f} {102 / 200:.6f} {6 / 300:.6f} {4 / 200:.6f}\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\n"
                                    "names: [sperm, cluster, small_or_pinhead]\n")
    samples, _ = load_dataset(root / "data.yaml", "train")
    assert needs_tiling(samples, 128) and not needs_tiling(samples, 320)
    tiled = tile_yolo_dataset(root / "data.yaml", tmp_path / "tiles", 128)
    tiles, _ = load_dataset(tiled, "train")
    assert all(cv2.imread(str(t.image)).shape[:2] == (128, 128) for t in tiles)
    sizes = [t.boxes[0, 2:] - t.boxes[0, :2] for t in tiles if len(t.boxes)]
    assert sizes and all(np.allclose(s, [6, 4], atol=0.01) for s in sizes)
