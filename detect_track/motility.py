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

from detect_track.config import MotilityConfig
from detect_track.types import MOTILITY_CLASSES

#: WHO grades, in summary order: a = rapid progressive, b = slow progressive,
#: c = non-progressive, d = immotile.
WHO_GRADES: tuple[str, ...] = ("a", "b", "c", "d")

_REQUIRED = ("vcl_um_s", "vsl_um_s", "vap_um_s", "str", "alh_um")


def classify_motility(tracks: pd.DataFrame, cfg: MotilityConfig | None = None) -> pd.DataFrame:
    """Assign a WHO motility class and grade to every track.

    Rules, evaluated in order (all gates from ``cfg``, defaults in brackets):

    1. **progressive** if ``vap_um_s >= progressive_vap_um_s`` [25 µm/s] **and**
       ``str >= progressive_str`` [0.8];
    2. otherwise **immotile** if ``vap_um_s < immotile_vap_um_s`` [5 µm/s] **and not**
       (``vcl_um_s >= immotile_vcl_um_s`` [15 µm/s] **and** ``alh_um >= immotile_alh_um``
       [1 µm]); a head that beats in place (fast curvilinear motion with a real lateral
       amplitude but no net progress) is motile, hence non-progressive;
    3. otherwise **non_progressive**.

    Tracks whose VAP or VCL is NaN (too short to measure) are **immotile**; a NaN STR
    fails the progressive gate and a NaN ALH fails the "beating in place" exception.

    Grades (WHO 6th edition: a rapid progressive, b slow progressive, c non-progressive,
    d immotile): **a** = progressive with ``vsl_um_s >= grade_a_vsl_um_s`` [25 µm/s];
    **b** = other progressive, and also cells that swim straight (``str >=
    progressive_str``) with ``vsl_um_s >= grade_b_vsl_um_s`` [5 µm/s] but too slowly for the
    CASA progressive gate (their class stays ``non_progressive``, their grade is b);
    **c** = other non_progressive; **d** = immotile.

    Args:
        tracks: Per-track table with at least the columns ``vcl_um_s``, ``vsl_um_s``,
            ``vap_um_s`` (µm/s), ``str`` (ratio 0..1) and ``alh_um`` (µm), e.g. the
            output of :func:`detect_track.kinematics.kinematics_table`. Not modified.
        cfg: Motility gates; None uses the defaults of ``MotilityConfig``.

    Returns:
        A copy of ``tracks`` with two added (or replaced) columns: ``motility``
        (``progressive`` | ``non_progressive`` | ``immotile``) and ``who_grade``
        (``a`` | ``b`` | ``c`` | ``d``).

    Raises:
        ValueError: A required column is missing.

    """
    cfg = MotilityConfig() if cfg is None else cfg
    missing = [c for c in _REQUIRED if c not in tracks.columns]
    if missing:
        raise ValueError(f"tracks table lacks kinematics column(s): {', '.join(missing)}")

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(tracks[name], errors="coerce").to_numpy(dtype=np.float64)

    vcl, vsl, vap, straight, alh = (col(c) for c in _REQUIRED)
    with np.errstate(invalid="ignore"):
        unmeasured = np.isnan(vap) | np.isnan(vcl)
        progressive = (vap >= cfg.progressive_vap_um_s) & (straight >= cfg.progressive_str)
        beating = (vcl >= cfg.immotile_vcl_um_s) & (alh >= cfg.immotile_alh_um)
        immotile = unmeasured | ((vap < cfg.immotile_vap_um_s) & ~beating)
        progressive &= ~unmeasured
        immotile &= ~progressive
        rapid = progressive & (vsl >= cfg.grade_a_vsl_um_s)
        slow_straight = ~immotile & (straight >= cfg.progressive_str) & (
            vsl >= cfg.grade_b_vsl_um_s)

    prog_name, nonprog_name, immotile_name = MOTILITY_CLASSES
    motility = np.where(
        progressive, prog_name, np.where(immotile, immotile_name, nonprog_name)
    ).astype(object)
    grade = np.select([rapid, progressive | slow_straight, immotile], ["a", "b", "d"],
                      default="c").astype(object)
    out = tracks.copy()
    out["motility"] = motility
    out["who_grade"] = grade
    return out


def sample_summary(tracks: pd.DataFrame) -> dict[str, int | float]:
    """Count tracks per motility class and WHO grade.

    Args:
        tracks: Output of :func:`classify_motility` (columns ``motility`` and
            ``who_grade``).

    Returns:
        A JSON-ready dict with ``n_tracks``; ``n_<class>`` and ``pct_<class>`` for each
        class in ``MOTILITY_CLASSES`` (``progressive``, ``non_progressive``,
        ``immotile``); ``n_grade_<g>`` and ``pct_grade_<g>`` for grades a-d; and
        ``pct_motile`` (progressive + non-progressive). Percentages are in 0..100 and
        are 0.0 when there are no tracks.

    Raises:
        ValueError: ``motility`` or ``who_grade`` is missing (run
            :func:`classify_motility` first).

    """
    missing = [c for c in ("motility", "who_grade") if c not in tracks.columns]
    if missing:
        raise ValueError(
            f"tracks table lacks column(s) {', '.join(missing)}; run classify_motility first"
        )
    n = len(tracks)

    def pct(count: int) -> float:
        return 100.0 * count / n if n else 0.0

    out: dict[str, int | float] = {"n_tracks": int(n)}
    classes = tracks["motility"].value_counts()
    grades = tracks["who_grade"].value_counts()
    for name in MOTILITY_CLASSES:
        out[f"n_{name}"] = int(classes.get(name, 0))
    for name in MOTILITY_CLASSES:
        out[f"pct_{name}"] = pct(out[f"n_{name}"])  # type: ignore[arg-type]
    for g in WHO_GRADES:
        out[f"n_grade_{g}"] = int(grades.get(g, 0))
    for g in WHO_GRADES:
        out[f"pct_grade_{g}"] = pct(out[f"n_grade_{g}"])  # type: ignore[arg-type]
    n_motile = int(out[f"n_{MOTILITY_CLASSES[0]}"]) + int(out[f"n_{MOTILITY_CLASSES[1]}"])
    out["pct_motile"] = pct(n_motile)
    return out
