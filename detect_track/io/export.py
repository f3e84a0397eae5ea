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


#: Decimals of the published tables (CSV, xlsx, Parquet), by column; other float columns
#: are written with 6 significant digits. Positions 0.01 px / µm (below the ~0.1 px a
#: centroid is located to), box sizes 0.1 px, times and durations 1 ms, speeds 0.1 µm/s,
#: ALH 0.1 µm, BCF 0.1 Hz, MAD 0.1°, the ratios LIN / STR / WOB and confidences 0.001.
DECIMALS: dict[str, int] = {
    "time_s": 3, "x_px": 2, "y_px": 2, "x_um": 2, "y_um": 2, "w_px": 1, "h_px": 1,
    "confidence": 3, "duration_s": 3, "vcl_um_s": 1, "vsl_um_s": 1, "vap_um_s": 1,
    "lin": 3, "str": 3, "wob": 3, "alh_um": 1, "alh_max_um": 1, "bcf_hz": 1, "mad_deg": 1,
    "progression_um_s": 1, "motion_um_s": 1, "morphology_confidence": 3,
}

#: CSV dialects (``--csv-dialect``): ``standard`` = comma separator, decimal point;
#: ``excel-eu`` = semicolon separator, decimal comma (what Excel and LibreOffice expect
#: in German, French, Italian, ... locales).
CSV_DIALECTS: dict[str, tuple[str, str]] = {"standard": (",", "."), "excel-eu": (";", ",")}


def check_dialect(dialect: str) -> tuple[str, str]:
    """The (separator, decimal mark) of a dialect.

    Raises:
        ConfigError: On an unknown dialect.
    """
    try:
        return CSV_DIALECTS[dialect]
    except KeyError:
        from detect_track.errors import ConfigError

        raise ConfigError(f"unknown CSV dialect '{dialect}' (available: "
                          f"{', '.join(CSV_DIALECTS)})") from None


def round_table(df: pd.DataFrame, decimals: dict[str, int] | None = None,
                bools_as_int: bool = True) -> pd.DataFrame:
    """``df`` with its float columns rounded to ``decimals`` and booleans as 0/1 integers.

    The values the published tables hold (CSV, xlsx, Parquet); the input is not modified.

    Args:
        df: A table.
        decimals: Decimals by column (default :data:`DECIMALS`); other columns unchanged.
        bools_as_int: Booleans as 0/1 (CSV, xlsx); False keeps them (Parquet has a type).
    """
    decimals = DECIMALS if decimals is None else decimals
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if bools_as_int and pd.api.types.is_bool_dtype(s.dtype):
            out[col] = s.astype(np.int64)
        elif col in decimals and pd.api.types.is_float_dtype(s.dtype):
            out[col] = s.round(decimals[col])
    return out


def _float_text(values: np.ndarray, decimals: int | None, mark: str) -> np.ndarray:
    """Floats as text: fixed ``decimals`` (else 6 significant digits), NaN empty."""
    fmt = "{:.6g}" if decimals is None else f"{{:.{decimals}f}}"
    text = np.array([fmt.format(v) if v == v else "" for v in values.tolist()], dtype=object)
    if mark != ".":
        text = np.array([t.replace(".", mark) for t in text.tolist()], dtype=object)
    return text


def format_table(df: pd.DataFrame, dialect: str = "standard",
                 decimals: dict[str, int] | None = None) -> pd.DataFrame:
    """``df`` as the text a CSV holds: floats rounded and with the dialect's decimal mark.

    Floats of a column in ``decimals`` get exactly that many decimals, other floats 6
    significant digits; NaN becomes an empty cell; booleans become 0/1; text a spreadsheet
    would run as a formula is escaped (:func:`escape_formulas`).

    Args:
        df: A table (not modified).
        dialect: A name of :data:`CSV_DIALECTS`.
        decimals: Decimals by column; None = :data:`DECIMALS`.
    """
    _, mark = check_dialect(dialect)
    decimals = DECIMALS if decimals is None else decimals
    out = escape_formulas(df)
    out = out.copy() if out is df else out
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            out[col] = s.astype(np.int64)
        elif pd.api.types.is_float_dtype(s.dtype):
            d = decimals.get(col)
            values = s.to_numpy(np.float64)
            if d is not None:
                values = np.round(values, d)
            out[col] = _float_text(values, d, mark)
    return out


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, dialect: str = "standard",
              decimals: dict[str, int] | None = None) -> Path:
    """Write a DataFrame as CSV (no index, UTF-8) atomically.

    Text cells a spreadsheet would run as a formula are escaped (:func:`escape_formulas`);
    text that cannot be encoded (a file name that is not valid UTF-8) gets ``?``. Floats
    are written as :func:`format_table` formats them.

    Args:
        df: The table.
        path: The file.
        dialect: ``standard`` (comma, decimal point) or ``excel-eu`` (semicolon, decimal
            comma); see :data:`CSV_DIALECTS`.
        decimals: Decimals by column; None = :data:`DECIMALS`.
    """
    sep, _ = check_dialect(dialect)
    text = format_table(df, dialect, decimals)
    return atomic_write(path, lambda p: text.to_csv(p, index=False, sep=sep,
                                                   errors="replace"))


def sniff_dialect(path: str | os.PathLike[str]) -> str:
    """The dialect of a CSV this package wrote: ``excel-eu`` when its header has a ``;``.

    Column names hold neither ``,`` nor ``;``, so the header tells the separator.
    """
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return "excel-eu" if ";" in header and "," not in header else "standard"


def read_table(path: str | os.PathLike[str], **kwargs: Any) -> pd.DataFrame:
    """Read a CSV this package wrote, in either dialect (see :func:`sniff_dialect`).

    Args:
        path: The file.
        **kwargs: More arguments of :func:`pandas.read_csv`.
    """
    sep, mark = CSV_DIALECTS[sniff_dialect(path)]
    return pd.read_csv(path, sep=sep, decimal=mark, **kwargs)


def convert_csv(source: str | os.PathLike[str], path: str | os.PathLike[str],
                dialect: str, text_columns: tuple[str, ...] = (),
                id_map: dict[int, int] | None = None, id_column: str = "track_id",
                chunk_rows: int = 200_000) -> Path:
    """Rewrite a ``standard`` CSV of this package in chunks: another dialect, new ids.

    The cells are copied as text (no number is read and written again), so the rounding
    of the source is kept; decimal points become the dialect's mark in every column but
    ``text_columns``. Written atomically; ``source`` may be ``path``.

    Args:
        source: A CSV written by :func:`write_csv` or the trajectory sink (standard).
        path: The file to write.
        dialect: A name of :data:`CSV_DIALECTS`.
        text_columns: Columns whose points stay (names, classes).
        id_map: New value of ``id_column`` for each old one (ids not in it are kept).
        id_column: The column ``id_map`` renumbers.
        chunk_rows: Rows read at a time.
    """
    sep, mark = check_dialect(dialect)
    mapping = {str(k): str(v) for k, v in (id_map or {}).items()}

    def write(tmp: Path) -> None:
        reader = pd.read_csv(source, dtype=str, keep_default_na=False, chunksize=chunk_rows)
        with open(tmp, "w", encoding="utf-8", errors="replace", newline="") as f:
            first = True
            for chunk in reader:
                if mapping and id_column in chunk:
                    chunk[id_column] = chunk[id_column].map(lambda v: mapping.get(v, v))
                if mark != ".":
                    for col in chunk.columns:
                        if col not in text_columns:
                            chunk[col] = chunk[col].str.replace(".", mark, regex=False)
                chunk.to_csv(f, index=False, header=first, sep=sep)
                first = False
            if first:  # no row: the header alone
                header = pd.read_csv(source, dtype=str, nrows=0)
                header.to_csv(f, index=False, sep=sep)

    return atomic_write(path, write)


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


#: Export formats besides the default CSV/JSON files, by name (``--export``): ``mot``
#: (``mot.txt``), ``xlsx`` (``results.xlsx``: summary, tracks and trajectories sheets),
#: ``parquet`` (``trajectories.parquet`` and ``tracks.parquet``).
EXPORT_FORMATS = ("mot", "xlsx", "parquet")

#: Rows of an Excel sheet, the header included.
XLSX_MAX_ROWS = 1_048_576


def summary_rows(summary: dict[str, Any]) -> pd.DataFrame:
    """A summary as a two-column table (``key``, ``value``) for a spreadsheet sheet.

    Nested dicts are flattened (``timings_s.detect``), lists joined with ``; ``; the
    configuration and the versions are left out (they are in ``summary.json``).
    """
    rows: list[tuple[str, Any]] = []
    for key, value in summary.items():
        if key in ("config", "versions"):
            continue
        if isinstance(value, dict):
            rows += [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            rows.append((key, "; ".join(str(v) for v in value)))
        else:
            rows.append((key, value))
    table = pd.DataFrame(rows, columns=["key", "value"])
    table["value"] = table["value"].map(
        lambda v: round(v, 3) if isinstance(v, float) and math.isfinite(v) else
        (None if isinstance(v, float) else v)).astype(object)
    return table


def write_xlsx(sheets: dict[str, pd.DataFrame], path: str | os.PathLike[str],
               decimals: dict[str, int] | None = None) -> Path:
    """Write tables as the sheets of one ``.xlsx`` workbook (openpyxl), atomically.

    Numbers stay numbers (Excel shows them with the reader's decimal mark), rounded as in
    the CSVs (:func:`round_table`); text a spreadsheet would run as a formula is escaped.
    A table longer than a sheet holds (:data:`XLSX_MAX_ROWS`) is cut, with a last row
    saying so.

    Args:
        sheets: Tables by sheet name, in order.
        path: The file.
        decimals: Decimals by column; None = :data:`DECIMALS`.

    Raises:
        ConfigError: openpyxl is not installed.
    """
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        from detect_track.errors import ConfigError

        raise ConfigError("--export xlsx needs openpyxl: pip install openpyxl") from None

    def write(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xl:
            for name, table in sheets.items():
                t = escape_formulas(round_table(table, decimals))
                if len(t) > XLSX_MAX_ROWS - 2:
                    note = pd.DataFrame({t.columns[0]: [f"cut: {len(t)} rows, a sheet "
                                                        "holds fewer; see the CSV"]})
                    t = pd.concat([t.iloc[:XLSX_MAX_ROWS - 2], note], ignore_index=True)
                t.to_excel(xl, sheet_name=name[:31], index=False)
                xl.sheets[name[:31]].freeze_panes = "A2"

    return atomic_write(path, write)


def write_parquet(table: pd.DataFrame, path: str | os.PathLike[str],
                  decimals: dict[str, int] | None = None) -> Path:
    """Write a table as Parquet (pyarrow), rounded as the CSVs, atomically.

    Mixed text-and-number columns are written as text.

    Raises:
        ConfigError: pyarrow is not installed.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from detect_track.errors import ConfigError

        raise ConfigError("--export parquet needs pyarrow: pip install pyarrow") from None
    t = round_table(table, decimals, bools_as_int=False)
    for col in t.columns:
        if t[col].dtype == object:
            t[col] = t[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return atomic_write(path, lambda tmp: t.to_parquet(tmp, index=False))


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
