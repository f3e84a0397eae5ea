"""K anchors per object (EfficientDet training, testicular preset): hand-built IoU cases and
the real labeler on the preset's anchors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detect_track.detectors.effdet import build_model, load_arch
from detect_track.detectors.effdet_anchors import TopKAnchorMatcher
from detect_track.errors import ConfigError

TESTIS = Path(__file__).resolve().parent.parent / "detect_track" / "models" / "effdet-testis.yaml"


def _matches(sim: list[list[float]], k: int) -> list[int]:
    return TopKAnchorMatcher(0.5, k).match(torch.tensor(sim)).match_results.tolist()


def test_no_objects_leaves_every_anchor_negative():
    out = TopKAnchorMatcher(0.5, 3).match(torch.zeros((0, 4))).match_results.tolist()
    assert out == [-1, -1, -1, -1]


def test_k_zero_is_effdets_matcher():
    # object 0 reaches the threshold on anchor 0; object 1 on none: forced onto anchor 2
    sim = [[0.7, 0.3, 0.0, 0.2], [0.0, 0.1, 0.35, 0.25]]
    assert _matches(sim, 0) == [0, -1, 1, -1]


def test_each_object_gets_its_k_best_anchors_and_threshold_matches_stay():
    sim = [[0.7, 0.3, 0.0, 0.2, 0.05], [0.0, 0.15, 0.35, 0.25, 0.0]]
    # k=2: object 0 adds anchor 1 (0.3); object 1 adds anchor 3 (0.25) after its forced 2;
    # anchor 4 overlaps nobody enough (below the 0.1 floor)
    assert _matches(sim, 2) == [0, 0, 1, 1, -1]


def test_a_contested_anchor_goes_to_the_object_it_overlaps_most():
    sim = [[0.9, 0.3, 0.0], [0.0, 0.4, 0.6]]
    # anchor 1 is in both objects' top 2: object 1 overlaps it more
    assert _matches(sim, 2) == [0, 1, 1]


def test_small_heads_get_k_positives_on_the_testis_preset():
    arch = load_arch(TESTIS)
    k = int(arch["anchors_per_object"])
    assert k > 0

    def positives(box: list[float], k: int) -> float:
        bench = build_model({**arch, "anchors_per_object": k}, (128, 128), "train")
        cls, _, n_pos = bench.anchor_labeler.label_anchors(torch.tensor([box]),
                                                           torch.tensor([4.0]))
        assert {int(v) for c in cls for v in c.flatten().tolist()} <= {-2, -1, 3}
        return float(n_pos)

    head = [20.0, 36.0, 26.0, 40.0]  # a 4 x 6 px sperm head (y1, x1, y2, x2)
    sertoli = [50.0, 50.0, 110.0, 110.0]  # a 60 px cell
    assert positives(head, 0) < k <= positives(head, k)
    assert positives(sertoli, k) == positives(sertoli, 0) > k  # big cells: unchanged


@pytest.mark.parametrize("bad", [-1, 1.5, True, "4"])
def test_invalid_anchors_per_object_is_refused(bad: object):
    with pytest.raises(ConfigError, match="anchors_per_object"):
        build_model({**load_arch(TESTIS), "anchors_per_object": bad}, (128, 128), "train")
