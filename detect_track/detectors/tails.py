"""Whole-sperm boxes grown from head boxes along each cell's traced tail (still images).

A whole spermatozoon on a stained slide is a ~5 µm head and a ~50 µm tail of sub-micron
width. Head detectors learn heads readily; a box around the whole cell depends on where a
faint, thin tail ends, often among other tails, and a small detector trained on a few
hundred slides does not learn it (``benchmarks/still_images.md``). This module traces it
instead:

1. the gray image is resampled to a fixed working scale (:attr:`TailTraceSettings.
   um_per_px`), and a map of tail lines is made, with each line's direction: either a
   ridge map, the stronger Hessian eigenvalue of the background-subtracted image, large
   on every thin dark line (bright field: a tail is darker than the background), or the
   tail probability of a small U-Net trained on real slides' midpiece and tail masks
   (:attr:`TailTraceSettings.tail_map`; :mod:`detect_track.detectors.tail_map`);
2. for each head, the tail's start is looked for on a ring just outside the head box: local
   maxima of the ridge map whose line runs away from the head (radially); the strongest
   wins, a start off the head's long axis (the tail leaves the back of the head) counting
   less;
3. from there the tracer steps along the line, each step choosing, within a cone about the
   current direction, the continuation whose ridge strength (averaged over a short segment,
   which lifts faint tails above the noise) is highest, preferring straight on, so a tail
   crosses another one rather than turning onto it; faint stretches up to
   ``gap_um`` are jumped, and other heads are stepped over, not entered;
4. the whole-cell box is the bounding box of the head box and the traced path.

A head whose tail is not found keeps its head box as its whole-cell box (detached heads are
annotated that way too).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detect_track.config import Config
from detect_track.detectors.tail_map import load_tail_map
from detect_track.errors import ConfigError

_SIGMA_PX = 1.5  # Hessian scale at the working scale (px): a tail is 3-8 px wide there
_BACKGROUND_PX = 20.0  # Gaussian sigma of the background removed first (px)
_STEP_PX = 3.0  # tracer step (px)
_SEGMENT_PX = 6.0  # ridge strength averaged over this much of the step's end (px)
_CONE_DEG = 35.0  # continuations searched within this angle of the current direction
_RING_PX = 6.0  # the tail's start is searched this far outside the head box (px) ...
_RADIAL_DEG = 20.0  # ... where the line runs within this angle of the radial direction
_RADIAL_DEG_LEARNED = 45.0  # the same on the learned map, whose directions near a head are
#   blurred (its line is wider than the ridge's): 20° there lost 4 % of the validation cells
_N_CONE = 15  # directions tried per step
_AXIS_WEIGHT = 0.3  # a start across the head's long axis counts this much of one along it
_TURN = 0.4  # weight of a new step's direction in the running direction
# How often a traced box is right (IoU >= 0.5 with the annotated whole cell), measured on the
# 180 training images of Sperm Parsing v2 with their true heads: 0.92 when the tail runs out
# of the image; when it fades out inside, it rises with the traced length (0.22 below 5 µm,
# 0.35 at 5-15, 0.67 at 15-30, 0.93 at 30-50 µm: a human tail is ~45 µm long, so a short
# trace has usually lost its tail). Modelled as _RELIABLE_MAX * logistic((L - mid) / scale).
_RELIABLE_MAX = 0.92
_RELIABLE_MID_UM = 15.0
_RELIABLE_SCALE_UM = 7.0


@dataclass(frozen=True)
class TailTraceSettings:
    """How tails are traced; lengths in µm, converted at the working scale.

    Attributes:
        um_per_px: Working scale: images are resampled to it before tracing (the
            internal pixel constants of this module are set for it).
        threshold: Ridge strength a tail must keep, in robust noise units (1.4826 x the
            median absolute deviation of the image's ridge map above its median).
        gap_um: Faint or broken stretches of a tail up to this long are jumped.
        max_length_um: A trace stops after this length (a human sperm is ~60 µm).
        tail_map: ONNX file (or name in ``weights/``) of a learned tail map to follow
            instead of the ridge map; empty: the ridge map.
        map_threshold: Tail probability a tail keeps on the learned map.
    """

    um_per_px: float = 0.106
    threshold: float = 2.0
    gap_um: float = 1.6
    max_length_um: float = 80.0
    tail_map: str = ""
    map_threshold: float = 0.3

    def __post_init__(self) -> None:
        for name in ("um_per_px", "threshold", "gap_um", "max_length_um", "map_threshold"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"tail tracing: {name} must be > 0, got {value}")
        if self.map_threshold >= 1:
            raise ConfigError(f"tail tracing: map_threshold is a probability below 1, got "
                              f"{self.map_threshold}")


def tail_trace_settings(cfg: Config) -> TailTraceSettings:
    """The tail-tracing settings of ``cfg.still``.

    Args:
        cfg: The configuration (its ``still`` section: ``trace_um_per_px``,
            ``tail_threshold``, ``tail_gap_um``, ``max_cell_length_um``, ``tail_map``,
            ``tail_map_threshold``).

    Returns:
        The settings :func:`trace_tails` and :func:`trace_whole_cells` take.

    Raises:
        ConfigError: A non-positive scale, threshold, gap or length.
    """
    st = cfg.still
    return TailTraceSettings(um_per_px=st.trace_um_per_px, threshold=st.tail_threshold,
                             gap_um=st.tail_gap_um, max_length_um=st.max_cell_length_um,
                             tail_map=st.tail_map, map_threshold=st.tail_map_threshold)


def ridge_map(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strength and direction of thin dark lines.

    Args:
        gray: ``(H, W)`` image at the working scale (any numeric dtype).

    Returns:
        ``(strength, direction)``, both ``(H, W)`` float64: the magnitude of the negative
        Hessian eigenvalue across a dark line (scale-normalised, 0 elsewhere), and the
        line's direction in radians (image x to the right, y down).
    """
    g = np.asarray(gray, np.float64)
    dark = cv2.GaussianBlur(g, (0, 0), _BACKGROUND_PX) - g  # dark structures positive
    return _bright_lines(dark)


def _bright_lines(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hessian line strength and direction of the bright lines of ``image`` (float64)."""
    sm = cv2.GaussianBlur(image, (0, 0), _SIGMA_PX)
    ixx = cv2.Sobel(sm, cv2.CV_64F, 2, 0, ksize=3)
    iyy = cv2.Sobel(sm, cv2.CV_64F, 0, 2, ksize=3)
    ixy = cv2.Sobel(sm, cv2.CV_64F, 1, 1, ksize=3)
    half_diff = np.sqrt(((ixx - iyy) / 2) ** 2 + ixy**2)
    lam_min = (ixx + iyy) / 2 - half_diff
    strength = np.maximum(0.0, -lam_min) * _SIGMA_PX**2
    direction = 0.5 * np.arctan2(2 * ixy, ixx - iyy)  # eigenvector of the larger eigenvalue
    return strength, direction


def _head_axis(work: np.ndarray, box: np.ndarray) -> float | None:
    """Direction (radians, modulo pi) of a head's long axis, from its dark pixels."""
    h, w = work.shape
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    patch = work[y1:y2, x1:x2].astype(np.float64)
    if patch.size < 9:
        return None
    lo, hi = np.percentile(patch, 5), np.percentile(patch, 95)
    m = patch < (lo + hi) / 2
    if m.sum() < 5:
        return None
    yy, xx = np.nonzero(m)
    cov = np.cov(np.c_[xx, yy].T)
    return float(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))


def _box_mask(shape: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: True inside any of the ``(N, 4)`` boxes."""
    mask = np.zeros(shape, bool)
    h, w = shape
    for x1, y1, x2, y2 in boxes:
        mask[max(0, int(y1)):min(h, int(np.ceil(y2))), max(0, int(x1)):min(w, int(np.ceil(x2)))] \
            = True
    return mask


class _Tracer:
    """Tail tracing on one image's ridge map (working-scale pixels).

    Args:
        strength: ``(H, W)`` ridge strength (:func:`ridge_map`).
        direction: ``(H, W)`` line direction in radians.
        heads: ``(N, 4)`` head boxes in working pixels: no tail runs inside one.
        threshold: Ridge strength a tail keeps.
        gap_px: Longest faint stretch jumped.
        max_length_px: A trace stops after this length.
        radial_deg: A start's line runs within this angle of the radial direction.
    """

    def __init__(self, strength: np.ndarray, direction: np.ndarray, heads: np.ndarray,
                 threshold: float, gap_px: float, max_length_px: float,
                 radial_deg: float = _RADIAL_DEG) -> None:
        self.h, self.w = strength.shape
        self.heads = _box_mask(strength.shape, heads)
        self.r = np.where(self.heads, 0.0, strength)  # ridges inside heads are not tails
        self.phi = direction
        self.thr = threshold
        self.gap = gap_px
        self.max_len = max_length_px
        self.min_cos = float(np.cos(np.deg2rad(radial_deg)))
        self.offsets = np.deg2rad(np.linspace(-_CONE_DEG, _CONE_DEG, _N_CONE))
        self.prefer = np.cos(self.offsets) ** 2
        self.t = np.linspace(0.0, 1.0, 6)[None, :, None]  # samples along a step's segment

    def start(self, box: np.ndarray, axis: float | None) -> tuple[float, float, float] | None:
        """The tail's start ``(x, y, angle)`` around one head box, or None if no line leaves.

        Args:
            box: ``(4,)`` head box.
            axis: The head's long axis (radians, modulo pi), or None if unknown.
        """
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ang = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        weight = np.ones_like(ang) if axis is None else \
            _AXIS_WEIGHT + (1 - _AXIS_WEIGHT) * np.abs(np.cos(ang - axis))
        radius = 0.5 * max(x2 - x1, y2 - y1) + _RING_PX
        best, score = None, 0.0
        for rr in (radius, radius + 3, radius + 6):
            px = np.clip(np.round(cx + rr * np.cos(ang)).astype(int), 0, self.w - 1)
            py = np.clip(np.round(cy + rr * np.sin(ang)).astype(int), 0, self.h - 1)
            v = self.r[py, px]
            radial = np.abs(np.cos(self.phi[py, px] - ang)) >= self.min_cos
            peak = (v >= self.thr) & (v >= np.roll(v, 1)) & (v >= np.roll(v, -1)) & radial
            for k in np.flatnonzero(peak):
                if v[k] * weight[k] > score:
                    best, score = (float(px[k]), float(py[k]), float(ang[k])), v[k] * weight[k]
        return best

    def _strongest(self, p: np.ndarray, d: np.ndarray, dist: float
                   ) -> tuple[np.ndarray, float] | None:
        """Best continuation ``dist`` px ahead within the cone, with its mean strength.

        Returns None when every direction of the cone leaves the image.
        """
        a = np.arctan2(d[1], d[0]) + self.offsets
        q = p[None] + dist * np.c_[np.cos(a), np.sin(a)]
        ok = (q[:, 0] >= 0) & (q[:, 0] <= self.w - 1) & (q[:, 1] >= 0) & (q[:, 1] <= self.h - 1)
        if not ok.any():
            return None
        q = q[ok]
        start = p[None] + (q - p[None]) * max(0.0, 1.0 - _SEGMENT_PX / dist)
        seg = np.round(start[:, None] + self.t * (q[:, None] - start[:, None])).astype(int)
        rv = self.r[seg[..., 1], seg[..., 0]].mean(axis=1)
        k = int(np.argmax(rv * self.prefer[ok]))
        return q[k], float(rv[k])

    def follow(self, x: float, y: float, angle: float, own: np.ndarray
               ) -> tuple[np.ndarray, str]:
        """Trace from a start; ``own`` is the cell's head box (other heads are stepped over).

        Returns:
            The path ``(M, 2)`` (x, y) and why it stopped (see :attr:`TailTrace.end`).
        """
        p = np.array([x, y])
        d = np.array([np.cos(angle), np.sin(angle)])
        pts, length = [p.copy()], 0.0
        while length < self.max_len:
            dist, limit, step_to = 0.0, self.gap, None
            while dist < limit:
                dist += _STEP_PX
                ax, ay = np.round(p + dist * d).astype(int)
                if (0 <= ax < self.w and 0 <= ay < self.h and self.heads[ay, ax]
                        and not (own[0] <= ax < own[2] and own[1] <= ay < own[3])):
                    limit = max(limit, dist + self.gap)  # step over another cell's head
                    continue
                found = self._strongest(p, d, dist)
                if found is None:
                    return np.array(pts), "border"  # the tail leaves the image
                if found[1] >= self.thr:
                    step_to = found[0]
                    break
            if step_to is None:
                return np.array(pts), "open"  # the tail fades out
            d = (1 - _TURN) * d + _TURN * (step_to - p) / dist
            d /= np.linalg.norm(d)
            p = step_to
            pts.append(p.copy())
            length += dist
        return np.array(pts), "length"


@dataclass(frozen=True)
class TailTrace:
    """One head's traced tail.

    Attributes:
        path_px: ``(M, 2)`` x, y of the traced points in image pixels (M = 0: no tail).
        end: Why the trace stopped: ``"none"`` (no tail leaves the head), ``"border"``
            (the tail leaves the image), ``"open"`` (it fades out), ``"length"`` (the
            maximum length was reached).
    """

    path_px: np.ndarray
    end: str

    def length_um(self, um_per_px: float) -> float:
        """Length of the traced path in µm, given the image's µm per pixel."""
        if len(self.path_px) < 2:
            return 0.0
        return float(np.linalg.norm(np.diff(self.path_px, axis=0), axis=1).sum()) * um_per_px

    def reliability(self, um_per_px: float) -> float:
        """Chance in [0, 1] that the box grown along this trace holds the whole cell.

        Measured on real slides (see ``_RELIABLE_*``): high when the tail leaves the image
        or reaches the maximum length, a logistic of the traced length when it fades out.
        """
        if self.end in ("border", "length"):
            return _RELIABLE_MAX
        z = (self.length_um(um_per_px) - _RELIABLE_MID_UM) / _RELIABLE_SCALE_UM
        return float(_RELIABLE_MAX / (1.0 + np.exp(-z)))


def trace_tails(gray: np.ndarray, heads_xyxy: np.ndarray, um_per_px: float,
                settings: TailTraceSettings | None = None) -> list[TailTrace]:
    """Trace each head's tail.

    Args:
        gray: ``(H, W)`` image (bright field: tails darker than the background); colour
            images must be converted first.
        heads_xyxy: ``(N, 4)`` head boxes ``x1, y1, x2, y2`` in image pixels.
        um_per_px: Micrometres per pixel of ``gray``.
        settings: Tracing settings (defaults: :class:`TailTraceSettings`).

    Returns:
        ``N`` traces, one per head, in order.

    Raises:
        ConfigError: A non-positive ``um_per_px`` or a non-2-D image.
    """
    settings = settings or TailTraceSettings()
    heads = np.asarray(heads_xyxy, np.float64).reshape(-1, 4)
    if gray.ndim != 2:
        raise ConfigError("tail tracing needs a 2-D gray image")
    if not np.isfinite(um_per_px) or um_per_px <= 0:
        raise ConfigError(f"tail tracing: um_per_px must be > 0, got {um_per_px}")
    h, w = gray.shape
    none = TailTrace(np.zeros((0, 2)), "none")
    if not len(heads) or min(h, w) < 8:
        return [none] * len(heads)
    tail_map = load_tail_map(settings.tail_map) if settings.tail_map else None
    if tail_map is not None and abs(tail_map.um_per_px / settings.um_per_px - 1) > 0.05:
        raise ConfigError(f"tail map {tail_map.path.name} works at {tail_map.um_per_px} "
                          f"µm/px, not at the tracing scale {settings.um_per_px}")
    f = um_per_px / settings.um_per_px  # image px -> working px
    size = (max(8, round(w * f)), max(8, round(h * f)))
    work = cv2.resize(np.asarray(gray, np.float32), size,
                      interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    scale = np.array([size[0] / w, size[1] / h])
    boxes = heads * np.tile(scale, 2)
    if tail_map is not None:
        strength = tail_map(work)
        direction = _bright_lines(strength)[1]
        threshold, radial = settings.map_threshold, _RADIAL_DEG_LEARNED
    else:
        strength, direction = ridge_map(work)
        from scipy.stats import median_abs_deviation  # ~0.8 s to import: only when tracing

        noise = float(median_abs_deviation(strength, axis=None, scale="normal")) + 1e-12
        threshold = float(np.median(strength)) + settings.threshold * noise
        radial = _RADIAL_DEG
    tracer = _Tracer(strength, direction, boxes, threshold,
                     settings.gap_um / settings.um_per_px,
                     settings.max_length_um / settings.um_per_px, radial)
    out = []
    for box in boxes:
        start = tracer.start(box, _head_axis(work, box))
        if start is None:
            out.append(none)
            continue
        path, end = tracer.follow(*start, box)
        out.append(TailTrace(path / scale, end))
    return out


def trace_whole_cells(gray: np.ndarray, heads_xyxy: np.ndarray, um_per_px: float,
                      settings: TailTraceSettings | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Whole-cell boxes: each head box grown to hold its traced tail.

    Args:
        gray: ``(H, W)`` image (bright field: tails darker than the background).
        heads_xyxy: ``(N, 4)`` head boxes ``x1, y1, x2, y2`` in image pixels.
        um_per_px: Micrometres per pixel of ``gray``.
        settings: Tracing settings (defaults: :class:`TailTraceSettings`).

    Returns:
        ``(boxes, reliability)``: ``(N, 4)`` float64 whole-cell boxes in image pixels, row
        k for head k, inside the image (a head whose tail is not found keeps its own box);
        ``(N,)`` chance that each box holds the whole cell (:meth:`TailTrace.reliability`).

    Raises:
        ConfigError: A non-positive ``um_per_px`` or a non-2-D image.
    """
    settings = settings or TailTraceSettings()
    heads = np.asarray(heads_xyxy, np.float64).reshape(-1, 4).copy()
    traces = trace_tails(gray, heads, um_per_px, settings)
    h, w = gray.shape
    pad = settings.um_per_px / um_per_px  # one working pixel: the tail's half width
    for k, tr in enumerate(traces):
        if len(tr.path_px):
            lo, hi = tr.path_px.min(axis=0) - pad, tr.path_px.max(axis=0) + pad
            heads[k] = [min(heads[k, 0], lo[0]), min(heads[k, 1], lo[1]),
                        max(heads[k, 2], hi[0]), max(heads[k, 3], hi[1])]
    reliability = np.array([tr.reliability(um_per_px) for tr in traces], np.float64)
    return np.clip(heads, 0, [w, h, w, h]), reliability
