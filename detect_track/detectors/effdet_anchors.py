"""Anchor matching for EfficientDet training: K anchors per object.

Used by :func:`detect_track.detectors.effdet.build_model` when it builds a training bench
(and so kept beside it, below :mod:`detect_track.training`).

effdet's labeler makes an anchor positive when its IoU with an object reaches the match
threshold, and forces one match (the best anchor) for an object that reaches it with none.
A cell of about 8 px overlaps few anchors well, so it trains on one or two positives while
a 60 px cell trains on dozens; published work on testicular smears samples K matched
anchors per object instead. :class:`TopKAnchorMatcher` keeps effdet's threshold matches and
adds, for every object, its K highest-IoU anchors that no threshold match has claimed (an
anchor wanted by several objects goes to the one it overlaps most).
"""

from __future__ import annotations

from typing import Any

# an anchor overlapping an object less than this is never forced onto it
MIN_TOPK_IOU = 0.1


class TopKAnchorMatcher:
    """Drop-in for effdet's ``ArgMaxMatcher`` (its ``match`` method) with K anchors per object.

    Args:
        match_threshold: IoU at which an anchor is positive (as effdet's matcher).
        k: Anchors matched per object at least (0: effdet's behaviour, one forced match).
    """

    def __init__(self, match_threshold: float, k: int) -> None:
        from effdet.object_detection.argmax_matcher import ArgMaxMatcher

        if k < 0:
            raise ValueError("k must be >= 0")
        self.k = int(k)
        self._base = ArgMaxMatcher(match_threshold, unmatched_threshold=match_threshold,
                                   negatives_lower_than_unmatched=True,
                                   force_match_for_each_row=True)

    def match(self, similarity_matrix: Any) -> Any:
        """Match anchors (columns) to objects (rows).

        Args:
            similarity_matrix: IoU tensor ``(N objects, M anchors)``.

        Returns:
            effdet ``Match`` whose ``match_results`` ``(M,)`` hold the object row of each
            positive anchor, -1 for negatives, -2 for ignored anchors.
        """
        import torch
        from effdet.object_detection.matcher import Match

        base = self._base.match(similarity_matrix).match_results
        n, m = similarity_matrix.shape
        if n == 0 or self.k == 0:
            return Match(base)
        vals, cols = similarity_matrix.topk(min(self.k, m), dim=1)  # (N, K)
        rows = torch.arange(n, device=cols.device)[:, None].expand_as(cols)
        ok = vals > MIN_TOPK_IOU
        wanted = torch.zeros_like(similarity_matrix, dtype=torch.bool)
        wanted[rows[ok], cols[ok]] = True
        best_iou, best_row = torch.where(wanted, similarity_matrix, -1.0).max(0)
        fill = (best_iou > 0) & (base < 0)
        return Match(torch.where(fill, best_row, base))


def use_topk_matching(labeler: Any, match_threshold: float, k: int) -> None:
    """Make an effdet ``AnchorLabeler`` match at least ``k`` anchors per object."""
    labeler.target_assigner._matcher = TopKAnchorMatcher(match_threshold, k)
