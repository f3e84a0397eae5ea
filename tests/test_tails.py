"""Whole-cell boxes grown from heads along traced tails (detectors/tails.py, still mode)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detect_track.config import load_config
from detect_track.detectors.tail_map import load_tail_map
from detect_track.detectors.tails import (
    TailTraceSettings,
    trace_tails,
    trace_whole_cells,
)
from detect_track.errors import ConfigError
from detect_track.eval.boxes import box_iou
from detect_track.stills import detect_image
from detect_track.types import Detections

UM = 0.106  # the working scale: a head ~40 x 25 px, a tail ~3 px wide


def draw_cell(img: np.ndarray, head_xy: tuple[float, float], angle_deg: float,
              tail_px: float, curve_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Draw a dark bright-field sperm; return its true ``x1, y1, x2, y2`` box.

    The head is an ellipse of 40 x 24 px (times ``scale``) whose long axis points along
    ``angle_deg``; the tail leaves its back end and bends by ``curve_deg`` in all.
    """
    a = np.deg2rad(angle_deg)
    d = np.array([np.cos(a), np.sin(a)])
    c = np.asarray(head_xy, float)
    cv2.ellipse(img, (round(c[0]), round(c[1])), (round(20 * scale), round(12 * scale)),
                angle_deg, 0, 360, 60, -1, cv2.LINE_AA)
    n = 60
    bend = np.deg2rad(curve_deg) * np.linspace(0, 1, n)
    steps = np.c_[np.cos(a + np.pi + bend), np.sin(a + np.pi + bend)] * tail_px * scale / n
    tail = c - 20 * scale * d + np.cumsum(np.vstack([[0, 0], steps[:-1]]), axis=0)
    cv2.polylines(img, [np.round(tail).astype(np.int32)], False, 150, max(1, round(3 * scale)),
                  cv2.LINE_AA)
    head = head_box(head_xy, angle_deg, scale)
    return np.r_[np.minimum(tail.min(axis=0), head[:2]), np.maximum(tail.max(axis=0), head[2:])]


def head_box(xy: tuple[float, float], angle_deg: float, scale: float = 1.0) -> np.ndarray:
    """The axis-aligned box of the head ellipse drawn by :func:`draw_cell`."""
    a = np.deg2rad(angle_deg)
    hx = abs(20 * scale * np.cos(a)) + abs(12 * scale * np.sin(a))
    hy = abs(20 * scale * np.sin(a)) + abs(12 * scale * np.cos(a))
    return np.array([xy[0] - hx, xy[1] - hy, xy[0] + hx, xy[1] + hy])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``x1, y1, x2, y2`` boxes."""
    return float(box_iou(np.asarray(a)[None], np.asarray(b)[None])[0, 0])


def slide(shape: tuple[int, int] = (512, 640), noise: float = 3.0, seed: int = 0
          ) -> np.ndarray:
    """A bright, slightly noisy, unevenly lit background (uint8)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    ramp = np.linspace(-10, 10, w)[None, :]
    return np.clip(200 + ramp + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)


def test_one_cell_box_holds_head_and_curved_tail():
    img = slide()
    truth = draw_cell(img, (120, 120), 200.0, 420, curve_deg=40)
    head = head_box((120, 120), 200.0)
    boxes, rel = trace_whole_cells(img, head[None], UM)
    assert boxes.shape == (1, 4) and rel.shape == (1,)
    assert iou(boxes[0], truth) > 0.85
    assert rel[0] > 0.8  # a 45 µm tail traced to its end
    tr = trace_tails(img, head[None], UM)[0]
    assert tr.end == "open" and 38 < tr.length_um(UM) < 50


def test_crossing_tails_are_followed_straight_through():
    img = slide()
    a = draw_cell(img, (80, 250), 180.0, 460)  # tail to the right
    b = draw_cell(img, (330, 60), 270.0, 420)  # tail down, crossing the first
    heads = np.stack([head_box((80, 250), 180.0), head_box((330, 60), 270.0)])
    boxes, _ = trace_whole_cells(img, heads, UM)
    assert iou(boxes[0], a) > 0.8
    assert iou(boxes[1], b) > 0.8


def test_tail_leaving_the_image_reaches_the_border():
    img = slide()
    truth = draw_cell(img, (200, 200), 180.0, 700)  # runs out on the right
    boxes, rel = trace_whole_cells(img, head_box((200, 200), 180.0)[None], UM)
    assert trace_tails(img, head_box((200, 200), 180.0)[None], UM)[0].end == "border"
    assert boxes[0, 2] == pytest.approx(img.shape[1], abs=2)
    assert iou(boxes[0], np.minimum(truth, [640, 512, 640, 512])) > 0.8
    assert rel[0] > 0.9


def test_detached_head_keeps_its_box_with_low_reliability():
    img = slide()
    cv2.ellipse(img, (300, 250), (20, 12), 0, 0, 360, 60, -1, cv2.LINE_AA)
    head = head_box((300, 250), 0.0)
    boxes, rel = trace_whole_cells(img, head[None], UM)
    assert iou(boxes[0], head) > 0.7  # a few px of trace at most
    assert rel[0] < 0.2


def test_no_heads_and_bad_input():
    img = slide()
    boxes, rel = trace_whole_cells(img, np.zeros((0, 4)), UM)
    assert boxes.shape == (0, 4) and rel.shape == (0,)
    with pytest.raises(ConfigError):
        trace_whole_cells(np.zeros((8, 8, 3), np.uint8), np.zeros((1, 4)), UM)
    with pytest.raises(ConfigError):
        trace_whole_cells(img, np.zeros((1, 4)), 0.0)
    with pytest.raises(ConfigError):
        TailTraceSettings(gap_um=-1.0)


def test_tracing_works_in_micrometres_at_any_magnification():
    """The same cell photographed at twice the magnification gives the same box in µm."""
    small, big = slide(), slide((1024, 1280), seed=1)
    t1 = draw_cell(small, (120, 120), 200.0, 420, curve_deg=40)
    t2 = draw_cell(big, (240, 240), 200.0, 420, curve_deg=40, scale=2.0)
    b1, _ = trace_whole_cells(small, head_box((120, 120), 200.0)[None], UM)
    b2, _ = trace_whole_cells(big, head_box((240, 240), 200.0, 2.0)[None], UM / 2)
    assert iou(b1[0], t1) > 0.85 and iou(b2[0], t2) > 0.85
    assert iou(b2[0] / 2, b1[0]) > 0.85


class _Heads:
    """A stand-in detector that returns fixed boxes (the tracing, not it, is under test)."""

    def __init__(self, names: tuple[str, ...], det: Detections) -> None:
        self.class_names = names
        self.det = det
        self.scale = 1.0

    def detect(self, frame: np.ndarray) -> Detections:
        return self.det


def test_detect_image_replaces_model_whole_cells_with_traced_ones():
    img = slide()
    truth = draw_cell(img, (120, 120), 200.0, 420, curve_deg=40)
    head = head_box((120, 120), 200.0)
    det = Detections(np.stack([head, [0, 0, 50, 50]]), [0.9, 0.8], [1, 0])
    cfg = load_config("sperm-slide-parsing", {"still.tile_px": 1024})
    d = detect_image(_Heads(("sperm", "sperm_head"), det), img, cfg, UM)
    cells = d[d.class_id == 0]
    assert len(d[d.class_id == 1]) == 1 and len(cells) == 1  # the model's cell box is gone
    assert iou(cells.xyxy[0], truth) > 0.85
    assert 0.7 < cells.confidence[0] <= 0.9  # head confidence x trace reliability
    model = detect_image(_Heads(("sperm", "sperm_head"), det), img,
                         load_config("sperm-slide-parsing", {"still.whole_cells": "model"}), UM)
    assert np.allclose(model.xyxy, det.xyxy)


def test_traced_whole_cells_need_a_head_class():
    cfg = load_config("sperm-slide-parsing")
    with pytest.raises(ConfigError, match="sperm_head"):
        detect_image(_Heads(("sperm",), Detections.empty()), slide(), cfg, UM)
    with pytest.raises(ConfigError, match="whole_cells"):
        load_config("sperm-slide-parsing", {"still.whole_cells": "grown"})
    with pytest.raises(ConfigError, match="still.tail_gap_um"):
        load_config("sperm-slide-parsing", {"still.tail_gap_um": -1.0})


def test_learned_tail_map_traces_the_cells_too():
    """The shipped U-Net map (trained on real slides) in place of the ridge map."""
    img = slide()
    a = draw_cell(img, (120, 120), 200.0, 420, curve_deg=40)
    b = draw_cell(img, (80, 400), 180.0, 460)
    heads = np.stack([head_box((120, 120), 200.0), head_box((80, 400), 180.0)])
    settings = TailTraceSettings(tail_map="tail-map-slide")
    boxes, rel = trace_whole_cells(img, heads, UM, settings)
    assert iou(boxes[0], a) > 0.8 and iou(boxes[1], b) > 0.8
    assert (rel > 0.8).all()
    p = load_tail_map("tail-map-slide")(img)
    assert p.shape == img.shape and 0 <= p.min() and p.max() <= 1
    assert p[400, 200] > 0.5 > p[300, 500]  # on the second tail; on empty background


def test_a_missing_or_foreign_tail_map_is_refused():
    img = slide()
    with pytest.raises(ConfigError, match="not found"):
        trace_tails(img, np.zeros((1, 4)), UM, TailTraceSettings(tail_map="no-such-map"))
    with pytest.raises(ConfigError, match="not a detect-track tail map"):
        load_tail_map("head-shape-synth")  # an ONNX model, but a classifier
    with pytest.raises(ConfigError, match="map_threshold"):
        TailTraceSettings(map_threshold=1.5)
    with pytest.raises(ConfigError, match="tail_map_threshold"):
        load_config("sperm-slide-parsing", {"still.tail_map_threshold": 0.0})
