"""Per-frame detections from other software: reading and checking a detections table.

Format (CSV, one row per detected cell per frame; units pixels and frames):

=============  ========  ==========================================================
column         required  meaning
=============  ========  ==========================================================
frame          yes       0-based frame index (integer)
x_px, y_px     yes       centre of the cell (x = column, y = row, origin top-left)
w_px, h_px     no        box width and height (default: a 5 µm square)
confidence     no        detection score in 0..1 (default 1)
class_name     no        e.g. ``sperm``, ``cluster`` (default ``sperm``)
=============  ========  ==========================================================
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from detect_track.errors import InputError

#: Frames a detections table may span (a 1e9 would mean a billion empty frames to step
#: through; the tracker takes about 0.1-0.25 ms per empty frame): 10^5 frames are 55 minutes
#: at 30 fps, 50 s at 2000 fps.
MAX_FRAMES = 100_000
#: Longest ``class_name`` (characters) and most distinct classes in one table.
MAX_CLASS_NAME_CHARS = 100
MAX_CLASSES = 100
REQUIRED = ("frame", "x_px", "y_px")
OPTIONAL = ("w_px", "h_px", "confidence", "class_name")
# columns other tools write, so that the error can say what to rename
_ALIASES = {"x": "x_px", "y": "y_px", "t": "frame", "frame_id": "frame", "w": "w_px",
            "h": "h_px", "width": "w_px", "height": "h_px", "score": "confidence",
            "conf": "confidence", "class": "class_name", "label": "class_name"}


def read_detections(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a detections CSV and check it (see the module docstring for the columns).

    Args:
        path: CSV file.

    Returns:
        The checked table, sorted by frame, with every optional column filled in except
        the box size (which depends on µm/px; see :func:`normalise_detections`).

    Raises:
        InputError: Missing or unreadable file, missing columns, invalid values.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist")
    if p.is_dir():
        raise InputError(f"{p} is a folder; give a detections CSV file")
    if not p.is_file():  # a device or a pipe (/dev/zero) would be read for ever
        raise InputError(f"{p} is not a regular file; give a detections CSV file")
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise InputError(f"{p} is empty (expected a CSV with columns frame, x_px, y_px)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{p} is not a readable CSV file ({type(exc).__name__})") from None
    return normalise_detections(df, box_px=None, source=str(p))


def normalise_detections(df: pd.DataFrame, box_px: float | None,
                         source: str = "detections") -> pd.DataFrame:
    """Check a detections table and fill in its optional columns.

    Args:
        df: Table with at least ``frame, x_px, y_px``.
        box_px: Side of the square box given to rows without ``w_px, h_px`` (None: leave
            missing sizes as NaN).
        source: Name used in error messages.

    Returns:
        A new table with columns ``frame, x_px, y_px, w_px, h_px, confidence,
        class_name``, sorted by frame (stable).

    Raises:
        InputError: Missing columns, non-numeric or non-finite values, negative or
            non-integer frames, confidences outside 0..1, non-positive box sizes.
    """
    df = df.rename(columns=lambda c: str(c).strip())
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        hints = [f"'{a}' -> '{_ALIASES[a]}'" for a in df.columns
                 if a in _ALIASES and _ALIASES[a] in missing]
        close = [f"'{c}' (did you mean '{m[0]}'?)" for c in missing
                 if (m := difflib.get_close_matches(c, [str(x) for x in df.columns], n=1))]
        more = f"; rename {', '.join(hints)}" if hints else (f"; {', '.join(close)}"
                                                             if close else "")
        raise InputError(f"{source} lacks column(s) {', '.join(missing)} (has: "
                         f"{', '.join(map(str, df.columns)) or 'none'}){more}")
    out = pd.DataFrame(index=df.index)
    for col in ("frame", "x_px", "y_px", "w_px", "h_px", "confidence"):
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if col in ("w_px", "h_px"):  # an empty size means "unknown": the default box
            bad &= ~(np.isnan(values) & df[col].isna().to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{source}: column '{col}' has a missing or non-numeric value "
                             f"(data row {row + 1}: {df[col].iloc[row]!r})")
        out[col] = values
    frames = out["frame"].to_numpy()
    if len(frames) and (np.any(frames < 0) or np.any(frames != np.round(frames))):
        raise InputError(f"{source}: 'frame' must hold 0-based integer frame indices")
    if len(frames) and frames.max() >= MAX_FRAMES:
        raise InputError(f"{source}: frame {frames.max():.0f} is beyond the {MAX_FRAMES:,} "
                         "frames this command tracks (a wrong column or unit?)")
    out["frame"] = frames.astype(np.int64)
    for col in ("w_px", "h_px"):
        if col in out and np.any(out[col].fillna(1.0) <= 0):
            raise InputError(f"{source}: '{col}' must be > 0")
        if col not in out:
            out[col] = np.nan if box_px is None else float(box_px)
        elif box_px is not None:
            out[col] = out[col].fillna(float(box_px))
    if "confidence" in out:
        c = out["confidence"]
        if np.any((c < 0) | (c > 1)):
            raise InputError(f"{source}: 'confidence' must lie in 0..1")
    else:
        out["confidence"] = 1.0
    if "class_name" in df.columns:
        names = df["class_name"].fillna("sperm").astype(str).str.strip()
        too_long = names.str.len() > MAX_CLASS_NAME_CHARS
        if too_long.any():
            row = int(np.flatnonzero(too_long.to_numpy())[0])
            raise InputError(f"{source}: 'class_name' longer than {MAX_CLASS_NAME_CHARS} "
                             f"characters (data row {row + 1})")
        if names.nunique() > MAX_CLASSES:
            raise InputError(f"{source}: more than {MAX_CLASSES} different class names")
        out["class_name"] = names
    else:
        out["class_name"] = "sperm"
    out = out[["frame", "x_px", "y_px", "w_px", "h_px", "confidence", "class_name"]]
    return out.sort_values("frame", kind="stable", ignore_index=True)
