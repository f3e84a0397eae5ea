"""Lazy frame sources: video files, image folders, multi-page TIFF stacks.

Frames are read one at a time; a whole video is never held in memory. OpenCV's and
FFmpeg's own log output is silenced so a corrupt file produces one clear error.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import struct
import tempfile
import threading
import warnings
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
#: Largest frame or image read, in pixels (width x height), unless raised with
#: ``video.max_pixels``: a 20000 x 20000 PNG would take gigabytes to decode.
DEFAULT_MAX_PIXELS = 100_000_000


def printable_name(name: str) -> str:
    r"""``name`` as valid UTF-8 text: undecodable bytes of a file name become U+FFFD.

    A file name that is not valid UTF-8 (``bad\xff.avi`` from a Windows share) reaches
    Python as lone surrogates, which no table, JSON file or terminal can hold.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


@contextlib.contextmanager
def opencv_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """A path OpenCV can be handed: the path itself, or a symlink with a UTF-8 name.

    OpenCV crashes (segmentation fault) on a path that is not valid UTF-8, so such a
    file is reached through a link in a private temporary folder, removed afterwards.
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        yield text
        return
    folder = tempfile.mkdtemp(prefix="detect-track-")
    try:
        link = os.path.join(folder, "file" + printable_name(Path(text).suffix))
        os.symlink(os.path.abspath(text), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_pixels(width: int, height: int, max_pixels: int, what: object) -> None:
    """Refuse a frame larger than ``max_pixels`` before it is decoded.

    Raises:
        InputError: Naming the size, the limit and the key that raises it.
    """
    if width * height > max_pixels:
        raise InputError(f"{what}: {width} x {height} px ({width * height / 1e6:.0f} Mpx) is "
                         f"more than the limit of {max_pixels / 1e6:g} Mpx; if the image is "
                         f"genuine, raise it with video.max_pixels={width * height}")


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(width, height)`` of an image file from its header (nothing decoded), or None.

    None when the header cannot be read: the decoder then reports the file.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own bomb warning: we decide
            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as exc:  # past Pillow's hard limit (~179 Mpx)
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return (int(found.group(1)), 1) if found else None
    except Exception:  # noqa: BLE001 - unreadable header: let the decoder say so
        return None


def read_image_file(path: str | os.PathLike[str]) -> np.ndarray:
    """``cv2.imread(path, IMREAD_UNCHANGED)``, also for a name that is not valid UTF-8.

    Raises:
        InputError: If the file cannot be read or decoded.
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # OpenCV would crash on the name: decode the bytes instead
        try:
            data = np.fromfile(text, np.uint8)
        except OSError as exc:
            raise InputError(f"cannot read image: {path} ({exc.strerror or exc})") from None
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    else:
        img = cv2.imread(text, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read image: {path}")
    return img


def _check_finite(frame: np.ndarray, what: str) -> np.ndarray:
    """A float frame must hold finite values only (NaN would silently hide every cell).

    Raises:
        InputError: Naming how many pixels are NaN or infinite.
    """
    if frame.dtype.kind == "f":
        bad = int(frame.size - np.count_nonzero(np.isfinite(frame)))
        if bad:
            raise InputError(f"{what} holds {bad} NaN or infinite pixel values; replace them "
                             "(e.g. with the background level) and run again")
    return frame


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what native code prints on file descriptor 2 (OpenCV's AVI parser)."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _open_capture(path: str) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` through FFmpeg, else any backend (whose complaints are muted)."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if cap.isOpened():
        return cap
    cap.release()
    with _quiet_stderr():
        return cv2.VideoCapture(path)


def avi_states_frame_rate(path: str | os.PathLike[str]) -> bool | None:
    """Whether an AVI's video stream header gives a frame rate; None if not an AVI.

    An AVI whose ``strh`` rate or scale is 0 has none: FFmpeg then reports 25 fps, which
    is its fallback, not the file's.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    pos = head.find(b"strh")
    while 0 <= pos <= len(head) - 36:
        if head[pos + 8:pos + 12] == b"vids":
            scale, rate = struct.unpack_from("<II", head, pos + 28)
            return scale > 0 and rate > 0
        pos = head.find(b"strh", pos + 4)
    return None


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
        max_pixels: Largest frame accepted (width x height), checked before decoding.

    Raises:
        InputError: If the path is missing, not a supported source, unreadable, or its
            frames are larger than ``max_pixels``.
    """

    def __init__(self, path: str | os.PathLike[str],
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.path = Path(path)
        self.max_pixels = int(max_pixels)
        if not self.path.exists():
            raise InputError(f"no such file or folder: {self.path}")
        if self.path.is_dir():
            self._files = sorted(  # hidden files (macOS "._0001.png" forks) are not frames
                (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                 and not p.name.startswith(".") and p.is_file()),
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
        with opencv_path(self.path) as name:
            cap = _open_capture(name)
            try:
                if not cap.isOpened():
                    raise InputError(
                        f"cannot open video (unsupported or corrupt file): {self.path}")
                check_pixels(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
                             int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0), self.max_pixels,
                             self.path)
                ok, frame = cap.read()
                if not ok or frame is None:
                    raise InputError(
                        f"cannot decode any frame of the video (corrupt file?): {self.path}")
                fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
                n_raw = cap.get(cv2.CAP_PROP_FRAME_COUNT) or -1
            finally:
                cap.release()
        n = int(n_raw) if np.isfinite(n_raw) and 0 < n_raw < 2**62 else -1
        if avi_states_frame_rate(self.path) is False:
            fps = 0.0  # FFmpeg's 25 fps stand-in, not the file's: the rate is unknown
        return SourceInfo(self.path, "video", fps if np.isfinite(fps) and fps > 0 else None,
                          n, frame.shape[1], frame.shape[0])

    def _probe_tiff(self) -> SourceInfo:
        import tifffile

        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                shape = series.shape
                n_pages = len(tif.pages)
                self._check_page(tif.pages[0])
                first = tif.pages[0].asarray()
        except InputError:
            raise
        except Exception as exc:  # tifffile raises many types on corrupt input
            raise InputError(f"cannot read TIFF file {self.path}: {exc}") from exc
        gray = _check_finite(_to_gray(np.asarray(first)), f"frame 0 of {self.path}")
        n = n_pages if n_pages > 1 else (shape[0] if len(shape) == 3 and shape[-1] > 4 else 1)
        return SourceInfo(self.path, "tiff", None, n, gray.shape[1], gray.shape[0])

    def _check_page(self, page: object) -> None:
        """Refuse a TIFF page larger than ``max_pixels`` (its header only is read)."""
        shape = tuple(getattr(page, "shape", ()) or ())
        dims = [d for d in shape if d > 4] or [1]  # (H, W), (H, W, C), (frames, H, W)
        height, width = (dims[-2], dims[-1]) if len(dims) >= 2 else (dims[0], 1)
        check_pixels(int(width), int(height), self.max_pixels, self.path)

    def _read_image(self, path: Path) -> np.ndarray:
        size = image_size(path)
        if size is not None:
            check_pixels(size[0], size[1], self.max_pixels, path)
        return _check_finite(_to_gray(read_image_file(path)), f"image {path.name}")

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

            def frame(i: int, arr: np.ndarray) -> np.ndarray:
                gray = _check_finite(_to_gray(np.asarray(arr)), f"frame {i} of {self.path}")
                if gray.shape != (self.info.height_px, self.info.width_px):
                    raise InputError(f"frame {i} of {self.path} has size {gray.shape[::-1]}, "
                                     f"expected {(self.info.width_px, self.info.height_px)}")
                return gray

            with tifffile.TiffFile(self.path) as tif:
                if len(tif.pages) > 1:
                    for i, page in enumerate(tif.pages):
                        self._check_page(page)
                        yield i, frame(i, page.asarray())
                else:
                    arr = tif.pages[0].asarray()
                    if arr.ndim == 3 and arr.shape[-1] > 4:  # (frames, H, W) in one page
                        for i in range(arr.shape[0]):
                            yield i, frame(i, arr[i])
                    else:
                        yield 0, frame(0, arr)
        else:
            with opencv_path(self.path) as name:
                cap = _open_capture(name)
                try:
                    i = 0
                    while True:
                        ok, img = cap.read()
                        if not ok or img is None:
                            break
                        yield i, _to_gray(img)
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
