"""Box detection metrics: COCO-style AP at IoU 0.5 and 0.5:0.95, with ignore regions.

Matching follows COCO: per image and class, predictions in descending score order each
take the unmatched ground-truth box of highest IoU at or above the threshold. A
prediction that matches no counted box but overlaps an *ignored* one (``ignore = True``:
a head whose centre left the frame, a head inside an agglutinate) is neither a true nor a
false positive. AP is the area under the interpolated precision envelope sampled at 101
recall points (COCO), averaged over IoU thresholds for mAP50-95.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


@dataclass(frozen=True)
class BoxSet:
    """Boxes of one image.

    Attributes:
        xyxy: ``(N, 4)`` ``x1, y1, x2, y2`` in pixels.
        class_id: ``(N,)`` int classes.
        score: ``(N,)`` confidences (predictions) or ones (ground truth).
        ignore: ``(N,)`` bool, ground truth only: matches to these boxes are not counted.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    score: np.ndarray
    ignore: np.ndarray

    @classmethod
    def make(cls, xyxy: np.ndarray, class_id: np.ndarray | int = 0,
             score: np.ndarray | None = None, ignore: np.ndarray | None = None) -> BoxSet:
        """Build a box set, broadcasting a scalar class and defaulting scores and ignore."""
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        n = len(xyxy)
        cid = np.broadcast_to(np.asarray(class_id, np.int64), (n,)).copy()
        sc = np.ones(n) if score is None else np.asarray(score, np.float64).reshape(n)
        ig = np.zeros(n, bool) if ignore is None else np.asarray(ignore, bool).reshape(n)
        return cls(xyxy, cid, sc, ig)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of boxes ``a (N, 4)`` and ``b (M, 4)`` (``x1, y1, x2, y2``)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2])
                 - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3])
                 - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _match_image(gt: BoxSet, pred: BoxSet, thresholds: Sequence[float]
                 ) -> tuple[np.ndarray, int]:
    """Per threshold, the outcome of each prediction: 1 TP, 0 FP, -1 ignored.

    Returns:
        ``(T, P)`` outcomes in the order of ``pred`` and the number of counted truths.
    """
    order = np.argsort(-pred.score, kind="stable")
    iou = box_iou(pred.xyxy, gt.xyxy)
    out = np.zeros((len(thresholds), len(pred.score)), np.int8)
    counted = ~gt.ignore
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(gt.score), bool)
        for p in order:
            row = iou[p]
            cand = np.where(counted & ~taken & (row >= thr), row, -1.0)
            j = int(np.argmax(cand)) if len(cand) else -1
            if j >= 0 and cand[j] >= 0:
                taken[j] = True
                out[t, p] = 1
            elif len(row) and np.any(gt.ignore & (row >= thr)):
                out[t, p] = -1
    return out, int(counted.sum())


def _ap(scores: np.ndarray, outcome: np.ndarray, n_gt: int) -> tuple[float, np.ndarray,
                                                                     np.ndarray]:
    """COCO 101-point AP; also the precision and recall curves in score order."""
    keep = outcome >= 0
    scores, outcome = scores[keep], outcome[keep]
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(outcome[order] == 1)
    fp = np.cumsum(outcome[order] == 0)
    if n_gt == 0:
        return float("nan"), np.zeros(0), np.zeros(0)
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, 1)
    if len(precision) == 0:
        return 0.0, precision, recall
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean()), precision, recall


def detection_ap(
    gt: Mapping[str, BoxSet],
    pred: Mapping[str, BoxSet],
    class_ids: Sequence[int] = (0,),
    operating_threshold: float = 0.5,
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> dict[str, float]:
    """mAP50, mAP50-95, and precision / recall at a score threshold, over images.

    Args:
        gt: Ground truth per image key.
        pred: Predictions per image key (missing keys = no predictions).
        class_ids: Classes to score; AP is averaged over those with ground truth.
        operating_threshold: Score at which precision and recall are reported (IoU 0.5).
        thresholds: IoU thresholds of mAP50-95 (the first must be 0.5).

    Returns:
        ``map50``, ``map50_95``, ``precision``, ``recall``, ``f1`` (at the operating
        threshold, IoU 0.5, pooled over the classes), ``n_gt``, ``n_pred`` and
        ``ap50_<class>`` per class.
    """
    res: dict[str, float] = {}
    ap50s, aps = [], []
    tp_op = fp_op = n_gt_all = n_pred_all = 0
    for c in class_ids:
        outcomes, scores, n_gt = [], [], 0
        for key, g in gt.items():
            p = pred.get(key)
            gm = g.class_id == c
            gc = BoxSet(g.xyxy[gm], g.class_id[gm], g.score[gm], g.ignore[gm])
            if p is None:
                pc = BoxSet.make(np.zeros((0, 4)))
            else:
                pm = p.class_id == c
                pc = BoxSet(p.xyxy[pm], p.class_id[pm], p.score[pm], p.ignore[pm])
            o, n = _match_image(gc, pc, thresholds)
            outcomes.append(o)
            scores.append(pc.score)
            n_gt += n
        o = np.concatenate(outcomes, axis=1) if outcomes else np.zeros((len(thresholds), 0))
        s = np.concatenate(scores) if scores else np.zeros(0)
        per_t = [_ap(s, o[t], n_gt)[0] for t in range(len(thresholds))]
        if n_gt:
            ap50s.append(per_t[0])
            aps.append(float(np.mean(per_t)))
        res[f"ap50_{c}"] = per_t[0]
        op = s >= operating_threshold
        tp_op += int(np.sum(o[0][op] == 1))
        fp_op += int(np.sum(o[0][op] == 0))
        n_gt_all += n_gt
        n_pred_all += int(np.sum(op & (o[0] >= 0)))
    precision = tp_op / max(tp_op + fp_op, 1) if tp_op + fp_op else float("nan")
    recall = tp_op / n_gt_all if n_gt_all else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    res.update({
        "map50": float(np.mean(ap50s)) if ap50s else float("nan"),
        "map50_95": float(np.mean(aps)) if aps else float("nan"),
        "precision": precision, "recall": recall, "f1": f1,
        "n_gt": float(n_gt_all), "n_pred": float(n_pred_all),
    })
    return res
