"""What a run produced, and the files it is written to and read back from.

:class:`Results` is what :func:`~detect_track.pipeline.run_video` and
:func:`~detect_track.pipeline.track_detections` return; :class:`TrajectorySink` is where
the trajectory rows go while a video runs (memory, or ``trajectories.csv`` as they come);
:func:`write_results` writes a run's files and :func:`read_trajectories` reads the
trajectory table back. :class:`Summary` is ``summary.json`` (:func:`write_summary`,
:func:`read_summary`); :func:`with_clinical` adds its clinical block, sample ID and
operator, and :func:`pool_summaries` pools the fields of one sample into one summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detect_track import __version__
from detect_track.errors import ConfigError, InputError, OutputError
from detect_track.io.export import (
    EXPORT_FORMATS,
    FILE_MODE,
    check_dialect,
    convert_csv,
    copy_file,
    ensure_output_dir,
    format_table,
    read_table,
    summary_rows,
    write_csv,
    write_json,
    write_mot,
    write_parquet,
    write_xlsx,
)
from detect_track.measure.clinical import Clinical, clinical_from_summary
from detect_track.tracking.trajectories import empty_trajectories
from detect_track.types import TRAJECTORY_COLUMNS, VideoMeta

#: The ``detector`` recorded for detections read from a table (no detector ran).
EXTERNAL_DETECTOR = "external"


class Results:
    """Everything one video produced.

    Tracks are numbered 1..N in order of first appearance in every table and in
    ``crops`` (:func:`~detect_track.tracking.trajectories.first_appearance_ids`).

    Args:
        trajectories: The trajectory table, or None when it was streamed to
            ``trajectories_path`` (then read back from there on first access, with the
            values rounded as the file holds them).
        tracks: One row per track (``TRACK_COLUMNS``).
        summary: Counts, percentages, parameters used and their sources, versions (a
            dict of the same keys is turned into a :class:`Summary`; a summary reads
            like a dict too).
        meta: The video's metadata as used.
        warnings: Problems the user should know about (also in the summary).
        crops: Aligned head crops per track id, sharpest first (video input with
            morphology on; empty otherwise).
        trajectories_path: The ``trajectories.csv`` the rows were streamed to, if any.
    """

    def __init__(self, trajectories: pd.DataFrame | None, tracks: pd.DataFrame,
                 summary: Summary | Mapping[str, Any], meta: VideoMeta,
                 warnings: list[str] | None = None,
                 crops: dict[int, list[np.ndarray]] | None = None,
                 trajectories_path: Path | None = None) -> None:
        if trajectories is None and trajectories_path is None:
            raise ValueError("Results needs the trajectory table or the file it was written to")
        self._trajectories = trajectories
        self.tracks = tracks
        self.summary = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
        self.meta = meta
        self.warnings = list(warnings or [])
        self.crops = dict(crops or {})
        self.trajectories_path = trajectories_path

    @property
    def trajectories(self) -> pd.DataFrame:
        """One row per cell per frame (``TRAJECTORY_COLUMNS``), sorted by track then frame.

        A streamed table is read from ``trajectories_path`` on first access (it holds
        every row of the video: on long videos, prefer reading the file in chunks).
        """
        if self._trajectories is None:
            assert self.trajectories_path is not None
            self._trajectories = read_trajectories(self.trajectories_path)
        return self._trajectories

    @property
    def streamed(self) -> bool:
        """True when the trajectory rows were written to ``trajectories_path`` as they came."""
        return self.trajectories_path is not None


def read_trajectories(path: str | os.PathLike[str], columns: Sequence[str] | None = None
                      ) -> pd.DataFrame:
    """Read a ``trajectories.csv`` back with its column types, sorted by track then frame.

    Args:
        path: The file (``TRAJECTORY_COLUMNS``), in either CSV dialect
            (:func:`~detect_track.io.export.sniff_dialect`).
        columns: Read only these columns (less memory on long videos); all if None. The
            rows are sorted by ``track_id`` and ``frame`` when both are read.

    Returns:
        The trajectory table (``interpolated`` boolean: the file's 0/1, or true/false of
        files written before).
    """
    wanted = list(columns) if columns is not None else None
    types = {"video": str, "frame": np.int64, "track_id": np.int64, "class_name": str,
             "interpolated": str}
    table = read_table(path, usecols=wanted, keep_default_na=False,
                       dtype={k: v for k, v in types.items() if wanted is None or k in wanted},
                       na_values={"confidence": [""]})
    for col in ("time_s", "x_px", "y_px", "x_um", "y_um", "w_px", "h_px", "confidence"):
        if col in table:
            table[col] = table[col].astype(np.float64)
    if "interpolated" in table:
        table["interpolated"] = table["interpolated"].str.strip().str.lower().isin(
            ("1", "true"))
    if {"track_id", "frame"} <= set(table.columns):
        table = table.sort_values(["track_id", "frame"], ignore_index=True, kind="stable")
    return table[[c for c in TRAJECTORY_COLUMNS if c in table.columns]]


#: Summary keys written only in some runs: the detector's backend and runtime (videos run
#: through a detector, not ``track_detections``), the morphology model's task (morphology on),
#: the fields of a pooled sample (``detect-track sample``).
_OPTIONAL_KEYS = ("detector_backend", "detector_runtime", "morphology_task", "sample_fields")
#: Keys added after the first summaries were written: a summary.json without them is read
#: with their defaults.
_LATER_KEYS = ("sample_id", "operator", "analysis_date", "clinical", "sample_fields")


@dataclass(eq=False)
class Summary(Mapping[str, Any]):
    """What ``summary.json`` holds: one sample's counts, the parameters used, provenance.

    Written by :func:`write_summary` and read back by :func:`read_summary`, in the key
    order of the fields. It is also a read-only mapping by key (``summary["fps"]``), as
    the report, the command line and batch read it.

    Attributes:
        video: Name of the input (the ``video`` column of the tables).
        path: Absolute path of the input.
        n_frames: Frames decoded.
        duration_s: ``n_frames / fps``, seconds.
        width_px: Frame width, px (0 for detections read from a table).
        height_px: Frame height, px (0 for detections read from a table).
        fps: Frames per second used.
        fps_source: Where ``fps`` came from (``cli``, ``config``, ``container``, ``default``).
        um_per_px: Micrometres per pixel used.
        um_per_px_source: Where ``um_per_px`` came from (``cli``, ``config``, ``default``).
        detector: Detector name (``external`` for detections read from a table).
        detector_weights: File name of the detector's model, or None.
        detector_backend: The detector's inference backend, or None; not written for
            detections read from a table.
        detector_runtime: The runtime of that backend, or None; written with the backend.
        tracker: Tracker name.
        n_tracks: Tracks kept (cells).
        n_gradable: Tracks long enough to grade.
        n_not_gradable: Tracks seen too briefly to grade.
        n_progressive: Progressive cells.
        n_non_progressive: Non-progressive cells.
        n_immotile: Immotile cells.
        pct_progressive: Progressive cells, % of the gradable ones.
        pct_non_progressive: Non-progressive cells, % of the gradable ones.
        pct_immotile: Immotile cells, % of the gradable ones.
        n_grade_a: Cells of WHO grade a.
        n_grade_b: Cells of WHO grade b.
        n_grade_c: Cells of WHO grade c.
        n_grade_d: Cells of WHO grade d.
        pct_grade_a: Grade a, % of the gradable cells.
        pct_grade_b: Grade b, % of the gradable cells.
        pct_grade_c: Grade c, % of the gradable cells.
        pct_grade_d: Grade d, % of the gradable cells.
        pct_motile: Progressive + non-progressive, % of the gradable cells.
        n_morphology_assessed: Tracks whose head shape could be assessed.
        pct_normal_forms: Normal heads, % of the assessed ones (None: none assessed).
        morphology_model: File name of the morphology model, or None (morphology off).
        morphology_task: The model's task; written only with a model.
        cells_per_frame: Mean tracked cells per frame (interpolated positions included).
        chamber_depth_um: Counting chamber depth, µm, or None.
        concentration_million_per_ml: 10^6 cells per mL, or None (no depth or frame size).
        n_detections: Tracked detections.
        n_interpolated: Trajectory rows filled in across gaps.
        untracked_detections_per_frame: Mean detections per frame of each class counted,
            not tracked.
        warnings: What the user should know.
        elapsed_s: Wall time of the run, s.
        timings_s: Seconds per pipeline stage.
        config: The configuration used (nested dict).
        versions: Versions of detect-track, Python and the libraries loaded.
        sample_id: The sample's identifier (``--sample-id``), or None.
        operator: Who ran the analysis (``--operator``), or None.
        analysis_date: Date of the analysis (ISO ``YYYY-MM-DD``), or None (older runs).
        clinical: The clinical block (:class:`~detect_track.measure.clinical.Clinical`:
            percentages with 95 % Wilson intervals, WHO reference limits and flags,
            per-class kinematics, sample counts); by key it reads as its JSON dict.
        sample_fields: One entry per field of a pooled sample (``detect-track sample``):
            ``field``, ``video``, ``path``, ``output``, ``n_frames``, ``n_tracks``,
            ``n_gradable``, ``n_<class>``, ``pct_<class>``, ``n_grade_<g>``,
            ``pct_grade_<g>``, ``cells_per_frame``, ``concentration_million_per_ml``;
            written only for a sample.
        morphology_screening: True when the morphology model is trained on simulated heads
            only (its weights card says so): its calls are a screening aid ("screening,
            trained on simulated heads"). False without morphology or for a lab's own
            model; None (unknown: never counted as validated) when read from a summary
            written before the field existed.
    """

    video: str
    path: str
    n_frames: int
    duration_s: float
    width_px: int
    height_px: int
    fps: float
    fps_source: str
    um_per_px: float
    um_per_px_source: str
    detector: str
    detector_weights: str | None
    detector_backend: str | None
    detector_runtime: str | None
    tracker: str
    n_tracks: int
    n_gradable: int
    n_not_gradable: int
    n_progressive: int
    n_non_progressive: int
    n_immotile: int
    pct_progressive: float
    pct_non_progressive: float
    pct_immotile: float
    n_grade_a: int
    n_grade_b: int
    n_grade_c: int
    n_grade_d: int
    pct_grade_a: float
    pct_grade_b: float
    pct_grade_c: float
    pct_grade_d: float
    pct_motile: float
    n_morphology_assessed: int
    pct_normal_forms: float | None
    morphology_model: str | None
    morphology_task: str | None
    cells_per_frame: float
    chamber_depth_um: float | None
    concentration_million_per_ml: float | None
    n_detections: int
    n_interpolated: int
    untracked_detections_per_frame: dict[str, float]
    warnings: list[str]
    elapsed_s: float
    timings_s: dict[str, float]
    config: dict[str, Any]
    versions: dict[str, str]
    sample_id: str | None = None
    operator: str | None = None
    analysis_date: str | None = None
    clinical: Clinical | None = None
    sample_fields: list[dict[str, Any]] = field(default_factory=list)
    morphology_screening: bool | None = None

    def _written(self, key: str) -> bool:
        """Whether ``key`` is part of this summary (optional keys: only where they apply)."""
        if key in ("detector_backend", "detector_runtime"):
            return self.detector != EXTERNAL_DETECTOR
        if key == "morphology_task":
            return self.morphology_model is not None
        if key == "sample_fields":
            return bool(self.sample_fields)
        return True

    def _value(self, key: str) -> Any:
        """The JSON-ready value of a field (the clinical block as its dict)."""
        value = getattr(self, key)
        return value.to_dict() if isinstance(value, Clinical) else value

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, keys in field order (optional keys only where they apply)."""
        return {f.name: self._value(f.name) for f in fields(self) if self._written(f.name)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """A summary from its dict (as :meth:`to_dict` writes it).

        Raises:
            ValueError: A key that is not a field, or a required one missing.
        """
        names = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in names]
        missing = [f.name for f in fields(cls) if f.name not in data
                   and f.name not in _OPTIONAL_KEYS and f.name not in _LATER_KEYS
                   and f.default is MISSING and f.default_factory is MISSING]
        if unknown or missing:
            raise ValueError(f"summary: unknown key(s) {unknown}, missing key(s) {missing}")
        values = {**dict.fromkeys(_OPTIONAL_KEYS), **data}
        clinical = values.get("clinical")
        if isinstance(clinical, Mapping):
            values["clinical"] = Clinical.from_dict(clinical)
        values["sample_fields"] = list(values.get("sample_fields") or [])
        return cls(**values)

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key.startswith("_") or not self._written(key) or \
                key not in self.__dataclass_fields__:
            raise KeyError(key)
        return self._value(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def with_clinical(summary: Summary, tracks: pd.DataFrame | None, *,
                  sample_id: str | None = None, operator: str | None = None,
                  volume_ml: float | None = None, dilution: float | None = None,
                  analysis_date: str | None = None) -> Summary:
    """The summary with its clinical block, sample ID, operator and analysis date.

    Args:
        summary: A run's summary (its counts, concentration and morphology are used).
        tracks: The run's track table (per-class kinematics), or None.
        sample_id: The sample's identifier; None keeps the summary's.
        operator: Who ran the analysis; None keeps the summary's.
        volume_ml: Semen volume, ml (total and motile counts), or None.
        dilution: Dilution factor of the imaged specimen, or None (neat).
        analysis_date: ISO date; None = the summary's, else today.

    Returns:
        A new :class:`Summary`.
    """
    import datetime as dt

    clinical = clinical_from_summary(summary, tracks, volume_ml=volume_ml, dilution=dilution)
    return replace(summary, clinical=clinical,
                   sample_id=sample_id if sample_id is not None else summary.sample_id,
                   operator=operator if operator is not None else summary.operator,
                   analysis_date=(analysis_date or summary.analysis_date
                                  or dt.date.today().isoformat()))


#: Keys of each entry of a pooled summary's ``sample_fields`` copied from the field's summary.
FIELD_KEYS: tuple[str, ...] = (
    "video", "path", "n_frames", "duration_s", "n_tracks", "n_gradable", "n_progressive",
    "n_non_progressive", "n_immotile", "pct_progressive", "pct_non_progressive",
    "pct_immotile", "pct_motile", "n_grade_a", "n_grade_b", "n_grade_c", "n_grade_d",
    "cells_per_frame", "concentration_million_per_ml")


def _same(values: Sequence[Any], what: str, warnings: list[str]) -> Any:
    """The first value; a warning when the fields differ."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        warnings.append(f"the fields differ in {what} ({', '.join(map(str, distinct))}): the "
                        "pooled summary records the first field's")
    return values[0]


def pool_summaries(fields_: Sequence[Summary], tracks: pd.DataFrame | None, *,
                   sample_id: str, path: str, outputs: Sequence[str] | None = None,
                   operator: str | None = None, volume_ml: float | None = None,
                   dilution: float | None = None, warnings: Sequence[str] = ()) -> Summary:
    """The summary of one sample pooled from the summaries of its fields.

    Counts add and percentages are of the pooled cells
    (:func:`~detect_track.measure.sample.pool_counts`); the concentration is all cells
    counted over all volume imaged (:func:`~detect_track.measure.sample.pool_concentration`);
    frames, detections and times add; settings (fps, scale, detector, config) are the
    first field's, with a warning where fields differ. ``sample_fields`` holds each field's
    own counts, and the clinical block is built from the pooled counts and ``tracks``.

    Args:
        fields_: The fields' summaries (at least one).
        tracks: All fields' track tables, concatenated (per-class kinematics), or None.
        sample_id: The sample's identifier (the summary's ``video``).
        path: Where the fields are (the summary's ``path``).
        outputs: Each field's output folder, relative to the sample's (``sample_fields``).
        operator: Who ran the analysis, or None.
        volume_ml: Semen volume, ml, or None.
        dilution: Dilution factor, or None (neat).
        warnings: Sample-level warnings (e.g. fields that failed).

    Returns:
        The pooled :class:`Summary`.

    Raises:
        ValueError: No field given.
    """
    from detect_track.measure.clinical import too_few_cells_warning
    from detect_track.measure.sample import pool_concentration, pool_counts

    if not fields_:
        raise ValueError("pool_summaries needs at least one field")
    first = fields_[0]
    notes = list(warnings)
    counts = pool_counts(fields_)
    for s in fields_:
        notes.extend(f"{s.video}: {w}" for w in s.warnings)
    fps = _same([s.fps for s in fields_], "frame rate", notes)
    um = _same([s.um_per_px for s in fields_], "scale (µm/px)", notes)
    sizes = {(s.width_px, s.height_px) for s in fields_}
    morph_n = sum(s.n_morphology_assessed for s in fields_)
    normal = sum((s.pct_normal_forms or 0.0) * s.n_morphology_assessed for s in fields_)
    untracked: dict[str, float] = {}
    timings: dict[str, float] = {}
    for s in fields_:
        for k, v in s.untracked_detections_per_frame.items():
            untracked[k] = untracked.get(k, 0.0) + v / len(fields_)
        for k, v in s.timings_s.items():
            timings[k] = round(timings.get(k, 0.0) + v, 3)
    few = too_few_cells_warning(int(counts["n_gradable"]))
    if few:
        notes.append(few)
    per_field = []
    for k, s in enumerate(fields_):
        entry: dict[str, Any] = {"field": k + 1, **{key: s[key] for key in FIELD_KEYS}}
        entry["output"] = outputs[k] if outputs is not None else None
        per_field.append(entry)
    pooled = Summary.from_dict({
        "video": sample_id, "path": path,
        "n_frames": sum(s.n_frames for s in fields_),
        "duration_s": sum(s.duration_s for s in fields_),
        "width_px": first.width_px if len(sizes) == 1 else 0,
        "height_px": first.height_px if len(sizes) == 1 else 0,
        "fps": fps, "fps_source": first.fps_source,
        "um_per_px": um, "um_per_px_source": first.um_per_px_source,
        "detector": first.detector, "detector_weights": first.detector_weights,
        "detector_backend": first.detector_backend, "detector_runtime": first.detector_runtime,
        "tracker": first.tracker,
        **counts,
        "n_morphology_assessed": morph_n,
        "pct_normal_forms": normal / morph_n if morph_n else None,
        "morphology_model": first.morphology_model, "morphology_task": first.morphology_task,
        **pool_concentration(fields_),
        "n_detections": sum(s.n_detections for s in fields_),
        "n_interpolated": sum(s.n_interpolated for s in fields_),
        "untracked_detections_per_frame": {k: round(v, 3) for k, v in untracked.items()},
        "warnings": notes,
        "elapsed_s": round(sum(s.elapsed_s for s in fields_), 3),
        "timings_s": timings,
        "config": first.config, "versions": first.versions,
        "sample_fields": per_field,
    })
    return with_clinical(pooled, tracks, sample_id=sample_id, operator=operator,
                         volume_ml=volume_ml, dilution=dilution)


def library_versions() -> dict[str, str]:
    """Versions of detect-track, Python and the libraries loaded (the summary's ``versions``)."""
    import sys

    import cv2
    import scipy

    versions = {"detect_track": __version__, "python": platform.python_version(),
                "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
                "opencv": cv2.__version__}
    for name in ("onnxruntime", "openvino", "torch", "ultralytics", "effdet"):  # loaded ones
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def write_summary(summary: Summary, path: str | os.PathLike[str]) -> Path:
    """Write ``summary.json`` atomically (NaN as null).

    Args:
        summary: The summary.
        path: The file.

    Returns:
        ``path``.
    """
    return write_json(summary.to_dict(), path)


def read_summary(path: str | os.PathLike[str]) -> Summary:
    """Read a ``summary.json`` back.

    Args:
        path: The file :func:`write_summary` wrote.

    Raises:
        InputError: The file cannot be read, is not JSON, or is not a summary.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return Summary.from_dict(data)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read {path} as a summary: {exc}") from exc


class TrajectorySink:
    """Where settled tracks' trajectory rows go: memory, or a CSV file written as they come.

    The file is written as the published ``trajectories.csv`` (standard dialect, rounded
    as :func:`~detect_track.io.export.format_table` does; the rows in memory keep every
    digit).

    Args:
        path: ``trajectories.csv`` to stream to (written under a temporary name in the same
            folder and renamed by :meth:`close`); None keeps the rows in memory.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._parts: list[pd.DataFrame] = []
        self._tmp: Path | None = None
        self._handle: Any = None
        if self.path is not None:
            import tempfile

            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                           dir=self.path.parent)
            except OSError as exc:
                raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            self._tmp = Path(tmp)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="")
            self.write(empty_trajectories())  # the header

    def write(self, traj: pd.DataFrame) -> None:
        """Add the rows of some settled tracks.

        Raises:
            OutputError: If the file cannot be written (disk full, ...).
        """
        if self._handle is None:
            self._parts.append(traj)
            return
        try:
            format_table(traj).to_csv(self._handle, index=False,
                                      header=self._handle.tell() == 0)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def close(self, id_map: Mapping[int, int] | None = None) -> pd.DataFrame | None:
        """Finish: the table sorted by track and frame (in memory), or None (file renamed).

        Args:
            id_map: New track id of each old one (see
                :func:`~detect_track.tracking.trajectories.first_appearance_ids`); the
                file is then rewritten in chunks with the new ids.

        Raises:
            OutputError: If the file cannot be written.
        """
        if self._handle is None:
            if not self._parts:
                return empty_trajectories()
            table = pd.concat(self._parts, ignore_index=True)
            if id_map:
                table["track_id"] = table["track_id"].map(dict(id_map)).astype(np.int64)
            return table.sort_values(["track_id", "frame"], ignore_index=True)
        assert self.path is not None and self._tmp is not None
        try:
            self._handle.close()
            os.chmod(self._tmp, FILE_MODE)
            if id_map:
                convert_csv(self._tmp, self._tmp, "standard", id_map=dict(id_map))
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._handle = None
        return None

    def discard(self) -> None:
        """Drop what was written (the run failed): no partial file is left behind."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


#: Text columns of the trajectory table (their points are not decimal marks).
_TEXT_COLUMNS = ("video", "class_name")


def write_results(results: Results, out_dir: str | os.PathLike[str],
                  exports: Sequence[str] = (), save_crops: bool = False,
                  csv_dialect: str = "standard") -> dict[str, Path]:
    """Write ``trajectories.csv``, ``tracks.csv`` and ``summary.json`` atomically.

    The tables are rounded as :data:`~detect_track.io.export.DECIMALS` says (the
    ``Results`` in memory keep every digit), ``interpolated`` is written as 0/1.

    Args:
        results: What :func:`run_video` or :func:`track_detections` returned.
        out_dir: Output folder (created if needed).
        exports: Extra formats from :data:`~detect_track.io.export.EXPORT_FORMATS`:
            ``"mot"`` writes ``mot.txt`` (MOTChallenge tracks, 1-based frames); ``"xlsx"``
            ``results.xlsx`` (sheets ``summary``, ``tracks``, ``trajectories``);
            ``"parquet"`` ``trajectories.parquet`` and ``tracks.parquet``.
        save_crops: Also write each track's head crops as ``crops/<video>_track<id>_<k>.png``.
        csv_dialect: ``standard`` (comma, decimal point) or ``excel-eu`` (semicolon,
            decimal comma) for the CSV files.

    Returns:
        The paths written, by name.

    Raises:
        ConfigError: On an unknown export format or CSV dialect.
    """
    unknown = [e for e in exports if e not in EXPORT_FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format '{unknown[0]}' (available: "
                          f"{', '.join(EXPORT_FORMATS)})")
    check_dialect(csv_dialect)
    out = ensure_output_dir(out_dir)
    target = out / "trajectories.csv"
    streamed = results.trajectories_path
    if streamed is not None and csv_dialect != "standard":
        traj_path = convert_csv(streamed, target, csv_dialect, _TEXT_COLUMNS)
        results.trajectories_path = traj_path
    elif streamed is not None and streamed.resolve() == target.resolve():
        traj_path = target  # written while the video ran
    elif streamed is not None:
        traj_path = copy_file(streamed, target)
    else:
        traj_path = write_csv(results.trajectories, target, dialect=csv_dialect)
    paths = {"trajectories": traj_path,
             "tracks": write_csv(results.tracks, out / "tracks.csv", dialect=csv_dialect)}
    if "mot" in exports:
        paths["mot"] = write_mot(results.trajectories, out / "mot.txt")
    if "parquet" in exports:
        paths["trajectories_parquet"] = write_parquet(results.trajectories,
                                                      out / "trajectories.parquet")
        paths["tracks_parquet"] = write_parquet(results.tracks, out / "tracks.parquet")
    if "xlsx" in exports:
        paths["xlsx"] = write_xlsx({"summary": summary_rows(results.summary.to_dict()),
                                    "tracks": results.tracks,
                                    "trajectories": results.trajectories},
                                   out / "results.xlsx")
    if save_crops:
        from detect_track.morphology.stage import write_crops

        paths["crops"] = write_crops(results.crops, out / "crops", results.summary["video"])
    paths["summary"] = write_summary(results.summary, out / "summary.json")
    return paths
