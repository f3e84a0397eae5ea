"""Lazy frame sources: video files, image folders, multi-page TIFF stacks.

Frames are read one at a time; a whole video is never held in memory. OpenCV's and
FFmpeg's own log output is silenced so a corrupt file produces one clear error.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from detect_track.errors import InputError  # noqa: E402

try:  # OpenCV >= 4.5 exposes the log level at run time too.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover
    pass

VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv", ".mpg", ".mpeg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
TIFF_SUFFIXES = {".tif", ".tiff"}


@dataclass(frozen=True)
class SourceInfo:
    """Properties of a frame source as read from the file.

    Attributes:
        path: The source path.
        kind: ``"video"``, ``"images"`` (folder) or ``"tiff"`` (multi-page stack).
        fps: Frame rate from the container, or None when the source has none.
        n_frames: Frame count (approximate for some video containers).
        width_px: Frame width in pixels.
        height_px: Frame height in pixels.
    """

    path: Path
    kind: str
    fps: float | None
    n_frames: int
    width_px: int
    height_px: int


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _to_gray(frame: np.ndarray) -> np.ndarray:
    """Convert a frame to a 2-D array (colour frames are converted to luminance)."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(frame, code)
    if frame.ndim != 2:
        raise InputError(f"unsupported frame shape {frame.shape}")
    return frame


class FrameSource:
    """Iterate over the frames of a video, an image folder or a TIFF stack.

    Frames are yielded as 2-D grayscale arrays ``(H, W)`` (uint8 or uint16, as stored),
    frame indices are 0-based. Iterating again restarts at the first frame.

    Args:
        path: Video file, folder of images, or multi-page TIFF.

    Raises:
        InputError: If the path is missing, not a supported source, or unreadable.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"no such file or folder: {self.path}")
        if self.path.is_dir():
            self._files = sorted(
                (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=_natural_key,
            )
            if not self._files:
                raise InputError(f"folder contains no images (png, jpg, tif, bmp): {self.path}")
            first = self._read_image(self._files[0])
            self.info = SourceInfo(self.path, "images", None, len(self._files), first.shape[1],
                                   first.shape[0])
        elif self.path.suffix.lower() in TIFF_SUFFIXES:
            self.info = self._probe_tiff()
        elif self.path.suffix.lower() in VIDEO_SUFFIXES or self.path.is_file():
            self.info = self._probe_video()
        else:  # pragma: no cover - exists but neither file nor dir (socket, ...)
            raise InputError(f"not a video, image folder or TIFF: {self.path}")

    # -- probing -----------------------------------------------------------------------------
    def _probe_video(self) -> SourceInfo:
        if self.path.stat().st_size == 0:
            raise InputError(f"video file is empty (0 bytes): {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise InputError(f"cannot open video (unsupported or corrupt file): {self.path}")
            ok, frame = cap.read()
            if not ok or frame is None:
                raise InputError(
                    f"cannot decode any frame of the video (corrupt file?): {self.path}")
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or -1)
        finally:
            cap.release()
        return SourceInfo(self.path, "video", fps if np.isfinite(fps) and fps > 0 else None,
                          n if n > 0 else -1, frame.shape[1], frame.shape[0])

    def _probe_tiff(self) -> SourceInfo:
        import tifffile

        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                shape = series.shape
                n_pages = len(tif.pages)
                first = tif.pages[0].asarray()
        except Exception as exc:  # tifffile raises many types on corrupt input
            raise InputError(f"cannot read TIFF file {self.path}: {exc}") from exc
        gray = _to_gray(np.asarray(first))
        n = n_pages if n_pages > 1 else (shape[0] if len(shape) == 3 and shape[-1] > 4 else 1)
        return SourceInfo(self.path, "tiff", None, n, gray.shape[1], gray.shape[0])

    @staticmethod
    def _read_image(path: Path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"cannot read image: {path}")
        return _to_gray(img)

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame_index, frame)`` with ``frame`` of shape ``(H, W)``."""
        if self.info.kind == "images":
            for i, f in enumerate(self._files):
                img = self._read_image(f)
                if img.shape != (self.info.height_px, self.info.width_px):
                    raise InputError(f"image {f.name} has size {img.shape[::-1]}, expected "
                                     f"{(self.info.width_px, self.info.height_px)}")
                yield i, img
        elif self.info.kind == "tiff":
            import tifffile

            with tifffile.TiffFile(self.path) as tif:
                if len(tif.pages) > 1:
                    for i, page in enumerate(tif.pages):
                        yield i, _to_gray(np.asarray(page.asarray()))
                else:
                    arr = tif.pages[0].asarray()
                    if arr.ndim == 3 and arr.shape[-1] > 4:  # (frames, H, W) in one page
                        for i in range(arr.shape[0]):
                            yield i, arr[i]
                    else:
                        yield 0, _to_gray(arr)
        else:
            cap = cv2.VideoCapture(str(self.path))
            try:
                i = 0
                while True:
                    ok, frame = cap.read()
                    if not ok or frame is None:
                        break
                    yield i, _to_gray(frame)
                    i += 1
            finally:
                cap.release()

    def __len__(self) -> int:
        """Frame count as reported by the source (may be approximate for videos)."""
        return max(self.info.n_frames, 0)


_DONE = object()


def read_ahead(frames: Iterable[tuple[int, np.ndarray]], depth: int = 8
               ) -> Iterator[tuple[int, np.ndarray]]:
    """Iterate ``frames`` in a background thread, up to ``depth`` frames ahead.

    Video decoding (OpenCV, FFmpeg) releases the GIL, so the next frames decode while the
    caller runs inference on the current one. Errors raised while reading are re-raised
    here, at the frame where they happened; stopping early stops the reader.

    Args:
        frames: Any iterable of ``(index, frame)``, e.g. a :class:`FrameSource`.
        depth: Frames buffered at most (memory stays bounded: ``depth`` frames).

    Yields:
        The items of ``frames``, in order.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in frames:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    thread = threading.Thread(target=reader, name="detect-track-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)
