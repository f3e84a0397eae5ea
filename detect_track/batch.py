"""Batch processing: every video under a folder, resumable, on local processes or Dask.

One job per input (a video file, a multi-page TIFF, or a folder of frames). Each job
runs :func:`detect_track.pipeline.run_video` with a fresh detector and tracker, writes
its outputs into ``OUT/<relative path>/`` and, last of all, a ``.done.json`` marker
holding the job key (a hash of the input's content and of everything that changes the
result: config, fps, µm/px, outputs asked for, software version). A rerun skips inputs
whose marker matches; a job killed at any point leaves no marker, so it is redone.

Jobs are plain functions of picklable arguments, so the same job runs in this process,
in a local process pool, or as a task on a Dask cluster, and writes the same files.
Library code: reports progress through callbacks, never prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detect_track import __version__
from detect_track.config import Config, to_dict
from detect_track.errors import ConfigError, DetectTrackError, InputError
from detect_track.io.export import (
    atomic_write,
    ensure_output_dir,
    remove_stale_temporaries,
    write_csv,
    write_json,
)
from detect_track.io.meta import check_fps, check_um_per_px
from detect_track.io.video import IMAGE_SUFFIXES, TIFF_SUFFIXES, VIDEO_SUFFIXES, printable_name

#: File names of the combined outputs in the batch folder.
BATCH_LOG = "batch_log.csv"
ALL_TRACKS = "all_tracks.csv"
ALL_SUMMARIES = "all_summaries.csv"
DONE_MARKER = ".done.json"
#: Suffixes of list files (one input path per line; ``.csv``: a ``path`` column and
#: optional per-input ``fps``, ``um_per_px``, ``chamber_depth_um`` columns).
LIST_SUFFIXES = {".txt", ".lst", ".list", ".csv"}
#: Per-input settings a CSV list file may give (empty cells: the command's values).
ITEM_SETTINGS = ("fps", "um_per_px", "chamber_depth_um")
#: Columns of ``batch_log.csv``.
LOG_COLUMNS = ("file", "output", "status", "error", "warnings", "elapsed_s", "n_frames",
               "n_tracks", "finished_at", "key")
EXECUTORS = ("local", "dask")

EventFn = Callable[[str, dict[str, Any]], None]


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
        threads: Torch threads per job (not part of the job key).
        trust_models: Workers may unpickle model files from outside ``weights/``
            (``--trust-model``; see :mod:`detect_track.trust`; not part of the job key).
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

    def fingerprint(self) -> str:
        """Hash of the settings that change the outputs (hex)."""
        material = {"config": to_dict(self.cfg), "fps": self.fps, "um_per_px": self.um_per_px,
                    "exports": sorted(self.exports), "save_crops": self.save_crops,
                    "report": self.report, "overlay": self.overlay, "version": __version__}
        text = json.dumps(material, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


# -- discovery ---------------------------------------------------------------------------------
def _tiff_stack(path: Path) -> bool:
    """True when a TIFF file holds several frames (pages, or a 3-D page)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].shape
            return len(tif.pages) > 1 or (len(shape) == 3 and shape[-1] > 4)
    except Exception:  # noqa: BLE001 - unreadable: let the job report it
        return True


def _split_folder(folder: Path, files: Sequence[str]) -> tuple[bool, list[Path]]:
    """``(is_frame_folder, single_inputs)`` for the files of one folder.

    A folder holding two or more images (TIFF stacks excepted) and no video is one video
    stored as frames; otherwise each video file and each TIFF stack is an input.
    """
    videos = [folder / f for f in files if Path(f).suffix.lower() in VIDEO_SUFFIXES]
    images = [folder / f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    stacks = [p for p in images if p.suffix.lower() in TIFF_SUFFIXES and _tiff_stack(p)]
    frames = [p for p in images if p not in stacks]
    if not videos and len(frames) >= 2:
        return True, []
    return False, videos + stacks


def _frame_folder(folder: Path) -> bool:
    files = sorted(p.name for p in folder.iterdir() if p.is_file()
                   and not p.name.startswith("."))  # no macOS "._0001.png" forks
    return _split_folder(folder, files)[0]


def _walk(root: Path, exclude: Path | None) -> list[Path]:
    """Inputs under ``root``: videos, TIFF stacks, and folders of frames."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        is_frames, singles = _split_folder(here, sorted(f for f in filenames
                                                        if not f.startswith(".")))
        if is_frames:
            found.append(here)
        found.extend(singles)
    return found


def _rel_names(paths: Sequence[Path], base: Path) -> list[str]:
    """Output sub-folders: the path below ``base`` without suffix, unique."""
    stems = []
    for p in paths:
        try:
            rel = p.resolve().relative_to(base)
        except ValueError:
            rel = Path(p.name)
        stems.append(rel)
    plain = [printable_name(str(r.with_suffix("")) if r.suffix else str(r)).replace(os.sep, "/")
             for r in stems]  # output folders get valid UTF-8 names
    counts = Counter(plain)
    out = []
    for rel, name in zip(stems, plain, strict=True):
        if counts[name] > 1:  # a.avi and a.mp4 side by side: keep the suffix in the name
            name = printable_name(str(rel)).replace(os.sep, "/").replace(".", "_")
        out.append(name if name not in ("", ".") else "input")
    return out


def discover(spec: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None
             ) -> list[BatchItem]:
    """Find the inputs of a batch.

    Args:
        spec: A folder (searched recursively; hidden files and folders are ignored), a
            glob pattern (``data/**/*.avi``; ``**`` matches folders recursively), or a list
            file (``.txt``/``.lst``: one path per line, relative to the list file; blank
            lines and lines starting with ``#`` ignored; ``.csv``: a ``path`` column and
            optional ``fps``, ``um_per_px``, ``chamber_depth_um`` columns per input).
        exclude: A folder never searched (the batch's own output folder).

    Returns:
        The inputs in a stable (sorted) order, each with a unique output sub-folder.

    Raises:
        InputError: When nothing matches, or a list file names a missing path.
    """
    text = str(spec)
    path = Path(spec)
    excl = Path(exclude).resolve() if exclude is not None else None
    settings: list[tuple[tuple[str, float], ...]] = []
    if path.is_dir():
        root = path.resolve()
        found = _walk(root, excl)
        base = root
        what = f"folder {path}"
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES and _is_text(path):
        found, settings = _read_list(path)
        what = f"list file {path}"
        base = _common_base(found)
    elif any(ch in text for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True)
                       if Path(p).is_file() or (Path(p).is_dir() and _frame_folder(Path(p))))
        what = f"pattern {text}"
        base = _common_base(found)
    elif not path.exists():
        raise InputError(f"no such file or folder: {path}")
    else:
        found, base, what = [path], path.resolve().parent, str(path)
    settings_of = ({p.resolve(): v for p, v in zip(found, settings, strict=True)}
                   if settings else {})
    if excl is not None:
        found = [p for p in found if excl not in p.resolve().parents and p.resolve() != excl]
    if not found:
        raise InputError(f"no videos found in {what} (looked for "
                         f"{', '.join(sorted(VIDEO_SUFFIXES | TIFF_SUFFIXES))} files and "
                         "folders of frames)")
    found = sorted(dict.fromkeys(p.resolve() for p in found))
    return [BatchItem(p, rel, settings_of.get(p, ()))
            for p, rel in zip(found, _rel_names(found, base), strict=True)]


def _read_list(path: Path) -> tuple[list[Path], list[tuple[tuple[str, float], ...]]]:
    """Inputs of a list file, relative to its folder, with their per-input settings.

    Raises:
        InputError: A missing input, a CSV without a ``path`` column, or a bad number.
    """
    if path.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read list file {path}: {exc}") from exc
        table.columns = [str(c).strip().lower() for c in table.columns]
        if "path" not in table.columns:
            raise InputError(f"list file {path} needs a 'path' column (optional: "
                             f"{', '.join(ITEM_SETTINGS)})")
        rows = [(n + 2, r) for n, r in enumerate(table.to_dict(orient="records"))]
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read list file {path} as UTF-8 text "
                             f"({type(exc).__name__})") from None
        rows = [(n, {"path": line}) for n, line in enumerate(lines, 1)]
    found, settings = [], []
    for n, row in rows:
        text = str(row["path"]).strip()
        if not text or text.startswith("#"):
            continue
        p = Path(text).expanduser()
        p = p if p.is_absolute() else path.parent / p
        if not p.exists():
            raise InputError(f"{path}, line {n}: no such file or folder: {text}")
        values = []
        for key in ITEM_SETTINGS:
            cell = str(row.get(key, "")).strip()
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise InputError(f"{path}, line {n}: {key} must be a number, got {cell!r}"
                                 ) from None
            try:
                if key == "fps":
                    check_fps(value, "fps")
                elif key == "um_per_px":
                    check_um_per_px(value, "um_per_px")
                elif not (np.isfinite(value) and value > 0):
                    raise ConfigError(f"{key} must be > 0, got {cell}")
            except ConfigError as exc:
                raise InputError(f"{path}, line {n}: {exc}") from None
            values.append((key, value))
        found.append(p)
        settings.append(tuple(values))
    return found, settings


def _common_base(paths: Sequence[Path]) -> Path:
    if not paths:
        return Path.cwd()
    parents = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents))


def _is_text(path: Path, n_bytes: int = 8192) -> bool:
    """Whether a file starts like UTF-8 text (a list file), not like a video or an image."""
    import codecs

    try:
        with open(path, "rb") as fh:
            head = fh.read(n_bytes)
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except (OSError, UnicodeDecodeError):
        return False
    return b"\0" not in head


def is_batch_input(path: str | os.PathLike[str]) -> bool:
    """True for a glob, a list file, or a folder holding videos or sub-folders of inputs.

    A folder holding only images (a single video stored as frames) is not a batch.
    """
    text = str(path)
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() in LIST_SUFFIXES and _is_text(p)
    if not p.exists():
        return any(ch in text for ch in "*?[")
    if not p.is_dir():
        return False
    entries = [e for e in p.iterdir() if not e.name.startswith(".")]
    is_frames, singles = _split_folder(p, sorted(e.name for e in entries if e.is_file()))
    return not is_frames and (bool(singles) or any(e.is_dir() for e in entries))


# -- one job -----------------------------------------------------------------------------------
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
        if spec.threads > 0:
            os.environ["DETECT_TRACK_THREADS"] = str(spec.threads)
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


#: Trajectory columns the per-video report plots.
REPORT_COLUMNS = ("track_id", "frame", "x_um", "y_um")


def write_outputs(source: Path, results: Any, out: Path, spec: JobSpec,
                  overlay_progress: Callable[[int, int], None] | None = None
                  ) -> dict[str, Path]:
    """Every output of one video: tables, summary, then report and overlay if asked.

    Args:
        source: The video the results came from (the overlay draws on it).
        results: What :func:`~detect_track.pipeline.run_video` returned.
        out: The video's output folder.
        spec: Which outputs (exports, crops, report, overlay).
        overlay_progress: ``progress(frames_done, frames_total)`` while drawing.

    Returns:
        The paths written, by name.
    """
    from detect_track.results import write_results

    paths = write_results(results, out, exports=spec.exports, save_crops=spec.save_crops)
    if spec.report:
        from detect_track.report.html import write_video_report
        from detect_track.results import read_trajectories

        # a streamed table is read back with only the plotted columns (long videos)
        traj = (read_trajectories(results.trajectories_path, REPORT_COLUMNS)
                if results.streamed else results.trajectories)
        paths["report"] = write_video_report(traj, results.tracks, results.summary,
                                             out / "report.html")
        del traj
    if spec.overlay:
        from detect_track.report.overlay import write_overlay

        paths["overlay"] = write_overlay(source, results.trajectories, results.tracks,
                                         out / "overlay.mp4", fps=results.meta.fps,
                                         um_per_px=results.meta.um_per_px,
                                         progress=overlay_progress)
    return paths


def _run_item(item: BatchItem, out: Path, spec: JobSpec, key: str,
              progress: Callable[[int, int], None] | None, record: dict[str, Any]) -> None:
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


# -- executors ---------------------------------------------------------------------------------
_PROGRESS_QUEUE: Any = None  # a pool worker's queue to the batch process (set at start)


def _worker_init(progress_queue: Any = None) -> None:  # pragma: no cover - child process
    global _PROGRESS_QUEUE
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    _PROGRESS_QUEUE = progress_queue
    _exit_with_parent()


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """End this worker process when the batch process dies (even by ``kill -9``).

    A pool worker whose parent is gone would otherwise finish its video, keep its
    memory and wait forever. Its finished outputs are complete, so a rerun may trust them.
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="detect-track-parent-watch", daemon=True).start()


def _process_in_pool(item: BatchItem, out_root: str, spec: JobSpec, force: bool,
                     index: int) -> dict[str, Any]:  # pragma: no cover - child process
    """:func:`process_item` in a pool worker, sending every 10th frame count home."""
    queue = _PROGRESS_QUEUE

    def progress(done: int, total: int) -> None:
        if queue is not None and (done % 10 == 0 or done == total):
            queue.put((index, done, total))

    return process_item(item, out_root, spec, force, progress)


@dataclass
class BatchOutcome:
    """What a batch did.

    Attributes:
        records: One ``batch_log.csv`` row per input, in input order.
        paths: Combined outputs written, by name.
    """

    records: list[dict[str, Any]]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Inputs that failed."""
        return sum(r["status"] == "failed" for r in self.records)


def run_batch(items: Sequence[BatchItem], out_root: str | os.PathLike[str], spec: JobSpec, *,
              workers: int = 1, executor: str = "local", dask_address: str | None = None,
              force: bool = False, on_event: EventFn | None = None) -> BatchOutcome:
    """Process every input, then write the combined tables and the batch report.

    ``batch_log.csv`` is rewritten (atomically) after every finished input, so a killed
    batch leaves an accurate log of what completed.

    Args:
        items: Inputs from :func:`discover`.
        out_root: Batch output folder.
        spec: Settings of every job.
        workers: Parallel jobs (local processes, or Dask workers of a LocalCluster).
        executor: ``"local"`` (this process when ``workers`` is 1, else a process pool)
            or ``"dask"`` (Dask distributed: a LocalCluster, or ``dask_address``).
        dask_address: Scheduler of an existing Dask cluster, e.g. ``tcp://host:8786``.
        force: Redo inputs whose outputs are complete.
        on_event: Called as ``on_event(kind, data)`` with kind ``"start"`` (``n_items``),
            ``"frames"`` (``index, done, total``) and ``"item"`` (``index``, ``record``).

    Returns:
        The per-input records and the combined outputs written.

    Raises:
        ConfigError: Unknown executor, workers < 1, or the Dask cluster cannot be reached.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}' (available: {', '.join(EXECUTORS)})")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    workers = min(workers, max(1, len(items)))  # no idle processes (--workers 10000)
    out = ensure_output_dir(out_root)
    with _batch_lock(out):
        return _run_batch(items, out, spec, workers, executor, dask_address, force,
                          on_event or (lambda _k, _d: None))


LOCK_FILE = ".detect-track-batch.lock"


def output_lock(out: Path, what: str = "run") -> contextlib.AbstractContextManager[None]:
    """The lock of an output folder (see :func:`_batch_lock`), for single runs too."""
    return _batch_lock(out, what)


@contextlib.contextmanager
def _batch_lock(out: Path, what: str = "batch") -> Iterator[None]:
    """Only one batch writes into a folder at a time; a dead batch's lock is taken over.

    The temporary files a killed run left in ``out`` are removed once the lock is held.

    Args:
        out: The output folder.
        what: What holds it, for the message (``batch``, ``run``).

    Raises:
        ConfigError: If a running batch (or single run) holds the folder.
    """
    lock = out / LOCK_FILE
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise ConfigError(f"another detect-track {what} (process {pid}) is writing "
                                  f"into {out}; wait for it or choose another --out") from None
            lock.unlink(missing_ok=True)  # left by a killed batch
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:  # pragma: no cover - lost a race twice
        raise ConfigError(f"cannot lock {out} for this batch")
    try:
        remove_stale_temporaries(out)  # a killed batch's half-written tables
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX; elsewhere a lock is assumed stale)."""
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_batch(items: Sequence[BatchItem], out: Path, spec: JobSpec, workers: int,
               executor: str, dask_address: str | None, force: bool, emit: EventFn
               ) -> BatchOutcome:
    """:func:`run_batch` once the output folder is locked."""
    if spec.threads <= 0:
        cores = os.cpu_count() or 1
        spec = dataclasses.replace(spec, threads=max(1, cores // workers))
    records: list[dict[str, Any] | None] = [None] * len(items)
    emit("start", {"n_items": len(items)})

    def finished(index: int, record: dict[str, Any]) -> None:
        records[index] = record
        _write_log([r for r in records if r is not None], out)
        emit("item", {"index": index, "record": record})

    if executor == "dask":
        _run_dask(items, out, spec, force, workers, dask_address, finished, emit)
    elif workers == 1:
        for i, item in enumerate(items):
            def progress(done: int, total: int, i: int = i) -> None:
                emit("frames", {"index": i, "done": done, "total": total})
            finished(i, process_item(item, out, spec, force, progress))
    else:
        _run_pool(items, out, spec, force, workers, finished, emit)
    done = [r for r in records if r is not None]
    outcome = BatchOutcome(done)
    outcome.paths = combine(out, done, report=spec.report)
    return outcome


def _run_pool(items: Sequence[BatchItem], out: Path, spec: JobSpec, force: bool, workers: int,
              finished: Callable[[int, dict[str, Any]], None], emit: EventFn) -> None:
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # torch and OpenCV threads do not survive fork
    q = ctx.Queue()  # handed over at worker start (no manager process to outlive us)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(q,)) as pool:
        futures = {pool.submit(_process_in_pool, item, str(out), spec, force, i): i
                   for i, item in enumerate(items)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        index, n, total = q.get_nowait()
                    except queue_mod.Empty:
                        break
                    emit("frames", {"index": index, "done": n, "total": total})
                for fut in done:
                    i = futures[fut]
                    try:
                        record = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died (killed, OOM)
                        record = _crashed(items[i], exc)
                    finished(i, record)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (which reaches this process only)
            _stop_workers(pool)
            for item in items:  # what a stopped worker left half-written (we hold the lock)
                if (out / item.rel).is_dir():
                    remove_stale_temporaries(out / item.rel)
            raise
    q.close()


def _stop_workers(pool: ProcessPoolExecutor, grace_s: float = 3.0) -> None:
    """Interrupt the pool's workers now instead of waiting for their videos to finish.

    Each worker gets SIGINT, so that it removes its half-written files as on Ctrl-C; one
    still alive after ``grace_s`` seconds is terminated.
    """
    import signal

    procs = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown()
    pool.shutdown(wait=False, cancel_futures=True)  # ... which forgets them
    for proc in procs:
        with contextlib.suppress(OSError, ValueError):
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)


def _crashed(item: BatchItem, exc: BaseException) -> dict[str, Any]:
    return {"file": printable_name(str(item.path)), "output": item.rel, "status": "failed",
            "error": printable_name(f"worker crashed: {type(exc).__name__}: {exc}"),
            "warnings": "",
            "elapsed_s": None, "n_frames": None, "n_tracks": None, "finished_at": "", "key": ""}


def _process_on_dask(item: BatchItem, out_root: str, spec: JobSpec, force: bool, index: int,
                     queue_name: str) -> dict[str, Any]:  # pragma: no cover - on a worker
    """:func:`process_item` as a Dask task, sending every 25th frame count to the client."""
    from distributed import Queue

    queue = Queue(queue_name)

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            try:
                queue.put((index, done, total))
            except Exception:  # noqa: BLE001 - progress must never fail a job
                pass

    return process_item(item, out_root, spec, force, progress)


#: Seconds to wait for a Dask scheduler to answer (``--dask-address``).
DASK_CONNECT_S = 20.0


def _connect_dask(client_cls: Any, address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a ConfigError within a bounded time.

    Something that accepts the connection but never answers (not a Dask scheduler) would
    hang ``Client`` for ever, and garbage in reply surfaces as odd errors (a huge frame
    length: MemoryError); so the client connects in a helper thread that is given up on
    after :data:`DASK_CONNECT_S` seconds.

    Raises:
        ConfigError: Unreachable, silent, or not speaking the Dask protocol.
    """
    import threading

    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = client_cls(address, timeout=f"{DASK_CONNECT_S}s")
        except Exception as exc:  # noqa: BLE001 - reported below, in this thread's caller
            box["error"] = exc

    thread = threading.Thread(target=connect, name="detect-track-dask-connect", daemon=True)
    thread.start()
    thread.join(DASK_CONNECT_S + 5.0)
    if thread.is_alive():
        raise ConfigError(f"no Dask scheduler answered at {address} within "
                          f"{DASK_CONNECT_S:g} s (is that address a Dask scheduler?)")
    exc = box.get("error")
    if isinstance(exc, (OSError, TimeoutError)):
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}")
    if exc is not None:
        raise ConfigError(f"{address} did not answer as a Dask scheduler "
                          f"({type(exc).__name__}: {exc})")
    return box["client"]


def _run_dask(items: Sequence[BatchItem], out: Path, spec: JobSpec, force: bool, workers: int,
              address: str | None, finished: Callable[[int, dict[str, Any]], None],
              emit: EventFn) -> None:
    try:
        from distributed import Client, LocalCluster, Queue, wait
    except ImportError as exc:
        raise ConfigError("--executor dask needs Dask distributed: pip install "
                          "'detect-track[batch]' (or: pip install 'dask[distributed]')") from exc
    import uuid

    cluster = None
    try:
        if address:
            client = _connect_dask(Client, address)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        with client:
            queue = Queue(f"detect-track-progress-{uuid.uuid4().hex}", client=client)
            futures = [client.submit(_process_on_dask, item, str(out), spec, force, i,
                                     queue.name, key=f"detect-track-{i}-{item.rel}",
                                     pure=False)
                       for i, item in enumerate(items)]
            index = {f.key: i for i, f in enumerate(futures)}
            pending = set(futures)
            while pending:
                try:
                    done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
                for i, n, total in queue.get(batch=True) if queue.qsize() else []:
                    emit("frames", {"index": i, "done": n, "total": total})
                for fut in done:
                    i = index[fut.key]
                    try:
                        record = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died mid-task
                        record = _crashed(items[i], exc)
                    finished(i, record)
    finally:
        if cluster is not None:
            cluster.close()


# -- combined outputs --------------------------------------------------------------------------
def _write_log(records: Iterable[dict[str, Any]], out: Path) -> Path:
    log = pd.DataFrame(list(records), columns=list(LOG_COLUMNS))
    return write_csv(log, out / BATCH_LOG)


def _flat_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Scalar summary keys; warnings joined; nested dicts flattened with a prefix."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if key in ("config", "versions"):
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                flat[f"{key}.{k}"] = v
        elif isinstance(value, list):
            flat[key] = "; ".join(str(v) for v in value)
        else:
            flat[key] = value
    return flat


def combine(out: Path, records: Sequence[dict[str, Any]], report: bool = True
            ) -> dict[str, Path]:
    """Write ``batch_log.csv``, ``all_tracks``/``all_summaries`` (CSV and Parquet), report.

    Rows come from the finished outputs of every ``ok`` or ``skipped`` input, so a rerun
    that skipped everything still writes complete tables. Failed inputs appear in
    ``all_summaries`` with their status and error only.

    Returns:
        Paths written, by name.
    """
    paths = {"log": _write_log(records, out)}
    tracks, summaries = [], []
    for rec in records:
        row: dict[str, Any] = {"file": rec["file"], "output": rec["output"],
                               "status": rec["status"], "error": rec["error"]}
        folder = out / rec["output"]
        if rec["status"] in ("ok", "skipped"):
            try:
                summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
                t = pd.read_csv(folder / "tracks.csv")
            except (OSError, ValueError) as exc:
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
    paths["all_tracks"] = write_csv(all_tracks, out / ALL_TRACKS)
    paths["all_summaries"] = write_csv(all_summaries, out / ALL_SUMMARIES)
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
