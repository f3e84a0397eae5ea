"""Box AP: hand-built cases, ignore regions, and agreement with supervision's mAP."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
from supervision.metrics import MeanAveragePrecision

from detect_track.eval.boxes import BoxSet, box_iou, detection_ap


def test_iou_of_identical_disjoint_and_half_boxes():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 0.0, 0.5]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_perfect_predictions_score_one():
    g = np.array([[10, 10, 16, 14], [40, 40, 45, 48]], float)
    r = detection_ap({"a": BoxSet.make(g)}, {"a": BoxSet.make(g, 0, [0.9, 0.8])})
    assert r["map50"] == pytest.approx(1.0) and r["map50_95"] == pytest.approx(1.0)
    assert r["precision"] == 1.0 and r["recall"] == 1.0


def test_empty_predictions_and_false_positives():
    g = BoxSet.make(np.array([[10, 10, 16, 14]], float))
    assert detection_ap({"a": g}, {})["map50"] == 0.0
    fp = BoxSet.make(np.array([[100, 100, 106, 104], [10, 10, 16, 14]], float), 0, [0.9, 0.5])
    r = detection_ap({"a": g}, {"a": fp}, operating_threshold=0.4)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == 1.0
    assert r["map50"] == pytest.approx(0.5, abs=0.01)  # TP ranked second


def test_matches_on_ignored_truth_are_not_false_positives():
    g = BoxSet.make(np.array([[10, 10, 16, 14], [50, 50, 56, 54]], float),
                    ignore=np.array([False, True]))
    p = BoxSet.make(np.array([[50, 50, 56, 54], [10, 10, 16, 14]], float), 0, [0.9, 0.8])
    r = detection_ap({"a": g}, {"a": p})
    assert r["map50"] == pytest.approx(1.0) and r["n_gt"] == 1 and r["precision"] == 1.0


def test_agrees_with_supervision_map():
    rng = np.random.default_rng(0)
    gt, pred, sv_gt, sv_pred = {}, {}, [], []
    for i in range(25):
        n = int(rng.integers(0, 15))
        xy, wh = rng.uniform(0, 300, (n, 2)), rng.uniform(4, 10, (n, 2))
        g = np.c_[xy - wh / 2, xy + wh / 2]
        keep = rng.random(n) < 0.85
        p = g[keep] + rng.normal(0, 1.0, (int(keep.sum()), 4))
        extra = rng.uniform(0, 300, (3, 2))
        p = np.r_[p, np.c_[extra - 3, extra + 3]]
        score = rng.uniform(0, 1, len(p))
        gt[str(i)], pred[str(i)] = BoxSet.make(g), BoxSet.make(p, 0, score)
        sv_gt.append(sv.Detections(xyxy=g, class_id=np.zeros(len(g), int)))
        sv_pred.append(sv.Detections(xyxy=p, class_id=np.zeros(len(p), int), confidence=score))
    ours = detection_ap(gt, pred)
    theirs = MeanAveragePrecision().update(sv_pred, sv_gt).compute()
    assert ours["map50"] == pytest.approx(theirs.map50, abs=1e-6)
    assert ours["map50_95"] == pytest.approx(theirs.map50_95, abs=1e-6)
