"""Synthetic stained stills: six testicular cell types, semen slides, dataset layout."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detect_track.errors import ConfigError
from detect_track.io.datasets import load_dataset, load_yolo
from detect_track.synth.smears import (
    SLIDE_CLASSES,
    SMEAR_CLASSES,
    SmearSpec,
    build_still_dataset,
    random_spec,
    render_smear,
)
from detect_track.training.sperm_parsing import holdout_split, load_sperm_parsing


def test_same_seed_same_image_and_boxes_inside_it():
    spec = SmearSpec(n_cells=60, n_confusers=10)
    a, b = render_smear(spec, 3), render_smear(spec, 3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    assert a.image.shape == (768, 1024, 3) and a.image.dtype == np.uint8
    assert len(a.boxes) == len(a.classes) > 30  # a few drop out (too close, edge)
    assert (a.boxes[:, :2] >= 0).all() and (a.boxes[:, 2] <= 1024).all()
    assert (a.boxes[:, 3] <= 768).all() and (a.boxes[:, 2:] > a.boxes[:, :2]).all()
    assert not np.array_equal(a.image, render_smear(spec, 4).image)


def test_cell_types_have_their_sizes():
    sizes: dict[int, list[float]] = {k: [] for k in range(6)}
    for seed in range(4):
        img = render_smear(SmearSpec(n_cells=150, clumping=0.0), seed)
        side = np.sqrt((img.boxes[:, 2] - img.boxes[:, 0]) * (img.boxes[:, 3] - img.boxes[:, 1]))
        for k, s in zip(img.classes, side, strict=True):
            sizes[int(k)].append(float(s))
    med = {SMEAR_CLASSES[k]: np.median(v) for k, v in sizes.items()}
    assert all(len(v) >= 5 for v in sizes.values())  # every type drawn
    assert 6 <= med["mature_sperm"] <= 12  # ~8 px at 0.55 µm/px, as in the published data
    assert 6 <= med["elongated_spermatid"] <= 16
    assert med["round_spermatid"] < med["primary_spermatocyte"] < med["sertoli"]
    assert med["mature_sperm"] < med["immature_sperm"]  # the droplet enlarges the box


def test_nuclei_absorb_more_than_background():
    img = render_smear(SmearSpec(n_cells=40, n_confusers=0, mix=(0, 0, 1, 0, 0, 0)), 5)
    gray = cv2.cvtColor(img.image, cv2.COLOR_BGR2GRAY).astype(float)
    inside = [gray[int((y1 + y2) / 2), int((x1 + x2) / 2)] for x1, y1, x2, y2 in img.boxes]
    assert np.median(inside) < np.median(gray) - 30  # dense round spermatid nuclei


def test_slide_preset_boxes_whole_cells_and_their_heads():
    img = render_smear(random_spec(np.random.default_rng(0), "slide"), 11)
    whole, heads = img.boxes[img.classes == 0], img.boxes[img.classes == 1]
    assert img.names == SLIDE_CLASSES and len(heads) >= len(whole) >= 1
    for w in whole:  # every whole cell holds a head and is much larger than it
        inside = ((heads[:, 0] >= w[0] - 1) & (heads[:, 2] <= w[2] + 1)
                  & (heads[:, 1] >= w[1] - 1) & (heads[:, 3] <= w[3] + 1))
        assert inside.any()
        assert (w[2] - w[0]) * (w[3] - w[1]) > 4 * np.min(
            (heads[inside, 2] - heads[inside, 0]) * (heads[inside, 3] - heads[inside, 1]))


def test_bad_specs_are_refused():
    with pytest.raises(ConfigError, match="mix"):
        SmearSpec(mix=(1.0, 2.0))
    with pytest.raises(ConfigError, match="preset"):
        SmearSpec(preset="histology")
    with pytest.raises(ConfigError, match="um_per_px"):
        SmearSpec(um_per_px=0.0)


def test_dataset_is_written_as_yolo_and_coco(tmp_path: Path):
    data = build_still_dataset(tmp_path / "ds", n_train=2, n_val=1, n_test=1, seed=1)
    train, names = load_yolo(data, "train")
    assert names == list(SMEAR_CLASSES) and len(train) == 2
    coco, coco_names = load_dataset(tmp_path / "ds", "train")
    assert coco_names == list(SMEAR_CLASSES)
    for a, b in zip(train, coco, strict=True):  # the two layouts hold the same boxes
        assert np.allclose(a.boxes, b.boxes, atol=0.01) and np.array_equal(a.classes,
                                                                            b.classes)
    assert len(load_yolo(data, "test")[0]) == 1
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert len({r["seed"] for rows in meta["images"].values() for r in rows}) == 4
    assert cv2.imread(str(train[0].image), cv2.IMREAD_UNCHANGED).ndim == 2  # gray


def _parsing_folder(root: Path) -> None:
    """A two-image Sperm Parsing-style folder: COCO boxes + one part mask per cell."""
    (root / "images").mkdir(parents=True)
    (root / "parsing").mkdir()
    anns, images = [], []
    for i, name in enumerate(["b.jpg", "a.jpg"]):
        cv2.imwrite(str(root / "images" / name), np.full((100, 120, 3), 200, np.uint8))
        mask = np.zeros((100, 120), np.uint8)
        mask[20:30, 10:25] = 3  # nucleus
        mask[20:30, 25:28] = 2  # acrosome
        mask[24:26, 28:90] = 5  # tail
        cv2.imwrite(str(root / "parsing" / f"{i}.png"), mask)
        images.append({"id": i + 1, "file_name": name, "width": 120, "height": 100})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1,
                     "bbox": [10, 20, 80, 10], "parsing": f"{i}.png", "iscrowd": 0})
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "sperm"}]}))


def test_sperm_parsing_gives_whole_cell_and_head_boxes(tmp_path: Path):
    _parsing_folder(tmp_path / "sp")
    samples = load_sperm_parsing(tmp_path / "sp")
    assert [s.image.name for s in samples] == ["a.jpg", "b.jpg"]  # sorted by name
    s = samples[0]
    assert s.classes.tolist() == [0, 1]
    assert s.boxes[0].tolist() == [10, 20, 90, 30]  # COCO x, y, w, h -> x1, y1, x2, y2
    assert s.boxes[1].tolist() == [10, 20, 28, 30]  # acrosome + nucleus, no tail
    kept, held = holdout_split(samples * 5)
    assert len(held) == 2 and len(kept) == 8


def test_cli_renders_a_smear_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from detect_track.cli import main

    assert main(["train", "smears", str(tmp_path / "s"), "--n-images", "2", "--kind", "slide",
                 "-q"]) == 0
    data = Path(capsys.readouterr().out.strip())
    samples, names = load_yolo(data, "train")
    assert names == list(SLIDE_CLASSES) and len(samples) == 2
    assert len(load_yolo(data, "val")[0]) == 1


def test_cli_names_an_unknown_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from detect_track.cli import main

    rc = main(["train", "yolo", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "r"),
               "--arch", "yolo-testis-p3"])
    assert rc == 2
    assert "did you mean 'yolo-testis-p2'" in capsys.readouterr().err


def test_a_coco_dataset_becomes_yolo_for_training(tmp_path: Path):
    from detect_track.training.yolo import coco_to_yolo

    build_still_dataset(tmp_path / "ds", n_train=2, n_val=1, seed=2)
    data = coco_to_yolo(tmp_path / "ds", tmp_path / "yolo")
    coco, names = load_dataset(tmp_path / "ds", "train")
    yolo, yolo_names = load_yolo(data, "train")
    assert yolo_names == names == list(SMEAR_CLASSES)
    for a, b in zip(coco, yolo, strict=True):
        assert np.allclose(a.boxes, b.boxes, atol=0.01) and np.array_equal(a.classes,
                                                                            b.classes)
