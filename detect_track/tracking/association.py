"""Association of tracks with detections: costs, physical gates, optimal assignment.

All functions are vectorised over tracks and detections (no Python loop per pair).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Cost of a forbidden pair (outside the gate).
INFEASIBLE = 1e9


def pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, M)`` between points ``a (N, 2)`` and ``b (M, 2)``."""
    d = a[:, None, :] - b[None, :, :]
    return np.sqrt(np.einsum("nmk,nmk->nm", d, d))


def mahalanobis_sq(pred: np.ndarray, S: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances ``(N, M)`` of detections from predictions.

    Args:
        pred: Predicted positions ``(N, 2)``.
        S: Innovation covariances ``(N, 2, 2)``.
        z: Detected positions ``(M, 2)``.
    """
    a, b, c = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
    det = a * c - b * b
    d = z[None, :, :] - pred[:, None, :]
    dx, dy = d[..., 0], d[..., 1]
    return (c[:, None] * dx * dx - 2 * b[:, None] * dx * dy + a[:, None] * dy * dy) / det[:, None]


def mahalanobis_cost(pred: np.ndarray, S: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each detection under each track's prediction.

    ``d² + ln det S`` (constants dropped), where ``d`` is the Mahalanobis distance of the
    innovation: a track whose position is uncertain (new, or bridging a gap) pays for its
    uncertainty, so it cannot steal a detection that a well-predicted track explains.

    Args:
        pred: Predicted positions ``(N, 2)``.
        S: Innovation covariances ``(N, 2, 2)``.
        z: Detected positions ``(M, 2)``.

    Returns:
        Costs ``(N, M)``.
    """
    det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
    return mahalanobis_sq(pred, S, z) + np.log(det)[:, None]


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
