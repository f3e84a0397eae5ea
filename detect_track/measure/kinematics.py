"""CASA kinematics of head trajectories (pure numpy; inputs are never modified).

Definitions (see ``ARCHITECTURE.md``, "Kinematics reference"). A track is a sequence of
head positions ``p_0 .. p_{N-1}`` in **consecutive** frames (gaps must be interpolated by
the caller), converted from pixels to micrometres with ``um_per_px``; ``fps`` is the frame
rate and ``T = (N - 1) / fps`` the track duration in seconds.

* **VCL** (µm/s), curvilinear velocity: ``sum |p_{i+1} - p_i| / T``.
* **VSL** (µm/s), straight-line velocity: ``|p_{N-1} - p_0| / T``.
* **Average path**: centred moving average of ``w`` points (``'valid'`` mode: ``N - w + 1``
  points, point ``j`` is the mean of ``p_j .. p_{j+w-1}`` and belongs to time
  ``j + (w - 1) / 2`` frames). Short tracks shrink the window so that the average path
  keeps a duration and at least two raw points can be compared with it: ``w`` becomes
  ``min(w, N - 1)``, minus one more if that is even and larger than ``N - 2`` (e.g.
  ``N = 4, w = 5 -> 3``; ``N = 5, w = 5 -> 3``); for ``N < 3`` the average path is the
  raw path itself (so VAP = VCL).
* **VAP** (µm/s), average-path velocity: length of the average path divided by *its own*
  duration ``(N_avg - 1) / fps``.
* **LIN** = VSL/VCL, **STR** = VSL/VAP, **WOB** = VAP/VCL: ratios in ``[0, 1]`` (not %),
  NaN when the denominator is 0. Because the average path is shorter in time than the raw
  path, STR (and, rarely, WOB) can exceed 1 numerically; all three are clipped to
  ``[0, 1]``.
* **ALH** (µm), amplitude of lateral head displacement: every raw point that lies within
  the time span of the average path is compared with the average path *at the same time*
  (for an even ``w`` the average path is interpolated half-way between two of its
  points); ``d_i`` is the signed perpendicular distance of the raw point from the average
  path, measured along the normal of the local direction of the average path (central
  difference for an odd ``w``, the segment direction for an even ``w``; positive = left
  of the direction of travel). ``alh_max_um = 2 * max |d|``. ``alh_um`` (mean ALH) is
  ``2 *`` the mean, over complete half-beats (runs of ``d`` of one sign between two
  consecutive sign changes), of the peak ``|d|`` in each half-beat; with fewer than two
  sign changes it falls back to ``2 * mean |d|``.
* **BCF** (Hz), beat-cross frequency, taken literally from the WHO/CASA definition "the
  average rate at which the curvilinear path crosses the average path": the number of
  sign changes of ``d`` per second of the compared span. A head oscillating sinusoidally
  at ``f`` Hz crosses its average path twice per period, so BCF = ``2 f`` (it is *not*
  divided by 2). Values of ``d`` within ``1e-9`` x the track extent count as "on the
  path" and neither start nor end a crossing.
* **MAD** (degrees), mean angular displacement: mean absolute turning angle between
  consecutive raw steps; zero-length steps are skipped (NaN with fewer than two moving
  steps).
* **Progression** (µm/s), ``progression_um_s``: how far the cell gets, robust to the
  position jitter of real tracks. The median, over every start frame ``i``, of the net
  displacement ``|p_{i+k} - p_i| / (k / fps)`` over a window of ``k = round(W * fps)``
  frames, ``W = progression_window_s`` (default 2 s); a track shorter than the window
  gets its VSL. A window in seconds, not frames, gives the same value at 9 and 49 fps; a
  head jittering by ``sigma`` µm adds only about ``1.8 sigma / W`` µm/s (the beat, the
  keyframe jumps of annotated tracks and detection noise average out), while VCL, VAP
  and STR on a few frames pick the jitter up in full. It is what the default WHO rule of
  :mod:`detect_track.measure.motility` grades on: a cell circling in a large circle progresses
  too, one beating in place or circling tightly does not.
* **Motion** (µm/s), ``motion_um_s``: the largest of the same median net displacement
  per second over windows of ``W / 4``, ``W / 2`` and ``W`` (each at least one frame;
  VSL when the track is shorter). It tells "no movement" (WHO immotile) from a cell that
  moves without getting anywhere: a circle that closes within ``W`` has a progression
  near 0 but not a motion near 0. Jitter adds about ``7 sigma / W`` µm/s.

Tracks with fewer than two points have no kinematics: every value is NaN except
``n_frames`` and ``duration_s`` (0.0).
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields

import numpy as np
import pandas as pd

from detect_track.types import KINEMATICS_COLUMNS

#: Relative tolerance (fraction of the track extent) below which a distance counts as 0.
_REL_TOL = 1e-9



@dataclass(frozen=True)
class Kinematics:
    """CASA kinematics of one track.

    Attributes:
        vcl_um_s: Curvilinear velocity, µm/s.
        vsl_um_s: Straight-line velocity, µm/s.
        vap_um_s: Average-path velocity, µm/s.
        lin: Linearity VSL/VCL, ratio in [0, 1] (not %); NaN if VCL is 0.
        str: Straightness VSL/VAP, ratio in [0, 1] (clipped); NaN if VAP is 0.
        wob: Wobble VAP/VCL, ratio in [0, 1] (clipped); NaN if VCL is 0.
        alh_um: Mean amplitude of lateral head displacement, µm (2 x half-beat peaks).
        alh_max_um: Maximum amplitude of lateral head displacement, µm (2 x max |d|).
        bcf_hz: Beat-cross frequency, crossings of the average path per second (Hz);
            a sinusoidal beat at f Hz gives 2 f.
        mad_deg: Mean absolute turning angle between consecutive steps, degrees.
        n_frames: Number of points N in the track.
        duration_s: Track duration (N - 1) / fps in seconds (0 for N < 2).
        progression_um_s: Median net displacement over ``progression_window_s`` windows
            per second, µm/s (VSL for tracks shorter than the window).
        motion_um_s: Largest median net displacement per second over windows of 1/4,
            1/2 and 1 x ``progression_window_s``, µm/s.

    """

    vcl_um_s: float
    vsl_um_s: float
    vap_um_s: float
    lin: float
    str: float
    wob: float
    alh_um: float
    alh_max_um: float
    bcf_hz: float
    mad_deg: float
    n_frames: int
    duration_s: float
    progression_um_s: float = math.nan
    motion_um_s: float = math.nan

    def as_dict(self) -> dict[str, float]:
        """Return the values keyed like the columns of ``tracks.csv`` (without track_id).

        Returns:
            ``n_frames`` (int), ``duration_s`` and the ten kinematic values (floats), in
            the column order of :data:`KINEMATICS_COLUMNS`.

        """
        values = dict(zip((f.name for f in fields(self)), astuple(self), strict=True))
        return {name: values[name] for name in KINEMATICS_COLUMNS[1:]}


def _positive_finite(value: float, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from exc
    if isinstance(value, bool) or not math.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def _window(window_frames: int) -> int:
    if isinstance(window_frames, bool) or not isinstance(window_frames, (int, np.integer)):
        raise ValueError(f"window_frames must be an integer >= 1, got {window_frames!r}")
    if window_frames < 1:
        raise ValueError(f"window_frames must be an integer >= 1, got {window_frames!r}")
    return int(window_frames)


def _coords(x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> tuple[np.ndarray, ...]:
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or ya.ndim != 1 or len(xa) != len(ya):
        raise ValueError(
            f"{xname} and {yname} must be 1-D arrays of equal length, "
            f"got shapes {xa.shape} and {ya.shape}"
        )
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError(f"{xname}/{yname} contain NaN or infinite positions (interpolate gaps)")
    return xa, ya


def _effective_window(n: int, window_frames: int) -> int:
    """Window actually used for a track of ``n`` points (see module docstring).

    The window is shrunk until at least two raw points can be compared with the average
    path at the same time: ``w <= n - 1`` for an odd ``w``, ``w <= n - 2`` for an even one.
    """
    if n < 3:
        return 1
    w = min(window_frames, n - 1)
    if w % 2 == 0 and w > n - 2:
        w -= 1
    return w


def _moving_average(v: np.ndarray, w: int) -> np.ndarray:
    if w == 1:
        return v.copy()
    return np.convolve(v, np.full(w, 1.0 / w), mode="valid")


def average_path(
    x_um: np.ndarray, y_um: np.ndarray, window_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centred moving average of a track (the CASA "average path").

    Args:
        x_um: x positions, shape ``(N,)``, any length unit (µm by convention).
        y_um: y positions, shape ``(N,)``, same unit as ``x_um``.
        window_frames: Window ``w`` in frames (>= 1). Shrunk for short tracks to
            ``min(w, N - 1)``, minus one if that is even and ``> N - 2``; tracks with
            ``N < 3`` are returned unchanged (as copies).

    Returns:
        ``(x_avg, y_avg)``, each of shape ``(N - w + 1,)`` in the unit of the input, where
        point ``j`` is the mean of points ``j .. j + w - 1`` and belongs to time
        ``j + (w - 1) / 2`` frames of the raw track.

    Raises:
        ValueError: Mismatched or non-finite inputs, or ``window_frames < 1``.

    """
    x, y = _coords(x_um, y_um, "x_um", "y_um")
    w = _effective_window(len(x), _window(window_frames))
    if w == 1 or len(x) == 0:
        return x.copy(), y.copy()
    # centre on the first point for accuracy far from the origin, then shift back
    x0, y0 = x[0], y[0]
    return _moving_average(x - x0, w) + x0, _moving_average(y - y0, w) + y0


def _lateral(
    px: np.ndarray, py: np.ndarray, ax: np.ndarray, ay: np.ndarray, w: int, tol: float
) -> tuple[np.ndarray, bool, int]:
    """Signed lateral distance of raw points from the average path at the same time.

    Returns:
        ``(d, signed, n_compared)``: distances ``(M,)``; ``signed`` is False when the
        average path has no direction anywhere (then ``d`` is the unsigned distance).

    """
    n_avg = len(ax)
    if w % 2 == 1:
        h = (w - 1) // 2
        k = slice(h, h + n_avg)
        rx, ry = ax, ay
        if n_avg >= 2:
            tx, ty = np.gradient(ax), np.gradient(ay)
        else:
            tx, ty = np.zeros(n_avg), np.zeros(n_avg)
    else:
        h = w // 2
        k = slice(h, h + n_avg - 1)
        rx, ry = (ax[:-1] + ax[1:]) / 2.0, (ay[:-1] + ay[1:]) / 2.0
        tx, ty = np.diff(ax), np.diff(ay)
    dx, dy = px[k] - rx, py[k] - ry
    m = len(dx)
    norm = np.hypot(tx, ty)
    valid = norm > tol
    if not np.any(valid):
        return np.hypot(dx, dy), False, m
    if not np.all(valid):  # borrow the direction of the nearest earlier (else later) point
        idx = np.maximum.accumulate(np.where(valid, np.arange(m), -1))
        idx[idx < 0] = np.flatnonzero(valid)[0]
        tx, ty, norm = tx[idx], ty[idx], norm[idx]
    d = (tx * dy - ty * dx) / norm
    d[np.abs(d) <= tol] = 0.0
    return d, True, m


def _progression_frames(fps: float, window_s: float) -> int:
    """Frames spanned by the progression window (at least 1)."""
    return max(1, int(round(window_s * fps)))


def _progression(x: np.ndarray, y: np.ndarray, fps: float, k: int) -> float:
    """Median net displacement over ``k``-frame windows per second (VSL if shorter)."""
    n = len(x)
    if n - 1 <= k:
        return math.hypot(x[-1] - x[0], y[-1] - y[0]) / ((n - 1) / fps)
    net = np.hypot(x[k:] - x[:-k], y[k:] - y[:-k])
    return float(np.median(net)) * fps / k


def _kinematics_um(x: np.ndarray, y: np.ndarray, fps: float, window_frames: int,
                   progression_frames: int = 100) -> Kinematics:
    """Kinematics of a validated track in µm (``x``, ``y`` shape ``(N,)``)."""
    n = len(x)
    nan = math.nan
    if n < 2:
        return Kinematics(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, n, 0.0, nan, nan)
    x = x - x[0]
    y = y - y[0]
    duration = (n - 1) / fps
    sx, sy = np.diff(x), np.diff(y)
    step = np.hypot(sx, sy)
    vcl = float(step.sum()) / duration
    vsl = math.hypot(x[-1], y[-1]) / duration
    extent = max(float(np.ptp(x)), float(np.ptp(y)))
    tol = _REL_TOL * extent

    w = _effective_window(n, window_frames)
    if w == 1:
        ax, ay = x, y
    else:
        ax, ay = _moving_average(x, w), _moving_average(y, w)
    n_avg = len(ax)
    vap = float(np.hypot(np.diff(ax), np.diff(ay)).sum()) / ((n_avg - 1) / fps)

    def ratio(num: float, den: float) -> float:
        return nan if den <= 0 else min(max(num / den, 0.0), 1.0)

    d, signed, m = _lateral(x, y, ax, ay, w, tol)
    ad = np.abs(d)
    alh_max = 2.0 * float(ad.max()) if m else nan
    n_cross = 0
    alh = 2.0 * float(ad.mean()) if m else nan
    if signed:
        nz = np.flatnonzero(d)
        sgn = np.sign(d[nz])
        starts = np.flatnonzero(sgn[1:] != sgn[:-1]) + 1  # first sample of each new sign run
        n_cross = len(starts)
        if n_cross >= 2:
            peaks = np.maximum.reduceat(ad[nz], starts)[:-1]  # complete half-beats only
            alh = 2.0 * float(peaks.mean())
    bcf = n_cross / ((m - 1) / fps) if m >= 2 else nan

    moving = step > tol
    if np.count_nonzero(moving) >= 2:
        mx, my = sx[moving], sy[moving]
        turn = np.arctan2(mx[:-1] * my[1:] - my[:-1] * mx[1:], mx[:-1] * mx[1:] + my[:-1] * my[1:])
        mad = float(np.degrees(np.abs(turn)).mean())
    else:
        mad = nan

    progression = _progression(x, y, fps, progression_frames)
    return Kinematics(
        vcl_um_s=vcl,
        vsl_um_s=vsl,
        vap_um_s=vap,
        lin=ratio(vsl, vcl),
        str=ratio(vsl, vap),
        wob=ratio(vap, vcl),
        alh_um=alh,
        alh_max_um=alh_max,
        bcf_hz=bcf,
        mad_deg=mad,
        n_frames=n,
        duration_s=duration,
        progression_um_s=progression,
        motion_um_s=max(progression, _progression(x, y, fps, max(1, progression_frames // 2)),
                        _progression(x, y, fps, max(1, progression_frames // 4))),
    )


def compute_kinematics(
    x_px: np.ndarray,
    y_px: np.ndarray,
    *,
    um_per_px: float,
    fps: float,
    window_frames: int = 5,
    progression_window_s: float = 2.0,
) -> Kinematics:
    """Compute CASA kinematics of one head trajectory.

    Args:
        x_px: x positions in **pixels**, shape ``(N,)``, one per consecutive frame (no
            gaps: interpolate missing frames first). Not modified.
        y_px: y positions in **pixels**, shape ``(N,)``. Not modified.
        um_per_px: Micrometres per pixel (finite, > 0); all lengths are reported in µm.
        fps: Frame rate in frames per second (finite, > 0); all times are in seconds.
        window_frames: Moving-average window ``w`` of the average path, in frames (>= 1).
        progression_window_s: Window of ``progression_um_s``, seconds (> 0).

    Returns:
        The kinematics (speeds in µm/s, ALH in µm, BCF in Hz, MAD in degrees, LIN/STR/WOB
        as ratios in [0, 1]). See the module docstring for the exact definitions. With
        ``N < 2`` every value is NaN except ``n_frames`` and ``duration_s`` (0.0).

    Raises:
        ValueError: ``um_per_px`` or ``fps`` not finite and > 0, ``window_frames < 1``,
            or positions of different lengths, not 1-D, or not finite.

    """
    scale = _positive_finite(um_per_px, "um_per_px")
    rate = _positive_finite(fps, "fps")
    w = _window(window_frames)
    k = _progression_frames(rate, _positive_finite(progression_window_s, "progression_window_s"))
    x, y = _coords(x_px, y_px, "x_px", "y_px")
    return _kinematics_um(x * scale, y * scale, rate, w, k)


def kinematics_table(
    trajectories: pd.DataFrame,
    *,
    um_per_px: float,
    fps: float,
    window_frames: int = 5,
    progression_window_s: float = 2.0,
) -> pd.DataFrame:
    """Compute kinematics for every track of a long-format trajectory table.

    Args:
        trajectories: One row per track per frame with columns ``track_id``, ``frame``
            (consecutive integers within a track), ``x_px``, ``y_px`` (pixels); other
            columns are ignored. Rows may come in any order; they are sorted by frame
            within each track. Not modified.
        um_per_px: Micrometres per pixel (finite, > 0).
        fps: Frame rate in frames per second (finite, > 0).
        window_frames: Moving-average window of the average path, in frames (>= 1).
        progression_window_s: Window of ``progression_um_s``, seconds (> 0).

    Returns:
        One row per track (sorted by ``track_id``) with the columns
        :data:`KINEMATICS_COLUMNS`: ``track_id, n_frames, duration_s, vcl_um_s,
        vsl_um_s, vap_um_s, lin, str, wob, alh_um, alh_max_um, bcf_hz, mad_deg,
        progression_um_s, motion_um_s``. An
        empty input gives an empty table with these columns.

    Raises:
        ValueError: Missing columns, missing track ids, non-finite positions, a track
            whose frames are not consecutive (gap or duplicate frame), or invalid
            ``um_per_px`` / ``fps`` / ``window_frames``.

    """
    scale = _positive_finite(um_per_px, "um_per_px")
    rate = _positive_finite(fps, "fps")
    w = _window(window_frames)
    k = _progression_frames(rate, _positive_finite(progression_window_s, "progression_window_s"))
    missing = [c for c in ("track_id", "frame", "x_px", "y_px") if c not in trajectories.columns]
    if missing:
        raise ValueError(f"trajectories table lacks column(s): {', '.join(missing)}")
    if len(trajectories) == 0:
        return pd.DataFrame({c: pd.Series(dtype=_empty_dtype(c)) for c in KINEMATICS_COLUMNS})
    if trajectories["track_id"].isna().any():
        raise ValueError("trajectories table has rows without a track_id")

    df = trajectories[["track_id", "frame", "x_px", "y_px"]].sort_values(
        ["track_id", "frame"], kind="stable"
    )
    ids = df["track_id"].to_numpy()
    frames = df["frame"].to_numpy(dtype=np.float64)
    x, y = _coords(df["x_px"].to_numpy(), df["y_px"].to_numpy(), "x_px", "y_px")
    x = x * scale
    y = y * scale

    new_track = np.ones(len(ids), dtype=bool)
    new_track[1:] = ids[1:] != ids[:-1]
    bad = ~new_track[1:] & (np.diff(frames) != 1.0)
    if np.any(bad):
        bad_ids = pd.unique(ids[1:][bad])
        shown = ", ".join(str(t) for t in bad_ids[:5])
        raise ValueError(
            f"track(s) {shown} have non-consecutive or duplicate frames; "
            "interpolate gaps before computing kinematics"
        )

    starts = np.flatnonzero(new_track)
    bounds = np.append(starts, len(ids))
    rows = [
        astuple(_kinematics_um(x[a:b], y[a:b], rate, w, k))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    names = [f.name for f in fields(Kinematics)]
    out = pd.DataFrame(rows, columns=names)
    out.insert(0, "track_id", ids[starts])
    out["n_frames"] = out["n_frames"].astype(np.int64)
    return out[list(KINEMATICS_COLUMNS)]


def _empty_dtype(column: str) -> str:
    if column == "track_id":
        return "int64"
    return "int64" if column == "n_frames" else "float64"
