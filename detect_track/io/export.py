"""Atomic writers for CSV and JSON results.

Every file is written to a temporary name and renamed into place, so an interrupted
run never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detect_track.errors import OutputError


def ensure_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and check that files can be written there.

    Raises:
        OutputError: If the folder cannot be created or written.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output path exists and is not a folder: {out}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out}: {exc.strerror or exc}") from exc
    return out


def _file_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` makes them 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


#: Mode of the files we write (0666 less the umask; temporary files start private).
FILE_MODE = _file_mode()


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    Raises:
        OutputError: If writing or renaming fails (the temporary file is removed).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, FILE_MODE)  # readable like any other file the user writes
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return target


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> int:
    """Delete the temporary files an interrupted write left in ``folder`` (not recursive).

    Only names this package creates are touched: ``.<name>.<random>.tmp`` from
    :func:`atomic_write` and ``<stem>.<random>.tmp.<mp4|webm|avi>`` from the overlay writer.
    Call it only when no other process is writing into the folder.

    Returns:
        How many files were removed.
    """
    removed = 0
    for pattern in (".*.tmp", "*.tmp.mp4", "*.tmp.webm", "*.tmp.avi"):
        for path in Path(folder).glob(pattern):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    return removed


#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# (the last four: full-width = + - @, which some spreadsheets read as the ASCII ones)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def escape_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate, prefixed with ``'``; others as they are.

    Only strings are touched, and of them not those that are plain numbers (``-1.5``):
    numbers stay numbers. ``=1+2`` becomes ``'=1+2``, shown as text by Excel, LibreOffice
    and Google Sheets.
    """
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell (and column name) passed through :func:`escape_cell`.

    Numeric columns are left alone; the input is not modified.
    """
    masks = {}
    for col in df.columns:
        s = df[col]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue
        try:  # vectorised first look; the exact rule (escape_cell) on the few hits only
            hits = s.str.startswith(FORMULA_START, na=False).to_numpy(bool)
        except AttributeError:  # an object column without text
            hits = s.map(lambda v: escape_cell(v) is not v).to_numpy(bool)
        if hits.any():
            masks[col] = hits
    renamed = {c: escape_cell(c) for c in df.columns if escape_cell(c) is not c}
    if not masks and not renamed:
        return df
    out = df.copy()
    for col, hits in masks.items():
        values = out[col].astype(object).to_numpy(copy=True)
        values[hits] = [escape_cell(v) for v in values[hits]]
        out[col] = values
    return out.rename(columns=renamed)


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a DataFrame as CSV (no index, UTF-8, '.' decimals) atomically.

    Text cells a spreadsheet would run as a formula are escaped (:func:`escape_formulas`);
    text that cannot be encoded (a file name that is not valid UTF-8) gets ``?``.
    """
    safe = escape_formulas(df)
    return atomic_write(path, lambda p: safe.to_csv(p, index=False, float_format="%.6g",
                                                   errors="replace"))


def copy_file(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy a file to ``path`` atomically (e.g. a streamed table into an output folder)."""
    import shutil

    return atomic_write(path, lambda p: shutil.copyfile(source, p))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(data: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a dict as pretty JSON atomically (NaN becomes null; unencodable text ``?``)."""
    text = json.dumps(_jsonable(data), indent=2, ensure_ascii=False)
    return atomic_write(path, lambda p: p.write_text(text + "\n", encoding="utf-8",
                                                     errors="replace"))


#: Export formats besides the default CSV/JSON files, by name (``--export``).
EXPORT_FORMATS = ("mot",)


def mot_table(trajectories: pd.DataFrame) -> pd.DataFrame:
    """Trajectories in the MOTChallenge layout (TrackEval, py-motmetrics and others).

    One row per box: ``frame`` (1-based), ``id``, ``bb_left, bb_top, bb_width, bb_height``
    (px), ``conf`` (the detection score; -1 on interpolated rows), then ``x, y, z`` = -1.

    Args:
        trajectories: The trajectory table (``TRAJECTORY_COLUMNS``).

    Returns:
        The table, sorted by frame then id, without a header.
    """
    t = trajectories
    conf = t["confidence"].astype(float).where(~t["interpolated"].astype(bool), -1.0)
    out = pd.DataFrame({
        "frame": t["frame"].astype(np.int64) + 1,
        "id": t["track_id"].astype(np.int64),
        "bb_left": t["x_px"] - t["w_px"] / 2,
        "bb_top": t["y_px"] - t["h_px"] / 2,
        "bb_width": t["w_px"],
        "bb_height": t["h_px"],
        "conf": conf.fillna(-1.0),
        "x": -1, "y": -1, "z": -1,
    })
    return out.sort_values(["frame", "id"], ignore_index=True)


def write_mot(trajectories: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write :func:`mot_table` as a header-less comma-separated ``.txt``, atomically."""
    table = mot_table(trajectories)
    return atomic_write(path, lambda p: table.to_csv(p, index=False, header=False,
                                                     float_format="%.3f"))


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write UTF-8 text (a report, a benchmark table) atomically (unencodable: ``?``)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8", errors="replace"))
