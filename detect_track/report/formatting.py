"""Names and number formatting shared by the report's figures and its HTML.

Everything here returns plain text: escaping is the templates' job (Jinja autoescape).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from detect_track.types import MOTILITY_CLASSES

__all__ = [
    "CLASS_LABELS",
    "GRADES",
    "NONE",
    "UNCLASSIFIED",
    "as_list",
    "fmt",
    "num",
    "pct",
    "text",
    "with_classes",
]

#: Class used for tracks without a motility class (too short to classify).
UNCLASSIFIED = "unclassified"
#: Display names of the motility classes.
CLASS_LABELS: dict[str, str] = {
    "progressive": "Progressive",
    "non_progressive": "Non-progressive",
    "immotile": "Immotile",
    UNCLASSIFIED: "Unclassified",
}
#: WHO grades and what they mean (WHO laboratory manual, 6th edition).
GRADES: tuple[tuple[str, str], ...] = (
    ("a", "rapidly progressive"),
    ("b", "slowly progressive"),
    ("c", "non-progressive"),
    ("d", "immotile"),
)
#: Shown where a value is missing.
NONE = "—"


def num(value: Any) -> float | None:
    """A finite float, or None (None, NaN, text that is not a number).

    Args:
        value: Any cell value.

    Returns:
        The value as a finite float (booleans as 0.0 / 1.0), or None.
    """
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def text(value: Any) -> str:
    """Text of a cell; '' for None and NaN.

    Args:
        value: Any cell value.

    Returns:
        ``str(value)``, or '' for None and NaN.
    """
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def fmt(value: Any, decimals: int | None = 1, unit: str = "") -> str:
    """A number with ``decimals`` (None: integer), or an em dash when missing.

    Args:
        value: Any cell value.
        decimals: Decimals shown; None rounds to an integer and lets text through as is.
        unit: Appended to numbers (not to the em dash).

    Returns:
        The formatted number plus ``unit``; the text itself for non-numeric text when
        ``decimals`` is None; :data:`NONE` otherwise.
    """
    x = num(value)
    if x is None:
        txt = text(value)
        return txt if txt and decimals is None else NONE
    out = f"{x:.0f}" if decimals is None else f"{x:.{decimals}f}"
    return out + unit


def pct(value: Any) -> str:
    """A percentage with one decimal (``"12.3%"``), or an em dash when missing."""
    return fmt(value, 1, "%")


def as_list(value: Any) -> list[str]:
    """Warnings as a list: a list as is, a ``"; "``-joined string split, NaN/None empty.

    Args:
        value: A list of strings, a ``"; "``-joined string (batch tables), None or NaN.

    Returns:
        The non-empty items as strings.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [w.strip() for w in value.split("; ") if w.strip()]
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, Iterable):
        return [str(v) for v in value if text(v)]
    return [str(value)]


def with_classes(tracks: pd.DataFrame | None) -> pd.DataFrame:
    """Copy of ``tracks`` with a ``_class`` column ('unclassified' where motility is empty).

    Args:
        tracks: Per-track table (``motility`` is used when present), or None.

    Returns:
        A copy with the extra ``_class`` column (one of ``MOTILITY_CLASSES`` or
        :data:`UNCLASSIFIED`).
    """
    out = pd.DataFrame() if tracks is None else tracks.copy()
    if "motility" in out.columns:
        mot = out["motility"].map(text).str.strip()
    else:
        mot = pd.Series([""] * len(out), index=out.index, dtype=object)
    known = set(MOTILITY_CLASSES)
    out["_class"] = [m if m in known else UNCLASSIFIED for m in mot]
    return out
