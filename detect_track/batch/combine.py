"""The combined outputs of a batch: ``batch_log.csv``, ``all_tracks``, ``all_summaries``.

Each table is written as CSV and, when pyarrow is installed, as Parquet; the batch report
(``report.html``) links every video's report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from detect_track.batch.jobs import LOG_COLUMNS
from detect_track.errors import InputError
from detect_track.io.export import atomic_write, read_table, write_csv
from detect_track.results import read_summary

#: File names of the combined outputs in the batch folder.
BATCH_LOG = "batch_log.csv"
ALL_TRACKS = "all_tracks.csv"
ALL_SUMMARIES = "all_summaries.csv"


def write_log(records: Iterable[dict[str, Any]], out: Path, csv_dialect: str = "standard"
              ) -> Path:
    """Write ``batch_log.csv`` (atomically): one row of ``LOG_COLUMNS`` per record."""
    log = pd.DataFrame(list(records), columns=list(LOG_COLUMNS))
    return write_csv(log, out / BATCH_LOG, dialect=csv_dialect)


def _flat_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar summary keys; warnings joined; nested dicts flattened with a prefix.

    The clinical block gives its headline numbers only (``clinical.progressive_pct``,
    ``clinical.progressive_ci95_low``, ... see :meth:`Clinical.flat
    <detect_track.measure.clinical.Clinical.flat>`).
    """
    from detect_track.measure.clinical import Clinical

    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if key in ("config", "versions", "sample_fields"):
            continue
        if key == "clinical" and isinstance(value, Mapping):
            value = Clinical.from_dict(value).flat()
        if isinstance(value, Mapping):
            for k, v in value.items():
                flat[f"{key}.{k}"] = v
        elif isinstance(value, list):
            flat[key] = "; ".join(str(v) for v in value)
        else:
            flat[key] = value
    return flat


def combine(out: Path, records: Sequence[dict[str, Any]], report: bool = True,
            csv_dialect: str = "standard") -> dict[str, Path]:
    """Write ``batch_log.csv``, ``all_tracks``/``all_summaries`` (CSV and Parquet), report.

    Rows come from the finished outputs of every ``ok`` or ``skipped`` input, so a rerun
    that skipped everything still writes complete tables. Failed inputs appear in
    ``all_summaries`` with their status and error only. The CSVs are written in
    ``csv_dialect``; each input's ``tracks.csv`` is read in whichever dialect it has.

    Returns:
        Paths written, by name.
    """
    paths = {"log": write_log(records, out, csv_dialect)}
    tracks, summaries = [], []
    for rec in records:
        row: dict[str, Any] = {"file": rec["file"], "output": rec["output"],
                               "status": rec["status"], "error": rec["error"]}
        folder = out / rec["output"]
        if rec["status"] in ("ok", "skipped"):
            try:
                summary = read_summary(folder / "summary.json")
                t = read_table(folder / "tracks.csv")
            except (OSError, ValueError, InputError) as exc:
                row.update(status="failed", error=f"outputs unreadable: {exc}")
            else:
                row.update(_flat_summary(summary))
                if (folder / "report.html").is_file():
                    row["report"] = f"{rec['output']}/report.html"
                t.insert(0, "video", summary.get("video", Path(rec["file"]).name))
                t.insert(0, "file", rec["file"])
                tracks.append(t)
        summaries.append(row)
    all_tracks = (pd.concat(tracks, ignore_index=True) if tracks else
                  pd.DataFrame(columns=["file", "video"]))
    all_summaries = pd.DataFrame(summaries)
    paths["all_tracks"] = write_csv(all_tracks, out / ALL_TRACKS, dialect=csv_dialect)
    paths["all_summaries"] = write_csv(all_summaries, out / ALL_SUMMARIES, dialect=csv_dialect)
    for name, table in (("all_tracks", all_tracks), ("all_summaries", all_summaries)):
        parquet = _write_parquet(table, out / f"{name}.parquet")
        if parquet is not None:
            paths[f"{name}_parquet"] = parquet
    if report:
        from detect_track.report.html import write_batch_report

        log = pd.DataFrame(list(records), columns=list(LOG_COLUMNS))
        paths["report"] = write_batch_report(all_summaries, all_tracks, log,
                                             out / "report.html")
    return paths


def _write_parquet(table: pd.DataFrame, path: Path) -> Path | None:
    """Parquet copy of a table (None when pyarrow is not installed)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    table = table.copy()
    for col in table.columns:  # mixed object columns (numbers and text) -> text
        if table[col].dtype == object:
            table[col] = table[col].map(lambda v: v if v is None or isinstance(v, str)
                                        else str(v))
    return atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
