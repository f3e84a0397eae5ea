"""WHO (6th edition) motility classes and grades from CASA kinematics.

The WHO manual defines *progressive* motility as "moving actively, either linearly or in
a large circle", *non-progressive* as "all other patterns of motility with an absence of
progression" and *immotile* as "no movement". CASA systems turn this into thresholds on
the kinematics; the thresholds used here all come from
:class:`~detect_track.config.MotilityConfig` (defaults in brackets).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from detect_track.config import Config, MotilityConfig
from detect_track.measure.kinematics import kinematics_table
from detect_track.types import MOTILITY_CLASSES, TRACK_COLUMNS, VideoMeta

#: WHO grades, in summary order: a = rapid progressive, b = slow progressive,
#: c = non-progressive, d = immotile.
WHO_GRADES: tuple[str, ...] = ("a", "b", "c", "d")

_REQUIRED = ("vcl_um_s", "vsl_um_s", "vap_um_s", "str", "alh_um")

#: Value of ``motility`` and ``who_grade`` for a cell seen too briefly to be graded.
NOT_GRADABLE = "not_gradable"

#: Kinematics that describe the beat of a swimming head and, on a cell that does not
#: move, measure only the jitter of its detected position (on the bundled sample: BCF of
#: 24-30 Hz, MAD near 100°, an ALH of the detector's noise); left empty (NaN) for
#: immotile tracks by :func:`blank_immotile_beat`.
BEAT_COLUMNS: tuple[str, ...] = ("alh_um", "alh_max_um", "bcf_hz", "mad_deg")


def blank_immotile_beat(tracks: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``tracks`` with :data:`BEAT_COLUMNS` set to NaN on immotile tracks.

    Args:
        tracks: Output of :func:`classify_motility` (``motility`` and the kinematics).

    Returns:
        The table; means of these columns (per class or over all cells) then describe
        moving cells only, as NaN is skipped.
    """
    out = tracks.copy()
    immotile = out["motility"].to_numpy() == MOTILITY_CLASSES[2]
    for col in BEAT_COLUMNS:
        if col in out:
            out.loc[immotile, col] = np.nan
    return out


def classify_motility(tracks: pd.DataFrame, cfg: MotilityConfig | None = None) -> pd.DataFrame:
    """Assign a WHO motility class and grade to every track.

    **Rule ``progression``** (default; gates from ``cfg``, defaults in brackets), on
    ``progression_um_s`` (the median net displacement over 2 s windows per second, see
    :mod:`detect_track.measure.kinematics`), which the position jitter of real tracks barely moves:

    1. **progressive** if ``progression_um_s >= progressive_um_s`` [20 µm/s]: the cell
       gets somewhere, "linearly or in a large circle" (WHO);
    2. otherwise **immotile** if ``motion_um_s < immotile_um_s`` [4 µm/s] (the same
       displacement over 0.5, 1 and 2 s windows: a closed circle moves) **and not**
       (``vcl_um_s >= immotile_vcl_um_s`` [15 µm/s] **and** ``alh_um >=
       immotile_alh_um`` [1 µm]): "no movement" (WHO); a head that beats in place (fast
       curvilinear motion with a real lateral amplitude) is motile, hence
    3. otherwise **non_progressive**.

    Grades: **a** = progressive with ``progression_um_s >= grade_a_vsl_um_s`` [25 µm/s],
    **b** = other progressive, **c** = non-progressive, **d** = immotile.

    **Rule ``casa``** (the classic CASA gates):

    1. **progressive** if ``vap_um_s >= progressive_vap_um_s`` [25 µm/s] **and**
       ``str >= progressive_str`` [0.8];
    2. otherwise **immotile** if ``vap_um_s < immotile_vap_um_s`` [5 µm/s] and the head
       does not beat in place (as above);
    3. otherwise **non_progressive**.

    Grades: **a** = progressive with ``vsl_um_s >= grade_a_vsl_um_s``; **b** = other
    progressive, and also cells that swim straight (``str >= progressive_str``) with
    ``vsl_um_s >= grade_b_vsl_um_s`` [5 µm/s] but too slowly for the progressive gate
    (their class stays ``non_progressive``); **c** = other non-progressive; **d** =
    immotile.

    **Gradable cells** (both rules). WHO counts cells, and a cell seen briefly is still a
    cell, but a short look does not tell a slow swimmer from a jittering dead head. A cell
    seen for less than ``min_gradable_s`` [1 s] (``duration_s``) is graded only when the
    evidence allows: progressive if it moved at least ``short_progressive_um`` [10 µm]
    net (``vsl_um_s * duration_s``) and passes the progressive gate (VSL for the rule
    ``progression``); otherwise its class and grade are :data:`NOT_GRADABLE`
    (``"not_gradable"``) and :func:`sample_summary` leaves it out of the percentages.
    Without a ``duration_s`` column every track is gradable. Tracks whose speeds are NaN
    (fewer than 2 points) are not gradable.

    Args:
        tracks: Per-track table with at least the columns ``vcl_um_s``, ``vsl_um_s``,
            ``vap_um_s`` (µm/s), ``str`` (ratio 0..1) and ``alh_um`` (µm), plus
            ``progression_um_s`` and ``motion_um_s`` for the rule ``progression`` (VSL
            stands in for a missing one), e.g.
            the output of :func:`detect_track.measure.kinematics.kinematics_table`. Not modified.
        cfg: Motility gates; None uses the defaults of ``MotilityConfig``.

    Returns:
        A copy of ``tracks`` with two added (or replaced) columns: ``motility``
        (``progressive`` | ``non_progressive`` | ``immotile`` | ``not_gradable``) and
        ``who_grade`` (``a`` | ``b`` | ``c`` | ``d`` | ``not_gradable``).

    Raises:
        ValueError: A required column is missing, or an unknown ``cfg.rule``.

    """
    cfg = MotilityConfig() if cfg is None else cfg
    if cfg.rule not in ("progression", "casa"):
        raise ValueError(f"motility rule must be progression or casa, got {cfg.rule!r}")
    missing = [c for c in _REQUIRED if c not in tracks.columns]
    if missing:
        raise ValueError(f"tracks table lacks kinematics column(s): {', '.join(missing)}")

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(tracks[name], errors="coerce").to_numpy(dtype=np.float64)

    vcl, vsl, vap, straight, alh = (col(c) for c in _REQUIRED)
    casa = cfg.rule == "casa"
    prog = vsl if casa or "progression_um_s" not in tracks.columns else col("progression_um_s")
    motion = vsl if casa or "motion_um_s" not in tracks.columns else col("motion_um_s")
    duration = col("duration_s") if "duration_s" in tracks.columns else np.full(len(vcl), np.inf)
    with np.errstate(invalid="ignore"):
        unmeasured = np.isnan(vap) | np.isnan(vcl)
        beating = (vcl >= cfg.immotile_vcl_um_s) & (alh >= cfg.immotile_alh_um)
        if casa:
            progressive = (vap >= cfg.progressive_vap_um_s) & (straight >= cfg.progressive_str)
            immotile = (vap < cfg.immotile_vap_um_s) & ~beating
            short_prog = progressive
        else:
            progressive = prog >= cfg.progressive_um_s
            immotile = (motion < cfg.immotile_um_s) & ~beating
            short_prog = vsl >= cfg.progressive_um_s
        short = ~(duration >= cfg.min_gradable_s - 1e-9)
        short_prog = short & short_prog & (vsl * duration >= cfg.short_progressive_um)
        progressive = (progressive & ~short) | short_prog
        gradable = ~unmeasured & (~short | short_prog)
        progressive &= gradable
        immotile &= gradable & ~progressive
        speed = vsl if casa else prog
        rapid = progressive & (speed >= cfg.grade_a_vsl_um_s)
        slow_straight = casa & gradable & ~immotile & (straight >= cfg.progressive_str) & (
            vsl >= cfg.grade_b_vsl_um_s)

    prog_name, nonprog_name, immotile_name = MOTILITY_CLASSES
    motility = np.where(
        progressive, prog_name, np.where(immotile, immotile_name, nonprog_name)
    ).astype(object)
    grade = np.select([rapid, progressive | slow_straight, immotile], ["a", "b", "d"],
                      default="c").astype(object)
    motility[~gradable] = NOT_GRADABLE
    grade[~gradable] = NOT_GRADABLE
    out = tracks.copy()
    out["motility"] = motility
    out["who_grade"] = grade
    return out


def analyse(trajectories: pd.DataFrame, meta: VideoMeta, cfg: Config) -> pd.DataFrame:
    """Kinematics and motility class per track: the track table (``TRACK_COLUMNS``).

    Args:
        trajectories: The trajectory table (``TRAJECTORY_COLUMNS``; px, frames).
        meta: The fps and µm/px to measure with.
        cfg: Configuration (``kinematics`` and ``motility`` sections).

    Returns:
        One row per track; ``morphology`` empty and ``morphology_confidence`` NaN (the
        morphology stage fills them); ALH, BCF and MAD empty (NaN) on immotile tracks
        (:func:`blank_immotile_beat`: they measure position jitter there).
    """
    kin = kinematics_table(trajectories, um_per_px=meta.um_per_px, fps=meta.fps,
                           window_frames=cfg.kinematics.smoothing_window_frames,
                           progression_window_s=cfg.kinematics.progression_window_s)
    tracks = blank_immotile_beat(classify_motility(kin, cfg.motility))
    tracks["morphology"] = pd.Series([""] * len(tracks), index=tracks.index, dtype=object)
    tracks["morphology_confidence"] = np.nan
    return tracks[list(TRACK_COLUMNS)].reset_index(drop=True)
