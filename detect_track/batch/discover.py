"""Finding a batch's inputs: a folder, a glob pattern or a list file.

One input is a video file, a multi-page TIFF, or a folder of frames; each gets a unique
output sub-folder named after its path below the searched folder.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from detect_track.batch.jobs import BatchItem
from detect_track.errors import ConfigError, InputError
from detect_track.io.meta import check_fps, check_um_per_px
from detect_track.io.video import IMAGE_SUFFIXES, TIFF_SUFFIXES, VIDEO_SUFFIXES, printable_name

#: Suffixes of list files (one input path per line; ``.csv``: a ``path`` column and
#: optional per-input ``fps``, ``um_per_px``, ``chamber_depth_um`` columns).
LIST_SUFFIXES = {".txt", ".lst", ".list", ".csv"}
#: Per-input settings a CSV list file may give (empty cells: the command's values).
ITEM_SETTINGS = ("fps", "um_per_px", "chamber_depth_um")


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
    """True when ``folder`` is one video stored as frames (hidden files ignored)."""
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
    """The deepest folder holding every path (output names are relative to it)."""
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
