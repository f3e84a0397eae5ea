"""Set-up shared by the learned detectors: offline ultralytics, thread counts, imports.

Nothing here downloads: ultralytics runs with ``YOLO_OFFLINE=1``, its settings live in a
detect-track cache folder, and the font its plotting code wants is copied from the
local matplotlib installation instead of being fetched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from detect_track.errors import ConfigError

_INSTALL_HINT = ("install the training / torch extras: pip install 'detect-track[ml]' "
                 "(the default ONNX path needs only the core install)")


#: CPU threads the learned models of this process use (None: every core); see
#: :func:`set_threads`. Process-local: nothing reads it from or writes it to the environment.
_threads: int | None = None


def set_threads(n: int | None) -> int | None:
    """Set the CPU threads the models created from now on in this process use.

    Torch, ONNX Runtime and OpenVINO models read :func:`torch_threads` when they are
    created (and the ONNX detector when it starts a stream), so call this before creating
    them: a batch sets each job's share of the cores before running it.

    Args:
        n: Threads, at least 1; None or 0 = every core (the default).

    Returns:
        The previous setting (None: every core), to restore it later.

    Raises:
        ValueError: If ``n`` is negative.
    """
    global _threads
    if n is not None and n < 0:
        raise ValueError(f"threads must be >= 0, got {n}")
    previous = _threads
    _threads = int(n) if n else None
    return previous


@contextlib.contextmanager
def using_threads(n: int | None) -> Iterator[None]:
    """Within the block, models created use ``n`` threads (None or 0: keep the setting).

    The previous setting is restored on leaving the block.
    """
    if not n:
        yield
        return
    previous = set_threads(n)
    try:
        yield
    finally:
        set_threads(previous)


def torch_threads() -> int:
    """Threads torch and the ONNX runtimes should use: :func:`set_threads`, else every core."""
    if _threads is not None:
        return _threads
    return max(1, os.cpu_count() or 1)


def require(module: str) -> Any:
    """Import an optional dependency or raise a :class:`ConfigError` with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"'{module}' is not installed; {_INSTALL_HINT}") from exc


def onnx_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session using ``threads`` threads for each operator.

    Raises:
        ConfigError: If onnxruntime is missing or the file is not a readable model.
    """
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: no warnings on the console
    # Idle operator threads sleep instead of spinning: the frame decoder and the tracker
    # run in other threads of this process and need the cores between operators.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ConfigError(f"cannot load ONNX model {path}: {exc}") from exc


def write_onnx(module: Any, example: Any, path: Path, names: tuple[str, str],
                dynamic_axes: dict[str, dict[int, str]], fmt: str, meta: dict[str, Any]
                ) -> None:
    """Export a torch module to ONNX at ``path`` with detect-track metadata.

    Args:
        module: The torch module (moved to the CPU, eval mode, by the caller).
        example: An example input tensor.
        path: The file to write (callers write to a temporary file and rename it).
        names: Input and output tensor names.
        dynamic_axes: ``{tensor name: {axis: label}}`` of the axes left free.
        fmt: Format tag, stored as ``format`` and checked by :func:`onnx_metadata`.
        meta: JSON-serialisable facts stored as ``detect_track``.
    """
    import json
    import warnings

    onnx = require("onnx")
    torch = require("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation note
        torch.onnx.export(module, example, str(path), dynamo=False, input_names=[names[0]],
                          output_names=[names[1]], opset_version=17, dynamic_axes=dynamic_axes)
    proto = onnx.load(str(path))
    for key, value in (("format", fmt), ("detect_track", json.dumps(meta, default=str))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def onnx_metadata(session: Any, fmt: str, path: Path, what: str) -> dict[str, Any]:
    """The ``detect_track`` metadata of a session's model written by :func:`write_onnx`.

    Raises:
        ConfigError: If the model's format tag is not ``fmt`` (``what`` names the kind).
    """
    import json

    props = session.get_modelmeta().custom_metadata_map
    if props.get("format") != fmt:
        raise ConfigError(f"{path} is not a detect-track {what}")
    return dict(json.loads(props["detect_track"]))


def openvino_available() -> bool:
    """True when OpenVINO's Python runtime can be imported."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class OpenVinoModel:
    """An ONNX model compiled by OpenVINO for the CPU; :meth:`run` is thread-safe.

    One compiled model per input shape (frames of one video share one), compiled on first
    use with ``streams`` parallel inference streams over ``threads`` threads, and as many
    inference requests, which callers borrow one at a time. The requests are created and
    run once, one after the other, before any caller gets one: two threads making their
    first inference at the same moment deadlocked now and then in OpenVINO 2026.4.
    OpenVINO picks the CPU's fastest precision (bfloat16 where the CPU has it, else
    float32). Only the runtime is used: no model conversion tool, so nothing is sent
    anywhere.

    Args:
        path: The ``.onnx`` file.
        threads: CPU threads for inference in total.
        streams: Inferences that may run at the same time.

    Raises:
        ConfigError: If openvino is missing or the file is not a readable model.
    """

    def __init__(self, path: Path, threads: int, streams: int = 1) -> None:
        import threading

        ov = require("openvino")
        self._core = ov.Core()
        try:  # OpenVINO tries every frontend on a file: one that is not ONNX gets several
            with open(path, "rb") as fh:  # lines of TensorFlow parser noise on stderr
                if fh.read(1) != b"\x08":  # an ONNX ModelProto starts with ir_version
                    raise ConfigError(f"{path} is not an ONNX model")
            self._model = self._core.read_model(str(path))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - openvino raises its own exception types
            raise ConfigError(f"cannot load ONNX model {path} with OpenVINO: {exc}") from exc
        self._streams = max(1, streams)
        self._config = {"INFERENCE_NUM_THREADS": max(1, threads),
                        "NUM_STREAMS": self._streams, "ENABLE_CPU_PINNING": False,
                        "PERFORMANCE_HINT": "THROUGHPUT" if self._streams > 1 else "LATENCY"}
        self._pools: dict[tuple[int, ...], Any] = {}  # shape -> queue of idle requests
        self._lock = threading.Lock()

    def metadata(self, key: str) -> str | None:
        """A metadata entry of the ONNX file (ultralytics writes ``names``, ``stride``)."""
        if not self._model.has_rt_info(["framework", key]):
            return None
        return str(self._model.get_rt_info(["framework", key]).astype(str))

    def _pool(self, shape: tuple[int, ...]) -> Any:
        import queue

        with self._lock:
            pool = self._pools.get(shape)
            if pool is None:
                model = self._model.clone()
                model.reshape({model.inputs[0]: list(shape)})
                compiled = self._core.compile_model(model, "CPU", self._config)
                pool = queue.SimpleQueue()
                warm = np.zeros(shape, np.float32)
                for _ in range(self._streams):  # created and run once, one at a time
                    request = compiled.create_infer_request()
                    request.infer({0: warm})
                    pool.put(request)
                self._pools[shape] = pool
            return pool

    def run(self, blob: np.ndarray) -> np.ndarray:
        """The model's first output for one input ``blob``."""
        shape = tuple(blob.shape)
        pool = self._pools.get(shape)
        if pool is None:
            pool = self._pool(shape)
        request = pool.get()
        try:
            request.infer({0: blob})
            return np.array(request.get_output_tensor(0).data)  # a copy: the buffer is reused
        finally:
            pool.put(request)


def prepare_ultralytics() -> None:
    """Make ultralytics work offline and quietly; call before importing it.

    Sets ``YOLO_OFFLINE=1``, keeps its settings in ``~/.cache/detect-track/ultralytics``
    (unless ``YOLO_CONFIG_DIR`` is set) and places a local TrueType font there under the
    name its plotting code looks for, so that no download is attempted.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if "YOLO_CONFIG_DIR" not in os.environ:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        os.environ["YOLO_CONFIG_DIR"] = str(cache / "detect-track" / "ultralytics")
    cfg_dir = Path(os.environ["YOLO_CONFIG_DIR"])
    try:
        cfg_dir.mkdir(parents=True, exist_ok=True)
        font = _local_font()
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            target = cfg_dir / name
            if font is not None and not target.exists():
                shutil.copyfile(font, target)
    except OSError:
        pass  # read-only home: ultralytics falls back to its own temp folder
    require("ultralytics")


def _local_font() -> Path | None:
    """A TrueType font that ships with matplotlib (a dependency of ultralytics)."""
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return path if path.is_file() else None
