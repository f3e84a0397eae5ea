"""One batch job: its input and settings, its key, its ``.done.json`` marker, its run.

A job's key is a hash of the input's content and of everything that changes the result
(config, fps, µm/px, outputs asked for, software version). :func:`process_item` skips an
input whose folder holds a ``.done.json`` with the same key, else runs
:func:`detect_track.pipeline.run_video` with a fresh detector and tracker, writes the
outputs and, last of all, the marker; a job killed at any point leaves no marker.

Jobs are plain functions of picklable arguments, so the same job runs in this process, in
a local process pool or as a task on a Dask cluster (:mod:`detect_track.batch.executors`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detect_track import __version__
from detect_track.batch.outputs import write_outputs
from detect_track.config import Config, to_dict
from detect_track.errors import DetectTrackError, InputError
from detect_track.io.export import ensure_output_dir, remove_stale_temporaries, write_json
from detect_track.io.video import printable_name
from detect_track.ml import using_threads

DONE_MARKER = ".done.json"
#: Columns of ``batch_log.csv``: the record :func:`process_item` returns for each input.
LOG_COLUMNS = ("file", "output", "status", "error", "warnings", "elapsed_s", "n_frames",
               "n_tracks", "finished_at", "key")


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch.

    Attributes:
        path: The video file, TIFF stack or folder of frames.
        rel: Its output sub-folder, relative to the batch output folder (POSIX style).
        settings: Per-input ``fps``, ``um_per_px`` or ``chamber_depth_um`` (from a CSV
            list file), overriding the batch's values.
    """

    path: Path
    rel: str
    settings: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """Everything besides the input that decides a job's outputs (picklable).

    Attributes:
        cfg: Pipeline configuration.
        fps: Frame rate for every input (frames per second); None = from each container.
        um_per_px: Micrometres per pixel; None = from the config (else the flagged default).
        exports: Extra export formats (see :data:`detect_track.io.export.EXPORT_FORMATS`).
        save_crops: Write head crops.
        report: Write ``report.html`` per input.
        overlay: Write ``overlay.mp4`` per input.
        threads: CPU threads of the job's models, set in its process with
            :func:`detect_track.ml.using_threads` while it runs; 0 = :func:`run_batch
            <detect_track.batch.executors.run_batch>` divides the cores among its workers
            (:func:`process_item` alone: the process's setting). Not part of the job key.
        trust_models: Workers may unpickle model files from outside ``weights/``
            (``--trust-model``; see :mod:`detect_track.trust`; not part of the job key).
        csv_dialect: CSV files: ``standard`` or ``excel-eu`` (see
            :data:`detect_track.io.export.CSV_DIALECTS`).
        sample_id: The sample every input belongs to (``detect-track sample``), recorded
            in each summary and report; None for a batch of unrelated videos.
        operator: Who runs the analysis, recorded likewise; or None.
    """

    cfg: Config
    fps: float | None = None
    um_per_px: float | None = None
    exports: tuple[str, ...] = ()
    save_crops: bool = False
    report: bool = True
    overlay: bool = False
    threads: int = field(default=0, compare=False)
    trust_models: bool = field(default=False, compare=False)
    csv_dialect: str = "standard"
    sample_id: str | None = None
    operator: str | None = None

    def fingerprint(self) -> str:
        """Hash of the settings that change the outputs (hex)."""
        material = {"config": to_dict(self.cfg), "fps": self.fps, "um_per_px": self.um_per_px,
                    "exports": sorted(self.exports), "save_crops": self.save_crops,
                    "report": self.report, "overlay": self.overlay, "version": __version__,
                    **({"csv_dialect": self.csv_dialect}
                       if self.csv_dialect != "standard" else {})}
        for key in ("sample_id", "operator"):  # only when set: older job keys stay valid
            if getattr(self, key) is not None:
                material[key] = getattr(self, key)
        text = json.dumps(material, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def content_hash(path: str | os.PathLike[str], chunk_bytes: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, or of a folder's file names and bytes (hex).

    Raises:
        InputError: If the input cannot be read.
    """
    p = Path(path)
    h = hashlib.sha256()
    if not p.is_dir() and not p.is_file():  # a pipe or a device would be read for ever
        raise InputError(f"{p} is not a regular file or folder")
    try:
        files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if p.is_dir():
                h.update(os.fsencode(f.name) + b"\0")
            with open(f, "rb") as fh:
                while block := fh.read(chunk_bytes):
                    h.update(block)
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from exc
    return h.hexdigest()


def _read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``.done.json`` of a folder whose listed files all exist, else None."""
    try:
        marker = json.loads((folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict):
        return None
    if not all((folder / f).is_file() for f in marker.get("files", [])):
        return None
    return marker


def process_item(item: BatchItem, out_root: str | os.PathLike[str], spec: JobSpec,
                 force: bool = False, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, Any]:
    """Run one input unless its outputs are already complete; never raises.

    Args:
        item: The input and its output sub-folder.
        out_root: The batch output folder.
        spec: Settings shared by every job.
        force: Redo the job even when a matching ``.done.json`` exists.
        progress: ``progress(frames_done, frames_total)`` during the video.

    Returns:
        A ``batch_log.csv`` row (``LOG_COLUMNS``): status ``ok``, ``skipped`` (done before
        with the same input and settings) or ``failed`` with the error message.
    """
    started = time.perf_counter()
    out = Path(out_root) / item.rel
    record: dict[str, Any] = {"file": printable_name(str(item.path)), "output": item.rel,
                              "status": "failed",
                              "error": "", "warnings": "", "elapsed_s": 0.0, "n_frames": None,
                              "n_tracks": None, "finished_at": "", "key": ""}
    try:
        if spec.trust_models:  # a Dask worker elsewhere does not share our environment
            from detect_track.trust import TRUST_ENV

            os.environ[TRUST_ENV] = "1"
        spec = _item_spec(item, spec)
        key = hashlib.sha256((content_hash(item.path) + spec.fingerprint()).encode()).hexdigest()
        record["key"] = key
        marker = _read_marker(out)
        if marker is not None and marker.get("key") == key and not force:
            record.update({k: marker.get(k) for k in ("n_frames", "n_tracks", "finished_at",
                                                      "warnings")}, status="skipped")
            return record
        with using_threads(spec.threads):  # this job's share of the cores, in this process
            _run_item(item, out, spec, key, progress, record)
        record["status"] = "ok"
    except DetectTrackError as exc:
        record["error"] = str(exc)
    except MemoryError:
        record["error"] = "out of memory"
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a batch
        last = traceback.extract_tb(exc.__traceback__)[-1:] or [None]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last[0] else ""
        record["error"] = f"internal error: {type(exc).__name__}: {exc}{where}"
    finally:
        record["elapsed_s"] = round(time.perf_counter() - started, 3)
        for k, v in record.items():  # messages may quote a file name that is not UTF-8
            if isinstance(v, str):
                record[k] = printable_name(v)
    return record


def _item_spec(item: BatchItem, spec: JobSpec) -> JobSpec:
    """The batch settings with the input's own fps, µm/px and chamber depth applied."""
    values = dict(item.settings)
    if not values:
        return spec
    cfg = spec.cfg
    if "chamber_depth_um" in values:
        video = dataclasses.replace(cfg.video, chamber_depth_um=values["chamber_depth_um"])
        cfg = dataclasses.replace(cfg, video=video)
    return dataclasses.replace(spec, cfg=cfg, fps=values.get("fps", spec.fps),
                               um_per_px=values.get("um_per_px", spec.um_per_px))


def _run_item(item: BatchItem, out: Path, spec: JobSpec, key: str,
              progress: Callable[[int, int], None] | None, record: dict[str, Any]) -> None:
    """Run one input into ``out``, write its outputs, then its ``.done.json`` marker.

    Fills ``record``'s counts, finish time and warnings. A failure (or a signal) removes
    the half-written files and propagates.
    """
    from detect_track.pipeline import run_video

    out = ensure_output_dir(out)
    (out / DONE_MARKER).unlink(missing_ok=True)  # from here on the folder is not complete
    remove_stale_temporaries(out)
    try:
        results = run_video(item.path, spec.cfg, fps=spec.fps, um_per_px=spec.um_per_px,
                            progress=progress, trajectories_csv=out / "trajectories.csv")
        paths = write_outputs(item.path, results, out, spec)
    except BaseException:  # whatever a failure or a signal left half-written (our folder)
        remove_stale_temporaries(out)
        raise
    finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record.update(n_frames=results.summary["n_frames"], n_tracks=results.summary["n_tracks"],
                  finished_at=finished, warnings="; ".join(results.warnings))
    files = sorted(str(p.relative_to(out)) for p in paths.values() if p.is_file())
    write_json({"key": key, "input": printable_name(str(item.path)), "files": files,
                "detect_track": __version__,
                **{k: record[k] for k in ("finished_at", "n_frames", "n_tracks", "warnings")}},
               out / DONE_MARKER)
