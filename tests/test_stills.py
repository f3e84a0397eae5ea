"""Still-image mode: tiles merged across seams, every image format, CSV outputs, the
annotation exports (COCO / YOLO), short labels, the annotated images and report.html."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.detectors import create_detector
from detect_track.io.datasets import load_coco
from detect_track.io.video import FrameSource
from detect_track.report.annotated import draw_annotated
from detect_track.stills import (
    DETECTION_COLUMNS,
    DETECTION_UM_COLUMNS,
    detect_tiled,
    short_labels,
    tile_origins,
    with_um_columns,
)
from detect_track.types import VideoMeta
from tests.helpers import render_blobs, right_class_recall

SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "samples" / "sim_phase_contrast"
CLASSICAL = ["detector.name=classical", "detector.classical.polarity=bright",
             "morphology.enabled=false"]


def test_tiles_cover_the_image_with_the_overlap():
    assert tile_origins(100, 128, 16) == [0]
    assert tile_origins(300, 128, 32) == [0, 96, 172]
    starts = tile_origins(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] + 256 == 1000
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:], strict=False))


def test_heads_on_seams_are_found_once():
    frame = next(f for _i, f in FrameSource(SAMPLE / "video.mp4"))
    det = create_detector("yolo", load_config("sperm-sim"),  # the simulated sample's model
                          VideoMeta("x", 1.0, 1, 640, 480, 0.7))
    whole = detect_tiled(det, frame, 2048, 64)
    tiled = detect_tiled(det, frame, 192, 48)  # 4 x 3 tiles: many heads near a seam
    assert len(whole) >= 20
    # weak answers (below the operating point, calibrated 0.5) near a tile's edge depend on
    # the context the tile gives and on the CPU's arithmetic, so only the confident answers are
    # counted; duplicates of any strength may not appear (next check)
    n_whole, n_tiled = (int((d.confidence >= 0.5).sum()) for d in (whole, tiled))
    assert abs(n_tiled - n_whole) <= max(2, n_whole // 10)
    gap = np.hypot(*(tiled.xy[:, None] - tiled.xy[None]).transpose(2, 0, 1))
    same = tiled.class_id[:, None] == tiled.class_id[None]
    assert (np.where(same, gap, 99) + np.eye(len(tiled)) * 99).min() > 2.0  # none twice
    d = np.hypot(*(whole.xy[:, None] - tiled.xy[None]).transpose(2, 0, 1)).min(axis=1)
    assert np.mean(d < 1.5) >= 0.9  # the same heads, at the same places


def test_image_mode_writes_tables_and_annotations(tmp_path: Path):
    folder = tmp_path / "slides"
    folder.mkdir()
    blobs = np.array([[30.0, 40.0], [90.0, 60.0], [130.0, 100.0]])
    gray = render_blobs(blobs, seed=2)
    cv2.imwrite(str(folder / "a.png"), gray)
    cv2.imwrite(str(folder / "b.tif"), (gray.astype(np.uint16) * 256))  # 16-bit
    cv2.imwrite(str(folder / "c.jpg"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95])  # colour
    (folder / "d.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = main([str(folder), "--config", "sperm-slide", "--um-per-px", "0.7", "--out",
               str(out), "-q", *CLASSICAL])
    assert rc == 3  # d.png is unreadable; the others are done
    det = pd.read_csv(out / "detections.csv")
    assert list(det.columns) == [*DETECTION_COLUMNS, *DETECTION_UM_COLUMNS]  # scale given
    assert det.groupby("image").size().to_dict() == {"a.png": 3, "b.tif": 3, "c.jpg": 3}
    np.testing.assert_allclose(det["x_um"], (det["x1"] + det["x2"]) / 2 * 0.7, atol=0.01)
    np.testing.assert_allclose(det["height_um"], (det["y2"] - det["y1"]) * 0.7, atol=0.01)
    counts = pd.read_csv(out / "counts.csv")
    assert counts.set_index("image")["count"].to_dict() == {"a.png": 3, "b.tif": 3,
                                                             "c.jpg": 3}
    assert sorted(p.name for p in (out / "annotated").iterdir()) == ["a.png", "b.png",
                                                                      "c.png"]
    # The annotated image: the picture untouched away from the boxes, a legend strip below.
    annotated = cv2.imread(str(out / "annotated" / "a.png"))
    assert annotated.shape[1] == gray.shape[1] and annotated.shape[0] > gray.shape[0]
    assert (annotated[:gray.shape[0], -8:, 0] == gray[:, -8:]).all()

    # The exports to correct in CVAT / Label Studio: COCO json and YOLO txt, same boxes.
    coco = json.loads((out / "annotations" / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["a.png", "b.tif", "c.jpg"]
    assert len(coco["annotations"]) == 9 and all("score" in a for a in coco["annotations"])
    samples, names = load_coco(out / "annotations" / "coco.json", folder)
    assert [s.image.name for s in samples] == ["a.png", "b.tif", "c.jpg"]
    a_rows = det[det["image"] == "a.png"][["x1", "y1", "x2", "y2"]].to_numpy()
    np.testing.assert_allclose(samples[0].boxes, a_rows, atol=0.01)
    classes = (out / "annotations" / "yolo" / "classes.txt").read_text().split()
    assert classes == names
    labels = sorted((out / "annotations" / "yolo" / "labels").iterdir())
    assert [p.name for p in labels] == ["a.txt", "b.txt", "c.txt"]
    cx = float(labels[0].read_text().split()[1])
    assert 0.0 < cx < 1.0 and len(labels[0].read_text().splitlines()) == 3

    # report.html: counts per image, the legend, the annotated images, the unreadable one.
    page = (out / "report.html").read_text()
    for needle in ("Counts per image", "a.png", "annotated/c.png", "d.png could not be read",
                   "Legend", "0.7 µm/px", "annotations/coco.json"):
        assert needle in page


def test_no_um_columns_when_the_scale_is_assumed(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), render_blobs(np.array([[30.0, 40.0]]), seed=1))
    out = tmp_path / "out"
    assert main([str(tmp_path / "a.png"), "--config", "sperm-slide",
                 "--out", str(out), "-q", *CLASSICAL]) == 0
    assert list(pd.read_csv(out / "detections.csv").columns) == list(DETECTION_COLUMNS)
    assert "ASSUMED" in (out / "report.html").read_text()


def test_short_labels_are_short_and_unique() -> None:
    labels = short_labels(["sperm", "round_spermatid", "rare_spermatocyte", "normal",
                           "leucocyte", "lens", "sperm"])
    assert labels == {"sperm": "S", "round_spermatid": "RS", "rare_spermatocyte": "RS2",
                      "normal": "N", "leucocyte": "Le", "lens": "Le2"}


def test_um_columns_and_annotated_strip_with_shapes() -> None:
    table = pd.DataFrame({"image": "x.png", "x1": [10.0, 50.0], "y1": [10.0, 20.0],
                          "x2": [20.0, 70.0], "y2": [16.0, 40.0],
                          "class_name": ["sperm", "sperm"], "confidence": [0.9, 0.8],
                          "morphology": ["normal", "pyriform"],
                          "morphology_confidence": [0.7, 0.6]})
    um = with_um_columns(table, 0.5)
    assert um[list(DETECTION_UM_COLUMNS)].to_numpy().tolist() == [[7.5, 6.5, 5.0, 3.0],
                                                                   [30.0, 15.0, 10.0, 10.0]]
    image = np.full((120, 400), 180, np.uint8)
    drawn = draw_annotated(image, table, ["sperm", "cluster"], 0.5)
    assert drawn.shape[1] == 400 and drawn.shape[0] > 120 and drawn.dtype == np.uint8
    strip = drawn[120:]
    assert strip.min() < 60 and np.median(strip) > 200  # dark text on a light strip
    assert (drawn[60:120, 200:] == 180).all()  # no legend over the image


def test_sperm_heads_get_a_head_shape(tmp_path: Path):
    frame = next(f for _i, f in FrameSource(SAMPLE / "video.mp4"))
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), frame)
    out = tmp_path / "out"
    assert main([str(path), "--config", "sperm-slide", "--um-per-px", "0.7", "--out",
                 str(out), "-q"]) == 0
    det = pd.read_csv(out / "detections.csv", keep_default_na=False)
    sperm = det[det["class_name"] == "sperm"]
    assert len(sperm) >= 15
    assert sperm["morphology"].isin(["normal", "tapered", "pyriform", "amorphous", "small",
                                     "not_assessable"]).all()


def test_a_still_image_in_video_mode_points_to_the_preset(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), render_blobs(np.array([[30.0, 40.0]])))
    assert main([str(path), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "--config sperm-slide" in capsys.readouterr().err


def test_whole_cells_carry_the_call_of_the_head_inside_them():
    from detect_track.stills import calls_to_cells

    table = pd.DataFrame({
        "image": "x", "x1": [0.0, 50.0, 5.0, 60.0, 300.0], "y1": [0.0, 50.0, 5.0, 60.0, 300.0],
        "x2": [200.0, 120.0, 15.0, 70.0, 310.0], "y2": [200.0, 120.0, 15.0, 70.0, 310.0],
        "class_name": ["sperm", "sperm", "sperm_head", "sperm_head", "sperm_head"],
        "confidence": [0.9, 0.9, 0.8, 0.7, 0.6],
        "morphology": ["", "", "normal", "tapered", "small"],
        "morphology_confidence": [np.nan, np.nan, 0.9, 0.8, 0.7]})
    calls_to_cells(table, np.array([2, 3, 4]))
    # strongest head first, one head per cell: (10, 10) lies only in the large cell;
    # (65, 65) lies in both and goes to the tighter one; (305, 305) lies in none
    assert table["morphology"].tolist()[:2] == ["normal", "tapered"]
    assert table["morphology_confidence"].tolist()[:2] == [0.9, 0.8]


SAMPLES = Path(__file__).resolve().parent.parent / "datasets" / "samples"


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["effdet", "yolo"])
def test_testicular_preset_locates_and_counts_six_cell_types(tmp_path: Path, detector: str):
    from detect_track.synth.smears import SMEAR_CLASSES

    smear = SAMPLES / "smear_testicular"
    out = tmp_path / detector
    assert main([str(smear / "smear.jpg"), "--config", "testicular", "--detector", detector,
                 "--out", str(out), "-q"]) == 0
    counts = pd.read_csv(out / "counts.csv")
    assert counts["class_name"].tolist() == list(SMEAR_CLASSES)
    det = pd.read_csv(out / "detections.csv")
    truth = pd.read_csv(smear / "truth.csv")
    assert (det["confidence"] >= 0.5).all()  # only what clears the operating point
    recall = right_class_recall(truth, det)
    assert (out / "annotated" / "smear.png").is_file()
    assert recall >= 0.5  # benchmarks/still_images.md has the held-out numbers
    assert abs(len(det) - len(truth)) <= 0.3 * len(truth)
