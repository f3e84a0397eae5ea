"""Constant-velocity Kalman filters for many cells at once.

State per cell: ``[x, y, vx, vy]``, position in µm and velocity in µm/s; measurement:
``[x, y]`` in µm. The process noise is white acceleration with a standard deviation in
µm/s² (``process_noise_um_s2``), the measurement noise a centroid error in µm
(``measurement_noise_um``), the initial velocity uncertainty a speed in µm/s. Because the
model is written in physical units and the step ``dt`` in seconds, the same settings hold at
any frame rate.

Two interchangeable banks hold the filters of all live tracks:

* :class:`KalmanBank`: one stacked array for all tracks, every step a handful of batched
  numpy operations (the hot path: no per-track Python loop).
* :class:`FilterpyBank`: one ``filterpy.kalman.KalmanFilter`` per track, the textbook
  reference the tests compare :class:`KalmanBank` against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionModel:
    """Matrices of the constant-velocity model for one time step.

    Attributes:
        F: State transition ``(4, 4)``.
        H: Measurement matrix ``(2, 4)``.
        Q: Process noise covariance ``(4, 4)`` (µm², µm²/s, µm²/s²).
        R: Measurement noise covariance ``(2, 2)`` (µm²).
        P0: Covariance of a new track ``(4, 4)``.
    """

    F: np.ndarray
    H: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    P0: np.ndarray


def motion_model(dt_s: float, process_noise_um_s2: float, measurement_noise_um: float,
                 initial_speed_um_s: float) -> MotionModel:
    """Build the constant-velocity model.

    Args:
        dt_s: Time between frames, seconds (1 / fps).
        process_noise_um_s2: Standard deviation of the random acceleration, µm/s².
        measurement_noise_um: Standard deviation of a detected centre, µm.
        initial_speed_um_s: Standard deviation of each velocity component of a new track,
            µm/s (its velocity is unknown until its second detection).

    Returns:
        The model's matrices.
    """
    dt = float(dt_s)
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt
    H = np.zeros((2, 4))
    H[0, 0] = H[1, 1] = 1.0
    q = process_noise_um_s2**2
    Q = np.zeros((4, 4))
    for pos, vel in ((0, 2), (1, 3)):
        Q[pos, pos] = dt**4 / 4 * q
        Q[pos, vel] = Q[vel, pos] = dt**3 / 2 * q
        Q[vel, vel] = dt**2 * q
    r = measurement_noise_um**2
    R = np.eye(2) * r
    v = initial_speed_um_s**2
    P0 = np.diag([r, r, v, v])
    return MotionModel(F, H, Q, R, P0)


class _Bank:
    """What both banks share: read-outs of the stacked states ``x`` and covariances ``P``."""

    model: MotionModel
    x: np.ndarray
    P: np.ndarray

    @property
    def position(self) -> np.ndarray:
        """Predicted or filtered positions ``(N, 2)``, µm."""
        return self.x[:, :2]

    def innovation_cov(self) -> np.ndarray:
        """Covariance of the next measurement of each track ``(N, 2, 2)``, µm²."""
        return self.P[:, :2, :2] + self.model.R


class KalmanBank(_Bank):
    """Kalman filters of ``N`` tracks stacked in arrays and stepped together.

    Attributes:
        x: States ``(N, 4)``: x, y (µm), vx, vy (µm/s).
        P: Covariances ``(N, 4, 4)``.
    """

    def __init__(self, model: MotionModel) -> None:
        self.model = model
        self.x = np.zeros((0, 4))
        self.P = np.zeros((0, 4, 4))

    def __len__(self) -> int:
        return len(self.x)

    def add(self, z_um: np.ndarray) -> None:
        """Start filters at measurements ``z_um (M, 2)`` with zero velocity."""
        z = np.asarray(z_um, dtype=np.float64).reshape(-1, 2)
        x = np.zeros((len(z), 4))
        x[:, :2] = z
        self.x = np.concatenate([self.x, x])
        self.P = np.concatenate([self.P, np.broadcast_to(self.model.P0, (len(z), 4, 4))])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the filters where ``mask (N,)`` is False."""
        self.x = self.x[mask]
        self.P = self.P[mask]

    def predict(self) -> None:
        """Advance every filter by one frame."""
        m = self.model
        self.x = self.x @ m.F.T
        self.P = m.F @ self.P @ m.F.T + m.Q

    def update(self, idx: np.ndarray, z_um: np.ndarray) -> None:
        """Correct the filters ``idx (M,)`` with their measurements ``z_um (M, 2)``."""
        if len(idx) == 0:
            return
        P = self.P[idx]
        S = P[:, :2, :2] + self.model.R
        K = P[:, :, :2] @ np.linalg.inv(S)  # (M, 4, 2): P H^T S^-1 with H = [I 0]
        y = np.asarray(z_um, dtype=np.float64) - self.x[idx, :2]
        self.x[idx] = self.x[idx] + np.einsum("mij,mj->mi", K, y)
        # Joseph form keeps P symmetric positive definite: (I-KH) P (I-KH)^T + K R K^T
        IKH = np.broadcast_to(np.eye(4), K.shape[:1] + (4, 4)).copy()
        IKH[:, :, :2] -= K
        self.P[idx] = IKH @ P @ IKH.transpose(0, 2, 1) + K @ self.model.R @ K.transpose(0, 2, 1)


class FilterpyBank(_Bank):
    """Reference implementation: one ``filterpy`` ``KalmanFilter`` per track, same model.

    Slow (a Python loop over tracks) but textbook; :class:`KalmanBank` must agree with it.
    """

    def __init__(self, model: MotionModel) -> None:
        self.model = model
        self.filters: list = []

    def __len__(self) -> int:
        return len(self.filters)

    def add(self, z_um: np.ndarray) -> None:
        """Start filters at measurements ``z_um (M, 2)`` with zero velocity."""
        from filterpy.kalman import KalmanFilter

        for z in np.asarray(z_um, dtype=np.float64).reshape(-1, 2):
            kf = KalmanFilter(dim_x=4, dim_z=2)
            kf.F = self.model.F.copy()
            kf.H = self.model.H.copy()
            kf.Q = self.model.Q.copy()
            kf.R = self.model.R.copy()
            kf.P = self.model.P0.copy()
            kf.x = np.array([[z[0]], [z[1]], [0.0], [0.0]])
            self.filters.append(kf)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the filters where ``mask (N,)`` is False."""
        self.filters = [f for f, k in zip(self.filters, mask, strict=True) if k]

    def predict(self) -> None:
        """Advance every filter by one frame."""
        for f in self.filters:
            f.predict()

    @property
    def x(self) -> np.ndarray:
        """States ``(N, 4)``."""
        return np.array([f.x[:, 0] for f in self.filters]).reshape(-1, 4)

    @property
    def P(self) -> np.ndarray:
        """Covariances ``(N, 4, 4)``."""
        return np.array([f.P for f in self.filters]).reshape(-1, 4, 4)

    def update(self, idx: np.ndarray, z_um: np.ndarray) -> None:
        """Correct the filters ``idx (M,)`` with their measurements ``z_um (M, 2)``."""
        for i, z in zip(idx, np.asarray(z_um, dtype=np.float64).reshape(-1, 2), strict=True):
            self.filters[int(i)].update(z.reshape(2, 1))
