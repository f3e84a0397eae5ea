"""Association of tracks with detections: costs, physical gates, optimal assignment.

All functions are vectorised (no Python loop per pair). The Mahalanobis terms are
computed for the given (track, detection) pairs only: the tracker evaluates them for the
pairs its speed gate lets through, a few per track, not for every pair in the frame.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

#: Cost of a forbidden pair (outside the gate).
INFEASIBLE = 1e9


def pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, M)`` between points ``a (N, 2)`` and ``b (M, 2)``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return cdist(a, b)


def mahalanobis_sq(pred: np.ndarray, S: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances ``(K,)`` of detections from predictions, pair by pair.

    Args:
        pred: Predicted positions ``(K, 2)``.
        S: Innovation covariances ``(K, 2, 2)``.
        z: Detected positions ``(K, 2)`` (row k is compared with prediction k).
    """
    a, b, c = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
    dx, dy = z[:, 0] - pred[:, 0], z[:, 1] - pred[:, 1]
    return (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / (a * c - b * b)


def mahalanobis_cost(pred: np.ndarray, S: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Negative log-likelihood ``(K,)`` of each detection under its track's prediction.

    ``d² + ln det S`` (constants dropped), where ``d`` is the Mahalanobis distance of the
    innovation: a track whose position is uncertain (new, or bridging a gap) pays for its
    uncertainty, so it cannot steal a detection that a well-predicted track explains.

    Args:
        pred: Predicted positions ``(K, 2)``.
        S: Innovation covariances ``(K, 2, 2)``.
        z: Detected positions ``(K, 2)``, pair by pair with ``pred``.
    """
    det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
    return mahalanobis_sq(pred, S, z) + np.log(det)


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment, ignoring pairs that cost :data:`INFEASIBLE`.

    Args:
        cost: ``(N, M)`` costs.

    Returns:
        Row and column indices ``(K,)`` of the chosen feasible pairs.
    """
    empty = np.zeros(0, np.int64)
    if cost.size == 0:
        return empty, empty
    feasible = cost < INFEASIBLE
    rows_any = np.flatnonzero(feasible.any(axis=1))
    cols_any = np.flatnonzero(feasible.any(axis=0))
    if len(rows_any) == 0:
        return empty, empty
    sub = cost[np.ix_(rows_any, cols_any)]
    r, c = linear_sum_assignment(sub)
    ok = sub[r, c] < INFEASIBLE
    return rows_any[r[ok]], cols_any[c[ok]]
